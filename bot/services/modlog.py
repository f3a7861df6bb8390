"""The moderation log: each event is a line in the server's mod-log channel, within its rate limit.

Every method returns at once: the line is looked up, rate-limited and posted in the background,
so a member's reply never waits on the mod log, and a post that fails is logged, never shown. The
wording and the limit are ``bot.domain.modlog``'s; posting is the ``send`` the bot passes in (the
Discord face's, ``bot.ui.modlog``), which renders the line in the server's language: the service
hands it the language the server's admins chose, read with the mod-log channel. Without a
``send`` (the CLI) or a mod-log channel, nothing is posted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.domain.config import BlockRule
from bot.domain.models import Job
from bot.domain.modlog import EventKind, ModEvent, ModLogLimiter, Verdict, line, summary_line
from bot.domain.text import Text
from bot.jobs.background import TaskGroup
from bot.store.guild_config import GuildConfigRepository

log = logging.getLogger(__name__)

# (guild id, channel id, text, the server's /wan-admin config language or None): posts one line
# in the server's language; raises nothing it has not logged.
Send = Callable[[int, int, Text, str | None], Awaitable[None]]

CLOSE_GRACE = 2.0  # seconds lines still being posted get at shutdown
SUMMARY_MARGIN = 0.05  # seconds after a window ends that its summary is posted


class ModLogService:
    def __init__(
        self,
        configs: GuildConfigRepository,
        send: Send | None,
        *,
        limiter: ModLogLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configs = configs
        self._send = send
        self.limiter = limiter or ModLogLimiter()
        self.clock = clock  # the rate limit's clock (tests move it)
        self._posts = TaskGroup("modlog")
        self._timers = TaskGroup("modlog-summary")

    # --- the events ---------------------------------------------------------------------------

    def blocked_prompt(
        self, guild_id: int | None, user_id: int, channel_id: int, rule: BlockRule, prompt: str
    ) -> None:
        event = ModEvent(EventKind.BLOCKED_PROMPT, user_id, channel_id, rule=rule, prompt=prompt)
        self.report(guild_id, event)

    def content_filtered(self, job: Job) -> None:
        """The engine's hook: crun's content filter refused ``job``."""
        channel = job.target.data.get("channel_id")
        event = ModEvent(
            EventKind.CONTENT_FILTER,
            job.user_id,
            channel if isinstance(channel, int) else None,
            prompt=job.request.prompt,
            job_id=job.id,
        )
        self.report(job.guild_id, event)

    def result_deleted(self, by: int, job: Job, channel_id: int | None) -> None:
        """``by`` deleted ``job``'s result; the requester deleting their own is not logged."""
        if by == job.user_id:
            return
        event = ModEvent(
            EventKind.RESULT_DELETED,
            by,
            channel_id,
            subject_id=job.user_id,
            prompt=job.request.prompt,
            job_id=job.id,
        )
        self.report(job.guild_id, event)

    def member_blocked(
        self, guild_id: int, by: int, member_id: int, channel_id: int | None, reason: str | None
    ) -> None:
        kind = EventKind.MEMBER_BLOCKED
        self.report(guild_id, ModEvent(kind, by, channel_id, subject_id=member_id, reason=reason))

    def member_unblocked(
        self, guild_id: int, by: int, member_id: int, channel_id: int | None
    ) -> None:
        kind = EventKind.MEMBER_UNBLOCKED
        self.report(guild_id, ModEvent(kind, by, channel_id, subject_id=member_id))

    def report(self, guild_id: int | None, event: ModEvent) -> None:
        """Post ``event`` in the background (DMs have no mod log)."""
        if guild_id is None or self._send is None:
            return
        self._posts.spawn(self._report(guild_id, event), name=event.kind.name.lower())

    # --- posting ------------------------------------------------------------------------------

    async def _report(self, guild_id: int, event: ModEvent) -> None:
        config = await self._configs.get(guild_id)
        if config.modlog_channel_id is None:
            return
        verdict = self.limiter.admit(guild_id, event.kind, self.clock())
        if verdict is Verdict.POST:
            await self._post(guild_id, config.modlog_channel_id, line(event), config.language)
        elif verdict is Verdict.HOLD_FIRST:
            self._timers.spawn(self._summary_later(guild_id), name=f"guild-{guild_id}")

    async def _summary_later(self, guild_id: int) -> None:
        ends = self.limiter.ends(guild_id)
        if ends is not None:
            # A little past the end: the event loop may wake a timer a hair early.
            await asyncio.sleep(max(0.0, ends - self.clock()) + SUMMARY_MARGIN)
        await self.flush()

    async def flush(self) -> int:
        """Post the summary of every window that is over; returns how many were posted."""
        posted = 0
        for guild_id, held in self.limiter.due(self.clock()):
            config = await self._configs.get(guild_id)
            if config.modlog_channel_id is not None:  # turned off meanwhile: nothing to say
                summary = summary_line(held)
                await self._post(guild_id, config.modlog_channel_id, summary, config.language)
                posted += 1
        return posted

    async def _post(self, guild_id: int, channel_id: int, text: Text, language: str | None) -> None:
        if self._send is None:  # report() posts nothing without it
            return
        try:
            await self._send(guild_id, channel_id, text, language)
        except Exception:  # the mod log is best effort: never the member's problem
            log.exception("guild %s: mod-log line to channel %s failed", guild_id, channel_id)

    async def idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a bound, not a wait
        """Lines being posted right now are done (or ``timeout`` passed); summaries wait on."""
        await self._posts.wait_idle(timeout)

    async def close(self) -> None:
        """At shutdown: pending summaries are dropped, lines in flight get a moment."""
        await self._timers.cancel_all()
        await self._posts.wait_idle(CLOSE_GRACE)
        await self._posts.cancel_all()
