"""Bringing a finished job's outcome to its target: fetch and fit the results, call the sink,
record the receipt, retry what may work later, and refund results that can never be shown.

The sinks themselves and what they are handed (Outcome, Progress) live in bot/jobs/delivery.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from bot.domain.models import DeliveryState, Job, JobStatus, ResultImage
from bot.domain.text import Text, load_text
from bot.errors import DownloadRefused, MediaError
from bot.jobs.delivery import UNDELIVERED, DeliveryGone, DeliverySink, Outcome
from bot.jobs.messages import FAILURE_TEXT, failure_message, rebuilt
from bot.jobs.records import JobRecords
from bot.jobs.scheduler import Action, Backoff, Scheduler
from bot.media import MediaFetcher, fit_image_async
from bot.observability.context import bind_job
from bot.observability.metrics import NoMetrics
from bot.store.jobs import JobRepository

if TYPE_CHECKING:
    from bot.jobs.config import EngineConfig

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")


class Deliverer:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        fetcher: MediaFetcher,
        sinks: Mapping[str, DeliverySink],
        config: EngineConfig,
        clock: Callable[[], float],
        backoff: Backoff,
        records: JobRecords,
        scheduler: Scheduler,
        metrics: NoMetrics,
        owner: str,
    ) -> None:
        self._owner = owner  # this engine's instance: only the job's lease holder delivers it
        self._jobs = jobs
        self._fetcher = fetcher
        self._sinks = sinks  # the engine's own mapping: sinks added after start are seen
        self._config = config
        self._clock = clock
        self._backoff = backoff
        self._records = records
        self._scheduler = scheduler
        self._metrics = metrics

    async def deliver(self, job_id: str) -> None:
        bind_job(job_id, self._records.guild_of(job_id))
        job = await self._jobs.get(job_id)
        if job is None or job.finished:
            self._records.done(job_id)
            return
        sink = self._sinks.get(job.target.kind)
        if sink is None:
            log.error(
                "job %s: no sink for %r; leaving it for another process", job_id, job.target.kind
            )
            return
        outcome = await self._outcome(job, sink)
        if outcome is None:
            return  # download failed, retry scheduled
        attempt = await self._jobs.begin_delivery(job_id, self._clock(), owner=self._owner)
        if attempt == 0:  # delivered already, or another process holds the job now
            self._records.done(job_id)
            return
        # The sink sees this attempt's number: from the 2nd on, an earlier one may have posted.
        started = dataclasses.replace(
            job, delivery_state=DeliveryState.STARTED, delivery_attempts=attempt
        )
        await self._send(sink, dataclasses.replace(outcome, job=started), attempt)

    async def _send(self, sink: DeliverySink, outcome: Outcome, attempt: int) -> None:
        job_id = outcome.job.id
        try:
            receipt = await sink.deliver(outcome)
        except DeliveryGone as exc:
            log.warning("job %s: target gone (%s); not delivering", job_id, exc)
            await self._jobs.end_delivery(
                job_id, state=DeliveryState.GAVE_UP, receipt={"gone": str(exc)}, now=self._clock()
            )
            self._metrics.job_delivered(DeliveryState.GAVE_UP.value, None)
            self._records.done(job_id)
        except Exception:
            log.exception("job %s: delivery attempt %d failed", job_id, attempt)
            if attempt >= self._config.delivery_max_attempts:
                await self._jobs.end_delivery(
                    job_id, state=DeliveryState.GAVE_UP, receipt=None, now=self._clock()
                )
                self._metrics.job_delivered(DeliveryState.GAVE_UP.value, None)
                self._records.done(job_id)
            else:
                due = self._clock() + self._backoff(attempt)
                self._scheduler.schedule(Action.DELIVER, job_id, due)
        else:
            now = self._clock()
            if outcome.ok and receipt.get(UNDELIVERED):
                # Refunded before delivery is marked done: a crash in between retries both.
                await self._jobs.refund_settled(job_id, reason=str(receipt[UNDELIVERED]), now=now)
            await self._jobs.end_delivery(
                job_id, state=DeliveryState.DONE, receipt=receipt, now=now, by=self._owner
            )
            finished_at = outcome.job.finished_at
            latency = None if finished_at is None else now - finished_at
            self._metrics.job_delivered(DeliveryState.DONE.value, latency)
            log.info("job %s delivered", job_id)
            self._records.done(job_id)

    async def _outcome(self, job: Job, sink: DeliverySink) -> Outcome | None:
        if job.status is not JobStatus.SUCCEEDED:
            return Outcome.failed(job, await self._failure(job))
        limit = sink.upload_limit(job)
        try:
            images = await self._fetch(job, limit)
        except DownloadRefused as exc:
            # The address itself is refused (its scheme or host): every attempt would be too.
            log.warning("job %s: results refused, not retried: %s", job.id, exc.detail)
            await self._jobs.add_event(job.id, "download-refused", exc.detail, self._clock())
            return await self._give_up_download(job, "refused")
        except MediaError as exc:
            failures = self._records.download_failed(job.id)
            log.warning("job %s: fetching results failed (%d): %s", job.id, failures, exc.detail)
            if failures < self._config.download_max_attempts:
                due = self._clock() + self._backoff(failures)
                self._scheduler.schedule(Action.DELIVER, job.id, due)
                return None
            return await self._give_up_download(job, "download")
        self._records.downloads_settled(job.id)
        return Outcome(job=job, images=images)

    async def _give_up_download(self, job: Job, reason: str) -> Outcome:
        """The results will never be fetched: refund them (the reason goes in the job's events)
        and tell the member."""
        self._records.downloads_settled(job.id)
        # The member never gets these images, so they are not charged for them; the operator
        # absorbs what crun billed, as for any failed job.
        if await self._jobs.refund_settled(job.id, reason=reason, now=self._clock()):
            log.warning("job %s: results could not be fetched; credits refunded", job.id)
        return Outcome.failed(job, failure_message("download", job.id))

    async def _failure(self, job: Job) -> Text | str:
        """A failed job's message, to be written in its language: the Text its finish kept (the
        newest that still says what the job stores), else one remade from its error code, else
        the stored English as it is."""
        for _, event, detail in reversed(await self._jobs.events(job.id)):
            if event == FAILURE_TEXT and detail:
                text = load_text(detail)
                if text is not None and text.english() == job.error_message:
                    return text
        return rebuilt(job) or job.error_message or failure_message("internal", job.id)

    async def _fetch(self, job: Job, limit: int) -> tuple[ResultImage, ...]:
        images = []
        for index, url in enumerate(job.result_urls):
            fetched = await self._fetcher.fetch(url)
            fitted = await fit_image_async(fetched.data, limit)
            if fitted.reencoded:
                self._metrics.upload_reencoded()
            images.append(
                ResultImage(
                    index=index,
                    data=fitted.data,
                    filename=f"wan-{job.id}-{index + 1}{fitted.ext}",
                    content_type=fitted.content_type,
                    width=fitted.width,
                    height=fitted.height,
                    source_url=url,
                    reencoded=fitted.reencoded,
                )
            )
        return tuple(images)
