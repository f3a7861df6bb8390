"""One crun budget for every process on one PostgreSQL database (issue 20, item 3).

Each "process" here is a limiter with a pool of its own, as two `wanbot run` processes would
have. The checks read the schedule the database granted (``Slot.shared_at``, on its clock), not
wall-clock sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.jobs.engine import EngineConfig
from bot.runtime import crun_limiter_for
from bot.store.budget import CrunBudgetRepository
from bot.store.database import Database
from bot.store.pg_database import PgDatabase
from bot.wan.ratelimit import RateLimiter
from bot.wan.shared_budget import SharedBudget

pytest_plugins = ["tests.pg"]  # pg_url: a fresh, empty schema per test


@pytest.fixture
async def two_pools(pg_url: str) -> AsyncIterator[tuple[PgDatabase, PgDatabase]]:
    a = await PgDatabase.open(pg_url, max_size=4)
    b = await PgDatabase.open(pg_url, max_size=4)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def take(limiter: RateLimiter, count: int) -> list[float]:
    """Take ``count`` slots at once, as many requests would; their shared grant times."""

    async def one() -> float:
        async with limiter.slot() as slot:
            pass
        assert slot.shared_at is not None
        return slot.shared_at

    return list(await asyncio.gather(*(one() for _ in range(count))))


def busiest_second(times: list[float]) -> int:
    """The most grants in any closed one-second window."""
    times = sorted(times)
    return max(sum(1 for t in times if start <= t <= start + 1.0) for start in times)


@pytest.mark.postgres
async def test_two_processes_together_never_exceed_the_rate_in_any_second(
    two_pools: tuple[PgDatabase, PgDatabase],
) -> None:
    a, b = (RateLimiter(10.0).sharing(CrunBudgetRepository(db)) for db in two_pools)
    got_a, got_b = await asyncio.gather(take(a, 20), take(b, 20))
    both = got_a + got_b
    assert len(set(both)) == 40
    assert busiest_second(both) <= 10
    # Each alone would have taken its 20 in about 2 s; together they share one schedule.
    assert max(both) - min(both) >= 39 * 0.1
    # Both were served throughout, not one after the other.
    assert min(got_b) < max(got_a) and min(got_a) < max(got_b)


@pytest.mark.postgres
async def test_a_429_in_one_process_halves_the_rate_the_other_gets(
    two_pools: tuple[PgDatabase, PgDatabase],
) -> None:
    a, b = (RateLimiter(10.0).sharing(CrunBudgetRepository(db)) for db in two_pools)
    await take(b, 2)
    assert b.rate == pytest.approx(10.0)

    a.penalize(0.0)  # crun said 429 to a, with Retry-After: 0
    assert a.shared is not None
    await a.shared.settle()

    first, second = sorted(await take(b, 2))
    assert 5.0 <= b.rate < 6.0  # halved, recovering slowly
    assert second - first >= 0.2  # spaced for 5/s, not 10/s


@pytest.mark.postgres
async def test_the_shared_rate_recovers_with_time(pg_db: PgDatabase) -> None:
    budget = CrunBudgetRepository(pg_db, half_life=0.1)
    assert await budget.slow(max_rate=10.0, min_rate=0.2, pause=0.0) == pytest.approx(5.0)
    assert await budget.slow(max_rate=10.0, min_rate=0.2, pause=0.0) == pytest.approx(2.5, 0.05)
    await asyncio.sleep(1.0)  # ten half-lives
    assert (await budget.take(max_rate=10.0, margin=0.05)).rate > 9.9


@pytest.mark.postgres
async def test_postgresql_shares_the_budget_and_sqlite_keeps_it_in_process(
    pg_url: str, pg_db: PgDatabase, tmp_path: Path
) -> None:
    config = EngineConfig(api_rate_limit=4.0)
    shared = crun_limiter_for(config, pg_url, pg_db)
    assert shared.shared is not None
    assert isinstance(shared.shared.store, CrunBudgetRepository)
    assert shared.max_rate == 4.0

    lite = await Database.open(tmp_path / "w.sqlite3")
    try:
        local = crun_limiter_for(config, f"sqlite:///{tmp_path / 'w.sqlite3'}", lite)
    finally:
        await lite.close()
    assert local.shared is None
    assert local.max_rate == 4.0


@dataclass
class FlakyStore:
    """A budget whose database hangs while ``down`` (a partition: no answer, no error)."""

    down: bool = True
    taken: int = 0

    async def take(self, *, max_rate: float, margin: float) -> CrunGrant:
        if self.down:
            await asyncio.sleep(3600)
        self.taken += 1
        return CrunGrant(at=1000.0 + self.taken, wait=0.0, rate=max_rate)

    async def slow(self, *, max_rate: float, min_rate: float, pause: float) -> float:
        if self.down:
            await asyncio.sleep(3600)
        return max_rate / 2


@dataclass(frozen=True)
class CrunGrant:
    at: float
    wait: float
    rate: float


async def test_an_unreachable_budget_falls_back_to_the_local_limiter_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    limiter = RateLimiter(50.0, shared=SharedBudget(store, timeout=0.05, retry_in=0.3))
    caplog.set_level(logging.INFO, logger="bot.wan.shared_budget")

    for _ in range(3):
        async with limiter.slot() as slot:
            pass
        assert slot.shared_at is None  # granted by this process's limiter alone
    limiter.penalize(0.0)  # not even tried while the budget is known to be down
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1

    store.down = False
    await asyncio.sleep(0.35)  # retry_in passed: the budget is asked again
    async with limiter.slot() as slot:
        pass
    assert slot.shared_at == 1001.0
    assert any("reachable again" in r.getMessage() for r in caplog.records)
