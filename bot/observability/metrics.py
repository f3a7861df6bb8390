"""Prometheus metrics, served at ``/metrics`` by the callback/health server.

The engine and the crun client call a handful of hooks (``job_finished``, ``api_call``, ...) on
a metrics object. ``NoMetrics`` is the default: every hook does nothing, so the core runs the
same with or without observability. ``Metrics`` records into its own ``CollectorRegistry``
(never prometheus-client's global one), so two runtimes in one process - tests - do not share
or clash over counters.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from bot.domain.models import JobStatus

log = logging.getLogger(__name__)

OK_OUTCOME = "200"  # WanClient's on_call outcome for a successful call

# Submit -> finish: the model usually takes tens of seconds; the hard deadline is hours.
DURATION_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0)
# Finish -> delivered: download, fit under the upload limit, post.
DELIVERY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class EngineGauges(Protocol):
    """What the queue gauges read, sampled at scrape time (JobEngine has both)."""

    @property
    def queue_depth(self) -> int: ...

    @property
    def inflight(self) -> int: ...


class NoMetrics:
    """The hooks the core calls. This base does nothing; ``Metrics`` records them."""

    def api_call(self, endpoint: str, outcome: str) -> None:
        """One HTTP attempt to crun (WanClient's ``on_call``): ``"200"`` or what went wrong."""

    def job_finished(self, status: str, duration: float | None) -> None:
        """A job reached a terminal status; ``duration`` is submit -> finish, if it was sent."""

    def job_delivered(self, state: str, latency: float | None) -> None:
        """Delivery ended (``done`` or ``gave-up``); ``latency`` is finish -> delivered."""

    def quota_denied(self) -> None:
        """``engine.submit`` refused a request with QuotaExceeded."""

    def upload_reencoded(self) -> None:
        """A result image was re-encoded to fit the target's upload limit."""

    def jobs_taken_over(self, count: int) -> None:
        """This process claimed ``count`` unfinished jobs from instances that died or left."""

    def watch_leases(self, held: Callable[[], int]) -> None:
        """How many jobs this process owns and runs right now, read at scrape time."""


NO_METRICS = NoMetrics()


class Metrics(NoMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.jobs = Gauge("wanbot_jobs", "Stored jobs by status", ["status"], registry=r)
        self.jobs_finished = Counter(
            "wanbot_jobs_finished", "Jobs that reached a terminal status", ["status"], registry=r
        )
        self.queue_depth = Gauge("wanbot_queue_depth", "Jobs waiting for a submit slot", registry=r)
        self.inflight = Gauge(
            "wanbot_jobs_inflight", "Jobs being submitted or tracked at crun", registry=r
        )
        self.job_duration = Histogram(
            "wanbot_job_duration_seconds",
            "Time from submission to crun until the outcome was known",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.delivery_latency = Histogram(
            "wanbot_delivery_latency_seconds",
            "Time from a job's outcome until it was delivered",
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "wanbot_deliveries", "Deliveries that ended, by state", ["state"], registry=r
        )
        self.api_calls = Counter(
            "wanbot_api_calls",
            "crun API attempts by endpoint and code",
            ["endpoint", "code"],
            registry=r,
        )
        self.api_errors = Counter(
            "wanbot_api_errors",
            "Failed crun API attempts by endpoint and code (HTTP/envelope code, timeout, ...)",
            ["endpoint", "code"],
            registry=r,
        )
        self.quota_denials = Counter(
            "wanbot_quota_denials", "Requests refused by quotas or limits", registry=r
        )
        self.uploads_reencoded = Counter(
            "wanbot_uploads_reencoded",
            "Result images re-encoded to fit an upload limit",
            registry=r,
        )
        self.leases_held = Gauge(
            "wanbot_leases_held", "Jobs this process owns and runs right now", registry=r
        )
        self.lease_takeovers = Counter(
            "wanbot_lease_takeovers",
            "Jobs this process took over from instances that died (or left them)",
            registry=r,
        )
        for status in JobStatus:  # every status shows up, at 0, from the first scrape
            self.jobs.labels(status.value)

    # --- hooks ----------------------------------------------------------------------------------

    def api_call(self, endpoint: str, outcome: str) -> None:
        self.api_calls.labels(endpoint, outcome).inc()
        if outcome != OK_OUTCOME:
            self.api_errors.labels(endpoint, outcome).inc()

    def job_finished(self, status: str, duration: float | None) -> None:
        self.jobs_finished.labels(status).inc()
        if duration is not None and duration >= 0:
            self.job_duration.observe(duration)

    def job_delivered(self, state: str, latency: float | None) -> None:
        self.deliveries.labels(state).inc()
        if latency is not None and latency >= 0:
            self.delivery_latency.observe(latency)

    def quota_denied(self) -> None:
        self.quota_denials.inc()

    def upload_reencoded(self) -> None:
        self.uploads_reencoded.inc()

    def jobs_taken_over(self, count: int) -> None:
        self.lease_takeovers.inc(count)

    def watch_leases(self, held: Callable[[], int]) -> None:
        self.leases_held.set_function(held)

    # --- sampled values ---------------------------------------------------------------------------

    def watch_engine(self, engine: EngineGauges) -> None:
        """Read the queue gauges from the engine whenever metrics are rendered."""
        self.queue_depth.set_function(lambda: engine.queue_depth)
        self.inflight.set_function(lambda: engine.inflight)

    def watch_shards(
        self,
        states: Callable[[], Mapping[int, bool]],
        *,
        instance: str,
        owned: Sequence[int],
        shard_count: int,
    ) -> None:
        """The bot's process and shards (only the bot has them; called once): several processes
        may run side by side, and ``wanbot_process_info`` tells them apart by instance id (the
        owner its jobs carry in the database). Each shard's connection is read at scrape time."""
        r = self.registry
        process = Info("wanbot_process", "This process: instance id and shards", registry=r)
        owned_gauge = Gauge("wanbot_shards_owned", "Gateway shards this process owns", registry=r)
        connected = Gauge(
            "wanbot_shard_connected",
            "1 while the shard's gateway connection is up, else 0",
            ["shard"],
            registry=r,
        )
        process.info(
            {
                "instance": instance,
                "shard_ids": ",".join(map(str, owned)),
                "shard_count": str(shard_count),
            }
        )
        owned_gauge.set(len(owned))
        for shard in owned:
            connected.labels(str(shard)).set_function(_connected(states, shard))

    def set_job_counts(self, counts: Mapping[str, int]) -> None:
        for status in JobStatus:
            self.jobs.labels(status.value).set(counts.get(status.value, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _connected(states: Callable[[], Mapping[int, bool]], shard: int) -> Callable[[], float]:
    return lambda: float(bool(states().get(shard)))


JobCounts = Callable[[], Awaitable[Mapping[str, int]]]


def metrics_route(metrics: Metrics, job_counts: JobCounts | None = None) -> web.RouteDef:
    """``GET /metrics``: the stored-jobs gauge is refreshed from the store on each scrape."""

    async def handler(_request: web.Request) -> web.Response:
        if job_counts is not None:
            try:
                metrics.set_job_counts(await job_counts())
            except Exception as exc:  # a busy or broken DB must not hide the other metrics
                log.warning("metrics: counting jobs failed: %s", exc)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return web.get("/metrics", handler)
