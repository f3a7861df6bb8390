"""The fair queue and the rate limiter on their own."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs.fairqueue import FairQueue
from bot.jobs.ratelimit import RateLimiter


def test_fair_queue_serves_users_round_robin() -> None:
    q = FairQueue()
    for i in range(5):
        q.put(f"a{i}", user_id=1)  # one user floods the queue
    q.put("b0", user_id=2)
    q.put("c0", user_id=3)
    q.put("b1", user_id=2)
    assert q.order() == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]
    assert q.position("c0") == 3
    served = [q.pop() for _ in range(len(q))]
    assert served == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]
    assert q.pop() is None


def test_fair_queue_newcomer_is_not_stuck_behind_a_flood() -> None:
    q = FairQueue()
    for i in range(12):
        q.put(f"a{i}", user_id=1)
    assert q.pop() == "a0"
    q.put("late", user_id=2)
    assert q.position("late") == 1
    assert q.pop() == "late"


def test_fair_queue_remove_and_duplicates() -> None:
    q = FairQueue()
    q.put("x", 1)
    q.put("x", 1)
    q.put("y", 1)
    assert len(q) == 2
    assert q.remove("x")
    assert not q.remove("x")
    assert q.order() == ["y"]
    assert q.position("x") is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limiter_never_bursts_above_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr("bot.jobs.ratelimit.asyncio.sleep", fake_sleep)
    limiter = RateLimiter(4.0, clock=clock)
    stamps = []
    for _ in range(20):
        await limiter.acquire()
        stamps.append(clock.now)
    # Any one-second window holds at most `rate` requests.
    for i, t in enumerate(stamps):
        assert sum(1 for s in stamps[i:] if s < t + 1.0) <= 4
    assert stamps[-1] == pytest.approx(19 / 4.0)


async def test_rate_limiter_pauses_and_slows_after_429(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr("bot.jobs.ratelimit.asyncio.sleep", fake_sleep)
    limiter = RateLimiter(4.0, clock=clock)
    await limiter.acquire()
    limiter.penalize(retry_after=7.0)
    assert limiter.rate == 2.0
    await limiter.acquire()
    assert clock.now >= 7.0
    for _ in range(200):
        limiter.reward()
    assert limiter.rate == 4.0
    assert limiter.penalties == 0
