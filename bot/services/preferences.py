"""What /settings and the job flow call: a member's own defaults, read, changed and applied.

Discord-free: it works on user ids. Preferences are per Discord user, the same in every server;
the server a request comes from still caps them (``domain.preferences.personalise``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain import preferences as rules
from bot.domain.config import BOT_WIDE, GuildConfig
from bot.domain.models import GenerationRequest, Resolution
from bot.domain.preferences import Personalised, Preferences
from bot.store.guild_config import GuildConfigRepository
from bot.store.preferences import PreferenceRepository


@dataclass(frozen=True, slots=True)
class SettingsPanel:
    """What the /settings panel shows: the member's choices, and the server's cap (None in DMs
    or when the server allows everything)."""

    prefs: Preferences
    server_max: Resolution | None = None


class PreferenceService:
    def __init__(self, prefs: PreferenceRepository, configs: GuildConfigRepository) -> None:
        self._prefs = prefs
        self._configs = configs

    async def panel(self, user_id: int, guild_id: int | None) -> SettingsPanel:
        prefs = await self._prefs.get(user_id)
        config = await self._configs.get(BOT_WIDE if guild_id is None else guild_id)
        capped = config.max_resolution is not Resolution.R4K
        return SettingsPanel(prefs, config.max_resolution if capped else None)

    async def get(self, user_id: int) -> Preferences:
        return await self._prefs.get(user_id)

    async def choose(self, user_id: int, name: str, value: str) -> Preferences:
        """A menu choice (resolution, aspect ratio, count); ``InvalidInput`` if not offered."""
        return await self._prefs.modify(user_id, lambda p: rules.choose(p, name, value))

    async def toggle(self, user_id: int, name: str) -> Preferences:
        """Switch thinking or watermark."""
        return await self._prefs.modify(user_id, lambda p: rules.toggle(p, name))

    async def set_suffix(self, user_id: int, text: str) -> Preferences:
        """Checked like a prompt (``InvalidInput``); an empty text clears it."""
        suffix = rules.check_suffix(text)
        return await self._prefs.modify(user_id, lambda p: dataclasses.replace(p, suffix=suffix))

    async def reset(self, user_id: int) -> None:
        await self._prefs.clear(user_id)

    async def personalise(
        self,
        user_id: int,
        request: GenerationRequest,
        given: Iterable[str],
        config: GuildConfig,
    ) -> Personalised:
        """``request`` with the member's preferences filled in where the command said nothing,
        capped by ``config`` (the server's rules), and what to tell the member about it."""
        prefs = await self._prefs.get(user_id)
        if prefs.empty:
            return Personalised(request)
        return rules.personalise(request, prefs, given, config)
