"""Opens the store a ``DATABASE_URL`` names: SQLite (the default) or PostgreSQL.

Both engines satisfy ``protocol.Db``, which is all the repositories see. asyncpg is imported only
when a PostgreSQL URL is opened, so the SQLite path starts as fast as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from bot.store.database import Database

if TYPE_CHECKING:
    from bot.store.pg_database import PgDatabase

Engine = Literal["sqlite", "postgresql"]

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def engine_of(url: str) -> Engine:
    """Which engine ``url`` names; ValueError for any other scheme."""
    if url.startswith(SQLITE_PREFIX):
        return "sqlite"
    if url.startswith(POSTGRES_PREFIXES):
        return "postgresql"
    raise ValueError(
        "DATABASE_URL must be sqlite:///PATH (e.g. sqlite:///data/wanbot.sqlite3) or "
        "postgresql://USER@HOST:PORT/DATABASE"
    )


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///`` URL (four slashes: an absolute path)."""
    return url.removeprefix(SQLITE_PREFIX)


async def open_database(url: str, *, migrate: bool = True) -> Database | PgDatabase:
    """Open the store ``url`` names and, unless told not to, bring its schema up to date."""
    if engine_of(url) == "sqlite":
        return await Database.open(sqlite_path(url), migrate=migrate)
    from bot.store.pg_database import PgDatabase  # noqa: PLC0415 - asyncpg only when used

    return await PgDatabase.open(url, migrate=migrate)
