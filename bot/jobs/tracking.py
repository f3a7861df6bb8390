"""Following a submitted job at crun until it ends: the polling schedule, what each TaskInfo
answer (or error) means for the job, and the polls a callback asks for."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.domain.models import Job, JobStatus
from bot.errors import AuthError, NotFound, RateLimited, WanApiError
from bot.jobs.delivery import Progress, ProgressKind
from bot.jobs.finishing import Finisher
from bot.jobs.messages import failure_message
from bot.jobs.progress import ProgressReporter
from bot.jobs.records import JobRecords
from bot.jobs.scheduler import Action, Backoff, Scheduler
from bot.observability.context import bind_job
from bot.store.job_rows import PollView
from bot.store.jobs import JobRepository
from bot.wan.client import WanClient
from bot.wan.types import TaskInfo, TaskStatus

if TYPE_CHECKING:
    from bot.jobs.config import EngineConfig

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")


class Tracker:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        client: WanClient,
        config: EngineConfig,
        clock: Callable[[], float],
        rng: random.Random,
        backoff: Backoff,
        records: JobRecords,
        scheduler: Scheduler,
        finisher: Finisher,
        reporter: ProgressReporter,
    ) -> None:
        self._jobs = jobs
        self._client = client
        self._config = config
        self._clock = clock
        self._rng = rng
        self._backoff = backoff
        self._records = records
        self._scheduler = scheduler
        self._finisher = finisher
        self._reporter = reporter
        self._poll_slots = asyncio.Semaphore(config.max_concurrent_polls)

    def interval(self, age: float) -> float:
        c = self._config
        if c.callback_base_url:
            base = max(c.poll_interval_max, c.callback_poll_interval)
        elif age < c.fast_phase:
            base = c.poll_interval_min
        else:
            base = min(c.poll_interval_max, c.poll_interval_min * 2 * age / c.fast_phase)
        # Jitter only upwards: spreads load without ever polling faster than configured.
        return base * (1 + 0.1 * self._rng.random())

    async def begin(self, job_id: str, task_id: str) -> Job | None:
        """crun created the task: store its id and schedule the first poll. Returns the job as
        it now is (None when it was no longer submitting)."""
        now = self._clock()
        fresh = await self._jobs.mark_submitted(job_id, task_id, now, now + self.interval(0.0))
        log.info("job %s submitted as task %s", job_id, task_id)
        self._scheduler.schedule(Action.POLL, job_id, now + self.interval(0.0))
        return fresh

    def resume(self, job: Job, now: float) -> None:
        """A job already at crun when this engine took it over: poll when it was due."""
        self._records.take_slot(job.id)
        self._scheduler.schedule(Action.POLL, job.id, max(now, job.next_poll_at or now))

    def wake(self, job_id: str) -> bool:
        """A callback said the task moved: poll it now. Returns False for jobs we don't track."""
        if not self._records.wake(job_id):
            return False
        self._scheduler.schedule(Action.POLL, job_id, self._clock())
        return True

    async def poll(self, job_id: str) -> None:
        bind_job(job_id, self._records.guild_of(job_id))
        urgent = self._records.take_woken(job_id)
        # A woken poll does not queue for a slot behind routine polls (there is one per job).
        async with contextlib.nullcontext() if urgent else self._poll_slots:
            job = self._records.polled(job_id) or await self._jobs.poll_view(job_id)
            if job is None or not job.status.tracked or job.task_id is None:
                self._records.keep_polled(job_id, None)
                return
            self._records.keep_polled(job_id, job)
            info: TaskInfo | None = None
            error: Exception | None = None
            try:
                info = await self._client.task_info(job.task_id, urgent=urgent)
            except Exception as exc:  # sorted out below, after the clock is read
                error = exc
        # Read after the call: a wait for the rate limiter must not make the next poll early.
        now = self._clock()
        age = now - (job.submitted_at or now)
        if info is None:
            await self._poll_failed(job, error, now, age)
        else:
            await self._poll_answered(job, info, now, age)

    async def _poll_answered(self, job: PollView, info: TaskInfo, now: float, age: float) -> None:
        job_id = job.id
        if info.status is TaskStatus.SUCCESS:
            if not info.media_urls:
                await self._finisher.fail(job_id, "empty", failure_message("empty", job_id))
                return
            await self._finisher.finish(
                job, JobStatus.SUCCEEDED, result_urls=info.media_urls, credits=info.credits
            )
            return
        if info.status is TaskStatus.FAILED:
            log.info("job %s: task failed upstream: %s", job_id, info.error_message)
            reason = failure_message("generation-failed", job_id, reason=info.error_message)
            await self._finisher.fail(job_id, "generation-failed", reason, credits=info.credits)
            return
        if age > self._config.hard_deadline:
            log.error("job %s: still %s after %.0fs; giving up", job_id, info.raw_status, age)
            await self._finisher.finish(
                job,
                JobStatus.EXPIRED,
                error_code="expired",
                error_message=failure_message("expired", job_id),
            )
            return
        status = JobStatus.RUNNING if info.status is TaskStatus.RUNNING else job.status
        await self._repoll(job, status, now + self.interval(age))
        if status is not job.status:
            self._records.keep_polled(job_id, dataclasses.replace(job, status=status))
            fresh = await self._jobs.require(job_id)
            await self._reporter.send(
                fresh, Progress(ProgressKind.RUNNING, eta=self._reporter.eta(fresh))
            )
        if age > self._config.soft_deadline and await self._jobs.mark_slow_notified(job_id):
            full = await self._jobs.require(job_id)
            await self._reporter.send(
                full, Progress(ProgressKind.SLOW, eta=self._reporter.eta(full))
            )

    async def _poll_failed(
        self, job: PollView, error: Exception | None, now: float, age: float
    ) -> None:
        job_id = job.id
        if isinstance(error, RateLimited):
            delay = max(error.retry_after or 0.0, self.interval(age))
            await self._repoll(job, job.status, now + delay)
        elif isinstance(error, NotFound):
            count = await self._jobs.not_found_count(job_id) + 1
            if count >= self._config.not_found_limit:
                log.error("job %s: task %s unknown to crun; giving up", job_id, job.task_id)
                await self._finisher.fail(job_id, "lost", failure_message("lost", job_id))
                return
            await self._repoll(job, job.status, now + self._backoff(count), not_found=True)
        elif isinstance(error, AuthError):
            log.error("job %s: crun rejected the API key while polling; will keep trying", job_id)
            await self._repoll(job, job.status, now + 4 * self._config.poll_interval_max)
        elif isinstance(error, WanApiError):
            log.warning("job %s: poll failed (%s); will retry", job_id, error)
            await self._repoll(job, job.status, now + self.interval(age))
        else:
            # A bug must not strand the job: log it and keep tracking.
            log.error("job %s: unexpected error while polling; will retry", job_id, exc_info=error)
            await self._repoll(job, job.status, now + self._config.poll_interval_max)

    async def _repoll(
        self, job: PollView, status: JobStatus, due: float, *, not_found: bool = False
    ) -> None:
        if await self._jobs.record_poll(
            job.id, status=status, next_poll_at=due, now=self._clock(), not_found=not_found
        ):
            if self._records.woken(job.id):  # a callback came in while this poll was out: go again
                due = self._clock()
            self._scheduler.schedule(Action.POLL, job.id, due)
        else:  # no longer pending or running: nothing more to poll
            self._records.keep_polled(job.id, None)
