"""What the engine keeps in memory about each job: one record per job, dropped once delivered.

The store is the source of truth. A record holds what exists in this process only (the waiters,
the crun slot the job takes, a callback's wake-up) and what saves a read of the store. It is made
when this engine takes the job on (or someone waits for it here) and dropped with ``done()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.jobs.fairqueue import DIRECT, Gate, guild_key
from bot.store.job_rows import PollView


@dataclass(slots=True, eq=False)
class JobRecord:
    user_id: int | None = None  # None: only waited on here, not run by this engine
    guild_id: int | None = None  # for the job context on log lines
    done: asyncio.Event = field(default_factory=asyncio.Event)  # outcome delivered (or given up)
    at_crun: bool = False  # holds one of the max_concurrent_jobs slots
    woken: bool = False  # a callback asked for a poll: it skips the line
    # What a poll needs, kept between polls: this engine is the only writer of its polled
    # jobs' status (the transitions are guarded anyway), so a poll need not read the store.
    polled: PollView | None = None
    download_failures: int = 0


class JobRecords:
    """The records, and the slots at crun: ``max_at_crun`` in all, ``per_user`` for one member,
    ``per_guild`` for one server (DMs and the terminal are not limited as a server)."""

    def __init__(self, *, max_at_crun: int, per_user: int = 2, per_guild: int = 10) -> None:
        self._records: dict[str, JobRecord] = {}
        self._max_at_crun = max_at_crun
        self._per_user = per_user
        self._per_guild = per_guild
        self._at_crun = 0
        self._user_at_crun: Counter[int] = Counter()
        self._guild_at_crun: Counter[int] = Counter()
        self._changed = asyncio.Event()  # a slot freed or the line changed: workers look again
        self._version = 0  # counts the nudges (see wait_change)
        self.on_freed: Callable[[], None] | None = None  # a slot at crun was given back

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._records

    def track(self, job_id: str, user_id: int, guild_id: int | None) -> None:
        """This engine runs the job from now on (keeping the event of anyone already waiting)."""
        record = self._records.setdefault(job_id, JobRecord())
        record.user_id = user_id
        record.guild_id = guild_id

    def runs(self, job_id: str) -> bool:
        record = self._records.get(job_id)
        return record is not None and record.user_id is not None

    def running(self) -> list[str]:
        """The jobs this engine runs (not those only waited on here)."""
        return [job_id for job_id, r in self._records.items() if r.user_id is not None]

    def user_of(self, job_id: str) -> int | None:
        record = self._records.get(job_id)
        return None if record is None else record.user_id

    def guild_of(self, job_id: str) -> int | None:
        record = self._records.get(job_id)
        return None if record is None else record.guild_id

    def waiter(self, job_id: str) -> asyncio.Event:
        """Set once the job's outcome has been delivered (or its delivery abandoned)."""
        return self._records.setdefault(job_id, JobRecord()).done

    def done(self, job_id: str) -> None:
        # Dropped, not kept: waiters hold the event, and a long-running bot must not keep a
        # record per job it ever ran.
        record = self._records.pop(job_id, None)
        if record is None:
            return
        if record.at_crun:
            self._vacate(record)
        record.done.set()

    # --- slots at crun --------------------------------------------------------------------------

    @property
    def at_crun(self) -> int:
        return self._at_crun

    @property
    def full(self) -> bool:
        return self._at_crun >= self._max_at_crun

    @property
    def slots(self) -> int:
        return self._max_at_crun

    @property
    def free(self) -> int:
        return max(0, self._max_at_crun - self._at_crun)

    def holds_slot(self, job_id: str) -> bool:
        record = self._records.get(job_id)
        return record is not None and record.at_crun

    def user_full(self, user_id: int) -> bool:
        return self._user_at_crun[user_id] >= self._per_user

    def guild_full(self, guild: int) -> bool:
        return guild != DIRECT and self._guild_at_crun[guild] >= self._per_guild

    def may_start(self, user_id: int, guild_id: int | None) -> bool:
        """A slot is free for this member and server now."""
        return not (self.full or self.user_full(user_id) or self.guild_full(guild_key(guild_id)))

    def take_slot(self, job_id: str) -> None:
        """The job is at crun already (resumed after a restart)."""
        self._occupy(self._records.setdefault(job_id, JobRecord()))

    def nudge(self) -> None:
        """The line or the slots changed: waiting workers look again."""
        self._version += 1
        self._changed.set()

    @property
    def version(self) -> int:
        return self._version

    async def wait_change(self, since: int, timeout: float) -> None:  # noqa: ASYNC109 - a recheck
        """Return once there was a nudge after ``version`` was ``since``, or ``timeout`` passed."""
        if self._version != since:
            return
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def next_to_crun(
        self, pick: Callable[[Gate], str | None], *, hold: Callable[[], bool] = lambda: False
    ) -> str | None:
        """Wait until ``pick`` names a job that may start (a slot free for it, its member and
        server under their running limits), and give it the slot. None when ``hold`` says to
        stop picking (submissions paused)."""
        while True:
            self._changed.clear()
            if hold():
                return None
            if not self.full:
                job_id = pick(self)
                if job_id is not None:  # no await since the check: no other worker took it
                    self._occupy(self._records.setdefault(job_id, JobRecord()))
                    return job_id
            await self._changed.wait()

    async def release_slot(self, job_id: str) -> None:
        record = self._records.get(job_id)
        if record is not None and record.at_crun:
            self._vacate(record)
        self.nudge()

    def _occupy(self, record: JobRecord) -> None:
        if not record.at_crun:
            record.at_crun = True
            self._at_crun += 1
            if record.user_id is not None:
                self._user_at_crun[record.user_id] += 1
                self._guild_at_crun[guild_key(record.guild_id)] += 1

    def _vacate(self, record: JobRecord) -> None:
        record.at_crun = False
        self._at_crun -= 1
        if self.on_freed is not None:
            self.on_freed()
        if record.user_id is not None:
            for counts, key in (
                (self._user_at_crun, record.user_id),
                (self._guild_at_crun, guild_key(record.guild_id)),
            ):
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]  # a long-running bot keeps no entry per member it served
        self.nudge()

    # --- polls ----------------------------------------------------------------------------------

    def wake(self, job_id: str) -> bool:
        """Mark a poll as asked for by a callback; False for jobs not at crun from here."""
        record = self._records.get(job_id)
        if record is None or not record.at_crun:
            return False
        record.woken = True
        return True

    def woken(self, job_id: str) -> bool:
        record = self._records.get(job_id)
        return record is not None and record.woken

    def take_woken(self, job_id: str) -> bool:
        """Whether a callback asked for this poll; the ask is used up."""
        record = self._records.get(job_id)
        if record is None or not record.woken:
            return False
        record.woken = False
        return True

    def polled(self, job_id: str) -> PollView | None:
        record = self._records.get(job_id)
        return None if record is None else record.polled

    def keep_polled(self, job_id: str, view: PollView | None) -> None:
        record = self._records.get(job_id)
        if record is not None:
            record.polled = view

    # --- downloads ------------------------------------------------------------------------------

    def download_failed(self, job_id: str) -> int:
        """Count a failed fetch of the job's results; returns the failures so far."""
        record = self._records.setdefault(job_id, JobRecord())
        record.download_failures += 1
        return record.download_failures

    def downloads_settled(self, job_id: str) -> None:
        record = self._records.get(job_id)
        if record is not None:
            record.download_failures = 0
