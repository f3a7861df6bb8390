"""The SQLite connection, its pragmas and the numbered migrations.

One aiosqlite connection serves the whole process. Statements are serialised through one lock so a
``BEGIN IMMEDIATE`` transaction is never interleaved with another coroutine's statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every bundled migration, in order."""
    found = []
    for entry in resources.files("bot.store.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {versions}")
    return found


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path | None) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path
        # Group commit: run_transaction calls waiting for the database thread (see _commit_group).
        self._group: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._group_lock = threading.Lock()  # shared with the database thread
        self._group_queued = False

    @classmethod
    async def open(cls, path: Path | str, *, migrate: bool = True) -> Database:
        """Open (creating the folder and file if needed) and bring the schema up to date."""
        p = Path(path)
        if str(p) != ":memory:":
            await asyncio.to_thread(p.parent.mkdir, parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(p), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        db = cls(conn, None if str(p) == ":memory:" else p)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            await conn.execute("PRAGMA synchronous=NORMAL")
            if migrate:
                await db.migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        await self._conn.close()

    async def schema_version(self) -> int:
        async with self._lock:
            cur = await self._conn.execute("PRAGMA user_version")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> list[str]:
        """Apply pending migrations, all in one transaction. Returns the file names applied."""
        applied: list[str] = []
        async with self.transaction() as conn:
            cur = await conn.execute("PRAGMA user_version")
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            available = migrations()
            if current > len(available):
                raise RuntimeError(
                    f"database schema version {current} is newer than this wanbot "
                    f"({len(available)}); upgrade wanbot or restore a backup"
                )
            for version, name, sql in available:
                if version <= current:
                    continue
                for statement in _split_sql(sql):
                    await conn.execute(statement)
                applied.append(name)
                # PRAGMA takes no parameters; version is an int we parsed ourselves.
                await conn.execute(f"PRAGMA user_version = {version:d}")
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """An exclusive write transaction (BEGIN IMMEDIATE): read-check-write is safe inside."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                # Also on cancellation: aiosqlite runs queued statements in order, so a ROLLBACK
                # queued now lands after a BEGIN/COMMIT whose await was cut short.
                await asyncio.shield(self._rollback())
                raise

    def _enqueue(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``job`` for the connection's thread now; its future resolves when it has run.

        This is aiosqlite's own queue (pyproject pins the aiosqlite range it was written
        against). Queueing happens synchronously, so callers hold ``_lock`` only to queue, not
        until the answer arrives: the thread runs queued jobs back to back while the event loop
        prepares the next ones, in the order they were queued.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(job, future)
        return future

    def _raw(self) -> sqlite3.Connection:
        conn = self._conn
        if not conn._running or conn._connection is None:
            raise ValueError("the database connection is closed")
        return conn._connection

    def _put(
        self, job: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any] | None
    ) -> None:
        raw = self._raw()
        self._conn._tx.put_nowait((future, lambda: job(raw)))

    async def run_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a ``BEGIN IMMEDIATE`` transaction on the connection's own thread.

        Each aiosqlite statement is a round trip to that thread, and for the small writes of the
        hot paths (a reservation, a job's transitions) those round trips cost more than the SQL.
        Here the whole transaction is one. ``fn`` is plain sqlite3 code: it must not await or touch
        the event loop. It runs all or nothing: when it raises, none of its writes stay. If the
        caller is cancelled it still runs, whole, on its thread.

        Calls that arrive while the thread is busy share one commit (each inside its own
        savepoint), since the commit is most of the cost of a small write transaction. The
        future of each resolves only after that commit.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        async with self._lock:  # only while a transaction() is open elsewhere
            self._raw()  # closed: raise now, before joining a group that would never run
            with self._group_lock:
                self._group.append((fn, future))
                first = not self._group_queued
                self._group_queued = True
            if first:
                self._put(self._commit_group, None)
        return await future

    def _commit_group(self, conn: sqlite3.Connection) -> None:
        """On the database thread: run every waiting transaction, then commit once."""
        with self._group_lock:
            group, self._group = self._group, []
            self._group_queued = False
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, future in group:
                conn.execute("SAVEPOINT one")
                try:
                    result = fn(conn)
                except BaseException as exc:
                    conn.execute("ROLLBACK TO one")
                    outcomes.append((future, None, exc))
                else:
                    outcomes.append((future, result, None))
                conn.execute("RELEASE one")
            conn.execute("COMMIT")
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the group was kept
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            outcomes = [(future, None, exc) for _, future in group]
        if outcomes:
            outcomes[0][0].get_loop().call_soon_threadsafe(_settle, outcomes)

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.OperationalError):  # no transaction was active
            await self._conn.execute("ROLLBACK")

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement in autocommit mode; returns the changed row count."""
        async with self._lock:
            future = self._enqueue(lambda conn: conn.execute(sql, params).rowcount)
        return await future

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._lock:
            future = self._enqueue(lambda conn: conn.execute(sql, params).fetchone())
        row: sqlite3.Row | None = await future
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._lock:
            future = self._enqueue(lambda conn: conn.execute(sql, params).fetchall())
        return await future

    async def check_writable(self) -> None:
        """Prove the file accepts writes (used by `wanbot check` and health)."""
        async with self.transaction() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS _probe (x INTEGER)")
            await conn.execute("INSERT INTO _probe VALUES (1)")
            await conn.execute("DELETE FROM _probe")


def _split_sql(sql: str) -> list[str]:
    """Split a migration file into statements (our files have no semicolons inside literals)."""
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, exc in outcomes:
        if future.done():  # the caller was cancelled
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
