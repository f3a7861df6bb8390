"""Opens and closes the core's resources in one place (used by the CLI and the Discord bot)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType

from aiohttp import web

from bot.domain.text import Text
from bot.jobs.background import TaskGroup
from bot.jobs.credits import Alert, CreditMonitor
from bot.jobs.delivery import DeliverySink
from bot.jobs.engine import EngineConfig, JobEngine
from bot.jobs.housekeeping import Housekeeping
from bot.jobs.schema_watch import SchemaWatch
from bot.media import MediaFetcher
from bot.observability.health import HealthChecker, health_route, split_host_port
from bot.observability.metrics import Metrics, metrics_route
from bot.services import (
    AdminService,
    GenerationService,
    HistoryService,
    InputChecker,
    PreferenceService,
    QueueService,
    Services,
)
from bot.services.modlog import ModLogService, Send
from bot.services.styles import StyleService
from bot.settings import Settings
from bot.store.budget import CrunBudgetRepository
from bot.store.engine import engine_of, open_database
from bot.store.guild_config import GuildConfigRepository
from bot.store.jobs import JobRepository
from bot.store.meta import MetaRepository
from bot.store.preferences import PreferenceRepository
from bot.store.protocol import Closable, Db, Notifier
from bot.store.quotas import QuotaRepository
from bot.store.styles import StyleRepository
from bot.wan.callbacks import MAX_BODY, CallbackServer, callback_routes
from bot.wan.client import WanClient
from bot.wan.contract import Contract
from bot.wan.estimates import CostEstimator
from bot.wan.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# PostgreSQL NOTIFY channel: its payload is the id of a job whose crun callback reached a process
# that does not track it; every process LISTENs and the one that tracks the job polls it now.
WAKE_CHANNEL = "wanbot_wake"


async def _log_alert(topic: str, message: Text) -> None:
    """Where alerts go without Discord (the CLI): the log, in English."""
    log.warning("alert (%s): %s", topic, message.english())


# Builds a delivery sink once the runtime's stores are open (the Discord sink saves receipts).
SinkFactory = Callable[["Runtime"], DeliverySink]


def crun_limiter_for(config: EngineConfig, database_url: str, db: Db) -> RateLimiter:
    """The crun budget: on PostgreSQL (possibly several processes) shared through the database,
    on SQLite (one process) this process's own."""
    limiter = config.crun_limiter()
    if engine_of(database_url) == "postgresql":
        return limiter.sharing(CrunBudgetRepository(db))
    return limiter


def engine_config_from(s: Settings) -> EngineConfig:
    """The engine's tuning from the settings (the engine itself knows no Settings)."""
    return EngineConfig(
        poll_interval_min=s.poll_interval_min,
        poll_interval_max=s.poll_interval_max,
        soft_deadline=s.poll_soft_deadline,
        hard_deadline=s.poll_hard_deadline,
        max_concurrent_jobs=s.max_concurrent_jobs,
        max_concurrent_submits=s.max_concurrent_submits,
        instance_stale_after=s.job_lease_seconds,
        heartbeat_interval=s.job_lease_seconds / 4,
        api_rate_limit=s.api_rate_limit,
        callback_base_url=s.callback_public_url,
        quota=s.quota_policy(),
    )


