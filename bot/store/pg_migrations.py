"""The PostgreSQL schema: the numbered files in bot/store/migrations/pg/, twins of the SQLite ones.

SQLite keeps its version in ``PRAGMA user_version``; PostgreSQL has no such slot, so each applied
migration is a row of ``schema_version``. Several processes may start at once against one
database: a transaction-scoped advisory lock lets exactly one of them migrate while the others
wait, then find nothing left to do.
"""

from __future__ import annotations

import logging
import time

import asyncpg

from bot.store.database import migrations, schema_too_new

log = logging.getLogger(__name__)

PACKAGE = "bot.store.migrations.pg"
# Any constant shared by every wanbot process will do; this one spells "wanbot" in ASCII.
MIGRATION_LOCK = 0x77616E626F74

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL
)"""


def pg_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every bundled PostgreSQL migration, in order."""
    return migrations(PACKAGE)


async def pg_schema_version(conn: asyncpg.Connection) -> int:
    """The highest migration applied (0 for a database wanbot never touched)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    return int(version)


async def apply_pg_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations this database lacks, all in one transaction; returns their names.

    Refuses a database whose schema is newer than this code (as the SQLite store does): an older
    wanbot must not write to tables it does not understand.
    """
    applied: list[str] = []
    async with conn.transaction():
        # Held until commit: a second process waits here, then sees the new version.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        current = await pg_schema_version(conn)
        if current == 0:  # (an up-to-date database needs no CREATE right on its schema)
            await conn.execute(_CREATE_VERSION_TABLE)
        available = pg_migrations()
        if current > len(available):
            raise schema_too_new(current, len(available))
        for version, name, sql in available:
            if version <= current:
                continue
            await conn.execute(sql)  # no parameters: the simple protocol runs the whole file
            await conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                version,
                name,
                time.time(),
            )
            applied.append(name)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    return applied
