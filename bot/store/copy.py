"""Move a SQLite deployment into an empty PostgreSQL database, then prove nothing was lost.

The SQLite file is opened read-only and read on a thread of its own, inside one read transaction,
so the rows copied and the counts and sums they are checked against come from one snapshot. The
PostgreSQL side is one transaction: the tables are locked, found empty, filled with COPY, their
id sequences moved past the copied ids, and counted and summed again. It commits only when every
figure agrees; otherwise nothing is kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from bot.errors import WanbotError
from bot.store.database import migrations
from bot.store.pg_migrations import pg_migrations, pg_schema_version

log = logging.getLogger(__name__)

T = TypeVar("T")

# In foreign-key order. Each table's figures besides its row count: aggregates that read the
# same in both dialects (a sum of lengths catches a truncated or mangled text column).
MEASURES: dict[str, tuple[str, ...]] = {
    "jobs": ("SUM(credits)", "SUM(LENGTH(request_json))"),
    "job_events": ("SUM(id)",),
    "deliveries": ("SUM(attempts)", "SUM(delivered_at)"),
    "ledger": ("SUM(reserved)", "SUM(charged)"),
    "quota_limits": ("SUM(daily)", "SUM(monthly)"),
    "quota_grants": ("SUM(credits)",),
    "quota_resets": ("SUM(reset_at)",),
    "blocked_users": ("SUM(created_at)",),
    "guild_config": ("SUM(LENGTH(config_json))",),
    "styles": ("SUM(LENGTH(text))",),
    "preferences": ("SUM(LENGTH(prefs_json))",),
    "meta": ("SUM(LENGTH(value))",),
}
COPIED = tuple(MEASURES)
# Tables left behind, and why. An instance row is a process of the old deployment (host, pid,
# heartbeat); its jobs then name no live instance, so the first new process takes them over.
NOT_COPIED = {
    "instances": "per-process rows: each running process registers itself",
    "crun_budget": "pacing state of running processes: the first request rebuilds it",
    "line_marks": "whose turn it is in the waiting line: a fresh line starts fair",
}

_BATCH = 2000  # rows per read from SQLite while COPY streams them out


class CopyRefused(WanbotError):
    """The copy cannot start (or could not finish); nothing was written to PostgreSQL."""


@dataclass(frozen=True)
class Measure:
    """One figure of one table, read from both databases."""

    table: str
    what: str  # "rows" or an aggregate such as "SUM(credits)"
    sqlite: float
    postgresql: float

    @property
    def ok(self) -> bool:
        # Float sums may be added up in another order: equal to the last few bits is equal.
        return math.isclose(self.sqlite, self.postgresql, rel_tol=1e-9, abs_tol=1e-9)


@dataclass(frozen=True)
class CopyReport:
    measures: list[Measure]
    committed: bool  # False: a figure differed and the transaction was rolled back

    @property
    def ok(self) -> bool:
        return self.committed and all(m.ok for m in self.measures)


class _Source:
    """The SQLite file, read-only, used only from one worker thread (as sqlite3 requires)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanbot-copy")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._conn = await self._run(lambda: _open_read_only(self.path))

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
        self._pool.shutdown(wait=False)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        assert conn is not None, "open() first"
        return await self._run(lambda: fn(conn))

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise CopyRefused(f"there is no SQLite database at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        # One read transaction for everything: rows and figures come from one snapshot.
        conn.execute("BEGIN")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise CopyRefused(f"cannot read the SQLite database at {path}: {exc}") from None
    return conn


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def copy_sqlite_to_pg(source: Path, conn: asyncpg.Connection) -> CopyReport:
    """Copy every table of ``COPIED`` from the SQLite file into the (migrated, empty) PostgreSQL
    database behind ``conn``, in one transaction kept only when every figure agrees."""
    reader = _Source(source)
    try:
        await reader.open()
        await _check_versions(reader, conn)
        columns = await _columns(reader, conn)
        expected = await reader.call(_measure_sqlite)
        tr = conn.transaction()
        await tr.start()
        try:
            await _require_empty(conn)
            for table in COPIED:
                await _copy_table(reader, conn, table, columns[table])
            await _advance_sequences(reader, conn)
            report = await _compare(conn, expected)
        except BaseException:
            await tr.rollback()
            raise
        if report.ok:
            await tr.commit()
        else:
            await tr.rollback()
            report = CopyReport(report.measures, committed=False)
    finally:
        await reader.close()
    return report


async def _check_versions(reader: _Source, conn: asyncpg.Connection) -> None:
    """Both schemas must be this wanbot's: then their tables and columns are twins."""
    want = len(migrations())
    have = await reader.call(lambda c: int(c.execute("PRAGMA user_version").fetchone()[0]))
    if have == 0:
        raise CopyRefused(f"{reader.path} is not a wanbot database (it has no schema version)")
    if have != want:
        raise CopyRefused(
            f"{reader.path} is at schema version {have}, this wanbot at {want}: "
            + (
                f"first upgrade it with `DATABASE_URL=sqlite:///{reader.path} wanbot migrate` "
                "(after a backup)"
                if have < want
                else "use the wanbot release that wrote it"
            )
        )
    pg_have, pg_want = await pg_schema_version(conn), len(pg_migrations())
    if pg_have != pg_want:
        raise CopyRefused(f"the PostgreSQL database is at schema version {pg_have}, not {pg_want}")


async def _columns(reader: _Source, conn: asyncpg.Connection) -> dict[str, list[str]]:
    """Each copied table's columns, which must be the same on both sides; and no SQLite table
    may be one the copy does not know (a new migration must decide whether it is copied)."""

    def sqlite_side(c: sqlite3.Connection) -> dict[str, list[str]]:
        names = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: [r[1] for r in c.execute(f"PRAGMA table_info({_quote(n)})")] for n in names}

    lite = await reader.call(sqlite_side)
    unknown = sorted(
        n for n in lite if not n.startswith("sqlite_") and n not in COPIED and n not in NOT_COPIED
    )
    if unknown:
        raise CopyRefused(f"the copy does not know the table(s) {', '.join(unknown)}")
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ANY($1::text[])"
        " ORDER BY table_name, ordinal_position",
        list(COPIED),
    )
    pg: dict[str, list[str]] = {}
    for r in rows:
        pg.setdefault(str(r["table_name"]), []).append(str(r["column_name"]))
    for table in COPIED:
        if sorted(lite.get(table, [])) != sorted(pg.get(table, [])):
            raise CopyRefused(
                f"table {table} has columns {lite.get(table)} in SQLite but "
                f"{pg.get(table)} in PostgreSQL"
            )
    return {table: lite[table] for table in COPIED}


