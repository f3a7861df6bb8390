"""What /wan-admin and /quota call: members' credits, blocks, usage, server settings, privacy.

The cogs check *who* may do this (Manage Server or a bot owner); this service does it. It is the
only way from a Discord face to the quota, config and job stores, so an admin feature is one
method here and one command there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bot.domain.config import BOT_WIDE, GuildConfig
from bot.domain.quota import Limits, Usage
from bot.jobs.credits import CreditMonitor
from bot.store.guild_config import GuildConfigRepository
from bot.store.jobs import JobRepository
from bot.store.quotas import QuotaRepository

Clock = Callable[[], float]


class AdminService:
    def __init__(
        self,
        quotas: QuotaRepository,
        configs: GuildConfigRepository,
        jobs: JobRepository,
        credits: CreditMonitor,
        *,
        allow_dms: bool,
        clock: Clock = time.time,
    ) -> None:
        self._quotas = quotas
        self._configs = configs
        self._jobs = jobs
        self._credits = credits
        self.allow_dms_default = allow_dms  # ALLOW_DMS: what applies while no owner chose
        self._clock = clock

    # --- a member's credits ----------------------------------------------------------------------

    async def usage(self, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> Usage:
        return await self._quotas.usage(guild_id, user_id, role_ids)

    async def set_limits(self, guild_id: int, scope: str, subject_id: int, limits: Limits) -> None:
        await self._quotas.set_limits(guild_id, scope, subject_id, limits)

    async def clear_limits(self, guild_id: int, scope: str, subject_id: int) -> bool:
        return await self._quotas.clear_limits(guild_id, scope, subject_id)

    async def list_limits(self, guild_id: int) -> list[tuple[str, int, Limits]]:
        return await self._quotas.list_limits(guild_id)

    async def grant(
        self, guild_id: int, user_id: int, credits: float, *, period: str, by: int
    ) -> None:
        await self._quotas.grant(
            guild_id, user_id, credits, period=period, by=by, now=self._clock()
        )

    async def reset(self, guild_id: int, user_id: int) -> None:
        await self._quotas.reset(guild_id, user_id, self._clock())

    async def block(self, guild_id: int, user_id: int, reason: str | None, by: int) -> None:
        await self._quotas.block(guild_id, user_id, reason, by, self._clock())

    async def unblock(self, guild_id: int, user_id: int) -> bool:
        return await self._quotas.unblock(guild_id, user_id)

    async def top_users(self, guild_id: int, since: float) -> list[tuple[int, float, int]]:
        return await self._quotas.top_users(guild_id, since)

    async def daily_spend(self, guild_id: int | None, since: float) -> list[tuple[float, float]]:
        return await self._quotas.daily_spend(guild_id, since)

    async def forget_user(self, user_id: int) -> int:
        """Privacy: a member's finished jobs, credit history and /settings, everywhere."""
        return await self._jobs.forget_user(user_id)

    async def balance(self) -> float | None:
        """crun's balance now (None when it cannot be read); also updates the credit alerts."""
        return await self._credits.check()

    # --- server settings ---------------------------------------------------------------------

    async def config(self, guild_id: int) -> GuildConfig:
        return await self._configs.get(guild_id)

    async def bot_wide_config(self) -> GuildConfig:
        return await self._configs.get(BOT_WIDE)

    async def change_config(
        self, guild_id: int, change: Callable[[GuildConfig], GuildConfig]
    ) -> tuple[GuildConfig, GuildConfig]:
        """(before, after): read, checked and written in one transaction."""
        before: list[GuildConfig] = []

        def remember(current: GuildConfig) -> GuildConfig:
            before.append(current)
            return change(current)

        after = await self._configs.modify(guild_id, remember)
        return before[0], after

    async def set_dms_allowed(self, value: bool | None) -> GuildConfig:
        """Bot owners' switch for every server; None: the ALLOW_DMS setting decides."""
        return await self._configs.update(BOT_WIDE, dms_allowed=value)

    async def alert_channels(self) -> list[tuple[int, int]]:
        """(guild id, channel id) of every server's alerts channel."""
        return await self._configs.alert_channels()
