"""The fair queue and the rate limiter on their own."""

from __future__ import annotations

import asyncio
import copy
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.jobs.fairqueue import FairQueue
from bot.wan.ratelimit import RateLimiter, Slot


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


class ReferenceQueue:
    """The fair queue's rule written as plainly as possible: serve the user with the smallest
    (last served, arrival); the production queue must serve in exactly this order."""

    def __init__(self) -> None:
        self.jobs: dict[int, list[str]] = {}
        self.last: dict[int, int] = {}
        self.arrival: dict[int, int] = {}
        self.tick = 0

    def put(self, job: str, user: int) -> None:
        if any(job in q for q in self.jobs.values()):
            return
        if user not in self.jobs:
            self.jobs[user] = []
            self.arrival[user] = self.tick
            self.tick += 1
        self.jobs[user].append(job)

    def remove(self, job: str) -> None:
        for user, q in list(self.jobs.items()):
            if job in q:
                q.remove(job)
                if not q:
                    del self.jobs[user]

    def pop(self) -> str | None:
        if not self.jobs:
            return None
        user = min(self.jobs, key=lambda u: (self.last.get(u, -1), self.arrival[u]))
        job = self.jobs[user].pop(0)
        if not self.jobs[user]:
            del self.jobs[user]
        self.last[user] = self.tick
        self.tick += 1
        return job


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 40), st.integers(0, 5)),
        st.tuples(st.just("pop"), st.just(0), st.just(0)),
        st.tuples(st.just("remove"), st.integers(0, 40), st.just(0)),
    ),
    max_size=80,
)


@settings(max_examples=300, derandomize=True)
@given(_ops)
def test_fair_queue_matches_the_reference_rule(ops: list[tuple[str, int, int]]) -> None:
    q, ref = FairQueue(), ReferenceQueue()
    for op, job, user in ops:
        if op == "put":
            q.put(f"j{job}", user)
            ref.put(f"j{job}", user)
        elif op == "remove":
            q.remove(f"j{job}")
            ref.remove(f"j{job}")
        else:
            assert q.pop() == ref.pop()
        # The place in line (computed from queue lengths) agrees with the full order, and the
        # order agrees with what popping would actually do.
        order = q.order()
        assert len(order) == len(q)
        assert [q.position(j) for j in order] == list(range(1, len(order) + 1))
        dry = copy.deepcopy(ref)
        assert order == [dry.pop() for _ in range(len(order))]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def grant_times(limiter: RateLimiter, clock: FakeClock, count: int, *, urgent: bool) -> list[float]:
    """Drive the limiter's rule with a fake clock: each request goes out as soon as allowed."""
    stamps = []
    for _ in range(count):
        clock.now += max(0.0, limiter.delay(clock.now, urgent=urgent))
        assert limiter.delay(clock.now, urgent=urgent) <= 1e-12
        limiter.record(clock.now)
        stamps.append(clock.now)
    return stamps


def most_in_a_second(stamps: list[float]) -> int:
    """The most requests in any closed one-second window (the strictest way to count)."""
    return max(sum(1 for s in stamps if t <= s <= t + 1.0) for t in stamps)


@pytest.mark.parametrize("rate", [1.0, 2.5, 4.0, 5.0, 7.0])
@pytest.mark.parametrize("urgent", [False, True])
def test_rate_limiter_never_exceeds_its_rate_in_any_closed_second(
    rate: float, urgent: bool
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock)
    stamps = grant_times(limiter, clock, 60, urgent=urgent)
    assert most_in_a_second(stamps) <= int(rate)
    # ...and still delivers close to the rate: 60 requests in about 60 / rate seconds.
    assert stamps[-1] <= 60 / int(rate) * limiter.window + 1


def test_routine_requests_are_evenly_spaced_urgent_ones_only_windowed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock)
    routine = grant_times(limiter, clock, 8, urgent=False)
    gaps = [b - a for a, b in itertools.pairwise(routine)]
    assert min(gaps) >= 0.25 - 1e-9
    clock.now += 10
    urgent = grant_times(limiter, clock, 4, urgent=True)
    assert urgent == [urgent[0]] * 4  # a burst of woken polls goes at once, within the window
    assert limiter.delay(clock.now, urgent=True) > 0.9  # the fifth waits for the window


