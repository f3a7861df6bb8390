"""How a job's run ends, whoever ends it (a submit or a poll): the terminal status is recorded
(settling or refunding its credits in the store), its slot at crun is freed and delivery begins."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.domain.models import Job, JobStatus
from bot.domain.text import Text, dump_text
from bot.jobs.messages import CONTENT_FILTERED, FAILURE_TEXT, failure_message
from bot.jobs.progress import ProgressReporter
from bot.jobs.records import JobRecords
from bot.jobs.scheduler import Action, Scheduler
from bot.observability.metrics import NoMetrics
from bot.store.job_rows import PollView
from bot.store.jobs import JobRepository

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")

# Told once about each job crun's content filter refused (the mod log); must not block.
ContentFiltered = Callable[[Job], None]


class Finisher:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        clock: Callable[[], float],
        records: JobRecords,
        scheduler: Scheduler,
        reporter: ProgressReporter,
        metrics: NoMetrics,
        content_filtered: ContentFiltered | None = None,
    ) -> None:
        self._jobs = jobs
        self._clock = clock
        self._records = records
        self._scheduler = scheduler
        self._reporter = reporter
        self._metrics = metrics
        self._content_filtered = content_filtered

    async def finish(
        self,
        job: Job | PollView,
        status: JobStatus,
        *,
        error_code: str | None = None,
        error_message: Text | str | None = None,
        result_urls: tuple[str, ...] = (),
        credits: float | None = None,
    ) -> None:
        """``error_message`` is stored in English; a ``Text`` is also kept as a job event, so
        its delivery (after a restart too) tells the member in the job's language."""
        self._records.keep_polled(job.id, None)
        now = self._clock()
        english = error_message.english() if isinstance(error_message, Text) else error_message
        if await self._jobs.finish(
            job.id,
            status=status,
            now=now,
            result_urls=result_urls,
            credits=credits,
            error_code=error_code,
            error_message=english,
        ):
            if isinstance(error_message, Text):
                await self._keep_text(job.id, error_message, now)
            duration = None if job.submitted_at is None else now - job.submitted_at
            if status is JobStatus.SUCCEEDED and duration is not None:
                self._reporter.job_took(duration)
            self._metrics.job_finished(status.value, duration)
            log.info("job %s finished: %s", job.id, status.value)
            if error_code == "generation-failed" and (english or "").startswith(CONTENT_FILTERED):
                await self._tell_content_filtered(job)
        await self._records.release_slot(job.id)
        self._scheduler.schedule(Action.DELIVER, job.id, self._clock())

    async def _keep_text(self, job_id: str, text: Text, now: float) -> None:
        try:
            await self._jobs.add_event(job_id, FAILURE_TEXT, dump_text(text), now)
        except Exception:  # without it the member is told in English: never worth a stuck job
            log.warning("job %s: could not keep the failure's text", job_id, exc_info=True)

    async def _tell_content_filtered(self, job: Job | PollView) -> None:
        if self._content_filtered is None:
            return
        try:
            self._content_filtered(
                job if isinstance(job, Job) else await self._jobs.require(job.id)
            )
        except Exception:  # the mod log must never stop a job from finishing
            log.exception("job %s: content-filter callback failed", job.id)

    async def fail(
        self, job_id: str, code: str, message: Text | str, *, credits: float | None = None
    ) -> None:
        job = await self._jobs.require(job_id)
        await self.finish(
            job, JobStatus.FAILED, error_code=code, error_message=message, credits=credits
        )

    async def finish_uncertain(self, job_id: str, code: str) -> None:
        job = await self._jobs.require(job_id)
        await self.finish(
            job,
            JobStatus.UNCERTAIN,
            error_code=code,
            error_message=failure_message("uncertain", job_id),
        )
