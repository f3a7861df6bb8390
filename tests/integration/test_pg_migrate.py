"""PostgreSQL migrations and `wanbot migrate --copy-from`: a real SQLite deployment, made with
the real repositories, moved into a fresh PostgreSQL database and compared row by row."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.domain.config import GuildConfig
from bot.domain.models import DeliveryState, GenerationRequest, JobStatus, Resolution, Target
from bot.domain.quota import Limits, QuotaPolicy
from bot.store.copy import COPIED, CopyRefused, copy_sqlite_to_pg
from bot.store.database import Database
from bot.store.guild_config import GuildConfigRepository
from bot.store.instances import InstanceRepository
from bot.store.jobs import JobRepository
from bot.store.meta import MetaRepository
from bot.store.pg_migrations import apply_pg_migrations, pg_migrations, pg_schema_version
from bot.store.quotas import Charge, QuotaRepository
from tests.fakes.crun_server import FakeCrun
from tests.processes import cli_env, start

pytest_plugins = ["tests.pg"]  # pg_url: a fresh, empty schema per test
pytestmark = pytest.mark.postgres

NOW = 1_733_000_000.0
# Real snowflakes are 64-bit: a copy through floats would lose their last digits.
G1, G2 = 1_186_738_524_001_337_345, 1_186_738_524_001_337_346
ALICE, BOB, CAROL, DAVE = (1_099_511_627_776_000_001 + i for i in range(4))
ADMIN, ROLE, CHANNEL = 987_654_321_987_654_321, 555_555_555_555_555_555, 777_777_777_777_777_777
OLD_INSTANCE = "old-host-4242"


def target(n: int) -> Target:
    return Target("discord", {"channel_id": CHANNEL, "status_message_id": 1_000_000 + n})


async def make_deployment(path: Path) -> None:
    """A SQLite database as a deployment leaves it: jobs in every state with their events and
    ledger rows, limits, grants, a reset, blocks, server settings, alert state, an instance."""
    db = await Database.open(path)
    try:
        jobs, policy = JobRepository(db), QuotaPolicy(user_concurrent=10, user_queue_limit=20)
        create: dict[str, Any] = {"target": target(0), "owner": OLD_INSTANCE, "policy": policy}
        req = GenerationRequest(prompt="a lighthouse on a basalt cliff, «dusk» 🌅", n=2)

        done = await jobs.create(
            user_id=ALICE, guild_id=G1, request=req, now=NOW, charge=Charge(2.0), **create
        )
        await _to_crun(jobs, done.id, "task-done", NOW + 1)
        await jobs.finish(
            done.id,
            status=JobStatus.SUCCEEDED,
            now=NOW + 30,
            credits=1.75,
            result_urls=["https://cdn.example/a.png", "https://cdn.example/b.png"],
        )
        await jobs.begin_delivery(done.id, NOW + 31)
        await jobs.end_delivery(
            done.id, state=DeliveryState.DONE, receipt={"message_id": 42}, now=NOW + 32
        )

        failed = await jobs.create(
            user_id=BOB, guild_id=G1, request=req, now=NOW + 40, charge=Charge(1.5), **create
        )
        await _to_crun(jobs, failed.id, "task-failed", NOW + 41)
        await jobs.finish(
            failed.id,
            status=JobStatus.FAILED,
            now=NOW + 50,
            error_code="1301",
            error_message="content filter",
        )

        running = await jobs.create(
            user_id=ALICE,
            guild_id=G1,
            request=req,
            now=NOW + 60,
            charge=Charge(4.0),
            parent_job_id=done.id,
            **create,
        )
        await _to_crun(jobs, running.id, "task-running", NOW + 61)
        await jobs.record_poll(
            running.id, status=JobStatus.RUNNING, next_poll_at=NOW + 70, now=NOW + 65
        )
        await jobs.mark_slow_notified(running.id)

        upscale = GenerationRequest(prompt="upscaled", resolution=Resolution.R4K)
        await jobs.create(
            user_id=CAROL, guild_id=G2, request=upscale, now=NOW + 70, charge=Charge(2.5), **create
        )  # queued, reserved
        await jobs.create(
            user_id=DAVE, guild_id=None, request=req, now=NOW + 80, charge=Charge(0.5), **create
        )  # a DM, guild 0 in the ledger

        # A purged job leaves a gap: SQLite's AUTOINCREMENT counter is past the last event id.
        old = await jobs.create(
            user_id=BOB, guild_id=G2, request=req, now=NOW - 90 * 86400, **create
        )
        await jobs.finish(old.id, status=JobStatus.FAILED, now=NOW - 90 * 86400 + 1)
        await jobs.begin_delivery(old.id, NOW - 90 * 86400 + 2)
        await jobs.end_delivery(old.id, state=DeliveryState.GAVE_UP, receipt=None, now=NOW)
        assert await jobs.purge_finished_before(NOW - 80 * 86400) == 1

        await _settings(db, policy)
    finally:
        await db.close()


async def _to_crun(jobs: JobRepository, job_id: str, task_id: str, now: float) -> None:
    await jobs.mark_submitting(job_id, now)
    await jobs.mark_create_sent(job_id, {"prompt": "x", "n": 2}, now)
    await jobs.mark_submitted(job_id, task_id, now + 1, next_poll_at=now + 6)


async def _settings(db: Database, policy: QuotaPolicy) -> None:
    quotas = QuotaRepository(db, policy)
    await quotas.set_limits(G1, "guild", 0, Limits(10.0, 100.0))
    await quotas.set_limits(G1, "role", ROLE, Limits(20.5, None))
    await quotas.set_limits(G1, "user", BOB, Limits(None, 5.25))
    await quotas.grant(G1, ALICE, 3.25, period="day", by=ADMIN, now=NOW)
    await quotas.grant(G2, CAROL, 7.0, period="month", by=ADMIN, now=NOW)
    await quotas.reset(G1, BOB, NOW + 5)
    await quotas.block(G2, DAVE, "spamming @everyone", by=ADMIN, now=NOW)
    await quotas.block(G1, CAROL, None, by=ADMIN, now=NOW)
    configs = GuildConfigRepository(db, clock=lambda: NOW)
    await configs.set(
        G1,
        GuildConfig(
            allowed_channels=(CHANNEL,),
            blocked_words=("ügly",),
            alerts_channel_id=CHANNEL,
            spoiler=True,
        ),
    )
    await configs.set(0, GuildConfig(dms_allowed=False))
    meta = MetaRepository(db)
    await meta.set("credit_alert_state", "low")
    await meta.set("command_tree_hash", "9f2c" * 16)
    await InstanceRepository(db).register(OLD_INSTANCE, NOW)


def sqlite_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row, in an order both engines agree on (their text collations may not)."""
    con = sqlite3.connect(path)
    try:
        cols = ", ".join(r[1] for r in con.execute(f"PRAGMA table_info({table})"))
        return sorted((tuple(r) for r in con.execute(f"SELECT {cols} FROM {table}")), key=repr)
    finally:
        con.close()


