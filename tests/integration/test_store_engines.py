"""The repositories behave the same on both engines: SQLite and PostgreSQL (tests/pg.py).

Each test runs once per engine; the PostgreSQL run is skipped when no server is reachable. The
statements written to be portable (upserts, the later-of-two-times CASE, the day bucket, typed
NULL parameters) are each exercised here, and the last test reserves from two connection pools at
once, as two processes would.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.domain.config import GuildConfig
from bot.domain.models import DeliveryState, GenerationRequest, JobStatus, Target
from bot.domain.quota import Limits, QuotaPolicy
from bot.errors import QuotaExceeded
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.guild_config import GuildConfigRepository
from bot.store.instances import InstanceRepository
from bot.store.jobs import JobRepository
from bot.store.meta import MetaRepository
from bot.store.pg_database import PgDatabase
from bot.store.protocol import Db
from bot.store.quotas import Charge, QuotaRepository
from bot.store.unsent import CancelOutcome, cancel_unsent, list_unfinished
from tests.conftest import FAST
from tests.fakes.crun_server import FakeCrun
from tests.helpers import RecordingSink, wait_until

pytest_plugins = ["tests.pg"]  # the store fixture: SQLite and PostgreSQL

REQ = GenerationRequest(prompt="a kingfisher over still water")
FILES = Target("files", {"dir": "/tmp/out"})
DISCORD = Target("discord", {"channel_id": 5})
BIG = 1_234_567_890_123_456_789  # a Discord snowflake needs 64 bits
ROOMY = QuotaPolicy(
    user_concurrent=1000, guild_concurrent=100_000, user_queue_limit=1000, guild_queue_limit=10_000
)
DAY = 86_400.0
JAN30 = 1_769_774_400.0  # 2026-01-30 12:00 UTC


async def test_guild_config_round_trips_and_a_failed_change_writes_nothing(store: Db) -> None:
    configs = GuildConfigRepository(store, clock=lambda: 5.0)
    assert await configs.get(BIG) == GuildConfig()
    await configs.set(BIG, GuildConfig(spoiler=True, alerts_channel_id=BIG + 1))
    changed = await configs.update(BIG, blocked_words=("moth",))
    assert changed.spoiler and changed.blocked_words == ("moth",)
    assert await configs.get(BIG) == changed

    def refuse(_: GuildConfig) -> GuildConfig:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await configs.modify(BIG, refuse)
    assert await configs.get(BIG) == changed
    assert await configs.alert_channels() == [(BIG, BIG + 1)]


async def test_meta_values_are_replaced(store: Db) -> None:
    meta = MetaRepository(store)
    assert await meta.get("commands") is None
    await meta.set("commands", "a")
    await meta.set("commands", "b")
    assert await meta.get("commands") == "b"


async def test_limits_blocks_grants_and_resets_are_upserts(store: Db) -> None:
    q = QuotaRepository(store, ROOMY)
    await q.set_limits(BIG, "user", 7, Limits(daily=1))
    await q.set_limits(BIG, "user", 7, Limits(daily=2.5, monthly=9))
    await q.set_limits(BIG, "role", BIG, Limits(daily=None))
    assert await q.list_limits(BIG) == [
        ("role", BIG, Limits(None, None)),
        ("user", 7, Limits(2.5, 9)),
    ]
    assert await q.clear_limits(BIG, "role", BIG)
    assert not await q.clear_limits(BIG, "role", BIG)
    await q.block(BIG, 7, "spam", by=1, now=10.0)
    await q.block(BIG, 7, None, by=2, now=11.0)  # blocking again replaces the reason
    assert await q.is_blocked(BIG, 7)
    row = await store.fetchone(
        "SELECT reason, blocked_by FROM blocked_users WHERE user_id = ?", (7,)
    )
    assert row is not None and (row["reason"], row["blocked_by"]) == (None, 2)
    assert await q.unblock(BIG, 7) and not await q.is_blocked(BIG, 7)
    await q.grant(BIG, 7, 3.0, period="day", by=1, now=JAN30)
    await q.reset(BIG, 7, now=JAN30 - 10)
    await q.reset(BIG, 7, now=JAN30 - 5)
    usage = await q.usage(BIG, 7, now=JAN30)
    assert (usage.limits, usage.daily_granted, usage.daily_used) == (Limits(2.5, 9), 3.0, 0.0)


async def _charged(jobs: JobRepository, user: int, now: float, cost: float = 1.0) -> str:
    job = await jobs.create(
        user_id=user,
        guild_id=BIG,
        request=REQ,
        target=FILES,
        now=now,
        owner=None,
        charge=Charge(cost),
        policy=ROOMY,
    )
    return job.id


async def test_usage_counts_from_the_later_of_the_window_and_a_reset(store: Db) -> None:
    jobs, q = JobRepository(store), QuotaRepository(store, ROOMY)
    await q.set_limits(BIG, "guild", 0, Limits(daily=3, monthly=5))
    for minute in range(3):
        await _charged(jobs, BIG, JAN30 + 60 * minute)
    with pytest.raises(QuotaExceeded):
        await _charged(jobs, BIG, JAN30 + 200)
    await q.reset(BIG, BIG, now=JAN30 + 300)
    await _charged(jobs, BIG, JAN30 + 400)
    usage = await q.usage(BIG, BIG, now=JAN30 + 500)
    assert (usage.daily_used, usage.monthly_used, usage.running) == (1.0, 1.0, 4)


async def test_reports_bucket_days_alike_on_both_engines(store: Db) -> None:
    jobs, q = JobRepository(store), QuotaRepository(store, ROOMY)
    midnight = (JAN30 // DAY + 1) * DAY
    # 0.3 s before midnight: PostgreSQL's CAST would round it into the next day.
    for user, now, cost in ((1, midnight - 0.3, 2.0), (2, midnight + 1, 4.0), (1, midnight + 2, 1)):
        await _charged(jobs, user, now, cost)
    assert await q.daily_spend(BIG, 0.0) == [(midnight - DAY, 2.0), (midnight, 5.0)]
    assert await q.daily_spend(None, midnight) == [(midnight, 5.0)]
    assert await q.top_users(BIG, 0.0) == [(2, 4.0, 1), (1, 3.0, 2)]


async def test_unfinished_jobs_filter_by_kind_and_owner_and_cancel_once(store: Db) -> None:
    jobs = JobRepository(store)
    waiting = await _charged(jobs, 1, 100.0, 2.0)
    chat = await jobs.create(
        user_id=1, guild_id=None, request=REQ, target=DISCORD, now=101.0, owner="me"
    )
    assert [j.id for j in await list_unfinished(store)] == [waiting, chat.id]
    assert [j.id for j in await list_unfinished(store, kind="discord")] == [chat.id]
    assert [j.id for j in await list_unfinished(store, owner="me")] == [chat.id]
    assert [j.id for j in await list_unfinished(store, kind="files", owner="me")] == []
    cancelled = await cancel_unsent(store, waiting, now=102.0, by_user_id=BIG)
    assert (cancelled.outcome, cancelled.refunded) == (CancelOutcome.CANCELLED, 2.0)
    assert (await cancel_unsent(store, waiting, now=103.0)).outcome is CancelOutcome.FINISHED
    assert (await cancel_unsent(store, "nope", now=103.0)).outcome is CancelOutcome.NOT_FOUND
    assert await jobs.mark_submitting(chat.id, 104.0) is not None
    assert await jobs.mark_create_sent(chat.id, {"prompt": "x"}, 105.0)
    assert (await cancel_unsent(store, chat.id, now=106.0)).outcome is CancelOutcome.AT_CRUN
    assert await QuotaRepository(store, ROOMY).ledger_state(waiting) == ("refunded", 2.0, 0.0)


async def test_a_job_runs_its_course_with_64_bit_ids(store: Db) -> None:
    jobs = JobRepository(store)
    job = await jobs.create(
        user_id=BIG, guild_id=BIG, request=REQ, target=FILES, now=1.0, owner=None
    )
    assert await jobs.mark_submitting(job.id, 2.0) is not None
    assert await jobs.mark_create_sent(job.id, {"prompt": "x", "n": 1}, 3.0)
    assert await jobs.mark_submitted(job.id, "task-1", 4.0, next_poll_at=5.0) is not None
    assert await jobs.record_poll(job.id, status=JobStatus.RUNNING, next_poll_at=6.0, now=5.0)
    assert await jobs.record_poll(
        job.id, status=JobStatus.RUNNING, next_poll_at=7.0, now=6.0, not_found=True
    )
    assert await jobs.not_found_count(job.id) == 1
    assert await jobs.mark_slow_notified(job.id) and not await jobs.mark_slow_notified(job.id)
    assert await jobs.finish(job.id, status=JobStatus.SUCCEEDED, now=8.0, result_urls=["u"])
    assert await jobs.begin_delivery(job.id, 9.0) == 1
    await jobs.save_partial_receipt(job.id, {"parts": [1]})
    assert await jobs.end_delivery(job.id, state=DeliveryState.DONE, receipt={"m": 1}, now=10.0)
    done = await jobs.require(job.id)
    assert (done.user_id, done.guild_id, done.task_id, done.receipt) == (
        BIG,
        BIG,
        "task-1",
        {"m": 1},
    )
    assert (await jobs.by_task_id("task-1")) == done
    assert await jobs.recent_durations() == [4.0]
    assert await jobs.count_by_status() == {"succeeded": 1}
    assert [j.id for j in await jobs.recent_for_user(BIG)] == [job.id]
    assert await jobs.purge_finished_before(2.0) == 1
    assert await jobs.get(job.id) is None


async def test_forget_user_and_instances(store: Db) -> None:
    jobs, instances = JobRepository(store), InstanceRepository(store)
    await instances.register("a", now=1.0)
    await instances.register("a", now=2.0)  # a re-register replaces the row
    assert await instances.heartbeat("a", now=3.0, lease_until=63.0) == set()
    row = await store.fetchone("SELECT heartbeat_at FROM instances WHERE id = ?", ("a",))
    assert row is not None and row[0] == 3.0
    job = await _charged(jobs, 5, 10.0)
    await jobs.finish(job, status=JobStatus.FAILED, now=11.0)
    await jobs.begin_delivery(job, 12.0)
    await jobs.end_delivery(job, state=DeliveryState.GAVE_UP, receipt=None, now=13.0)
    assert await jobs.forget_user(5) == 1
    assert await QuotaRepository(store, ROOMY).ledger_state(job) is None
    await instances.unregister("a")
    assert await store.fetchall("SELECT id FROM instances") == []


async def test_a_broken_constraint_is_an_integrity_error_on_both(store: Db) -> None:
    jobs = JobRepository(store)
    job = await jobs.create(user_id=1, guild_id=None, request=REQ, target=FILES, now=1, owner=None)
    with pytest.raises(sqlite3.IntegrityError):
        await jobs.create(
            user_id=1, guild_id=None, request=REQ, target=FILES, now=2, owner=None, job_id=job.id
        )
    with pytest.raises(sqlite3.IntegrityError):
        await store.execute("INSERT INTO meta (key, value) VALUES (?, NULL)", ("k",))
    assert await jobs.count_by_status() == {"queued": 1}  # the failed transaction left nothing


@pytest.mark.postgres
async def test_reservations_from_two_pools_at_once_never_exceed_the_limit(pg_url: str) -> None:
    """Two pools are two processes as far as PostgreSQL can tell: the write lock holds across."""
    first = await PgDatabase.open(pg_url, max_size=5)
    second = await PgDatabase.open(pg_url, max_size=5)
    try:
        await QuotaRepository(first, ROOMY).set_limits(BIG, "user", 1, Limits(daily=7))
        repos = [JobRepository(first), JobRepository(second)]

        async def one(i: int) -> bool:
            try:
                await _charged(repos[i % 2], 1, JAN30 + i)
            except QuotaExceeded:
                return False
            return True

        results = await asyncio.gather(*(one(i) for i in range(60)))
        assert results.count(True) == 7
        rows = await second.fetchall("SELECT COUNT(*), SUM(reserved) FROM ledger")
        assert (rows[0][0], rows[0][1]) == (7, 7.0)
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_the_runtime_runs_a_job_on_the_store_database_url_names(
    pg_url: str, crun: FakeCrun, tmp_path: Path
) -> None:
    """The runtime opens its store through bot/store/engine.py; a job goes through on it."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        wan_api_key=crun.api_key,
        wan_api_base=crun.base_url,
        database_url=pg_url,
        allow_http_results=True,
    )
    sink = RecordingSink()
    runtime = Runtime(settings, sinks={"test": lambda _rt: sink}, engine_config=FAST)
    await runtime.open()
    try:
        assert isinstance(runtime.db, PgDatabase)
        job = await runtime.engine.submit(
            REQ, user_id=BIG, guild_id=BIG, target=Target("test", {}), charge=Charge(1.0)
        )
        await runtime.engine.wait_finished(job.id, timeout=10)
        await wait_until(lambda: job.id in sink.delivered, what="the delivery")
        done = await runtime.jobs.require(job.id)
        assert (done.status, done.delivery_state) == (JobStatus.SUCCEEDED, DeliveryState.DONE)
        assert (await runtime.quotas.ledger_state(job.id) or ("",))[0] == "settled"
        assert (await runtime.health.check())["database"].ok
    finally:
        await runtime.close()
