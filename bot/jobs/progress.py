"""What a member is told while their job runs: best-effort status updates and an ETA."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
from collections.abc import AsyncIterator, Callable, Mapping

from bot.domain.models import Job
from bot.jobs.delivery import DeliverySink, Progress

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")

_KEPT_DURATIONS = 200
_ETA_WINDOW = 50


class ProgressReporter:
    def __init__(self, sinks: Mapping[str, DeliverySink], *, timeout: float) -> None:
        self._sinks = sinks  # the engine's own mapping: sinks added after start are seen
        self._timeout = timeout
        self._durations: list[float] = []
        # One update at a time per job, in the order asked: a late "queued" edit must not land
        # after "at crun". Entries live only while an update is going out or waiting.
        self._turns: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def load(self, newest_first: list[float]) -> None:
        """Seed the ETA with recent jobs' durations, as the store lists them."""
        self._durations = list(reversed(newest_first))

    def job_took(self, duration: float) -> None:
        self._durations.append(duration)
        del self._durations[:-_KEPT_DURATIONS]

    def eta(self, job: Job) -> float | None:
        """A wall-clock estimate of when the job finishes, from recent jobs' durations."""
        if not self._durations or job.submitted_at is None:
            return None
        return job.submitted_at + statistics.median(self._durations[-_ETA_WINDOW:])

    def start_eta(self, place: int, *, now: float, free: int, slots: int) -> float | None:
        """When the job at ``place`` in line should *start*: with every slot busy, one frees
        about every (typical duration / slots) seconds; None until a job has finished here."""
        if not self._durations:
            return None
        ahead = place - max(free, 0)  # jobs that must wait for a slot, this one included
        if ahead <= 0:
            return now
        typical = statistics.median(self._durations[-_ETA_WINDOW:])
        return now + ahead * typical / max(slots, 1)

    async def send(
        self, job: Job, progress: Progress, *, still: Callable[[], bool] | None = None
    ) -> None:
        """Send one update; with ``still``, only if it still holds once it is this job's turn."""
        sink = self._sinks.get(job.target.kind)
        if sink is None:
            return
        async with self._turn(job.id):
            if still is not None and not still():
                return
            try:
                # Best effort: a status edit that discord.py keeps retrying (5xx, long 429)
                # must not hold up the job's poll or a submit worker.
                async with asyncio.timeout(self._timeout):
                    await sink.progress(job, progress)
            except Exception:
                log.warning("job %s: progress update failed", job.id, exc_info=True)

    @contextlib.asynccontextmanager
    async def _turn(self, job_id: str) -> AsyncIterator[None]:
        lock, users = self._turns.setdefault(job_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._turns[job_id]