async def pg_rows(conn: asyncpg.Connection, path: Path, table: str) -> list[tuple[Any, ...]]:
    """The same table read from PostgreSQL, columns in SQLite's order."""
    con = sqlite3.connect(path)
    cols = ", ".join(r[1] for r in con.execute(f"PRAGMA table_info({table})"))
    con.close()
    return sorted((tuple(r) for r in await conn.fetch(f"SELECT {cols} FROM {table}")), key=repr)


@pytest.fixture
async def deployment(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "wanbot.sqlite3"
    await make_deployment(path)
    return path


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


# --- migrations ------------------------------------------------------------------------------


async def test_both_engines_migrate_to_the_same_tables_columns_and_indexes(
    pg: asyncpg.Connection, tmp_path: Path
) -> None:
    assert await apply_pg_migrations(pg) == [name for _, name, _ in pg_migrations()]
    db = await Database.open(tmp_path / "w.sqlite3")
    await db.close()
    con = sqlite3.connect(tmp_path / "w.sqlite3")
    lite_tables = {
        r[0]: [c[1] for c in con.execute(f"PRAGMA table_info({r[0]})")]
        for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("sqlite_")
    }
    lite_indexes = {  # the named ones; SQLite's automatic ones back keys, as PostgreSQL's do
        (r[0], r[1], " WHERE " in r[2].upper())
        for r in con.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'")
        if r[2] is not None
    }
    con.close()
    pg_tables: dict[str, list[str]] = {}
    for r in await pg.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name != 'schema_version'"
        " ORDER BY table_name, ordinal_position"
    ):
        pg_tables.setdefault(r["table_name"], []).append(r["column_name"])
    pg_indexes = {
        (r["indexname"], r["tablename"], " WHERE " in r["indexdef"])
        for r in await pg.fetch(
            "SELECT indexname, tablename, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema()"
        )
        if not r["indexname"].endswith(("_pkey", "_key"))
    }
    assert pg_tables == lite_tables  # same tables, same columns in the same order
    assert pg_indexes == lite_indexes
    assert ("jobs_unfinished", "jobs", True) in pg_indexes  # partial indexes stay partial


