"""This engine's hold on its jobs: it registers as an instance, renews the lease on each of its
jobs with every heartbeat, takes over the jobs whose lease lapsed (their process died) and
resumes each one from where it was, and lets go of a job another process took over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from bot.domain.models import Job, JobStatus
from bot.jobs.delivery import DeliverySink
from bot.jobs.fairqueue import FairQueue
from bot.jobs.records import JobRecords
from bot.jobs.scheduler import Action, Scheduler
from bot.jobs.tracking import Tracker
from bot.observability.context import job_context
from bot.observability.metrics import NoMetrics
from bot.store.instances import InstanceRepository
from bot.store.jobs import JobRepository

if TYPE_CHECKING:
    from bot.jobs.config import EngineConfig

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")


class Ownership:
    def __init__(
        self,
        *,
        instance_id: str,
        jobs: JobRepository,
        instances: InstanceRepository,
        sinks: Mapping[str, DeliverySink],
        config: EngineConfig,
        clock: Callable[[], float],
        queue: FairQueue,
        records: JobRecords,
        scheduler: Scheduler,
        tracker: Tracker,
        metrics: NoMetrics,
        shared: bool = False,
    ) -> None:
        self._shared = shared  # the line is the database's (several processes)
        self._instance_id = instance_id
        self._jobs = jobs
        self._instances = instances
        self._sinks = sinks  # the engine's own mapping: we adopt jobs for the sinks it has now
        self._config = config
        self._clock = clock
        self._queue = queue
        self._records = records
        self._scheduler = scheduler
        self._tracker = tracker
        self._metrics = metrics
        # The leases this process holds: the jobs it owns and runs right now.
        metrics.watch_leases(lambda: len(records))

    async def register(self) -> None:
        await self._instances.register(self._instance_id, self._clock())

    async def release(self) -> None:
        """Give our unfinished jobs up: the next engine to start takes them over at once."""
        await self._instances.unregister(self._instance_id)

    def _lease_until(self, now: float) -> float:
        return now + self._config.instance_stale_after

    async def heartbeat(self, *, resume: bool) -> None:
        while True:
            await asyncio.sleep(self._config.heartbeat_interval)
            try:
                await self.renew()
                if resume:
                    # Another process may have died holding jobs: take them over.
                    await self.adopt_orphans()
            except Exception:
                log.exception("heartbeat failed")

    async def renew(self) -> None:
        """Extend our leases; a job we run but no longer hold went to another process (we
        stalled past the lease, or it was claimed from the shared line): let it go."""
        now = self._clock()
        # Only jobs taken on before the renewal: one claimed while it runs is not in ``held``.
        before = self._records.running()
        held = await self._instances.heartbeat(
            self._instance_id, now, lease_until=self._lease_until(now)
        )
        for job_id in before:
            if job_id not in held and self._records.runs(job_id):
                if self._records.holds_slot(job_id):
                    log.warning("job %s: its lease was taken over; letting it go", job_id)
                self._records.done(job_id)

    async def adopt_orphans(self) -> int:
        """Claim the jobs of instances that are gone and resume ours; returns how many."""
        now = self._clock()
        taken = await self._instances.claim_orphans(
            self._instance_id, self._sinks.keys(), now=now, lease_until=self._lease_until(now)
        )
        if taken:
            log.info("took over %d job(s) from instances that are gone", taken)
            self._metrics.jobs_taken_over(taken)
        count = 0
        for job in await self._jobs.unfinished(self._instance_id, self._sinks.keys()):
            if self._records.runs(job.id) or (self._shared and job.status is JobStatus.QUEUED):
                continue  # in hand already; or waiting in the shared line, which is enough
            count += 1
            await self._resume(job)
        return count

    async def _resume(self, job: Job) -> None:
        now = self._clock()
        status = job.status
        if status is JobStatus.SUBMITTING:
            new = await self._jobs.reset_interrupted_submit(job.id, now)
            with job_context(job.id, job.guild_id):
                log.warning("job %s was interrupted mid-submit; now %s", job.id, new)
            status = new or status
        if self._shared and status is JobStatus.QUEUED:
            return  # it waits in the database's line: whoever claims it runs it
        self._records.track(job.id, job.user_id, job.guild_id)
        if status is JobStatus.QUEUED:
            not_before = await self._jobs.not_before(job.id)
            if not_before and not_before > now:
                self._scheduler.schedule(Action.SUBMIT, job.id, not_before)
            else:
                # Called in creation order (adopt_orphans): the line comes back as it was.
                self._queue.put(job.id, job.user_id, job.guild_id)
        elif status.tracked:
            self._tracker.resume(job, now)
            # It was served before the restart: its member and server do not go first again.
            self._queue.served(job.user_id, job.guild_id)
        elif status.terminal:
            self._scheduler.schedule(Action.DELIVER, job.id, now)
