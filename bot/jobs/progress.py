"""What a member is told while their job runs: best-effort status updates and an ETA."""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Mapping

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

    async def send(self, job: Job, progress: Progress) -> None:
        sink = self._sinks.get(job.target.kind)
        if sink is None:
            return
        try:
            # Best effort: a status edit that discord.py keeps retrying (5xx, long 429) must not
            # hold up the job's poll or a submit worker.
            async with asyncio.timeout(self._timeout):
                await sink.progress(job, progress)
        except Exception:
            log.warning("job %s: progress update failed", job.id, exc_info=True)
