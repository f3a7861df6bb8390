"""The SQLite connection, its pragmas and the numbered migrations.

One sqlite3 connection serves the whole process, owned by one dedicated thread (``_DatabaseThread``)
that runs queued work in the order it was queued, so the event loop never waits on SQLite.
Statements are serialised through one lock so a ``BEGIN IMMEDIATE`` transaction is never
interleaved with another coroutine's statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]
Job = Callable[[sqlite3.Connection], Any]
# A queued job and the future its outcome goes to (None: it reports its own); no job means stop.
_Item = tuple[Job | None, asyncio.Future[Any] | None]

_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=5000", "synchronous=NORMAL")

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations(package: str = "bot.store.migrations") -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration bundled in ``package`` (SQLite's by
    default; PostgreSQL's twins live in ``bot.store.migrations.pg``), in order."""
    found = []
    for entry in resources.files(package).iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {versions}")
    return found


def schema_too_new(current: int, known: int) -> RuntimeError:
    """Either engine: an older wanbot must not write to tables it does not understand."""
    return RuntimeError(
        f"database schema version {current} is newer than this wanbot ({known}); "
        "upgrade wanbot or restore a backup"
    )


class _DatabaseThread:
    """The one thread that opens, uses and closes the sqlite3 connection.

    Jobs are queued synchronously and run back to back, in order, while the event loop prepares
    the next ones; each job's future is settled on its own loop. A job queued with no future
    reports its own outcome (the group commit does).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.closed = False

    async def start(self) -> None:
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        thread = threading.Thread(target=self._run, args=(opened,), name="wanbot-db", daemon=True)
        thread.start()
        try:
            await opened
        except BaseException:  # also cancelled while opening: let the thread end when it can
            self.stop()
            raise

    def put(self, job: Job, future: asyncio.Future[Any] | None) -> None:
        if self.closed:
            raise ValueError("the database connection is closed")
        self._queue.put((job, future))

    def stop(self) -> asyncio.Future[None]:
        """Close the connection after everything already queued; resolves once it is closed."""
        stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = True
        self._queue.put((None, stopped))
        return stopped

    def _run(self, opened: asyncio.Future[None]) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
            conn.row_factory = sqlite3.Row
        except BaseException as exc:
            _resolve(opened, None, exc)
            return
        _resolve(opened, None, None)
        while True:
            job, future = self._queue.get()
            if job is None:  # stop(): everything queued before it has run
                _call(conn.close, future)
                return
            _call(functools.partial(job, conn), future)


class Cursor:
    """A statement's outcome inside ``Database.transaction()``: its rows are already fetched."""

    def __init__(self, rows: list[sqlite3.Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    async def fetchone(self) -> sqlite3.Row | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[sqlite3.Row]:
        return list(self._rows)


class Connection:
    """The connection as ``Database.transaction()`` lends it: one thread hop per statement."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, sql: str, params: Params = ()) -> Cursor:
        def run(conn: sqlite3.Connection) -> Cursor:
            cur = conn.execute(sql, params)
            return Cursor(cur.fetchall(), cur.rowcount)

        return await self._db._enqueue(run)


class Database:
    skip_locked = ""  # one process; a write transaction holds the whole file

    def __init__(self, thread: _DatabaseThread, path: Path | None) -> None:
        self._thread = thread
        self._conn = Connection(self)
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
        thread = _DatabaseThread(str(p))
        await thread.start()
        db = cls(thread, None if str(p) == ":memory:" else p)
        try:
            for pragma in _PRAGMAS:
                await db._conn.execute(f"PRAGMA {pragma}")
            if migrate:
                await db.migrate()
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        """Close once everything already queued has run (a second close does nothing)."""
        if not self._thread.closed:
            await self._thread.stop()

    async def schema_version(self) -> int:
        async with self._lock:
            row = await self._enqueue(lambda conn: conn.execute("PRAGMA user_version").fetchone())
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
                raise schema_too_new(current, len(available))
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
    async def transaction(self) -> AsyncIterator[Connection]:
        """An exclusive write transaction (BEGIN IMMEDIATE): read-check-write is safe inside."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                # Also on cancellation: the thread runs queued statements in order, so a ROLLBACK
                # queued now lands after a BEGIN/COMMIT whose await was cut short.
                await asyncio.shield(self._rollback())
                raise

    def _enqueue(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``job`` for the database thread now; its future resolves when it has run.

        Queueing happens synchronously, so callers hold ``_lock`` only to queue, not until the
        answer arrives: the thread runs queued jobs back to back while the event loop prepares
        the next ones, in the order they were queued.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._thread.put(job, future)
        return future

    async def run_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a ``BEGIN IMMEDIATE`` transaction on the connection's own thread.

        Each awaited statement is a round trip to that thread, and for the small writes of the
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
            if self._thread.closed:  # raise now, before joining a group that would never run
                raise ValueError("the database connection is closed")
            with self._group_lock:
                self._group.append((fn, future))
                first = not self._group_queued
                self._group_queued = True
            if first:
                self._thread.put(self._commit_group, None)
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
            _deliver(outcomes)

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.OperationalError):  # no transaction was active
            await self._enqueue(lambda conn: conn.execute("ROLLBACK"))

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


def _deliver(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """From the database thread: settle the futures (all of one loop) on their loop."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        outcomes[0][0].get_loop().call_soon_threadsafe(_settle, outcomes)


def _resolve(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    _deliver([(future, result, exc)])


def _call(fn: Callable[[], Any], future: asyncio.Future[Any] | None) -> None:
    """On the database thread: run ``fn`` and report its outcome to ``future``."""
    try:
        result = fn()
    except BaseException as exc:
        if future is None:  # a job that reports its own outcome should not raise
            log.exception("database job failed")
        else:
            _resolve(future, None, exc)
    else:
        if future is not None:
            _resolve(future, result, None)
