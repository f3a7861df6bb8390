"""Taking queued jobs to crun: upload the inputs, send CreateTask once, sort out the answer.

Submit workers take jobs from the fair queue (servers in turn, then members) while fewer than
``max_concurrent_jobs`` are at crun and the job's member and server are under their running
limits. A refusal that certainly created nothing (429, 455, a connection never made) goes back
to the queue for a while; a CreateTask whose outcome is unknown is never sent again (it is billed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.domain.models import ImageSource, Job
from bot.errors import (
    AuthError,
    FeatureDisabled,
    GenerationError,
    InsufficientCredits,
    Maintenance,
    NotFound,
    RateLimited,
    UserFacingError,
    ValidationError,
    WanApiError,
    WanConnectionError,
)
from bot.jobs.background import TaskGroup
from bot.jobs.credits import CreditMonitor
from bot.jobs.delivery import Progress, ProgressKind
from bot.jobs.fairqueue import FairQueue
from bot.jobs.finishing import Finisher
from bot.jobs.messages import failure_message, user_message_for_api_error, without_prompt
from bot.jobs.progress import ProgressReporter
from bot.jobs.records import JobRecords
from bot.jobs.scheduler import Action, Backoff, Scheduler
from bot.jobs.schema_watch import SchemaWatch
from bot.jobs.shared_line import SharedLine
from bot.jobs.tracking import Tracker
from bot.media import MediaFetcher, check_input_image_async, prepare_for_upload_async
from bot.observability.context import bind_job
from bot.store.jobs import JobRepository
from bot.wan.client import WanClient
from bot.wan.contract import Contract

if TYPE_CHECKING:
    from bot.jobs.config import EngineConfig

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")


class Submitter:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        client: WanClient,
        contract: Contract,
        fetcher: MediaFetcher,
        config: EngineConfig,
        clock: Callable[[], float],
        backoff: Backoff,
        queue: FairQueue,
        records: JobRecords,
        scheduler: Scheduler,
        work: TaskGroup,
        tracker: Tracker,
        finisher: Finisher,
        reporter: ProgressReporter,
        credits: CreditMonitor | None,
        owner: str,
        schema_watch: SchemaWatch | None = None,
        line: SharedLine | None = None,
    ) -> None:
        self._owner = owner  # this engine's instance: CreateTask goes out only under its lease
        self._line = line  # several processes: jobs are claimed from the database's line
        self._jobs = jobs
        self._client = client
        self._contract = contract
        self._fetcher = fetcher
        self._config = config
        self._clock = clock
        self._backoff = backoff
        self._queue = queue
        self._records = records
        self._scheduler = scheduler
        self._work = work
        self._tracker = tracker
        self._finisher = finisher
        self._reporter = reporter
        self.credits = credits  # pauses submissions while crun is out
        self._schema_watch = schema_watch  # hears of CreateTask 422s (re-reads, alerts)

    def back_in_line(self, job_id: str) -> None:
        """A refused submit has waited long enough: queue it again (unless it was cancelled
        meanwhile, which drops its record)."""
        user_id = self._records.user_of(job_id)
        if user_id is not None:
            self._queue.put(job_id, user_id, self._records.guild_of(job_id))

    def _paused(self) -> bool:
        return self.credits is not None and self.credits.paused

    async def run_worker(self) -> None:
        while True:
            if self.credits is not None and self._paused():
                await self.credits.wait_resumed()  # queued jobs wait for a top-up
            if self._line is not None:
                claimed = await self._line.next_job(hold=self._paused)
                if claimed is None:
                    continue
                job_id, step = claimed.id, self._send(claimed)  # claimed as submitting
            else:
                picked = await self._records.next_to_crun(self._queue.pop, hold=self._paused)
                if picked is None:
                    continue
                job_id, step = picked, self._submit(picked)
            # Shielded from stop(): cancelling between "create sent" and "task id stored" would
            # turn a healthy job into an uncertain one.
            task = self._work.spawn(step, name=f"submit:{job_id}")
            await asyncio.wait([task])

    async def _submit(self, job_id: str) -> None:
        job = await self._jobs.mark_submitting(job_id, self._clock())
        if job is None:
            await self._records.release_slot(job_id)
            return
        await self._send(job)

    async def _send(self, job: Job) -> None:
        """Upload the inputs and send CreateTask once, for a job marked submitting."""
        job_id = job.id
        bind_job(job_id, job.guild_id)
        sent = False
        try:
            image_urls = await self._upload_inputs(job)
            payload = self._contract.build_input(job.request, image_urls)
            callback_url = await self._callback_url(job)
            now = self._clock()
            if not await self._jobs.mark_create_sent(job_id, payload, now, owner=self._owner):
                await self._records.release_slot(job_id)
                return
            sent = True
            task_id = await self._client.create_task(payload, callback_url=callback_url)
        except UserFacingError as exc:
            log.info("job %s rejected before submit: %s", job_id, exc.detail)
            # The member reads it in the job's language.
            await self._finisher.fail(job_id, "invalid-input", exc.text)
        except WanApiError as exc:
            await self._submit_error(job, exc, sent=sent)
        except Exception:
            log.exception("job %s: unexpected error while submitting", job_id)
            if sent:
                await self._finisher.finish_uncertain(job_id, "internal")
            else:
                await self._finisher.fail(job_id, "internal", failure_message("internal", job_id))
        else:
            fresh = await self._tracker.begin(job_id, task_id)
            if fresh is not None:
                eta = self._reporter.eta(fresh)
                await self._reporter.send(fresh, Progress(ProgressKind.SUBMITTED, eta=eta))

    async def _submit_error(self, job: Job, exc: WanApiError, *, sent: bool) -> None:
        job_id = job.id
        refused = isinstance(exc, RateLimited | Maintenance) or (
            isinstance(exc, WanConnectionError) and not exc.sent
        )
        if not sent and not refused and exc.status == 0:
            refused = True  # timeouts before CreateTask (uploads) created nothing either
        if refused:
            if self._clock() - job.created_at < self._config.submit_retry_window:
                await self._retry_later(job_id, exc)
                return
            await self._finisher.fail(job_id, _code_name(exc), user_message_for_api_error(exc))
            return
        definitive = isinstance(
            exc,
            AuthError
            | InsufficientCredits
            | ValidationError
            | NotFound
            | FeatureDisabled
            | GenerationError,
        ) or (400 <= (exc.code or exc.status or 0) < 500)
        if isinstance(exc, InsufficientCredits) and self.credits is not None:
            self.credits.out_of_credits()
        if not sent or definitive:
            level = logging.ERROR if isinstance(exc, AuthError | NotFound) else logging.WARNING
            log.log(level, "job %s: submit rejected: %s", job_id, exc)
            field = self._refused_field(job, exc) if sent else None
            message = user_message_for_api_error(exc, field=field)
            await self._finisher.fail(job_id, _code_name(exc), message)
            return
        log.error("job %s: CreateTask outcome unknown (%s); not resending", job_id, exc)
        await self._finisher.finish_uncertain(job_id, _code_name(exc))

    def _refused_field(self, job: Job, exc: WanApiError) -> str | None:
        """A CreateTask 422: the field crun named (for the member), and the watch is told."""
        if not isinstance(exc, ValidationError):
            return None
        said = without_prompt(exc.message, job.request.prompt)
        field = self._contract.field_in(said)
        if self._schema_watch is not None:
            self._schema_watch.create_refused(job.request.mode, field, said, now=self._clock())
        return field

    async def _retry_later(self, job_id: str, exc: WanApiError) -> None:
        """crun refused before creating anything: back to the queue once a backoff has passed."""
        attempt = await self._attempt_number(job_id)
        delay = self._backoff(attempt)
        if isinstance(exc, RateLimited) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        log.warning("job %s: submit refused (%s); retrying in %.1fs", job_id, exc, delay)
        now = self._clock()
        await self._jobs.requeue(job_id, not_before=now + delay, reason=str(exc), now=now)
        await self._records.release_slot(job_id)
        self._scheduler.schedule(Action.SUBMIT, job_id, now + delay)

    async def _attempt_number(self, job_id: str) -> int:
        events = await self._jobs.events(job_id)
        return sum(1 for _, e, _ in events if e == "requeued")

    async def _upload_inputs(self, job: Job) -> list[str]:
        """crun reads inputs only from URLs: upload what is not already a stable URL."""
        urls = list(job.uploaded_urls)
        for index, ref in enumerate(job.request.images):
            if index < len(urls):
                continue  # uploaded before a restart
            if ref.source is ImageSource.URL:
                urls.append(ref.location)
            else:
                if ref.source is ImageSource.PATH:
                    data = await asyncio.to_thread(Path(ref.location).read_bytes)
                else:
                    data = (await self._fetcher.fetch(ref.location)).data
                await check_input_image_async(data, name=ref.label())
                prepared = await prepare_for_upload_async(data, name=ref.label())
                urls.append(
                    await self._client.upload(
                        prepared.data, content_type=prepared.content_type, ext=prepared.ext
                    )
                )
            await self._jobs.save_uploaded(job.id, urls)
        return urls

    async def _callback_url(self, job: Job) -> str | None:
        base = self._config.callback_base_url
        if not base:
            return None
        token = await self._jobs.callback_token(job.id)
        return f"{base.rstrip('/')}/crun/callback/{job.id}?t={token}"


def _code_name(exc: WanApiError) -> str:
    if exc.code is not None:
        return f"api-{exc.code}"
    return type(exc).__name__.lower()
