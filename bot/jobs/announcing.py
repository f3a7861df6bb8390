"""Telling waiting members their place in line as it moves, without flooding Discord.

Every change to the line (a job joins, starts, is cancelled) wakes one pass that compares each
waiting job's place with the one its status message shows. A message is edited at most once per
``interval`` per job; one held back gets a trailing edit with its place at that moment, and
nothing is sent for a job that has started meanwhile. Across the bot at most
``edits_per_second`` such edits go out, the front of the line first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.domain.models import Job, JobStatus
from bot.jobs.delivery import Progress, ProgressKind
from bot.jobs.fairqueue import FairQueue
from bot.jobs.progress import ProgressReporter
from bot.jobs.records import JobRecords
from bot.store.jobs import JobRepository

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")

_PASS_GAP = 0.2  # seconds between passes: a burst of joins and starts makes one pass, not many


class QueueAnnouncer:
    def __init__(
        self,
        *,
        queue: FairQueue,
        records: JobRecords,
        jobs: JobRepository,
        reporter: ProgressReporter,
        clock: Callable[[], float],
        interval: float = 5.0,
        edits_per_second: float = 10.0,
        paused: Callable[[], bool] = lambda: False,
        mine: Callable[[str], bool] | None = None,
        starts_now: Callable[[str, int], bool] | None = None,
    ) -> None:
        self._queue = queue
        # Whose places this process tells: its own jobs (a shared line holds others' too).
        self._mine = mine or records.runs
        # Would the job at this place start right away? (A shared line knows it from the
        # database's figures; this process's records know it otherwise.)
        self._may_start = starts_now or self._starts_here
        self._records = records
        self._jobs = jobs
        self._reporter = reporter
        self._clock = clock
        self._interval = interval
        self._rate = edits_per_second
        self._paused = paused  # submissions paused (no credits): nobody starts "right away"
        self._shown: dict[str, tuple[int, float]] = {}  # job -> (place shown, when)
        # A token bucket of edits: a burst of one interval's worth (at least a second's).
        self._burst = edits_per_second * max(interval, 1.0)
        self._budget = self._burst
        self._filled_at: float | None = None
        self._moved = asyncio.Event()

    def moved(self) -> None:
        """The line changed: look at it soon."""
        self._moved.set()

    async def joined(self, job: Job) -> None:
        """A job was just queued: if it cannot start right away, show its place now rather
        than at the next pass (the member sees at once that the request is in line)."""
        place = self._queue.position(job.id)
        if place is None or self._starts_now(job.id, place):
            return
        now = self._clock()
        self._shown[job.id] = (place, now)
        self._budget -= 1  # counted, never skipped: the first word matters most
        progress = Progress(
            ProgressKind.QUEUED, queue_position=place, eta=self.start_eta(place, now)
        )
        await self._reporter.send(job, progress, still=lambda: job.id in self._queue)

    def plan(self, now: float) -> tuple[list[tuple[str, Progress]], float | None]:
        """The updates to send now, and when to look again for those held back (None: only when
        the line moves). Marks them as shown: the caller sends them."""
        self._refill(now)
        due: list[tuple[str, int]] = []
        wake: float | None = None
        for place, job_id in enumerate(self._queue.order(), 1):
            if not self._mine(job_id):
                continue  # another process's job (a shared line): its own process tells it
            shown = self._shown.get(job_id)
            if shown is None:
                if self._starts_now(job_id, place):
                    continue  # a worker takes it in a moment: "queued" would only flicker
            elif shown[0] == place:
                continue
            elif now - shown[1] < self._interval:
                wake = _earliest(wake, shown[1] + self._interval)
                continue
            if len(due) >= int(self._budget):
                wake = _earliest(wake, now + 1.0 / self._rate)
                break
            due.append((job_id, place))
        for job_id in [j for j in self._shown if j not in self._queue]:
            del self._shown[job_id]  # started or cancelled: never told again
        self._budget -= len(due)
        updates = []
        for job_id, place in due:
            self._shown[job_id] = (place, now)
            eta = self.start_eta(place, now)
            updates.append((job_id, Progress(ProgressKind.QUEUED, queue_position=place, eta=eta)))
        return updates, wake

    def start_eta(self, place: int, now: float) -> float | None:
        """When the job at ``place`` should start (wall clock), from recent task durations."""
        records = self._records
        return self._reporter.start_eta(place, now=now, free=records.free, slots=records.slots)

    def places_of(self, user_id: int, now: float) -> list[tuple[str, int, float | None]]:
        """(job id, 1-based place, start ETA) of a member's waiting jobs, in service order."""
        return [
            (job_id, place, self.start_eta(place, now))
            for place, job_id in enumerate(self._queue.order(), 1)
            if self._queue.user_of(job_id) == user_id
        ]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        try:
            while True:
                await self._moved.wait()
                self._moved.clear()
                updates, wake = self.plan(self._clock())
                if updates:
                    await asyncio.gather(*(self._tell(j, p) for j, p in updates))
                if timer is not None:
                    timer.cancel()
                    timer = None
                if wake is not None:
                    timer = loop.call_later(max(0.0, wake - self._clock()), self._moved.set)
                await asyncio.sleep(_PASS_GAP)
        finally:
            if timer is not None:
                timer.cancel()

    def _starts_now(self, job_id: str, place: int) -> bool:
        return not self._paused() and self._may_start(job_id, place)

    def _starts_here(self, job_id: str, place: int) -> bool:
        user = self._records.user_of(job_id)
        if user is None or place > self._records.free:
            return False
        return self._records.may_start(user, self._records.guild_of(job_id))

    def _refill(self, now: float) -> None:
        if self._filled_at is not None:
            self._budget = min(self._burst, self._budget + (now - self._filled_at) * self._rate)
        self._filled_at = now

    async def _tell(self, job_id: str, progress: Progress) -> None:
        try:
            job = await self._jobs.get(job_id)
        except Exception:
            log.warning("job %s: could not read it to show its place", job_id, exc_info=True)
            return
        if job is None or job.status is not JobStatus.QUEUED:
            return
        # Checked again once it is this job's turn to be updated: it may have started.
        await self._reporter.send(job, progress, still=lambda: job_id in self._queue)


def _earliest(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)
