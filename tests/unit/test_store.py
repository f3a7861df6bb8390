"""The store: migrations, guarded transitions, delivery bookkeeping and job ownership.

Tests of the repositories run on both engines (SQLite, and PostgreSQL where a server is reachable:
see tests/pg.py); those of the SQLite connection's own machinery (its thread, group commit,
PRAGMAs) on SQLite alone."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.domain.models import DeliveryState, GenerationRequest, JobStatus, Target
from bot.store.database import Database, migrations
from bot.store.instances import InstanceRepository
from bot.store.jobs import _JOB_ID_ALPHABET, JobRepository, new_job_id
from bot.store.pg_database import PgDatabase
from bot.store.pg_migrations import pg_migrations
from bot.store.protocol import Db
from tests.helpers import wait_until

pytest_plugins = ["tests.pg"]  # the store fixtures: SQLite and PostgreSQL

REQ = GenerationRequest(prompt="a lighthouse at dusk")
TARGET = Target("files", {"dir": "/tmp/x"})


@pytest.fixture
def repo(store: Db) -> JobRepository:
    """On each engine (tests/pg.py)."""
    return JobRepository(store)


@pytest.fixture
async def sqlite_repo(tmp_path: Path) -> JobRepository:
    db = await Database.open(tmp_path / "db" / "wanbot.sqlite3")
    yield JobRepository(db)
    await db.close()


@pytest.mark.postgres
async def test_postgres_migrations_record_each_version_and_are_idempotent(pg_url: str) -> None:
    db = await PgDatabase.open(pg_url, migrate=False)
    try:
        assert await db.schema_version() == 0
        assert await db.migrate() == [name for _, name, _ in pg_migrations()]
        assert await db.schema_version() == len(pg_migrations()) == len(migrations())
        assert await db.migrate() == []
        tables = await db.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        assert {"jobs", "job_events", "instances", "ledger"} <= {r[0] for r in tables}
        await db.execute("UPDATE schema_version SET version = 999 WHERE version = 1")
    finally:
        await db.close()
    with pytest.raises(RuntimeError, match="newer than this wanbot"):
        await PgDatabase.open(pg_url)


async def test_migrations_set_user_version_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    db = await Database.open(path, migrate=False)
    assert await db.schema_version() == 0
    applied = await db.migrate()
    assert applied == [name for _, name, _ in migrations()]
    assert await db.schema_version() == len(migrations())
    assert await db.migrate() == []
    await db.close()
    # WAL and the tables are really on disk.
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "job_events", "instances"} <= tables
    con.close()


async def test_newer_schema_than_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 999")
    con.close()
    with pytest.raises(RuntimeError, match="newer than this wanbot"):
        await Database.open(path)


async def test_failed_migration_rolls_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE jobs (x INTEGER)")  # clashes with 0001
    con.commit()
    con.close()
    with pytest.raises(Exception, match="already exists"):
        await Database.open(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "job_events" not in tables
    con.close()


async def test_create_round_trips_the_request(repo: JobRepository) -> None:
    job = await repo.create(
        user_id=7, guild_id=9, request=REQ, target=TARGET, now=100.0, owner="me"
    )
    again = await repo.require(job.id)
    assert again.request == REQ
    assert again.target == TARGET
    assert again.status is JobStatus.QUEUED
    assert again.delivery_state is DeliveryState.NONE
    assert len(job.id) == 10
    assert await repo.callback_token(job.id)


async def test_transitions_are_guarded(repo: JobRepository) -> None:
    job = await repo.create(user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="me")
    assert await repo.mark_submitting(job.id, 2)
    assert not await repo.mark_submitting(job.id, 3)  # already submitting
    assert await repo.mark_create_sent(job.id, {"prompt": "x"}, 3)
    assert await repo.mark_submitted(job.id, "task_1", 4, 9)
    assert not await repo.mark_submitted(job.id, "task_2", 5, 9)
    assert await repo.finish(job.id, status=JobStatus.SUCCEEDED, now=6, result_urls=["u"])
    # A late poll can never move a finished job again.
    assert not await repo.finish(job.id, status=JobStatus.FAILED, now=7)
    assert not await repo.record_poll(job.id, status=JobStatus.RUNNING, next_poll_at=8, now=8)
    final = await repo.require(job.id)
    assert final.status is JobStatus.SUCCEEDED
    assert final.task_id == "task_1"
    assert final.result_urls == ("u",)
    events = [e for _, e, _ in await repo.events(job.id)]
    assert events == ["created", "submitting", "create-sent", "submitted", "succeeded"]


async def test_interrupted_submit_before_send_is_requeued(repo: JobRepository) -> None:
    job = await repo.create(user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="me")
    await repo.mark_submitting(job.id, 2)
    assert await repo.reset_interrupted_submit(job.id, 3) is JobStatus.QUEUED


async def test_interrupted_submit_after_send_is_uncertain(repo: JobRepository) -> None:
    job = await repo.create(user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="me")
    await repo.mark_submitting(job.id, 2)
    await repo.mark_create_sent(job.id, {"prompt": "x"}, 3)
    assert await repo.reset_interrupted_submit(job.id, 4) is JobStatus.UNCERTAIN
    assert (await repo.require(job.id)).status is JobStatus.UNCERTAIN


async def test_delivery_is_recorded_once(repo: JobRepository) -> None:
    job = await repo.create(user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="me")
    await repo.finish(job.id, status=JobStatus.FAILED, now=2, error_message="no")
    assert await repo.begin_delivery(job.id, 3) == 1
    assert await repo.begin_delivery(job.id, 4) == 2  # a retry after a crash
    assert await repo.end_delivery(job.id, state=DeliveryState.DONE, receipt={"m": 1}, now=5)
    assert not await repo.end_delivery(job.id, state=DeliveryState.DONE, receipt={"m": 2}, now=6)
    assert await repo.begin_delivery(job.id, 7) == 0  # done means done
    final = await repo.require(job.id)
    assert final.finished
    assert final.receipt == {"m": 1}
    assert await repo.unfinished("me", ["files"]) == []


async def test_concurrent_guarded_transitions_let_exactly_one_win(repo: JobRepository) -> None:
    job = await repo.create(user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="me")
    results = await asyncio.gather(*(repo.mark_submitting(job.id, 2) for _ in range(20)))
    assert sum(r is not None for r in results) == 1


async def test_jobs_whose_lease_lapsed_are_claimed_and_the_old_owner_learns_it(
    repo: JobRepository,
) -> None:
    instances = InstanceRepository(repo.db)
    await instances.register("old", now=0)
    await instances.register("new", now=0)
    job = await repo.create(
        user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="old", lease_until=61
    )
    other = await repo.create(
        user_id=1,
        guild_id=None,
        request=REQ,
        target=Target("discord", {}),
        now=1,
        owner="old",
        lease_until=61,
    )
    # "old" is this very process (same pid) and renewed its leases: not claimable.
    assert await instances.heartbeat("old", now=100, lease_until=160) == {job.id, other.id}
    assert await instances.claim_orphans("new", ["files"], now=110, lease_until=170) == 0
    # Lapsed: claimable, but only for sink kinds we serve.
    assert await instances.claim_orphans("new", ["files"], now=200, lease_until=260) == 1
    assert [j.id for j in await repo.unfinished("new", ["files", "discord"])] == [job.id]
    assert (await repo.require(other.id)).target.kind == "discord"
    # The old owner's next heartbeat renews only what it still holds, and says so.
    assert await instances.heartbeat("old", now=201, lease_until=261) == {other.id}
    assert await instances.claim_orphans("new", ["files"], now=202, lease_until=262) == 0


async def test_released_jobs_are_claimed_at_once(repo: JobRepository) -> None:
    instances = InstanceRepository(repo.db)
    await instances.register("a", now=0)
    job = await repo.create(user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="a")
    await instances.unregister("a")
    assert await instances.claim_orphans("b", ["files"], now=2, lease_until=9999) == 1
    assert [j.id for j in await repo.unfinished("b", ["files"])] == [job.id]


async def test_dead_pid_on_this_host_is_claimed_at_once(repo: JobRepository) -> None:
    instances = InstanceRepository(repo.db)
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()  # a pid that certainly no longer runs
    await repo.db.execute(
        "INSERT INTO instances (id, host, pid, started_at, heartbeat_at)"
        " VALUES ('dead', ?, ?, 0, 1000)",
        (socket.gethostname(), proc.pid),
    )
    job = await repo.create(
        user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="dead"
    )
    assert await instances.claim_orphans("me", ["files"], now=1001, lease_until=9999) == 1
    assert [j.id for j in await repo.unfinished("me", ["files"])] == [job.id]


async def test_a_previous_process_with_our_pid_is_dead(repo: JobRepository) -> None:
    """A restarted container is always pid 1: the old instance row has our pid."""
    instances = InstanceRepository(repo.db)
    await repo.db.execute(
        "INSERT INTO instances (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
        ("before-restart", socket.gethostname(), os.getpid(), 1000.0, time.time()),
    )
    job = await repo.create(
        user_id=1, guild_id=None, request=REQ, target=TARGET, now=1, owner="before-restart"
    )
    assert await instances.claim_orphans("me", ["files"], now=time.time(), lease_until=9999) == 1
    assert [j.id for j in await repo.unfinished("me", ["files"])] == [job.id]


async def test_a_transaction_on_the_database_thread_is_all_or_nothing(
    repo: JobRepository,
) -> None:
    db = repo.db
    await db.execute("CREATE TABLE t (x INTEGER)")

    def two_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (2)")
        raise ValueError("rule broken")

    with pytest.raises(ValueError):
        await db.run_transaction(two_then_fail)
    assert await db.fetchall("SELECT x FROM t") == []

    def two(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (1)")
        return conn.execute("INSERT INTO t VALUES (2)").rowcount

    assert await db.run_transaction(two) == 1
    assert [r[0] for r in await db.fetchall("SELECT x FROM t ORDER BY x")] == [1, 2]


async def test_a_cancelled_caller_leaves_its_transaction_whole(repo: JobRepository) -> None:
    db = repo.db
    await db.execute("CREATE TABLE t (x INTEGER)")
    started, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        started.set()
        release.wait(10)
        conn.execute("INSERT INTO t VALUES (2)")

    task = asyncio.create_task(db.run_transaction(slow))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The transaction ran to its end all the same (on SQLite the next statement queues behind
    # it; on PostgreSQL it commits on its own connection).
    async def both_rows() -> bool:
        return [r[0] for r in await db.fetchall("SELECT x FROM t ORDER BY x")] == [1, 2]

    await wait_until(both_rows, what="the cancelled caller's transaction to commit")
    # And it was closed: BEGIN inside an open transaction would raise.
    assert await db.run_transaction(lambda conn: conn.execute("SELECT 1").fetchone()[0]) == 1


async def test_each_sent_create_counts_one_attempt(repo: JobRepository) -> None:
    job = await repo.create(user_id=1, guild_id=2, request=REQ, target=TARGET, now=1.0, owner=None)
    for attempt in (1, 2):
        assert await repo.mark_submitting(job.id, now=2.0)
        assert await repo.mark_create_sent(job.id, {"prompt": "x"}, now=3.0)
        row = await repo.db.fetchone("SELECT submit_attempts FROM jobs WHERE id = ?", (job.id,))
        assert row is not None and row[0] == attempt
        assert await repo.requeue(job.id, not_before=0.0, reason="test", now=4.0)


def test_job_ids_use_the_whole_alphabet_in_every_position() -> None:
    ids = [new_job_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 10 and set(i) <= set(_JOB_ID_ALPHABET) for i in ids)
    for pos in range(10):
        assert {i[pos] for i in ids} == set(_JOB_ID_ALPHABET), pos


class _Release(threading.Event):
    """Set to let the transaction holding the database thread finish."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()


