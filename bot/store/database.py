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
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

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

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.OperationalError):  # no transaction was active
            await self._conn.execute("ROLLBACK")

    async def execute(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement in autocommit mode; returns the changed row count."""
        async with self._lock:
            cur = await self._conn.execute(sql, params)
            return cur.rowcount

    async def fetchone(
        self, sql: str, params: Iterable[Any] | dict[str, Any] = ()
    ) -> aiosqlite.Row | None:
        async with self._lock:
            cur = await self._conn.execute(sql, params)
            return await cur.fetchone()

    async def fetchall(
        self, sql: str, params: Iterable[Any] | dict[str, Any] = ()
    ) -> list[aiosqlite.Row]:
        async with self._lock:
            cur = await self._conn.execute(sql, params)
            return list(await cur.fetchall())

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
