"""The durable job engine: persist -> submit -> track -> deliver.

Life of a job (every arrow is a guarded UPDATE in the store, see bot/store/job_transitions.py):

    queued -> submitting -> pending -> running -> succeeded | failed | expired
                   |   \\-> uncertain   (CreateTask sent, reply lost: never resent)
                   \\-> queued          (crun refused before creating anything: 429, 455, ...)

and independently ``delivery_state`` none -> started -> done | gave-up. A restart finds every job
that is not terminal-and-delivered and carries on from where it was.

One scheduler (a heap of due times) drives every poll, retry and delivery; submit workers take
jobs from the fair queue (servers in turn, then members) while a slot at crun is free for them.

JobEngine wires the parts, one per module: scheduler (the heap and its typed actions), records
(what is kept in memory per job), submitting, tracking (polls and callbacks), finishing (how a
run ends), delivering, progress (status updates and ETAs) and ownership (instances, adoption
and resume after a restart).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from bot.domain.models import GenerationRequest, Job, Target
from bot.domain.text import t
from bot.domain.validation import validate_request
from bot.errors import QuotaExceeded, ServiceUnavailable
from bot.jobs.announcing import QueueAnnouncer
from bot.jobs.background import TaskGroup
from bot.jobs.cancelling import Canceller, CancelResult
from bot.jobs.config import EngineConfig
from bot.jobs.credits import CreditMonitor
from bot.jobs.delivering import Deliverer
from bot.jobs.delivery import DeliverySink
from bot.jobs.fairqueue import FairQueue
from bot.jobs.finishing import ContentFiltered, Finisher
from bot.jobs.ownership import Ownership
from bot.jobs.progress import ProgressReporter
from bot.jobs.records import JobRecords
from bot.jobs.scheduler import Action, Backoff, Scheduler
from bot.jobs.schema_watch import SchemaWatch
from bot.jobs.shared_line import SharedLine
from bot.jobs.submitting import Submitter
from bot.jobs.tracking import Tracker
from bot.media import MediaFetcher
from bot.observability.context import job_context
from bot.observability.metrics import NO_METRICS, NoMetrics
from bot.store.instances import InstanceRepository
from bot.store.jobs import JobRepository
from bot.store.protocol import Notifier
from bot.store.quotas import Charge
from bot.wan.client import WanClient
from bot.wan.contract import Contract

__all__ = ["RESTARTING_MESSAGE", "EngineConfig", "JobEngine"]  # EngineConfig: its old home

log = logging.getLogger(__name__)

RESTARTING_MESSAGE = t(
    "The bot is restarting and is not taking new requests. Please try again in a minute; "
    "nothing was charged."
)


class JobEngine:
    """The engine's face: wires its parts together and keeps the API the bot and the CLI use."""

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
        credits: CreditMonitor | None = None,
        schema_watch: SchemaWatch | None = None,
        content_filtered: ContentFiltered | None = None,  # the mod log's hook
    ) -> None:
        self.jobs = jobs
        self.client = client
        self.contract = contract
        self.fetcher = fetcher
        self.sinks = dict(sinks)
        self.config = config or EngineConfig()
        self.clock = clock
        self.instance_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.started = False
        self.metrics = metrics
        self._accepting = False
        self._closing = False  # stop() began: refuse new work with a friendly message
        self._loops = TaskGroup("engine-loop")
        self._work = TaskGroup("engine-work")
        self._queue = FairQueue(on_change=self._line_changed)
        self._records = JobRecords(
            max_at_crun=self.config.max_concurrent_jobs,
            per_user=self.config.quota.user_concurrent,
            per_guild=self.config.quota.guild_concurrent,
        )
        self._scheduler = Scheduler(clock, self._work)
        self._reporter = ProgressReporter(self.sinks, timeout=self.config.progress_timeout)
        self._content_filtered = content_filtered
        self._line = self._shared_line()
        self._wire(rng or random.Random(), credits, schema_watch)  # noqa: S311 - jitter
        self._wire_line()
        self._ownership = Ownership(
            instance_id=self.instance_id,
            jobs=self.jobs,
            instances=InstanceRepository(self.jobs.db),
            sinks=self.sinks,
            config=self.config,
            clock=self.clock,
            queue=self._queue,
            records=self._records,
            scheduler=self._scheduler,
            tracker=self._tracker,
            metrics=self.metrics,
            shared=self._line is not None,
        )

    def _shared_line(self) -> SharedLine | None:
        """Several processes on one PostgreSQL: the line's order is decided in the database."""
        if not isinstance(self.jobs.db, Notifier):
            return None
        return SharedLine(
            db=self.jobs.db,
            owner=self.instance_id,
            kinds=self.sinks.keys,
            config=self.config,
            clock=self.clock,
            mirror=self._queue,
            records=self._records,
        )

    def _wire(
        self, rng: random.Random, credits: CreditMonitor | None, watch: SchemaWatch | None
    ) -> None:
        """Build the parts that take a job through its steps; they share the store, the clock,
        the records and the scheduler."""
        c = self.config
        backoff = Backoff(base=c.retry_backoff_base, cap=c.retry_backoff_cap, rng=rng)
        finisher = Finisher(
            jobs=self.jobs,
            clock=self.clock,
            records=self._records,
            scheduler=self._scheduler,
            reporter=self._reporter,
            metrics=self.metrics,
            content_filtered=self._content_filtered,
        )
        self._tracker = Tracker(
            jobs=self.jobs,
            client=self.client,
            config=c,
            clock=self.clock,
            rng=rng,
            backoff=backoff,
            records=self._records,
            scheduler=self._scheduler,
            finisher=finisher,
            reporter=self._reporter,
        )
        self._submitter = Submitter(
            jobs=self.jobs,
            client=self.client,
            contract=self.contract,
            fetcher=self.fetcher,
            config=c,
            clock=self.clock,
            backoff=backoff,
            queue=self._queue,
            records=self._records,
            scheduler=self._scheduler,
            work=self._work,
            tracker=self._tracker,
            credits=credits,
            schema_watch=watch,
            finisher=finisher,
            reporter=self._reporter,
            owner=self.instance_id,
            line=self._line,
        )
        self._deliverer = Deliverer(
            jobs=self.jobs,
            fetcher=self.fetcher,
            sinks=self.sinks,
            config=c,
            clock=self.clock,
            backoff=backoff,
            records=self._records,
            scheduler=self._scheduler,
            metrics=self.metrics,
            owner=self.instance_id,
        )

    def _wire_line(self) -> None:
        """The parts that look after the waiting line: place updates and cancels."""
        self._announcer = QueueAnnouncer(
            queue=self._queue,
            records=self._records,
            jobs=self.jobs,
            reporter=self._reporter,
            clock=self.clock,
            interval=self.config.queue_update_interval,
            edits_per_second=self.config.queue_edits_per_second,
            paused=lambda: self.credits is not None and self.credits.paused,
            mine=self._line.owns if self._line is not None else None,
            starts_now=self._line.starts_now if self._line is not None else None,
        )
        self._canceller = Canceller(
            jobs=self.jobs,
            clock=self.clock,
            queue=self._queue,
            records=self._records,
            reporter=self._reporter,
        )

    def _line_changed(self) -> None:
        self._records.nudge()  # a submit worker may have a job to take
        self._announcer.moved()  # places changed

    @property
    def credits(self) -> CreditMonitor | None:
        """Pauses submissions while crun is out of credits."""
        return self._submitter.credits

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, resume: bool = True) -> int:
        """Register, take over unfinished jobs (when ``resume``), start the loops.

        Returns the number of jobs resumed.
        """
        self._closing = False
        await self._ownership.register()
        self._reporter.load(await self.jobs.recent_durations())
        resumed = await self._ownership.adopt_orphans() if resume else 0
        self._loops.spawn(self._scheduler.run(self._start_step), name="scheduler")
        for i in range(self.config.max_concurrent_submits):
            self._loops.spawn(self._submitter.run_worker(), name=f"submit-{i}")
        self._loops.spawn(self._ownership.heartbeat(resume=resume), name="heartbeat")
        self._loops.spawn(self._announcer.run(), name="queue-announcer")
        if self._line is not None:
            self._line.start()
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
        await self.abort()
        await self._ownership.release()

    async def abort(self) -> None:
        """Cancel every loop and step where it stands and release nothing: how stop() ends once
        the drain time is up, and all that a killed process leaves behind (its jobs stay owned
        by a dead instance until another engine takes them over)."""
        self._accepting = False
        await self._loops.cancel_all()
        await self._work.cancel_all()
        if self._line is not None:
            await self._line.stop()
        self.started = False

    def _start_step(self, action: Action, job_id: str) -> Coroutine[Any, Any, None] | None:
        """The scheduler's dispatch: what each action that comes due starts."""
        if not self._records.runs(job_id):
            return None  # cancelled, delivered, or its lease went to another process
        match action:
            case Action.SUBMIT:
                self._submitter.back_in_line(job_id)
                return None
            case Action.POLL:
                return self._tracker.poll(job_id)
            case Action.DELIVER:
                return self._deliverer.deliver(job_id)

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
        if self.credits is not None:
            await self.credits.admit()  # while paused: a fresh look at the balance first
        validate_request(request)
        self.contract.check(request)  # what the live schema cannot take is refused now
        now = self.clock()
        try:
            job = await self.jobs.create(
                user_id=user_id,
                guild_id=guild_id,
                request=request,
                target=target,
                now=now,
                owner=self.instance_id,
                lease_until=now + self.config.instance_stale_after,
                parent_job_id=parent_job_id,
                charge=charge,
                policy=self.config.quota,
            )
        except QuotaExceeded:
            self.metrics.quota_denied()
            raise
        if self._line is None:
            self._records.track(job.id, user_id, guild_id)
        else:  # whichever process claims it from the line runs it
            self._line.joined(job.id)
        self._queue.put(job.id, user_id, guild_id)  # a worker takes it now if it may start
        with job_context(job.id, guild_id):
            log.info("job %s queued for user %s (guild %s)", job.id, user_id, guild_id)
        await self._announcer.joined(job)  # if it may not, its place is shown
        return job

    async def cancel(self, job_id: str, *, by_user_id: int) -> CancelResult:
        """Take a waiting job out of the line, refunded, its status message told; AT_CRUN once
        CreateTask was sent. Who may cancel is the caller's business."""
        return await self._canceller.cancel(job_id, by_user_id=by_user_id)

    async def wait_finished(self, job_id: str, timeout: float | None = None) -> Job:  # noqa: ASYNC109
        """Wait until the job's outcome has been delivered (or delivery abandoned)."""
        if job_id not in self._records:
            # Not tracked here (any more): the store knows whether it is done.
            job = await self.jobs.require(job_id)
            if job.finished:
                return job
        await asyncio.wait_for(self._records.waiter(job_id).wait(), timeout)
        return await self.jobs.require(job_id)

    def queue_position(self, job_id: str) -> int | None:
        return self._queue.position(job_id)

    def waiting_for(self, user_id: int) -> list[tuple[str, int, float | None]]:
        """(job id, 1-based place, start ETA) of a member's waiting jobs, in service order. The
        ETA is the wall-clock time the job should *start* (None until a job has finished here)."""
        return self._announcer.places_of(user_id, self.clock())

    def queued_for(self, user_id: int) -> list[tuple[str, int]]:
        """(job id, 1-based place) of a member's waiting jobs: ``waiting_for`` without ETAs."""
        return [(jid, place) for jid, place, _ in self.waiting_for(user_id)]

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def inflight(self) -> int:
        return self._records.at_crun

    def wake(self, job_id: str) -> bool:
        """A callback said the task moved: poll it now. Returns False for jobs we don't track."""
        return self._tracker.wake(job_id)

    def eta(self, job: Job) -> float | None:
        """A wall-clock estimate of when the job finishes, from recent jobs' durations."""
        return self._reporter.eta(job)