async def _require_empty(conn: asyncpg.Connection) -> None:
    """Inside the copy's transaction: lock out writers, then insist on empty tables."""
    await conn.execute(f"LOCK TABLE {', '.join(map(_quote, COPIED))} IN EXCLUSIVE MODE")
    full = []
    for table in COPIED:
        n = int(await conn.fetchval(f"SELECT COUNT(*) FROM {_quote(table)}"))  # noqa: S608 - our table names
        if n:
            full.append(f"{table} ({n} row{'s' if n > 1 else ''})")
    if full:
        tables, hold = ("table", "holds") if len(full) == 1 else ("tables", "hold")
        raise CopyRefused(
            f"the PostgreSQL database is not empty: {tables} {', '.join(full)} already {hold} "
            "data. --copy-from only fills an empty database; nothing was copied"
        )


async def _copy_table(
    reader: _Source, conn: asyncpg.Connection, table: str, columns: list[str]
) -> None:
    select = f"SELECT {', '.join(map(_quote, columns))} FROM {_quote(table)}"  # noqa: S608 - our names
    cursor = await reader.call(lambda c: c.execute(select))

    async def batches() -> AsyncIterator[tuple[Any, ...]]:
        while rows := await reader.call(lambda _c: cursor.fetchmany(_BATCH)):
            for row in rows:
                yield tuple(row)

    try:
        await conn.copy_records_to_table(table, records=batches(), columns=columns)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CopyRefused(f"copying table {table} failed: {exc}; nothing was copied") from exc
    log.debug("copied table %s", table)


async def _advance_sequences(reader: _Source, conn: asyncpg.Connection) -> None:
    """Move every id sequence past the copied ids (and past SQLite's own AUTOINCREMENT counter,
    which may be higher: ids of deleted rows are never handed out again)."""
    serial = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ANY($1::text[])"
        " AND (column_default LIKE 'nextval(%' OR is_identity = 'YES')",
        list(COPIED),
    )
    counters: dict[str, int] = await reader.call(_sqlite_sequences)
    for r in serial:
        table, column = str(r["table_name"]), str(r["column_name"])
        top = await conn.fetchval(f"SELECT MAX({_quote(column)}) FROM {_quote(table)}")  # noqa: S608 - our names
        last = max(int(top or 0), counters.get(table, 0))
        # is_called false with 1: the next id is 1 (an empty table); else last + 1.
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)",
            _quote(table),
            column,
            max(last, 1),
            last > 0,
        )


def _sqlite_sequences(c: sqlite3.Connection) -> dict[str, int]:
    try:
        return {str(r[0]): int(r[1]) for r in c.execute("SELECT name, seq FROM sqlite_sequence")}
    except sqlite3.OperationalError:  # no AUTOINCREMENT table was ever created
        return {}


def _figures_sql(table: str) -> str:
    aggregates = ", ".join(("COUNT(*)", *MEASURES[table]))
    return f"SELECT {aggregates} FROM {_quote(table)}"  # noqa: S608 - our names and aggregates


def _numbers(row: Sequence[Any]) -> list[float]:
    return [float(v) if v is not None else 0.0 for v in row]


def _measure_sqlite(c: sqlite3.Connection) -> dict[str, list[float]]:
    return {t: _numbers(c.execute(_figures_sql(t)).fetchone()) for t in COPIED}


async def _compare(conn: asyncpg.Connection, expected: dict[str, list[float]]) -> CopyReport:
    measures = []
    for table in COPIED:
        got = _numbers(list(await conn.fetchrow(_figures_sql(table)) or ()))
        for what, want, have in zip(("rows", *MEASURES[table]), expected[table], got, strict=True):
            measures.append(Measure(table, what, want, have))
    return CopyReport(measures, committed=True)
