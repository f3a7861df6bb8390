"""Fixtures shared by every suite: the fake crun server and an engine harness around it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.credits import CreditMonitor
from bot.jobs.delivery import DeliverySink, FileSink
from bot.jobs.engine import EngineConfig, JobEngine
from bot.media import MediaFetcher
from bot.store.database import Database
from bot.store.jobs import JobRepository
from bot.wan.client import WanClient
from bot.wan.contract import Contract
from tests.fakes.crun_server import FakeCrun
from tests.helpers import RecordingSink

# Fast clocks for tests: the logic is the same, only the numbers shrink.
FAST = EngineConfig(
    poll_interval_min=0.02,
    poll_interval_max=0.05,
    fast_phase=0.5,
    callback_poll_interval=0.05,
    retry_backoff_base=0.01,
    retry_backoff_cap=0.05,
    heartbeat_interval=0.05,
    instance_stale_after=60.0,
    submit_retry_window=5.0,
    drain_timeout=1.0,
    api_rate_limit=100.0,
    progress_timeout=1.0,  # scaled like the intervals (production: 5 s)
    queue_update_interval=0.05,  # places in line (production: 5 s)
)


@pytest.fixture
async def crun() -> AsyncIterator[FakeCrun]:
    async with FakeCrun() as fake:
        yield fake


class Harness:
    """Everything an engine needs, pointed at the fake crun and a real SQLite file."""

    def __init__(self, tmp_path: Path, crun: FakeCrun) -> None:
        self.tmp_path = tmp_path
        self.crun = crun
        self.sink = RecordingSink()
        self.engines: list[JobEngine] = []
        self.clients: list[WanClient] = []
        self.db: Database
        self.jobs: JobRepository
        self.client: WanClient
        self.fetcher: MediaFetcher

    async def open(self) -> Harness:
        self.db = await Database.open(self.tmp_path / "wanbot.sqlite3")
        self.jobs = JobRepository(self.db)
        self.client = self.new_client(FAST)
        self.fetcher = MediaFetcher(max_bytes=64 * 1024 * 1024, allow_http=True, timeout=5.0)
        return self

    def new_client(self, config: EngineConfig) -> WanClient:
        """A crun client spending the rate budget ``config`` sets, as the runtime builds it."""
        client = WanClient(
            self.crun.api_key,
            base_url=self.crun.base_url,
            request_timeout=2.0,
            connect_timeout=1.0,
            backoff_base=0.01,
            backoff_cap=0.02,
            limiter=config.crun_limiter(),
        )
        self.clients.append(client)
        return client

    async def engine(
        self,
        *,
        start: bool = True,
        sinks: dict[str, DeliverySink] | None = None,
        client: WanClient | None = None,
        credits: CreditMonitor | None = None,
        **config: Any,
    ) -> JobEngine:
        """An engine; one that sets its own rate limit (or callbacks) gets its own client."""
        cfg = dataclasses.replace(FAST, **config)
        if client is None:
            same_budget = cfg.api_rate_limit == FAST.api_rate_limit and not cfg.callback_base_url
            client = self.client if same_budget else self.new_client(cfg)
        engine = JobEngine(
            jobs=self.jobs,
            client=client,
            contract=Contract(),
            fetcher=self.fetcher,
            sinks=sinks or {"test": self.sink, "files": FileSink()},
            config=cfg,
            credits=credits,
        )
        self.engines.append(engine)
        if start:
            await engine.start()
        return engine

    async def close(self) -> None:
        for engine in self.engines:
            if engine.started:
                await engine.stop()
        await self.fetcher.close()
        for client in self.clients:
            await client.close()
        await self.db.close()


@pytest.fixture
async def harness(tmp_path: Path, crun: FakeCrun) -> AsyncIterator[Harness]:
    h = await Harness(tmp_path, crun).open()
    try:
        yield h
    finally:
        await h.close()