async def _hold_the_thread(db: Database, release: _Release) -> None:
    def hold(conn: sqlite3.Connection) -> None:
        release.started.set()
        release.wait(10)

    await db.run_transaction(hold)


async def blocker_started(release: _Release) -> None:
    assert await asyncio.to_thread(release.started.wait, 10)


async def test_transactions_waiting_for_the_thread_share_one_commit(
    sqlite_repo: JobRepository,
) -> None:
    db = sqlite_repo.db
    await db.execute("CREATE TABLE t (x INTEGER)")
    statements: list[str] = []
    await db.run_transaction(lambda conn: conn.set_trace_callback(statements.append))
    release = _Release()
    # Hold the database thread so the next transactions queue up behind it.
    blocker = asyncio.create_task(_hold_the_thread(db, release))
    await blocker_started(release)
    statements.clear()

    def insert(x: int) -> Callable[[sqlite3.Connection], int]:
        def fn(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t VALUES (?)", (x,))
            if x % 3 == 0:
                raise ValueError(x)  # its own insert must not stay; the others' must
            return x

        return fn

    calls = [asyncio.create_task(db.run_transaction(insert(x))) for x in range(1, 10)]
    await wait_until(lambda: len(db._group) == 9, what="nine transactions waiting")
    release.set()
    await blocker
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [r if isinstance(r, int) else "failed" for r in results] == [
        1, 2, "failed", 4, 5, "failed", 7, 8, "failed"
    ]  # fmt: skip
    assert [r[0] for r in await db.fetchall("SELECT x FROM t ORDER BY x")] == [1, 2, 4, 5, 7, 8]
    assert statements.count("COMMIT") == 2  # the blocker's, then one for all nine


async def test_a_failed_group_commit_fails_every_member_and_keeps_nothing(
    sqlite_repo: JobRepository,
) -> None:
    db = sqlite_repo.db
    await db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    await db.execute("CREATE TABLE c (pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)")
    release = _Release()
    blocker = asyncio.create_task(_hold_the_thread(db, release))
    await blocker_started(release)
    good = asyncio.create_task(db.run_transaction(lambda c: c.execute("INSERT INTO p VALUES (1)")))
    # Checked only at COMMIT: the whole group's commit fails.
    bad = asyncio.create_task(db.run_transaction(lambda c: c.execute("INSERT INTO c VALUES (9)")))
    await wait_until(lambda: len(db._group) == 2, what="both waiting")
    release.set()
    await blocker
    for call in (good, bad):
        with pytest.raises(sqlite3.IntegrityError):
            await call
    assert await db.fetchall("SELECT id FROM p") == []
    # The connection is usable afterwards.
    await db.run_transaction(lambda c: c.execute("INSERT INTO p VALUES (2)"))
    assert [r[0] for r in await db.fetchall("SELECT id FROM p")] == [2]


async def test_every_statement_runs_on_one_thread_that_is_not_the_event_loop(
    sqlite_repo: JobRepository,
) -> None:
    db = sqlite_repo.db
    seen: set[int] = set()
    db_thread = await db.run_transaction(lambda conn: threading.get_ident())
    await db.run_transaction(lambda conn: conn.create_function("tid", 0, threading.get_ident))
    async with db.transaction() as conn:
        row = await (await conn.execute("SELECT tid()")).fetchone()
        seen.add(row[0])
    seen.add((await db.fetchone("SELECT tid()"))[0])
    seen.add((await db.fetchall("SELECT tid()"))[0][0])
    assert seen == {db_thread}
    assert db_thread != threading.get_ident()


async def test_the_event_loop_keeps_running_while_the_database_thread_is_busy(
    repo: JobRepository,
) -> None:
    release = _Release()
    blocker = asyncio.create_task(_hold_the_thread(repo.db, release))
    await blocker_started(release)
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5 and not blocker.done()
    release.set()
    await blocker


async def test_close_runs_what_was_queued_then_refuses_more_work(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "w.sqlite3")
    await db.execute("CREATE TABLE t (x INTEGER)")
    pending = asyncio.create_task(
        db.run_transaction(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    )
    await asyncio.sleep(0)  # queued
    await db.close()
    await pending
    await db.close()  # a second close does nothing
    with pytest.raises(ValueError, match="closed"):
        await db.fetchall("SELECT x FROM t")
    with pytest.raises(ValueError, match="closed"):
        await db.run_transaction(lambda c: None)
    con = sqlite3.connect(tmp_path / "w.sqlite3")
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    con.close()
