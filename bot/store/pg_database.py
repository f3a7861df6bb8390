"""The PostgreSQL store: the same interface as the SQLite ``Database``, on an asyncpg pool.

The repositories are written once, in sqlite3's style; ``dialect.translate`` turns their
parameter marks into PostgreSQL's. Two things keep them engine-agnostic:

- ``run_transaction(fn)`` runs plain blocking ``fn`` on a worker thread with a *bridge*
  connection: each ``execute`` hands the statement to the event loop, where asyncpg runs it on the
  transaction's connection, and waits for the answer. The loop itself never blocks.
- Every write transaction (``transaction()``, ``run_transaction``) first takes one
  transaction-level advisory lock, so write transactions run one at a time across every
  connection and process, as SQLite's ``BEGIN IMMEDIATE`` makes them: a read-check-write (a quota
  reservation) is safe inside. Within a process they queue before taking a connection, so the
  waiting ones leave the pool to readers. Single statements (``execute``) are atomic on their
  own and do not take the lock.

Unlike sqlite3, PostgreSQL aborts a transaction at its first failed statement: a ``fn`` that
catches a database error cannot go on writing (none of ours does).

A constraint violation surfaces as ``sqlite3.IntegrityError`` on both engines.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

import asyncpg

from bot.store.dialect import parse_rowcount, translate
from bot.store.pg_migrations import apply_pg_migrations, pg_schema_version
from bot.store.protocol import Params, SyncConnection

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A connection as the pool lends it (a proxy) or a plain one.
    _Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Held by every write transaction until it ends; any constant every wanbot process shares
# ("wanbwr" in ASCII; migrations hold their own lock, see pg_migrations).
WRITE_LOCK = 0x77616E627772
_TAKE_WRITE_LOCK = "SELECT pg_advisory_xact_lock($1)"
# How long a statement run through the bridge may take before its transaction gives up.
BRIDGE_TIMEOUT = 60.0


@contextlib.contextmanager
def _as_sqlite_errors() -> Iterator[None]:
    """A broken constraint raises what sqlite3 raises, so callers need not know the engine."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise sqlite3.IntegrityError(str(exc)) from exc


async def _run(conn: _Conn, sql: str, params: Params) -> tuple[list[asyncpg.Record], int]:
    """One statement on ``conn``: its rows (if it answers with rows) and its row count."""
    statement = translate(sql)
    args = statement.args(params)
    with _as_sqlite_errors():
        if statement.returns_rows:
            rows: list[asyncpg.Record] = await conn.fetch(statement.sql, *args)
            return rows, len(rows) if statement.returning else -1
        status: str = await conn.execute(statement.sql, *args)
        return [], parse_rowcount(status)


def _plain(conn: _Conn) -> asyncpg.Connection:
    """A pool's connection proxy where a plain connection is expected (it forwards every call)."""
    return cast(asyncpg.Connection, conn)


class _Outcome:
    def __init__(self, rows: list[asyncpg.Record], rowcount: int) -> None:
        self._rows = rows
        self._rowcount = rowcount

    @property
    def rowcount(self) -> int:
        return self._rowcount


class PgCursor(_Outcome):
    """A statement's outcome in ``run_transaction``, as sqlite3's ``Cursor`` offers it."""

    def fetchone(self) -> asyncpg.Record | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[asyncpg.Record]:
        return list(self._rows)


class PgAsyncCursor(_Outcome):
    """A statement's outcome in ``transaction()``: its rows are already fetched."""

    async def fetchone(self) -> asyncpg.Record | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[asyncpg.Record]:
        return list(self._rows)


class PgConnection:
    """The connection as ``PgDatabase.transaction()`` lends it."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> PgAsyncCursor:
        return PgAsyncCursor(*await _run(self._conn, sql, params))


class _Bridge:
    """What ``run_transaction``'s function gets on its worker thread: a blocking connection whose
    statements run on the event loop, on the transaction's asyncpg connection."""

    def __init__(self, conn: _Conn, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._conn = conn
        self._loop = loop
        self._timeout = timeout
        self.closed = False

    def execute(self, sql: str, parameters: Params = (), /) -> PgCursor:
        if self.closed:
            raise sqlite3.ProgrammingError("the transaction this connection belonged to is over")
        future = asyncio.run_coroutine_threadsafe(_run(self._conn, sql, parameters), self._loop)
        try:
            return PgCursor(*future.result(self._timeout))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"a statement took longer than {self._timeout:g}s") from None


