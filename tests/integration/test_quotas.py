"""Quotas: atomic reservation, settlement and refund exactly once, windows, roles, caps.

Every test runs on both engines: SQLite, and PostgreSQL where a server is reachable (tests/pg.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.models import DeliveryState, GenerationRequest, JobStatus, Target
from bot.domain.quota import Limits, QuotaPolicy, day_window, month_window
from bot.errors import QuotaExceeded
from bot.jobs.housekeeping import DAY, Housekeeping
from bot.store.instances import InstanceRepository
from bot.store.jobs import JobRepository
from bot.store.protocol import Db
from bot.store.quotas import Charge, QuotaRepository
from tests.conftest import Harness
from tests.fakes.crun_server import FakeCrun
from tests.helpers import crash, wait_until

pytest_plugins = ["tests.pg"]  # the store fixture: SQLite and PostgreSQL

REQ = GenerationRequest(prompt="a heron in the reeds")
TEST = Target("test", {})
GUILD = 77
ROOMY = QuotaPolicy(
    user_concurrent=1000, guild_concurrent=100_000, user_queue_limit=1000, guild_queue_limit=10_000
)


@pytest.fixture
async def harness(tmp_path: Path, crun: FakeCrun, store: Db) -> AsyncIterator[Harness]:
    """The shared harness (tests/conftest.py), on the store of each engine."""
    h = await Harness(tmp_path, crun).open()
    await h.db.close()  # its own SQLite file: replaced by the parametrized store
    h.db, h.jobs = store, JobRepository(store)
    try:
        yield h
    finally:
        await h.close()


def quotas(h: Harness, policy: QuotaPolicy = ROOMY) -> QuotaRepository:
    return QuotaRepository(h.db, policy)


async def test_100_concurrent_requests_with_room_for_7_let_exactly_7_through(
    harness: Harness,
) -> None:
    harness.crun.task_latency = None  # keep every admitted job reserved
    engine = await harness.engine(quota=ROOMY)
    await quotas(harness).set_limits(GUILD, "user", 1, Limits(daily=7))

    async def one() -> bool:
        try:
            await engine.submit(REQ, user_id=1, guild_id=GUILD, target=TEST, charge=Charge(1.0))
        except QuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(100)))
    assert results.count(True) == 7
    usage = await quotas(harness).usage(GUILD, 1)
    assert usage.daily_used == 7
    assert usage.daily_left == 0
    rows = await harness.db.fetchall("SELECT COUNT(*) FROM jobs")
    assert rows[0][0] == 7  # refused requests stored nothing


async def test_success_settles_to_the_real_cost(harness: Harness) -> None:
    engine = await harness.engine(quota=ROOMY)
    request = GenerationRequest(prompt="x", n=2)  # fake crun charges 5 per image
    job = await engine.submit(request, user_id=1, guild_id=GUILD, target=TEST, charge=Charge(3.0))
    await engine.wait_finished(job.id, timeout=10)
    assert await quotas(harness).ledger_state(job.id) == ("settled", 3.0, 10.0)
    assert (await quotas(harness).usage(GUILD, 1)).daily_used == 10


async def test_failed_and_rejected_jobs_are_refunded(harness: Harness) -> None:
    engine = await harness.engine(quota=ROOMY)
    harness.crun.outcome = lambda _input: ("failed", "model error")
    failed = await engine.submit(REQ, user_id=1, guild_id=GUILD, target=TEST, charge=Charge(2))
    await engine.wait_finished(failed.id, timeout=10)
    harness.crun.outcome = None
    harness.crun.balance = 0  # 402 on CreateTask
    rejected = await engine.submit(REQ, user_id=1, guild_id=GUILD, target=TEST, charge=Charge(2))
    await engine.wait_finished(rejected.id, timeout=10)
    for job in (failed, rejected):
        state = await quotas(harness).ledger_state(job.id)
        assert state is not None
        assert state[0] == "refunded"
    assert (await quotas(harness).usage(GUILD, 1)).daily_used == 0


async def test_refund_happens_once_even_across_a_restart(harness: Harness) -> None:
    harness.crun.task_latency = None
    first = await harness.engine(quota=ROOMY)
    job = await first.submit(REQ, user_id=1, guild_id=GUILD, target=TEST, charge=Charge(4))

    async def pending() -> bool:
        return (await harness.jobs.require(job.id)).status is JobStatus.PENDING

    await wait_until(pending, what="the task id to be stored")
    await crash(first)
    await InstanceRepository(harness.db).heartbeat(first.instance_id, now=0.0, lease_until=0.0)
    harness.crun.finish(next(iter(harness.crun.tasks)), status="failed", message="boom")
    second = await harness.engine(quota=ROOMY)
    await second.wait_finished(job.id, timeout=10)
    # A late duplicate "finish" (e.g. a stale poll) changes nothing.
    assert not await harness.jobs.finish(job.id, status=JobStatus.FAILED, now=1.0)
    assert await quotas(harness).ledger_state(job.id) == ("refunded", 4.0, 0.0)
    refunds = await harness.db.fetchall(
        "SELECT COUNT(*) FROM job_events WHERE job_id = ? AND event = 'failed'", (job.id,)
    )
    assert refunds[0][0] == 1


async def test_windows_reset_with_the_clock(harness: Harness) -> None:
    q = quotas(harness)
    await q.set_limits(GUILD, "guild", 0, Limits(daily=2, monthly=3))
    jan30 = 1_769_774_400.0  # 2026-01-30 12:00 UTC
    for now in (jan30, jan30 + 60):
        await harness.jobs.create(
            user_id=1,
            guild_id=GUILD,
            request=REQ,
            target=TEST,
            now=now,
            owner=None,
            charge=Charge(1.0),
            policy=ROOMY,
        )
    with pytest.raises(QuotaExceeded) as denied:
        await harness.jobs.create(
            user_id=1,
            guild_id=GUILD,
            request=REQ,
            target=TEST,
            now=jan30 + 120,
            owner=None,
            charge=Charge(1.0),
            policy=ROOMY,
        )
    assert f"<t:{int(day_window(jan30)[1])}:R>" in denied.value.user_message
    # Next day: the daily window is fresh, the monthly one has 1 left.
    feb1 = jan30 + 2 * 86_400
    await harness.jobs.create(
        user_id=1,
        guild_id=GUILD,
        request=REQ,
        target=TEST,
        now=jan30 + 86_400,
        owner=None,
        charge=Charge(1.0),
        policy=ROOMY,
    )
    usage = await q.usage(GUILD, 1, now=jan30 + 86_500)
    assert usage.monthly_used == 3
    # February: a new month.
    usage = await q.usage(GUILD, 1, now=feb1)
    assert (usage.daily_used, usage.monthly_used) == (0, 0)
    assert usage.month_resets_at == month_window(feb1)[1]


async def test_role_resolution_most_generous_wins_and_user_override_beats_roles(
    harness: Harness,
) -> None:
    q = quotas(harness)
    await q.set_limits(GUILD, "guild", 0, Limits(daily=1, monthly=10))
    await q.set_limits(GUILD, "role", 501, Limits(daily=5, monthly=50))
    await q.set_limits(GUILD, "role", 502, Limits(daily=20, monthly=None))
    assert (await q.usage(GUILD, 1)).limits == Limits(1, 10)
    assert (await q.usage(GUILD, 1, role_ids=(501,))).limits == Limits(5, 50)
    assert (await q.usage(GUILD, 1, role_ids=(501, 502))).limits == Limits(20, None)
    await q.set_limits(GUILD, "user", 1, Limits(daily=3, monthly=3))
    assert (await q.usage(GUILD, 1, role_ids=(501, 502))).limits == Limits(3, 3)
    # Settings' defaults apply where a server set nothing.
    other = QuotaRepository(harness.db, QuotaPolicy(default_limits=Limits(daily=9)))
    assert (await other.usage(999, 1)).limits == Limits(9, None)


async def test_grants_resets_and_blocks(harness: Harness) -> None:
    q = quotas(harness)
    await q.set_limits(GUILD, "guild", 0, Limits(daily=1))
    create = {
        "user_id": 1,
        "guild_id": GUILD,
        "request": REQ,
        "target": TEST,
        "owner": None,
        "policy": ROOMY,
    }
    await harness.jobs.create(now=100.0, charge=Charge(1.0), **create)
    with pytest.raises(QuotaExceeded):
        await harness.jobs.create(now=101.0, charge=Charge(1.0), **create)
    await q.grant(GUILD, 1, 2.0, period="day", by=9, now=102.0)
    await harness.jobs.create(now=103.0, charge=Charge(2.0), **create)
    with pytest.raises(QuotaExceeded):
        await harness.jobs.create(now=104.0, charge=Charge(1.0), **create)
    await q.reset(GUILD, 1, now=105.0)
    await harness.jobs.create(now=106.0, charge=Charge(1.0), **create)
    await q.block(GUILD, 1, "spam", by=9, now=107.0)
    with pytest.raises(QuotaExceeded, match="can't use the image bot"):
        await harness.jobs.create(now=108.0, charge=Charge(0.0), **create)
    assert await q.unblock(GUILD, 1)


async def test_running_limits_never_refuse_but_each_queue_limit_does(harness: Harness) -> None:
    policy = QuotaPolicy(
        user_concurrent=1,
        guild_concurrent=1,
        cooldown_seconds=30,
        user_queue_limit=2,
        guild_queue_limit=3,
        queue_limit=4,
    )
    create = {"request": REQ, "target": TEST, "owner": None, "policy": policy}
    first = await harness.jobs.create(
        user_id=1, guild_id=GUILD, now=0.0, charge=Charge(1), **create
    )
    with pytest.raises(QuotaExceeded, match="next image <t:30:R>"):
        await harness.jobs.create(user_id=1, guild_id=GUILD, now=10.0, charge=Charge(1), **create)
    # Over the running limits (1 each): accepted all the same, it waits its turn.
    await harness.jobs.create(user_id=1, guild_id=GUILD, now=40.0, charge=Charge(1), **create)
    with pytest.raises(QuotaExceeded, match="You already have 2 images waiting in line"):
        await harness.jobs.create(user_id=1, guild_id=GUILD, now=80.0, charge=Charge(1), **create)
    await harness.jobs.create(user_id=2, guild_id=GUILD, now=80.0, charge=Charge(1), **create)
    with pytest.raises(QuotaExceeded, match="This server already has 3 images waiting in line"):
        await harness.jobs.create(user_id=3, guild_id=GUILD, now=80.0, charge=Charge(1), **create)
    await harness.jobs.create(user_id=3, guild_id=GUILD + 1, now=80.0, charge=Charge(1), **create)
    with pytest.raises(QuotaExceeded, match="The bot already has 4 images waiting in line"):
        await harness.jobs.create(user_id=4, guild_id=None, now=80.0, charge=Charge(1), **create)
    # A job whose CreateTask went out no longer waits: it makes room in every line.
    assert await harness.jobs.mark_submitting(first.id, 81.0) is not None
    assert await harness.jobs.mark_create_sent(first.id, {}, 81.0)
    await harness.jobs.create(user_id=4, guild_id=None, now=82.0, charge=Charge(1), **create)

    capped = QuotaPolicy(global_daily_cap=5)
    create = {"request": REQ, "target": TEST, "owner": None, "policy": capped}
    with pytest.raises(QuotaExceeded, match="spending limit"):
        await harness.jobs.create(user_id=5, guild_id=5, now=90.0, charge=Charge(3), **create)


async def test_retention_purges_old_finished_jobs_but_never_unfinished_ones(
    harness: Harness,
) -> None:
    q = quotas(harness)
    now = 1_800_000_000.0
    old = await harness.jobs.create(
        user_id=1,
        guild_id=GUILD,
        request=REQ,
        target=TEST,
        now=now - 100 * DAY,
        owner=None,
        charge=Charge(1.0),
        policy=ROOMY,
    )
    stuck = await harness.jobs.create(
        user_id=1, guild_id=GUILD, request=REQ, target=TEST, now=now - 100 * DAY, owner=None
    )
    await harness.jobs.finish(old.id, status=JobStatus.SUCCEEDED, now=now - 100 * DAY)
    await harness.jobs.begin_delivery(old.id, now - 100 * DAY)
    await harness.jobs.end_delivery(old.id, state=DeliveryState.DONE, receipt={}, now=now)
    fresh = await harness.jobs.create(
        user_id=1, guild_id=GUILD, request=REQ, target=TEST, now=now - DAY, owner=None
    )
    keeper = Housekeeping(harness.jobs, q, retention_days=30, clock=lambda: now)
    assert await keeper.run_once() == (1, 1)
    assert await harness.jobs.get(old.id) is None
    assert await harness.jobs.get(stuck.id) is not None  # unfinished: kept whatever its age
    assert await harness.jobs.get(fresh.id) is not None


async def test_forget_user_removes_their_data(harness: Harness) -> None:
    engine = await harness.engine(quota=ROOMY)
    job = await engine.submit(REQ, user_id=5, guild_id=GUILD, target=TEST, charge=Charge(1))
    await engine.wait_finished(job.id, timeout=10)
    other = await engine.submit(REQ, user_id=6, guild_id=GUILD, target=TEST, charge=Charge(1))
    await engine.wait_finished(other.id, timeout=10)
    assert await harness.jobs.forget_user(5) == 1
    assert await harness.jobs.get(job.id) is None
    assert await quotas(harness).ledger_state(job.id) is None
    assert await harness.jobs.get(other.id) is not None