def test_reserve_keeps_slots_free_for_urgent_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5.0, clock=clock, reserve=1)
    routine = grant_times(limiter, clock, 40, urgent=False)
    assert most_in_a_second(routine) <= 4
    # Whenever routine work is saturating the limiter, an urgent request may still go at once.
    assert limiter.delay(clock.now, urgent=True) == 0
    assert limiter.delay(clock.now, urgent=False) > 0


def test_rate_limiter_pauses_and_slows_after_429() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock)
    grant_times(limiter, clock, 1, urgent=False)
    limiter.penalize(retry_after=7.0)
    assert limiter.rate == 2.0
    assert limiter.delay(clock.now) == pytest.approx(7.0)
    assert limiter.delay(clock.now, urgent=True) == pytest.approx(7.0)  # nobody skips a pause
    stamps = grant_times(limiter, clock, 10, urgent=True)
    assert most_in_a_second(stamps) <= 2
    for _ in range(200):
        limiter.reward()
    assert limiter.rate == 4.0
    assert limiter.penalties == 0


@settings(max_examples=80, deadline=None)
@given(
    send_delays=st.lists(st.floats(0.0, 0.8), min_size=25, max_size=25),
    rate=st.sampled_from([2.0, 5.0, 7.0]),
    urgent=st.booleans(),
)
def test_requests_sent_late_never_exceed_the_rate_as_crun_sees_them(
    send_delays: list[float], rate: float, urgent: bool
) -> None:
    """Regression (issue 15): a request granted a slot but sent later (waiting for a connection,
    the database, the loop) used to be counted at its grant, so crun could see 6 in a second at
    5/s. Each request here goes out as soon as the rule allows and is *sent* a while later; the
    rule must hold for the send times, which is all crun sees."""
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock)
    in_flight: list[tuple[float, Slot]] = []  # (send time, slot), sorted
    sent: list[float] = []

    def send_next() -> None:
        at, slot = in_flight.pop(0)
        clock.now = max(clock.now, at)
        slot.sent()
        sent.append(clock.now)

    for delay in send_delays:
        while True:
            wait = limiter.delay(clock.now, urgent=urgent)
            if in_flight and in_flight[0][0] <= clock.now + wait:  # wait may be inf
                send_next()
                continue
            clock.now += max(0.0, wait)
            in_flight.append((clock.now + delay, limiter.grant(clock.now)))
            in_flight.sort(key=lambda pair: pair[0])
            break
    while in_flight:
        send_next()
    assert most_in_a_second(sent) <= int(rate)


async def test_a_slot_is_dated_when_its_request_is_sent_even_if_it_never_is() -> None:
    limiter = RateLimiter(1.0)
    async with limiter.slot() as slot:
        assert slot.sent_at is None  # held, undated: the window cannot move past it
        assert math.isinf(limiter.delay(asyncio.get_running_loop().time()))
    assert slot.sent_at is not None  # the request failed before sending: dated on the way out


def test_below_one_per_second_the_window_stretches() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.25, clock=clock)
    stamps = grant_times(limiter, clock, 4, urgent=True)
    assert min(b - a for a, b in itertools.pairwise(stamps)) >= 4.0


async def test_urgent_waiters_go_before_routine_ones_in_arrival_order() -> None:
    limiter = RateLimiter(20.0)  # real clock: only the order is asserted, not the timing
    served: list[str] = []

    async def ask(name: str, *, urgent: bool) -> None:
        await limiter.acquire(urgent=urgent)
        served.append(name)

    await limiter.acquire()  # the next routine request must wait 50 ms
    routine = [asyncio.create_task(ask(f"r{i}", urgent=False)) for i in range(4)]
    await asyncio.sleep(0)  # let them line up
    urgent = [asyncio.create_task(ask(f"u{i}", urgent=True)) for i in range(3)]
    await asyncio.gather(*routine, *urgent)
    assert served == ["u0", "u1", "u2", "r0", "r1", "r2", "r3"]


async def test_a_cancelled_waiter_does_not_block_the_line() -> None:
    limiter = RateLimiter(20.0)
    await limiter.acquire()
    stuck = asyncio.create_task(limiter.acquire())
    after = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    stuck.cancel()
    await asyncio.wait_for(after, timeout=5)
    assert stuck.cancelled()
