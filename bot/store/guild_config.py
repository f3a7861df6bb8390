"""Per-server settings, one JSON document per guild (guild 0: the bot-wide settings)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from bot.domain.config import GuildConfig
from bot.store.protocol import Db

log = logging.getLogger(__name__)


class GuildConfigRepository:
    def __init__(self, db: Db, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock

    async def get(self, guild_id: int) -> GuildConfig:
        """The guild's settings; the defaults when it has none."""
        row = await self.db.fetchone(
            "SELECT config_json FROM guild_config WHERE guild_id = ?", (guild_id,)
        )
        return self._parse(guild_id, row[0]) if row else GuildConfig()

    async def set(self, guild_id: int, config: GuildConfig) -> None:
        """Store ``config`` after checking every setting can be enforced (``InvalidInput``)."""
        config.validate()
        await self.db.execute(
            "INSERT INTO guild_config (guild_id, config_json, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(guild_id) DO UPDATE"
            " SET config_json = excluded.config_json, updated_at = excluded.updated_at",
            (guild_id, config.to_json(), self._clock()),
        )

    async def update(self, guild_id: int, **changes: Any) -> GuildConfig:
        """Change some fields, keep the rest. Returns the stored result."""
        return await self.modify(guild_id, lambda c: dataclasses.replace(c, **changes))

    async def modify(
        self, guild_id: int, change: Callable[[GuildConfig], GuildConfig]
    ) -> GuildConfig:
        """Read, change and write in one transaction, so two admins editing the same list at
        once do not lose each other's change. ``change`` may raise (e.g. ``InvalidInput``):
        nothing is written then."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT config_json FROM guild_config WHERE guild_id = ?", (guild_id,)
            )
            row = await cur.fetchone()
            current = self._parse(guild_id, row[0]) if row else GuildConfig()
            updated = change(current)
            updated.validate()
            await conn.execute(
                "INSERT INTO guild_config (guild_id, config_json, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(guild_id) DO UPDATE"
                " SET config_json = excluded.config_json, updated_at = excluded.updated_at",
                (guild_id, updated.to_json(), self._clock()),
            )
        return updated

    async def alert_channels(self) -> list[tuple[int, int]]:
        """(guild id, channel id) of every server that set an alerts channel."""
        rows = await self.db.fetchall("SELECT guild_id, config_json FROM guild_config")
        found = []
        for row in rows:
            channel = self._parse(int(row[0]), row[1]).alerts_channel_id
            if channel is not None:
                found.append((int(row[0]), channel))
        return found

    @staticmethod
    def _parse(guild_id: int, text: str) -> GuildConfig:
        try:
            return GuildConfig.from_json(text)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            # Unreadable (hand-edited?) settings: run with the defaults rather than not at all,
            # and say so loudly; the next admin change overwrites the document.
            log.error("guild %s: stored settings unreadable (%s); using defaults", guild_id, exc)
            return GuildConfig()