class Runtime:
    """Database, crun client, media fetcher, contract, engine and the services over them, opened
    together. ``services`` is the one object the Discord faces receive."""

    def __init__(
        self,
        settings: Settings,
        sinks: Mapping[str, SinkFactory],
        *,
        engine_config: EngineConfig | None = None,
        alert: Alert | None = None,
        gateway: Callable[[], Mapping[int, bool]] | None = None,  # shard id -> connected
        modlog: Send | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._sinks = sinks
        self._engine_config = engine_config or engine_config_from(settings)
        self._clock = clock  # the engine's clock (tests move it)
        self._stack = AsyncExitStack()
        self.db: Db
        self.jobs: JobRepository
        self.meta: MetaRepository
        self.quotas: QuotaRepository
        self.configs: GuildConfigRepository
        self.client: WanClient
        self.fetcher: MediaFetcher
        self.contract = Contract(override=settings.wan_field_map)
        self.engine: JobEngine
        self.callback_server: CallbackServer | None = None
        self.alert: Alert = alert or _log_alert
        self.credits: CreditMonitor
        self.schema_watch: SchemaWatch
        self.metrics = Metrics()  # its own registry: one per runtime, never the global one
        self.health: HealthChecker
        self._gateway = gateway  # "is Discord connected?" for /healthz; None in the CLI
        self._modlog_send = modlog  # posts mod-log lines; None in the CLI (nothing is posted)
        self.modlog: ModLogService
        self.services: Services
        self.wake_listener: Closable | None = None  # LISTEN on WAKE_CHANNEL (PostgreSQL only)
        self._relays = TaskGroup("wake-relay")  # NOTIFYs in flight (the callback answers first)

    async def open(self, *, start_engine: bool = True, resume: bool = True) -> Runtime:
        s = self.settings
        try:
            self.db = await open_database(s.database_url)
            self._stack.push_async_callback(self.db.close)
            self.jobs = JobRepository(self.db)
            self.meta = MetaRepository(self.db)
            # One quota policy: the engine reserves with it, the admin views report with it.
            self.quotas = QuotaRepository(self.db, self._engine_config.quota)
            self.configs = GuildConfigRepository(self.db)
            self.modlog = ModLogService(self.configs, self._modlog_send)
            self._stack.push_async_callback(self.modlog.close)
            self.client = WanClient(
                s.api_key(),
                base_url=s.wan_api_base,
                request_timeout=s.wan_request_timeout,
                connect_timeout=s.wan_connect_timeout,
                get_retries=s.wan_get_retries,
                on_call=self._on_api_call,
                limiter=crun_limiter_for(self._engine_config, s.database_url, self.db),
            )
            self._stack.push_async_callback(self.client.close)
            self.health = HealthChecker(
                db_check=self.db.check_writable,
                api_probe=self.client.balance,
                gateway=self._gateway,
            )
            self.fetcher = MediaFetcher(
                max_bytes=s.download_max_bytes,
                allow_http=s.allow_http_results,
                timeout=s.wan_request_timeout * 2,
                connect_timeout=s.wan_connect_timeout,
            )
            self._stack.push_async_callback(self.fetcher.close)
            self.schema_watch = self._open_schema_watch()
            await self.refresh_schema()
            self.credits = CreditMonitor(
                self.client, self.meta, threshold=s.low_balance_threshold, alert=self.alert
            )
            self.engine = JobEngine(
                jobs=self.jobs,
                client=self.client,
                contract=self.contract,
                fetcher=self.fetcher,
                sinks={kind: build(self) for kind, build in self._sinks.items()},
                config=self._engine_config,
                metrics=self.metrics,
                credits=self.credits,
                schema_watch=self.schema_watch,
                content_filtered=self.modlog.content_filtered,
                clock=self._clock,
            )
            self.metrics.watch_engine(self.engine)
            self.services = self._services()
            if start_engine:
                await self.start(resume=resume)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    def _open_schema_watch(self) -> SchemaWatch:
        watch = SchemaWatch(
            self.client,
            self.contract,
            alert=self.alert,
            interval=self.settings.wan_schema_refresh,
        )
        # Stopped even if its timer never ran (the CLI): a 422 may have begun a re-read.
        self._stack.push_async_callback(watch.stop)
        return watch

    def _services(self) -> Services:
        s = self.settings
        return Services(
            generation=GenerationService(
                self.engine,
                self.jobs,
                self.configs,
                allow_dms=s.allow_dms,
                costs=s.cost_table(),
                estimator=CostEstimator(self.client, self.contract),
            ),
            inputs=InputChecker(self.fetcher),
            admin=AdminService(
                self.quotas, self.configs, self.jobs, self.credits, allow_dms=s.allow_dms
            ),
            queue=QueueService(self.engine),
            modlog=self.modlog,
            owner_ids=frozenset(s.bot_owner_ids),
            preferences=PreferenceService(PreferenceRepository(self.db), self.configs),
            styles=StyleService(StyleRepository(self.db)),
            history=HistoryService(self.jobs),
        )

    async def start(self, *, resume: bool = True) -> None:
        """Start the engine (resuming unfinished jobs) and, if configured, the callback server."""
        s = self.settings
        await self.credits.start()
        self._stack.push_async_callback(self.credits.stop)
        await self.schema_watch.start()  # the timed re-reads (stopped with the runtime)
        await self.engine.start(resume=resume)
        self._stack.push_async_callback(self.engine.stop)
        self._listen_for_wakes()
        self.housekeeping = Housekeeping(self.jobs, self.quotas, retention_days=s.retention_days)
        self.housekeeping.start()
        self._stack.push_async_callback(self.housekeeping.stop)
        await self._start_http()

    async def _start_http(self) -> None:
        """One aiohttp server for crun callbacks and /healthz + /metrics, when either is on.

        Health and metrics ride on the callback server when that is on; HEALTH_LISTEN adds (or,
        without callbacks, is) the address they are served on.
        """
        s = self.settings
        addresses: list[tuple[str, int]] = []
        app = web.Application(client_max_size=MAX_BODY)
        if s.callback_public_url:
            app.add_routes(callback_routes(self.jobs.callback_token, self.wake_anywhere))
            addresses.append(s.callback_host_port)
        if s.health_listen:
            health = split_host_port(s.health_listen)
            if health not in addresses:
                addresses.append(health)
        if not addresses:
            return
        app.add_routes(
            [health_route(self.health), metrics_route(self.metrics, self.jobs.count_by_status)]
        )
        host, port = addresses[0]
        self.callback_server = CallbackServer(app, host, port, also=addresses[1:])
        await self.callback_server.start()
        self._stack.push_async_callback(self.callback_server.stop)
        for (host, _), bound in zip(addresses, self.callback_server.ports, strict=True):
            log.info("HTTP server (callbacks, /healthz, /metrics) listening on %s:%d", host, bound)

    def _listen_for_wakes(self) -> None:
        """With a store shared by several processes (PostgreSQL), wake the jobs this one tracks
        when a callback for them reached another process."""
        if not isinstance(self.db, Notifier):
            return  # SQLite: one process, every callback reaches the engine that tracks its job
        self.wake_listener = self.db.listen(WAKE_CHANNEL, self.engine.wake)
        self._stack.push_async_callback(self.wake_listener.close)
        self._stack.push_async_callback(self._relays.cancel_all)

    def wake_anywhere(self, job_id: str) -> bool:
        """The callback receiver's wake (after its token check): poll the job now if this process
        tracks it, else publish it to the process that does. Never waits: crun gets its 200 at
        once either way. Returns whether this process tracks the job."""
        if self.engine.wake(job_id):
            return True
        if isinstance(self.db, Notifier):
            self._relays.spawn(self.db.notify(WAKE_CHANNEL, job_id), name=f"notify:{job_id}")
        return False

    def _on_api_call(self, endpoint: str, outcome: str) -> None:
        self.metrics.api_call(endpoint, outcome)
        self.health.record_api_call(endpoint, outcome)

    async def refresh_schema(self) -> list[str]:
        """Read crun's live schema; its field names win. Unreachable schema: keep the map in
        force (the built-in names at start). Not announced: this is the map the bot starts with."""
        return await self.schema_watch.refresh(announce=False)

    async def close(self) -> None:
        await self._stack.aclose()

    async def __aenter__(self) -> Runtime:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
