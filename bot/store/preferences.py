"""Members' own defaults (/settings): one JSON document per Discord user, for every server."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from bot.domain.preferences import Preferences
from bot.store.protocol import Db

log = logging.getLogger(__name__)


class PreferenceRepository:
    def __init__(self, db: Db, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock

    async def get(self, user_id: int) -> Preferences:
        """The member's preferences; none chosen when they have no row."""
        row = await self.db.fetchone(
            "SELECT prefs_json FROM preferences WHERE user_id = ?", (user_id,)
        )
        return self._parse(user_id, row[0]) if row else Preferences()

    async def modify(
        self, user_id: int, change: Callable[[Preferences], Preferences]
    ) -> Preferences:
        """Read, change and write in one transaction (two panels open at once lose nothing).
        Preferences that end up all unset delete the row."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT prefs_json FROM preferences WHERE user_id = ?", (user_id,)
            )
            row = await cur.fetchone()
            updated = change(self._parse(user_id, row[0]) if row else Preferences())
            if updated.empty:
                await conn.execute("DELETE FROM preferences WHERE user_id = ?", (user_id,))
                return updated
            await conn.execute(
                "INSERT INTO preferences (user_id, prefs_json, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(user_id) DO UPDATE"
                " SET prefs_json = excluded.prefs_json, updated_at = excluded.updated_at",
                (user_id, updated.to_json(), self._clock()),
            )
        return updated

    async def clear(self, user_id: int) -> bool:
        """Forget the member's preferences; True when there were some."""
        return await self.db.execute("DELETE FROM preferences WHERE user_id = ?", (user_id,)) > 0

    @staticmethod
    def _parse(user_id: int, text: str) -> Preferences:
        try:
            return Preferences.from_json(text)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            # Unreadable: the member gets the bot defaults; their next choice overwrites it.
            log.error("user %s: stored preferences unreadable (%s); using defaults", user_id, exc)
            return Preferences()
