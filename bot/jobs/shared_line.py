"""The waiting line when several processes share one PostgreSQL database.

The line's order is decided in the database (bot/store/line.py): each claim reads every waiting
job, the turn marks and what runs at crun across all processes, and picks with the same rules as
the in-memory line (``FairQueue``: servers in turn, then members; a member or server at its
running limit keeps its turn). Running limits count every process's jobs, and
``max_concurrent_jobs`` holds for all of them together (crun's limits are per account).

This process's ``FairQueue`` becomes a mirror of the shared line, refreshed a few times a second,
from which members' places are shown. A job that joins the line or leaves crun anywhere wakes
every process's submit workers through NOTIFY; without it they look again each second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from bot.domain.models import Job
from bot.jobs.background import TaskGroup
from bot.jobs.fairqueue import DIRECT, FairQueue
from bot.jobs.records import JobRecords
from bot.store.line import LineRepository, LineSnapshot
from bot.store.protocol import Closable, Db, Notifier

if TYPE_CHECKING:
    from bot.jobs.config import EngineConfig

log = logging.getLogger("bot.jobs.engine")

CHANNEL = "wanbot_line"
RECHECK = 1.0  # seconds between looks at the line when nothing said it changed
REFRESH_MIN = 0.25  # the mirror is read at most this often


class _Limits:
    """The running limits, counted over every process (the snapshot's figures)."""

    def __init__(self, snap: LineSnapshot, per_user: int, per_guild: int) -> None:
        self._snap = snap
        self._per_user = per_user
        self._per_guild = per_guild

    def user_full(self, user_id: int) -> bool:
        return self._snap.users_at_crun[user_id] >= self._per_user

    def guild_full(self, guild: int) -> bool:
        return guild != DIRECT and self._snap.guilds_at_crun[guild] >= self._per_guild


class SharedLine:
    def __init__(
        self,
        *,
        db: Db,
        owner: str,
        kinds: Callable[[], Collection[str]],
        config: EngineConfig,
        clock: Callable[[], float],
        mirror: FairQueue,
        records: JobRecords,
    ) -> None:
        self._repo = LineRepository(db)
        self._notifier = db if isinstance(db, Notifier) else None
        self._owner = owner
        self._kinds = kinds
        self._config = config
        self._clock = clock
        self._mirror = mirror
        self._records = records
        self._claiming = asyncio.Lock()  # one claim at a time from this process
        self._owned: set[str] = set()  # waiting jobs held by this process (it shows their place)
        self._last: LineSnapshot | None = None  # the line as the mirror last read it
        # When the line last had nothing for us: (the records' version, loop time). Until a nudge
        # or RECHECK seconds, the other workers need not ask again.
        self._dry: tuple[int, float] = (-1, 0.0)
        self._stopped = False
        self._listener: Closable | None = None
        self._tasks = TaskGroup("shared-line")
        records.on_freed = self.publish

    def choose(self, snap: LineSnapshot) -> str | None:
        """The fair line's pick from the database's snapshot (run inside the claim)."""
        quota = self._config.quota
        if snap.at_crun >= self._config.max_concurrent_jobs:
            return None
        line = FairQueue()
        line.restore(snap.waiting, snap.guild_marks, snap.member_marks)
        return line.pop(_Limits(snap, quota.user_concurrent, quota.guild_concurrent))

    async def next_job(self, hold: Callable[[], bool]) -> Job | None:
        """Wait until a job may start here and claim it (None when ``hold`` says stop)."""
        loop = asyncio.get_running_loop()
        while True:
            seen = self._records.version
            if hold():
                return None
            if not self._records.full and not self._dry_still(seen, loop.time()):
                async with self._claiming:
                    job = await self._claim()
                if job is not None:
                    return job
                self._dry = (seen, loop.time())
            await self._records.wait_change(seen, RECHECK)

    def _dry_still(self, seen: int, now: float) -> bool:
        version, since = self._dry
        return version == seen and now - since < RECHECK

    async def _claim(self) -> Job | None:
        now = self._clock()
        try:
            job = await self._repo.claim(
                self.choose,
                owner=self._owner,
                kinds=sorted(self._kinds()),
                now=now,
                lease_until=now + self._config.instance_stale_after,
            )
        except Exception:
            log.exception("could not claim a job from the shared line")
            return None
        if job is not None:
            self._records.track(job.id, job.user_id, job.guild_id)
            self._records.take_slot(job.id)
            self._mirror.remove(job.id)
        return job

    # --- the mirror and the wake-ups ---------------------------------------------------------

    def start(self) -> None:
        self._stopped = False
        if self._notifier is not None:
            self._listener = self._notifier.listen(CHANNEL, lambda _: self._records.nudge())
        self._tasks.spawn(self._refresh_loop(), name="line-mirror")

    async def stop(self) -> None:
        self._stopped = True
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self._tasks.cancel_all()

    def publish(self) -> None:
        """Tell every process the line may move (a job joined it, or left crun)."""
        if self._notifier is not None and not self._stopped:
            self._tasks.spawn(self._notify(), name="line-notify")

    async def _notify(self) -> None:
        assert self._notifier is not None
        try:
            await asyncio.wait_for(self._notifier.notify(CHANNEL, self._owner), 5)
        except Exception:  # the others still look again within RECHECK
            log.debug("line NOTIFY failed", exc_info=True)

    def joined(self, job_id: str) -> None:
        """A job submitted here: ours to show in line until another process takes it."""
        self._owned.add(job_id)
        self.publish()

    def owns(self, job_id: str) -> bool:
        return job_id in self._owned

    def starts_now(self, job_id: str, place: int) -> bool:
        """Would the job at ``place`` start right away, by the line's latest figures? (So a
        member whose job is taken at once is not first shown a place in line.)"""
        snap, where = self._last or LineSnapshot(waiting=[]), self._mirror.key_of(job_id)
        if where is None:
            return False
        if place > self._config.max_concurrent_jobs - snap.at_crun:
            return False
        quota = self._config.quota
        limits = _Limits(snap, quota.user_concurrent, quota.guild_concurrent)
        guild, user = where
        return not (limits.user_full(user) or limits.guild_full(guild))

    async def refresh(self) -> None:
        snap = await self._repo.snapshot(sorted(self._kinds()), self._clock())
        mine = {job_id for job_id, owner in snap.owners.items() if owner == self._owner}
        # Jobs submitted here since the snapshot's read began are still ours.
        self._owned = mine | {j for j in self._owned if j in self._mirror and j not in snap.owners}
        self._last = snap
        self._mirror.restore(snap.waiting, snap.guild_marks, snap.member_marks)

    async def _refresh_loop(self) -> None:
        interval = max(REFRESH_MIN, self._config.queue_update_interval)
        while True:
            try:
                await self.refresh()
            except Exception:
                log.warning("could not read the shared line", exc_info=True)
            await asyncio.sleep(interval)