class PgDatabase:
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, pool: asyncpg.Pool, *, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        # run_transaction's functions block, and run one at a time (the write gate below): one
        # thread of their own, so other thread work (images) can never starve them.
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="wanbot-pg"
        )
        # Write transactions queue here before they take a connection: one waits on the
        # advisory lock per process, the others leave the pool's connections to readers.
        self._write_gate = asyncio.Lock()
        self._running: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._url: str | None = None  # for LISTEN's own connection (set by ``open``)
        self._listeners: set[PgListener] = set()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        statement_timeout: float = BRIDGE_TIMEOUT,
    ) -> PgDatabase:
        """Connect (``postgresql://`` or ``postgres://``) and bring the schema up to date."""
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        db = cls(pool, timeout=statement_timeout)
        db._url = url
        try:
            if migrate:
                await db.migrate()
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        """Close once the transactions already running have ended (a second close does
        nothing)."""
        if self._closed:
            return
        self._closed = True
        for listener in list(self._listeners):
            await listener.close()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except TimeoutError:
            log.warning("PostgreSQL connections still busy after 10 s; closing them anyway")
            self._pool.terminate()
        self._thread.shutdown(wait=False)

    async def notify(self, channel: str, payload: str) -> None:
        """``NOTIFY channel, payload`` to every process LISTENing on it (committed at once)."""
        await self._on_pool("SELECT pg_notify(?, ?)", (channel, payload))

    def listen(self, channel: str, on_payload: Callable[[str], object]) -> PgListener:
        """Call ``on_payload`` for each NOTIFY on ``channel`` until the listener (or the database)
        is closed. It holds a connection of its own, outside the pool, and reconnects if that
        drops: notifications sent while it is down are lost (a missed wake only waits for the
        job's next scheduled poll)."""
        self._check_open()
        if self._url is None:
            raise ValueError("LISTEN needs a database opened with PgDatabase.open(url)")
        listener = PgListener(self._url, channel, on_payload, done=self._listeners.discard)
        self._listeners.add(listener)
        listener.start()
        return listener

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the database connection is closed")

    async def schema_version(self) -> int:
        self._check_open()
        async with self._pool.acquire() as conn:
            return await pg_schema_version(_plain(conn))

    async def migrate(self) -> list[str]:
        """Apply pending migrations, all in one transaction. Returns the file names applied."""
        self._check_open()
        async with self._pool.acquire() as conn:
            return await apply_pg_migrations(_plain(conn))

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_Conn]:
        """A connection in a transaction that holds the write lock."""
        async with self._write_gate, self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_TAKE_WRITE_LOCK, WRITE_LOCK)
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """An exclusive write transaction: read-check-write is safe inside."""
        self._check_open()
        async with self._writing() as conn:
            yield PgConnection(conn)

    async def run_transaction(self, fn: Callable[[SyncConnection], T]) -> T:
        """Run blocking ``fn`` in an exclusive write transaction, on a thread of its own.

        All or nothing: when ``fn`` raises, none of its writes stay. If the caller is cancelled
        the transaction still runs, whole (as on SQLite).
        """
        self._check_open()
        task = asyncio.ensure_future(self._transact(fn))
        self._running.add(task)
        task.add_done_callback(self._settled)
        return await asyncio.shield(task)

    def _settled(self, task: asyncio.Future[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a cancelled caller's failure is not "never retrieved"

    async def _transact(self, fn: Callable[[SyncConnection], T]) -> T:
        loop = asyncio.get_running_loop()
        async with self._writing() as conn:
            bridge = _Bridge(conn, loop, self._timeout)
            try:
                return await loop.run_in_executor(self._thread, fn, bridge)
            finally:
                bridge.closed = True

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement on its own (autocommit); returns the changed row count."""
        return (await self._on_pool(sql, params))[1]

    async def fetchone(self, sql: str, params: Params = ()) -> asyncpg.Record | None:
        rows = (await self._on_pool(sql, params))[0]
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[asyncpg.Record]:
        return (await self._on_pool(sql, params))[0]

    async def _on_pool(self, sql: str, params: Params) -> tuple[list[asyncpg.Record], int]:
        self._check_open()
        async with self._pool.acquire() as conn:
            return await _run(conn, sql, params)

    async def check_writable(self) -> None:
        """Prove the database takes a committed write (used by `wanbot check` and health)."""
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('_writable_probe', '')"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
            await conn.execute("DELETE FROM meta WHERE key = '_writable_probe'")


async def _close_quietly(conn: asyncpg.Connection) -> None:
    """Close politely if the server still answers, else just drop the socket."""
    if conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), 2)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


class PgListener:
    """One LISTEN connection, re-established after a drop (see ``PgDatabase.listen``)."""

    RETRY_DELAY = 1.0  # before reconnecting
    PING_EVERY = 30.0  # an idle connection is probed this often, so a silent drop is noticed

    def __init__(
        self,
        url: str,
        channel: str,
        on_payload: Callable[[str], object],
        *,
        done: Callable[[PgListener], None],
    ) -> None:
        self._url = url
        self._channel = channel
        self._on_payload = on_payload
        self._done = done
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # set while LISTEN is in force (tests wait on it)
        self.connections = 0  # how many times LISTEN was (re-)established
        self.server_pid: int | None = None  # the backend of the current connection

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pg-listen:{self._channel}")

    async def close(self) -> None:
        self._done(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
                log.warning("LISTEN %s: connection closed; reconnecting", self._channel)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN %s: connection lost (%s); reconnecting", self._channel, exc)
            finally:
                self.connected.clear()
            await asyncio.sleep(self.RETRY_DELAY)

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._url, timeout=10)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self._channel, self._received)
            self.connections += 1
            self.server_pid = conn.get_server_pid()
            self.connected.set()
            while not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.PING_EVERY)
                if lost.is_set() or conn.is_closed():
                    return
                await conn.execute("SELECT 1", timeout=10)
        finally:
            await _close_quietly(conn)

    def _received(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            self._on_payload(str(payload))
        except Exception:
            log.exception("LISTEN %s: handling %r failed", self._channel, payload)
