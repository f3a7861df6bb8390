"""Server styles: one row per (server, style name). Names arrive in their stored form
(``bot.domain.styles.style_name``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from bot.domain.models import Style
from bot.store.protocol import Db, Row

# What ``put`` did: a new style, a new text for a known name, or nothing (the server is full).
PutOutcome = Literal["added", "replaced", "full"]


def _style(row: Row) -> Style:
    return Style(str(row[0]), str(row[1]))


class StyleRepository:
    def __init__(self, db: Db, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock

    async def in_guild(self, guild_id: int) -> list[Style]:
        """The server's styles, by name."""
        rows = await self.db.fetchall(
            "SELECT name, text FROM styles WHERE guild_id = ? ORDER BY name", (guild_id,)
        )
        return [_style(r) for r in rows]

    async def get(self, guild_id: int, name: str) -> Style | None:
        row = await self.db.fetchone(
            "SELECT name, text FROM styles WHERE guild_id = ? AND name = ?", (guild_id, name)
        )
        return _style(row) if row else None

    async def put(self, guild_id: int, style: Style, *, by: int, limit: int) -> PutOutcome:
        """Add ``style`` or give a known name its new text; a new name is refused ("full") when
        the server has ``limit`` styles. Counted and written in one transaction, so two admins
        adding at once cannot pass the limit together."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT COUNT(*), SUM(CASE WHEN name = ? THEN 1 ELSE 0 END)"
                " FROM styles WHERE guild_id = ?",
                (style.name, guild_id),
            )
            row = await cur.fetchone()
            count, known = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
            if known:
                await conn.execute(
                    "UPDATE styles SET text = ?, created_by = ?, updated_at = ?"
                    " WHERE guild_id = ? AND name = ?",
                    (style.text, by, self._clock(), guild_id, style.name),
                )
                return "replaced"
            if count >= limit:
                return "full"
            await conn.execute(
                "INSERT INTO styles (guild_id, name, text, created_by, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (guild_id, style.name, style.text, by, self._clock()),
            )
        return "added"

    async def remove(self, guild_id: int, name: str) -> bool:
        """False when the server has no style of that name."""
        changed = await self.db.execute(
            "DELETE FROM styles WHERE guild_id = ? AND name = ?", (guild_id, name)
        )
        return changed > 0
