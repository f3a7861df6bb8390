"""The durable job engine: persist -> submit -> track -> deliver.

Life of a job (every arrow is a guarded UPDATE in the store, see bot/store/jobs.py):

    queued -> submitting -> pending -> running -> succeeded | failed | expired
                   |   \\-> uncertain   (CreateTask sent, reply lost: never resent)
                   \\-> queued          (crun refused before creating anything: 429, 455, ...)

and independently ``delivery_state`` none -> started -> done | gave-up. A restart finds every job
that is not terminal-and-delivered and carries on from where it was.

One scheduler (a heap of due times) drives every poll, retry and delivery; submit workers take
jobs from a round-robin queue while fewer than ``max_concurrent_jobs`` are at crun.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import logging
import os
import random
import secrets
import socket
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.domain.models import (
    DeliveryState,
    GenerationRequest,
    ImageSource,
    Job,
    JobStatus,
    ResultImage,
    Target,
)
from bot.domain.quota import QuotaPolicy
from bot.domain.validation import validate_request
from bot.errors import (
    AuthError,
    FeatureDisabled,
    GenerationError,
    InsufficientCredits,
    Maintenance,
    MediaError,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    UserFacingError,
    ValidationError,
    WanApiError,
    WanConnectionError,
)
from bot.jobs.background import TaskGroup
from bot.jobs.credits import CreditMonitor
from bot.jobs.delivery import (
    UNDELIVERED,
    DeliveryGone,
    DeliverySink,
    Outcome,
    Progress,
    ProgressKind,
)
from bot.jobs.fairqueue import FairQueue
from bot.jobs.messages import failure_message, user_message_for_api_error
from bot.media import (
    MediaFetcher,
    check_input_image_async,
    fit_image_async,
    prepare_for_upload_async,
)
from bot.observability.context import bind_job, job_context
from bot.observability.metrics import NO_METRICS, NoMetrics
from bot.settings import Settings
from bot.store.jobs import JobRepository, PollView
from bot.store.quotas import Charge
from bot.wan.client import WanClient
from bot.wan.contract import Contract
from bot.wan.ratelimit import RateLimiter
from bot.wan.types import TaskInfo, TaskStatus

log = logging.getLogger(__name__)

RESTARTING_MESSAGE = (
    "The bot is restarting and is not taking new requests. Please try again in a minute; "
    "nothing was charged."
)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    poll_interval_min: float = 5.0
    poll_interval_max: float = 15.0
    fast_phase: float = 60.0  # poll at the minimum interval for this long after submit
    callback_poll_interval: float = 30.0  # fallback poll when callbacks are on
    soft_deadline: float = 600.0
    hard_deadline: float = 6 * 3600.0
    max_concurrent_jobs: int = 20
    max_concurrent_submits: int = 4
    max_concurrent_polls: int = 32
    api_rate_limit: float = 5.0
    not_found_limit: int = 3  # fresh tasks may lag in TaskInfo: allow a few 404s
    submit_retry_window: float = 600.0  # keep retrying refused submits (429/455) this long
    delivery_max_attempts: int = 8
    download_max_attempts: int = 5
    retry_backoff_base: float = 2.0
    retry_backoff_cap: float = 300.0
    heartbeat_interval: float = 15.0
    instance_stale_after: float = 60.0
    callback_base_url: str | None = None
    drain_timeout: float = 10.0
    progress_timeout: float = 5.0  # status edits are best effort: never hold up a job
    quota: QuotaPolicy = field(default_factory=QuotaPolicy)

    @classmethod
    def from_settings(cls, s: Settings) -> EngineConfig:
        return cls(
            poll_interval_min=s.poll_interval_min,
            poll_interval_max=s.poll_interval_max,
            soft_deadline=s.poll_soft_deadline,
            hard_deadline=s.poll_hard_deadline,
            max_concurrent_jobs=s.max_concurrent_jobs,
            max_concurrent_submits=s.max_concurrent_submits,
            api_rate_limit=s.api_rate_limit,
            callback_base_url=s.callback_public_url,
            quota=s.quota_policy(),
        )

    def crun_limiter(self) -> RateLimiter:
        """The budget the crun client spends. With callbacks on, one request per second stays
        free for woken polls: a member is waiting on those, while submits and routine polls can
        wait a moment."""
        return RateLimiter(self.api_rate_limit, reserve=1 if self.callback_base_url else 0)


class JobEngine:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        client: WanClient,
        contract: Contract,
        fetcher: MediaFetcher,
        sinks: Mapping[str, DeliverySink],
        config: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        metrics: NoMetrics = NO_METRICS,
    ) -> None:
        self.jobs = jobs
        self.client = client
        self.contract = contract
        self.fetcher = fetcher
        self.sinks = dict(sinks)
        self.config = config or EngineConfig()
        self.clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.instance_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"

        self._queue = FairQueue()
        self._heap: list[tuple[float, int, str, str]] = []
        self._scheduled: dict[tuple[str, str], int] = {}
        self._seq = 0
        self._wake = asyncio.Event()
        self._capacity = asyncio.Condition()
        self._inflight: set[str] = set()
        self._users: dict[str, int] = {}
        self._guilds: dict[str, int | None] = {}  # for the job context on log lines
        self._busy: set[tuple[str, str]] = set()
        self._woken: set[str] = set()  # polls a callback asked for: they skip the line
        self._done: dict[str, asyncio.Event] = {}
        # What a poll needs, kept between polls: this engine is the only writer of its polled
        # jobs' status (the transitions are guarded anyway), so a poll need not read the store.
        self._polled: dict[str, PollView] = {}
        self._download_failures: dict[str, int] = {}
        self._durations: list[float] = []
        self._loops = TaskGroup("engine-loop")
        self._work = TaskGroup("engine-work")
        self._poll_slots = asyncio.Semaphore(self.config.max_concurrent_polls)
        self._accepting = False
        self._closing = False  # stop() began: refuse new work with a friendly message
        self.started = False
        self.metrics = metrics
        self.credits: CreditMonitor | None = None  # pauses submissions while crun is out

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, resume: bool = True) -> int:
        """Register, take over unfinished jobs (when ``resume``), start the loops.

        Returns the number of jobs resumed.
        """
        self._closing = False
        now = self.clock()
        await self.jobs.register_instance(self.instance_id, now)
        self._durations = list(reversed(await self.jobs.recent_durations()))
        resumed = await self._adopt_orphans() if resume else 0
        self._loops.spawn(self._scheduler(), name="scheduler")
        for i in range(self.config.max_concurrent_submits):
            self._loops.spawn(self._submit_worker(), name=f"submit-{i}")
        self._loops.spawn(self._heartbeat(resume=resume), name="heartbeat")
        self._accepting = True
        self.started = True
        if resumed:
            log.info("resumed %d unfinished job(s)", resumed)
        return resumed

    def close_intake(self) -> None:
        """Refuse new jobs from now on (shutdown has begun); work already accepted goes on."""
        self._accepting = False
        self._closing = True

    async def stop(self) -> None:
        """Stop taking work, let in-flight steps finish briefly, release our jobs."""
        self.close_intake()
        await self._loops.cancel_all()
        await self._work.wait_idle(self.config.drain_timeout)
        await self._work.cancel_all()
        await self.jobs.unregister_instance(self.instance_id)
        self.started = False

    async def crash(self) -> None:
        """Test helper: vanish without releasing anything, like a SIGKILL would."""
        self._accepting = False
        await self._loops.cancel_all()
        await self._work.cancel_all()
        self.started = False

    async def _adopt_orphans(self) -> int:
        now = self.clock()
        await self.jobs.claim_orphans(
            self.instance_id,
            self.sinks.keys(),
            now=now,
            stale_after=self.config.instance_stale_after,
        )
        count = 0
        for job in await self.jobs.unfinished(self.instance_id, self.sinks.keys()):
            if job.id in self._users:
                continue
            count += 1
            await self._resume(job)
        return count

    async def _resume(self, job: Job) -> None:
        self._users[job.id] = job.user_id
        self._guilds[job.id] = job.guild_id
        self._done.setdefault(job.id, asyncio.Event())
        now = self.clock()
        status = job.status
        if status is JobStatus.SUBMITTING:
            new = await self.jobs.reset_interrupted_submit(job.id, now)
            with job_context(job.id, job.guild_id):
                log.warning("job %s was interrupted mid-submit; now %s", job.id, new)
            status = new or status
        if status is JobStatus.QUEUED:
            not_before = await self.jobs.not_before(job.id)
            if not_before and not_before > now:
                self._schedule("submit", job.id, not_before)
            else:
                self._queue.put(job.id, job.user_id)
        elif status.tracked:
            self._inflight.add(job.id)
            self._schedule("poll", job.id, max(now, job.next_poll_at or now))
        elif status.terminal:
            self._schedule("deliver", job.id, now)

    async def _heartbeat(self, *, resume: bool) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            try:
                await self.jobs.heartbeat(self.instance_id, self.clock())
                if resume:
                    # Another process may have died holding jobs: take them over.
                    await self._adopt_orphans()
            except Exception:
                log.exception("heartbeat failed")

    # --- public API -----------------------------------------------------------------------------

    async def submit(
        self,
        request: GenerationRequest,
        *,
        user_id: int,
        guild_id: int | None,
        target: Target,
        parent_job_id: str | None = None,
        charge: Charge | None = None,
    ) -> Job:
        """Validate, reserve credits, persist and queue a job.

        Raises InvalidInput or QuotaExceeded before anything is stored or spent.
        """
        if self._closing:
            raise ServiceUnavailable(RESTARTING_MESSAGE)
        if not self._accepting:
            raise RuntimeError("engine is not running")
        if target.kind not in self.sinks:
            raise ValueError(f"no delivery sink for target kind {target.kind!r}")
        if self.credits is not None and self.credits.paused:
            raise ServiceUnavailable(
                "Image generation is paused: the bot's image credits have run out. The server's "
                "admins have been told; please try again later. Nothing was charged."
            )
        validate_request(request)
        try:
            job = await self.jobs.create(
                user_id=user_id,
                guild_id=guild_id,
                request=request,
                target=target,
                now=self.clock(),
                owner=self.instance_id,
                parent_job_id=parent_job_id,
                charge=charge,
                policy=self.config.quota,
            )
        except QuotaExceeded:
            self.metrics.quota_denied()
            raise
        self._users[job.id] = user_id
        self._guilds[job.id] = guild_id
        self._done[job.id] = asyncio.Event()
        self._queue.put(job.id, user_id)
        with job_context(job.id, guild_id):
            log.info("job %s queued for user %s (guild %s)", job.id, user_id, guild_id)
        # Only when it must wait: computing the place in line walks the whole rotation.
        if len(self._inflight) >= self.config.max_concurrent_jobs:
            position = self._queue.position(job.id)
            if position is not None:
                await self._progress(job, Progress(ProgressKind.QUEUED, queue_position=position))
        return job

    async def wait_finished(self, job_id: str, timeout: float | None = None) -> Job:  # noqa: ASYNC109
        """Wait until the job's outcome has been delivered (or delivery abandoned)."""
        event = self._done.get(job_id)
        if event is None:  # not tracked here (any more): the store knows whether it is done
            job = await self.jobs.require(job_id)
            if job.finished:
                return job
            event = self._done.setdefault(job_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)
        return await self.jobs.require(job_id)

    def queue_position(self, job_id: str) -> int | None:
        return self._queue.position(job_id)

    def queued_for(self, user_id: int) -> list[tuple[str, int]]:
        """(job id, 1-based position) of a user's jobs waiting for a slot."""
        order = self._queue.order()
        return [(jid, i) for i, jid in enumerate(order, 1) if self._users.get(jid) == user_id]

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def wake(self, job_id: str) -> bool:
        """A callback said the task moved: poll it now. Returns False for jobs we don't track."""
        if job_id not in self._inflight:
            return False
        self._woken.add(job_id)
        self._schedule("poll", job_id, self.clock())
        return True

    def eta(self, job: Job) -> float | None:
        """A wall-clock estimate of when the job finishes, from recent jobs' durations."""
        if not self._durations or job.submitted_at is None:
            return None
        return job.submitted_at + statistics.median(self._durations[-50:])

    # --- scheduler ------------------------------------------------------------------------------

    def _schedule(self, action: str, job_id: str, due: float) -> None:
        self._seq += 1
        key = (action, job_id)
        self._scheduled[key] = self._seq
        heapq.heappush(self._heap, (due, self._seq, action, job_id))
        self._wake.set()

    async def _scheduler(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                _, seq, action, job_id = heapq.heappop(self._heap)
                key = (action, job_id)
                if self._scheduled.get(key) != seq:
                    continue  # superseded by a later schedule of the same action
                del self._scheduled[key]
                self._dispatch(action, job_id)
            # A timer handle, not wait_for: this loop turns once per due poll, and wait_for
            # would create a task each time.
            timer = (
                asyncio.get_running_loop().call_later(self._heap[0][0] - now, self._wake.set)
                if self._heap
                else None
            )
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    def _dispatch(self, action: str, job_id: str) -> None:
        key = (action, job_id)
        if key in self._busy:
            # Still working on the previous run of this action: look again shortly.
            self._schedule(action, job_id, self.clock() + 0.5)
            return
        if action == "submit":
            self._queue.put(job_id, self._users.get(job_id, 0))
            return
        self._busy.add(key)
        coro = self._poll(job_id) if action == "poll" else self._deliver(job_id)
        task = self._work.spawn(coro, name=f"{action}:{job_id}")
        task.add_done_callback(lambda _t: self._not_busy(key))

    def _not_busy(self, key: tuple[str, str]) -> None:
        self._busy.discard(key)

    def _backoff(self, attempt: int) -> float:
        cap = min(self.config.retry_backoff_cap, self.config.retry_backoff_base * 2.0**attempt)
        return cap * (0.5 + self._rng.random() / 2)

    async def _release(self, job_id: str) -> None:
        async with self._capacity:
            self._inflight.discard(job_id)
            self._capacity.notify_all()

    # --- submit ---------------------------------------------------------------------------------

    async def _submit_worker(self) -> None:
        while True:
            await self._queue.wait_ready()
            if self.credits is not None and self.credits.paused:
                await self.credits.wait_resumed()  # queued jobs wait for a top-up
            async with self._capacity:
                await self._capacity.wait_for(
                    lambda: len(self._inflight) < self.config.max_concurrent_jobs
                )
                job_id = self._queue.pop()
                if job_id is None:
                    continue
                self._inflight.add(job_id)
            # Shielded from stop(): cancelling between "create sent" and "task id stored" would
            # turn a healthy job into an uncertain one.
            task = self._work.spawn(self._submit(job_id), name=f"submit:{job_id}")
            await asyncio.wait([task])

    async def _submit(self, job_id: str) -> None:
        bind_job(job_id, self._guilds.get(job_id))
        job = await self.jobs.mark_submitting(job_id, self.clock())
        if job is None:
            await self._release(job_id)
            return
        sent = False
        try:
            image_urls = await self._upload_inputs(job)
            payload = self.contract.build_input(job.request, image_urls)
            callback_url = await self._callback_url(job)
            if not await self.jobs.mark_create_sent(job_id, payload, self.clock()):
                await self._release(job_id)
                return
            sent = True
            task_id = await self.client.create_task(payload, callback_url=callback_url)
        except UserFacingError as exc:
            log.info("job %s rejected before submit: %s", job_id, exc.detail)
            await self._fail(job_id, "invalid-input", exc.user_message)
        except WanApiError as exc:
            await self._submit_error(job, exc, sent=sent)
        except Exception:
            log.exception("job %s: unexpected error while submitting", job_id)
            if sent:
                await self._finish_uncertain(job_id, "internal")
            else:
                await self._fail(job_id, "internal", failure_message("internal", job_id))
        else:
            now = self.clock()
            fresh = await self.jobs.mark_submitted(job_id, task_id, now, now + self._interval(0.0))
            log.info("job %s submitted as task %s", job_id, task_id)
            self._schedule("poll", job_id, now + self._interval(0.0))
            if fresh is not None:
                await self._progress(fresh, Progress(ProgressKind.SUBMITTED, eta=self.eta(fresh)))

    async def _submit_error(self, job: Job, exc: WanApiError, *, sent: bool) -> None:
        job_id = job.id
        refused = isinstance(exc, RateLimited | Maintenance) or (
            isinstance(exc, WanConnectionError) and not exc.sent
        )
        if not sent and not refused and exc.status == 0:
            refused = True  # timeouts before CreateTask (uploads) created nothing either
        if refused:
            age = self.clock() - job.created_at
            if age < self.config.submit_retry_window:
                attempt = await self._attempt_number(job_id)
                delay = self._backoff(attempt)
                if isinstance(exc, RateLimited) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                log.warning("job %s: submit refused (%s); retrying in %.1fs", job_id, exc, delay)
                now = self.clock()
                await self.jobs.requeue(job_id, not_before=now + delay, reason=str(exc), now=now)
                await self._release(job_id)
                self._schedule("submit", job_id, now + delay)
                return
            await self._fail(job_id, _code_name(exc), user_message_for_api_error(exc))
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
            await self._fail(job_id, _code_name(exc), user_message_for_api_error(exc))
            return
        log.error("job %s: CreateTask outcome unknown (%s); not resending", job_id, exc)
        await self._finish_uncertain(job_id, _code_name(exc))

    async def _attempt_number(self, job_id: str) -> int:
        events = await self.jobs.events(job_id)
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
                    data = (await self.fetcher.fetch(ref.location)).data
                await check_input_image_async(data, name=ref.label())
                prepared = await prepare_for_upload_async(data, name=ref.label())
                urls.append(
                    await self.client.upload(
                        prepared.data, content_type=prepared.content_type, ext=prepared.ext
                    )
                )
            await self.jobs.save_uploaded(job.id, urls)
        return urls

    async def _callback_url(self, job: Job) -> str | None:
        base = self.config.callback_base_url
        if not base:
            return None
        token = await self.jobs.callback_token(job.id)
        return f"{base.rstrip('/')}/crun/callback/{job.id}?t={token}"

    # --- tracking -------------------------------------------------------------------------------

    def _interval(self, age: float) -> float:
        c = self.config
        if c.callback_base_url:
            base = max(c.poll_interval_max, c.callback_poll_interval)
        elif age < c.fast_phase:
            base = c.poll_interval_min
        else:
            base = min(c.poll_interval_max, c.poll_interval_min * 2 * age / c.fast_phase)
        # Jitter only upwards: spreads load without ever polling faster than configured.
        return base * (1 + 0.1 * self._rng.random())

    async def _poll(self, job_id: str) -> None:
        bind_job(job_id, self._guilds.get(job_id))
        urgent = job_id in self._woken
        self._woken.discard(job_id)
        # A woken poll does not queue for a slot behind routine polls (there is one per job).
        async with contextlib.nullcontext() if urgent else self._poll_slots:
            job = self._polled.get(job_id) or await self.jobs.poll_view(job_id)
            if job is None or not job.status.tracked or job.task_id is None:
                self._polled.pop(job_id, None)
                return
            self._polled[job_id] = job
            info: TaskInfo | None = None
            error: Exception | None = None
            try:
                info = await self.client.task_info(job.task_id, urgent=urgent)
            except Exception as exc:  # sorted out below, after the clock is read
                error = exc
        # Read after the call: a wait for the rate limiter must not make the next poll early.
        now = self.clock()
        age = now - (job.submitted_at or now)
        if info is None:
            await self._poll_failed(job, error, now, age)
            return

        if info.status is TaskStatus.SUCCESS:
            if not info.media_urls:
                await self._fail(job_id, "empty", failure_message("empty", job_id))
                return
            await self._finish(
                job, JobStatus.SUCCEEDED, result_urls=info.media_urls, credits=info.credits
            )
            return
        if info.status is TaskStatus.FAILED:
            log.info("job %s: task failed upstream: %s", job_id, info.error_message)
            reason = failure_message("generation-failed", job_id, reason=info.error_message)
            await self._fail(job_id, "generation-failed", reason, credits=info.credits)
            return
        if age > self.config.hard_deadline:
            log.error("job %s: still %s after %.0fs; giving up", job_id, info.raw_status, age)
            await self._finish(
                job,
                JobStatus.EXPIRED,
                error_code="expired",
                error_message=failure_message("expired", job_id),
            )
            return
        status = JobStatus.RUNNING if info.status is TaskStatus.RUNNING else job.status
        await self._repoll(job, status, now + self._interval(age))
        if status is not job.status:
            self._polled[job_id] = dataclasses.replace(job, status=status)
            fresh = await self.jobs.require(job_id)
            await self._progress(fresh, Progress(ProgressKind.RUNNING, eta=self.eta(fresh)))
        if age > self.config.soft_deadline and await self.jobs.mark_slow_notified(job_id):
            full = await self.jobs.require(job_id)
            await self._progress(full, Progress(ProgressKind.SLOW, eta=self.eta(full)))

    async def _poll_failed(
        self, job: PollView, error: Exception | None, now: float, age: float
    ) -> None:
        job_id = job.id
        if isinstance(error, RateLimited):
            delay = max(error.retry_after or 0.0, self._interval(age))
            await self._repoll(job, job.status, now + delay)
        elif isinstance(error, NotFound):
            count = await self.jobs.not_found_count(job_id) + 1
            if count >= self.config.not_found_limit:
                log.error("job %s: task %s unknown to crun; giving up", job_id, job.task_id)
                await self._fail(job_id, "lost", failure_message("lost", job_id))
                return
            await self._repoll(job, job.status, now + self._backoff(count), not_found=True)
        elif isinstance(error, AuthError):
            log.error("job %s: crun rejected the API key while polling; will keep trying", job_id)
            await self._repoll(job, job.status, now + 4 * self.config.poll_interval_max)
        elif isinstance(error, WanApiError):
            log.warning("job %s: poll failed (%s); will retry", job_id, error)
            await self._repoll(job, job.status, now + self._interval(age))
        else:
            # A bug must not strand the job: log it and keep tracking.
            log.error("job %s: unexpected error while polling; will retry", job_id, exc_info=error)
            await self._repoll(job, job.status, now + self.config.poll_interval_max)

    async def _repoll(
        self, job: PollView, status: JobStatus, due: float, *, not_found: bool = False
    ) -> None:
        if await self.jobs.record_poll(
            job.id, status=status, next_poll_at=due, now=self.clock(), not_found=not_found
        ):
            if job.id in self._woken:  # a callback came in while this poll was out: go again
                due = self.clock()
            self._schedule("poll", job.id, due)
        else:  # no longer pending or running: nothing more to poll
            self._polled.pop(job.id, None)

    async def _finish(
        self,
        job: Job | PollView,
        status: JobStatus,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        result_urls: tuple[str, ...] = (),
        credits: float | None = None,
    ) -> None:
        self._polled.pop(job.id, None)
        now = self.clock()
        if await self.jobs.finish(
            job.id,
            status=status,
            now=now,
            result_urls=result_urls,
            credits=credits,
            error_code=error_code,
            error_message=error_message,
        ):
            duration = None if job.submitted_at is None else now - job.submitted_at
            if status is JobStatus.SUCCEEDED and duration is not None:
                self._durations.append(duration)
                del self._durations[:-200]
            self.metrics.job_finished(status.value, duration)
            log.info("job %s finished: %s", job.id, status.value)
        await self._release(job.id)
        self._schedule("deliver", job.id, self.clock())

    async def _fail(
        self, job_id: str, code: str, message: str, *, credits: float | None = None
    ) -> None:
        job = await self.jobs.require(job_id)
        await self._finish(
            job, JobStatus.FAILED, error_code=code, error_message=message, credits=credits
        )

    async def _finish_uncertain(self, job_id: str, code: str) -> None:
        job = await self.jobs.require(job_id)
        await self._finish(
            job,
            JobStatus.UNCERTAIN,
            error_code=code,
            error_message=failure_message("uncertain", job_id),
        )

    # --- delivery -------------------------------------------------------------------------------

    async def _deliver(self, job_id: str) -> None:
        bind_job(job_id, self._guilds.get(job_id))
        job = await self.jobs.get(job_id)
        if job is None or job.finished:
            self._mark_done(job_id)
            return
        sink = self.sinks.get(job.target.kind)
        if sink is None:
            log.error(
                "job %s: no sink for %r; leaving it for another process", job_id, job.target.kind
            )
            return
        outcome = await self._outcome(job, sink)
        if outcome is None:
            return  # download failed, retry scheduled
        attempt = await self.jobs.begin_delivery(job_id, self.clock())
        if attempt == 0:
            self._mark_done(job_id)
            return
        # The sink sees this attempt's number: from the 2nd on, an earlier one may have posted.
        started = dataclasses.replace(
            job, delivery_state=DeliveryState.STARTED, delivery_attempts=attempt
        )
        outcome = dataclasses.replace(outcome, job=started)
        try:
            receipt = await sink.deliver(outcome)
        except DeliveryGone as exc:
            log.warning("job %s: target gone (%s); not delivering", job_id, exc)
            await self.jobs.end_delivery(
                job_id, state=DeliveryState.GAVE_UP, receipt={"gone": str(exc)}, now=self.clock()
            )
            self.metrics.job_delivered(DeliveryState.GAVE_UP.value, None)
            self._mark_done(job_id)
        except Exception:
            log.exception("job %s: delivery attempt %d failed", job_id, attempt)
            if attempt >= self.config.delivery_max_attempts:
                await self.jobs.end_delivery(
                    job_id, state=DeliveryState.GAVE_UP, receipt=None, now=self.clock()
                )
                self.metrics.job_delivered(DeliveryState.GAVE_UP.value, None)
                self._mark_done(job_id)
            else:
                self._schedule("deliver", job_id, self.clock() + self._backoff(attempt))
        else:
            now = self.clock()
            if outcome.ok and receipt.get(UNDELIVERED):
                # Refunded before delivery is marked done: a crash in between retries both.
                await self.jobs.refund_settled(job_id, reason=str(receipt[UNDELIVERED]), now=now)
            await self.jobs.end_delivery(job_id, state=DeliveryState.DONE, receipt=receipt, now=now)
            latency = None if job.finished_at is None else now - job.finished_at
            self.metrics.job_delivered(DeliveryState.DONE.value, latency)
            log.info("job %s delivered", job_id)
            self._mark_done(job_id)

    async def _outcome(self, job: Job, sink: DeliverySink) -> Outcome | None:
        if job.status is not JobStatus.SUCCEEDED:
            return Outcome(
                job=job, error_message=job.error_message or failure_message("internal", job.id)
            )
        limit = sink.upload_limit(job)
        try:
            images = []
            for index, url in enumerate(job.result_urls):
                fetched = await self.fetcher.fetch(url)
                fitted = await fit_image_async(fetched.data, limit)
                if fitted.reencoded:
                    self.metrics.upload_reencoded()
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
        except MediaError as exc:
            failures = self._download_failures.get(job.id, 0) + 1
            self._download_failures[job.id] = failures
            log.warning("job %s: fetching results failed (%d): %s", job.id, failures, exc.detail)
            if failures < self.config.download_max_attempts:
                self._schedule("deliver", job.id, self.clock() + self._backoff(failures))
                return None
            self._download_failures.pop(job.id, None)
            # The member never gets these images, so they are not charged for them; the operator
            # absorbs what crun billed, as for any failed job.
            if await self.jobs.refund_settled(job.id, reason="download", now=self.clock()):
                log.warning("job %s: results could not be fetched; credits refunded", job.id)
            return Outcome(job=job, error_message=failure_message("download", job.id))
        self._download_failures.pop(job.id, None)
        return Outcome(job=job, images=tuple(images))

    def _mark_done(self, job_id: str) -> None:
        # Popped, not kept: waiters hold the event, and a long-running bot must not keep one per
        # job it ever ran.
        event = self._done.pop(job_id, None)
        if event is not None:
            event.set()
        self._users.pop(job_id, None)
        self._guilds.pop(job_id, None)

    async def _progress(self, job: Job, progress: Progress) -> None:
        sink = self.sinks.get(job.target.kind)
        if sink is None:
            return
        try:
            # Best effort: a status edit that discord.py keeps retrying (5xx, long 429) must not
            # hold up the job's poll or a submit worker.
            async with asyncio.timeout(self.config.progress_timeout):
                await sink.progress(job, progress)
        except Exception:
            log.warning("job %s: progress update failed", job.id, exc_info=True)


def _code_name(exc: WanApiError) -> str:
    if exc.code is not None:
        return f"api-{exc.code}"
    return type(exc).__name__.lower()
