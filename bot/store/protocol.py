"""What the repositories need from a database, whichever engine is underneath.

The SQLite store (``database.Database``) and the PostgreSQL store (``pg_database.PgDatabase``) both
satisfy ``Db``; a repository is written once against it. Rows are read by position or by column
name (``sqlite3.Row`` and ``asyncpg.Record`` both do). ``run_transaction`` hands its function a
``SyncConnection``: plain, blocking, DB-API-style code (``conn.execute(sql, params).fetchone()``)
that a real ``sqlite3.Connection`` satisfies, and so does the PostgreSQL store's bridge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

T = TypeVar("T")

# sqlite3 style: ``?`` with a sequence, or ``:name`` with a mapping.
Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    # In asyncpg's order: mypy matches overloads in order.
    @overload
    def __getitem__(self, key: str, /) -> Any: ...
    @overload
    def __getitem__(self, key: int, /) -> Any: ...


class SyncCursor(Protocol):
    """A statement's outcome inside ``run_transaction``."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...  # Row | None (sqlite3 types it Any)
    def fetchall(self) -> Sequence[Any]: ...


class SyncConnection(Protocol):
    """The connection a ``run_transaction`` function gets: it blocks, so it runs off the loop."""

    def execute(self, sql: str, parameters: Params = ..., /) -> SyncCursor: ...


class Cursor(Protocol):
    """A statement's outcome inside ``transaction()``: its rows are already fetched."""

    @property
    def rowcount(self) -> int: ...
    async def fetchone(self) -> Row | None: ...
    async def fetchall(self) -> Sequence[Row]: ...


class Connection(Protocol):
    """The connection ``transaction()`` lends."""

    async def execute(self, sql: str, params: Params = ()) -> Cursor: ...


class Db(Protocol):
    # Appended to a SELECT that claims rows: PostgreSQL's " FOR UPDATE SKIP LOCKED" (rows another
    # transaction is claiming are passed over, not waited for); "" on SQLite, whose write
    # transactions hold the whole database anyway.
    skip_locked: str

    async def close(self) -> None: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement on its own; returns the changed row count."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> Sequence[Row]: ...

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """An exclusive write transaction: read-check-write is safe inside."""
        ...

    async def run_transaction(self, fn: Callable[[SyncConnection], T]) -> T:
        """Run blocking ``fn`` in an exclusive write transaction, all or nothing."""
        ...

    async def check_writable(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def migrate(self) -> list[str]: ...


class Closable(Protocol):
    async def close(self) -> None: ...


@runtime_checkable
class Notifier(Protocol):
    """What a store that spans processes offers on top of ``Db``: PostgreSQL's NOTIFY/LISTEN
    (the SQLite store has one process and none of it)."""

    async def notify(self, channel: str, payload: str) -> None: ...

    def listen(self, channel: str, on_payload: Callable[[str], object]) -> Closable: ...