PG_TYPE = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}


async def test_each_column_has_the_twin_type_nullability_default_and_keys(
    pg: asyncpg.Connection, tmp_path: Path
) -> None:
    await apply_pg_migrations(pg)
    db = await Database.open(tmp_path / "w.sqlite3")
    await db.close()
    con = sqlite3.connect(tmp_path / "w.sqlite3")
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    tables = [t for t in tables if not t.startswith("sqlite_")]
    lite_cols, lite_keys, lite_fks, autoincrement = {}, set(), set(), set()
    for t in tables:
        info = con.execute(f"PRAGMA table_info({t})").fetchall()
        for _, name, type_, notnull, default, pk in info:
            # SQLite lets a non-integer primary key hold NULL; PostgreSQL never does.
            lite_cols[t, name] = (PG_TYPE[type_], bool(notnull or pk), default)
        lite_keys.add(
            (t, "PRIMARY KEY", tuple(c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]))
        )
        for index in con.execute(f"PRAGMA index_list({t})"):
            if index[3] == "u":  # a UNIQUE constraint
                cols = tuple(r[2] for r in con.execute(f"PRAGMA index_info({index[1]})"))
                lite_keys.add((t, "UNIQUE", cols))
        for fk in con.execute(f"PRAGMA foreign_key_list({t})"):
            lite_fks.add(
                (t, f"FOREIGN KEY ({fk[3]}) REFERENCES {fk[2]}({fk[4]}) ON DELETE {fk[6]}")
            )
        if (
            "AUTOINCREMENT"
            in con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0]
        ):
            autoincrement.add((t, "id"))
    con.close()

    pg_cols, serial = {}, set()
    for r in await pg.fetch(
        "SELECT table_name, column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name != 'schema_version'"
    ):
        default = r["column_default"]
        if default is not None and default.startswith("nextval("):
            serial.add((r["table_name"], r["column_name"]))
            default = None
        elif default is not None:
            default = re.sub(r"::[a-z ]+$", "", default)  # '[]'::text -> '[]'
        key = (r["table_name"], r["column_name"])
        pg_cols[key] = (r["data_type"], r["is_nullable"] == "NO", default)
    pg_keys = {
        (r["table_name"], r["constraint_type"], tuple(r["cols"]))
        for r in await pg.fetch(
            "SELECT tc.table_name, tc.constraint_type,"
            " array_agg(k.column_name::text ORDER BY k.ordinal_position) AS cols"
            " FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)"
            " WHERE tc.table_schema = current_schema() AND tc.table_name != 'schema_version'"
            " AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
            " GROUP BY tc.table_name, tc.constraint_type, tc.constraint_name"
        )
    }
    pg_fks = {
        (r["t"], r["def"])
        for r in await pg.fetch(
            "SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS def"
            " FROM pg_constraint WHERE contype = 'f'"
            " AND connamespace = current_schema()::regnamespace"
        )
    }
    assert pg_cols == lite_cols
    assert pg_keys == lite_keys
    assert pg_fks == lite_fks
    assert lite_cols["jobs", "uploaded_json"] == ("text", True, "'[]'")  # the checks see defaults
    assert ("jobs", "UNIQUE", ("task_id",)) in lite_keys
    assert (
        len(lite_fks) == 3
    )  # job_events and deliveries -> jobs (cascade), jobs -> jobs (set null)
    assert serial == autoincrement == {("job_events", "id"), ("quota_grants", "id")}


async def test_pg_migrations_are_recorded_and_applied_once(pg: asyncpg.Connection) -> None:
    names = [name for _, name, _ in pg_migrations()]
    assert await pg_schema_version(pg) == 0
    assert await apply_pg_migrations(pg) == names
    assert await apply_pg_migrations(pg) == []
    assert await pg_schema_version(pg) == len(names)
    rows = await pg.fetch("SELECT version, name FROM schema_version ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == list(enumerate(names, start=1))


async def test_two_processes_starting_at_once_migrate_once(pg_url: str) -> None:
    conns = [await asyncpg.connect(pg_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_pg_migrations(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sorted(len(r) for r in results) == [0, 0, len(pg_migrations())]


async def test_a_schema_newer_than_the_code_is_refused(pg: asyncpg.Connection) -> None:
    await apply_pg_migrations(pg)
    await pg.execute("INSERT INTO schema_version VALUES (999, '0999_future.sql', 0)")
    with pytest.raises(RuntimeError, match="schema version 999 is newer than this wanbot"):
        await apply_pg_migrations(pg)


async def test_a_failed_migration_leaves_nothing_behind(pg: asyncpg.Connection) -> None:
    await pg.execute("CREATE TABLE ledger (x INTEGER)")  # clashes with 0003
    with pytest.raises(asyncpg.DuplicateTableError):
        await apply_pg_migrations(pg)
    assert await pg_schema_version(pg) == 0
    assert await pg.fetchval("SELECT to_regclass('jobs')") is None


# --- the copy --------------------------------------------------------------------------------


async def test_a_deployment_is_copied_whole_and_every_figure_agrees(
    pg: asyncpg.Connection, deployment: Path
) -> None:
    await apply_pg_migrations(pg)
    report = await copy_sqlite_to_pg(deployment, pg)
    assert report.ok, [m for m in report.measures if not m.ok]
    figures = {(m.table, m.what): m.postgresql for m in report.measures}
    assert figures["jobs", "rows"] == 5
    assert figures["ledger", "rows"] == 5
    assert figures["ledger", "SUM(reserved)"] == 2.0 + 1.5 + 4.0 + 2.5 + 0.5
    assert figures["ledger", "SUM(charged)"] == 1.75  # settled; the refund charged 0
    assert figures["jobs", "SUM(credits)"] == 1.75
    for table in COPIED:  # every row, every column, byte for byte (snowflakes too)
        assert await pg_rows(pg, deployment, table) == sqlite_rows(deployment, table), table
    for table in ("jobs", "quota_grants", "blocked_users", "guild_config", "meta"):
        assert sqlite_rows(deployment, table), f"the deployment has no {table} rows"
    # Instances are per process: not copied, so the first new process takes the jobs over.
    assert await pg.fetchval("SELECT COUNT(*) FROM instances") == 0


async def test_id_sequences_continue_past_the_copied_ids(
    pg: asyncpg.Connection, deployment: Path
) -> None:
    await apply_pg_migrations(pg)
    assert (await copy_sqlite_to_pg(deployment, pg)).ok
    con = sqlite3.connect(deployment)
    counters = dict(con.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    last_event = con.execute("SELECT MAX(id) FROM job_events").fetchone()[0]
    con.close()
    assert counters["job_events"] > last_event  # the purged job's events were the last ones
    job_id = await pg.fetchval("SELECT id FROM jobs LIMIT 1")
    new_event = await pg.fetchval(
        "INSERT INTO job_events (job_id, at, event) VALUES ($1, 0, 'x') RETURNING id", job_id
    )
    new_grant = await pg.fetchval(
        "INSERT INTO quota_grants (guild_id, user_id, period, credits, window_start, created_at)"
        " VALUES (1, 2, 'day', 1, 0, 0) RETURNING id"
    )
    assert new_event == counters["job_events"] + 1  # never an id SQLite already handed out
    assert new_grant == counters["quota_grants"] + 1


async def test_a_second_copy_into_the_filled_database_is_refused_naming_the_table(
    pg: asyncpg.Connection, deployment: Path
) -> None:
    await apply_pg_migrations(pg)
    assert (await copy_sqlite_to_pg(deployment, pg)).ok
    await pg.execute("DELETE FROM jobs")  # the other tables still have rows
    with pytest.raises(CopyRefused, match=r"not empty: tables ledger \(5 rows\), quota_limits"):
        await copy_sqlite_to_pg(deployment, pg)
    await pg.execute(
        "DELETE FROM ledger; DELETE FROM quota_limits; DELETE FROM quota_grants;"
        " DELETE FROM quota_resets; DELETE FROM blocked_users;"
        " DELETE FROM guild_config"
    )
    with pytest.raises(CopyRefused, match=r"not empty: table meta \(2 rows\) already holds data"):
        await copy_sqlite_to_pg(deployment, pg)
    assert await pg.fetchval("SELECT COUNT(*) FROM meta") == 2  # untouched


async def test_figures_that_differ_roll_the_whole_copy_back(
    pg: asyncpg.Connection, deployment: Path
) -> None:
    """A trigger that alters what arrives stands for any corruption on the way."""
    await apply_pg_migrations(pg)
    await pg.execute(
        "CREATE FUNCTION skim() RETURNS trigger AS $$ BEGIN NEW.reserved := NEW.reserved * 0.9;"
        " RETURN NEW; END $$ LANGUAGE plpgsql;"
        " CREATE TRIGGER skim BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION skim()"
    )
    report = await copy_sqlite_to_pg(deployment, pg)
    assert not report.ok
    assert not report.committed
    assert [(m.table, m.what) for m in report.measures if not m.ok] == [("ledger", "SUM(reserved)")]
    for table in COPIED:
        assert await pg.fetchval(f"SELECT COUNT(*) FROM {table}") == 0, table


async def test_a_source_at_an_older_schema_is_refused(
    tmp_path: Path, pg: asyncpg.Connection
) -> None:
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 3")
    con.close()
    await apply_pg_migrations(pg)
    latest = len(pg_migrations())
    with pytest.raises(
        CopyRefused, match=rf"schema version 3, this wanbot at {latest}.*wanbot migrate"
    ):
        await copy_sqlite_to_pg(path, pg)
    with pytest.raises(CopyRefused, match="no SQLite database at"):
        await copy_sqlite_to_pg(tmp_path / "missing.sqlite3", pg)


# --- through the real `wanbot` process -------------------------------------------------------


async def wanbot(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = await start(env, cwd, *args)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.process
async def test_wanbot_migrate_copy_from_moves_a_deployment_and_prints_the_figures(
    pg_url: str, crun: FakeCrun, deployment: Path, tmp_path: Path
) -> None:
    env = cli_env(crun, tmp_path, DATABASE_URL=pg_url, LOG_LEVEL="WARNING")
    code, out, err = await wanbot(
        env, tmp_path, "migrate", "--copy-from", f"sqlite:///{deployment}"
    )
    assert code == 0, err
    assert f"schema version {len(pg_migrations())} (0001_jobs.sql, 0002_meta.sql" in out
    assert f"copied {deployment} into postgresql://" in out
    lines = out.splitlines()
    assert any(line.split()[:3] == ["jobs", "rows", "5"] and line.endswith("ok") for line in lines)
    assert any(line.startswith("ledger") and "SUM(reserved)" in line for line in lines)
    assert "instances       not copied" in out
    rows = sum(len(sqlite_rows(deployment, table)) for table in COPIED)
    assert lines[-1] == f"{len(COPIED)} tables, {rows} rows copied; every figure agrees (committed)"
    # Again: the schema is current and the database is no longer empty.
    code, out, err = await wanbot(
        env, tmp_path, "migrate", "--copy-from", f"sqlite:///{deployment}"
    )
    assert code == 1
    assert "nothing to do" in out
    assert "not empty: tables jobs (5 rows), job_events" in err
    assert "Traceback" not in err


@pytest.mark.process
async def test_wanbot_migrate_on_postgresql_prints_what_it_applied(
    crun: FakeCrun, pg_url: str, tmp_path: Path
) -> None:
    env = cli_env(crun, tmp_path, DATABASE_URL=pg_url)
    code, out, err = await wanbot(env, tmp_path, "migrate")
    assert code == 0, err
    names = ", ".join(name for _, name, _ in pg_migrations())
    latest = len(pg_migrations())
    assert out.strip().endswith(f"schema version {latest} ({names})")
    code, out, _ = await wanbot(env, tmp_path, "migrate")
    assert out.strip().endswith(f"schema version {latest} (nothing to do)")
