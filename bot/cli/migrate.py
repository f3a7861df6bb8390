"""``wanbot migrate [--copy-from sqlite:///PATH]``: bring the configured database's schema up to
date (SQLite or PostgreSQL, from the one numbered list), and move a SQLite deployment into an
empty PostgreSQL database, checked table by table.

asyncpg and the copy are imported only on the PostgreSQL path: the SQLite path starts as fast as
the other commands.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.args import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from bot.cli.reach import say
from bot.settings import Settings
from bot.store.engine import open_database

if TYPE_CHECKING:
    from bot.store.copy import CopyReport

CONNECT_TIMEOUT = 10.0


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    copy_from: Path | None = getattr(args, "copy_from", None)
    where = settings.database_label
    if copy_from is not None and settings.database_engine != "postgresql":
        say(
            f"--copy-from copies into PostgreSQL, but DATABASE_URL is the SQLite file {where}. "
            "Set DATABASE_URL=postgresql://USER@HOST/DATABASE (an empty database) and run it "
            "again. Nothing was copied."
        )
        return EXIT_CONFIG
    try:
        db = await open_database(settings.database_url, migrate=False)
    except _open_errors(settings) as exc:
        say(f"cannot open the database {where}: {exc or type(exc).__name__}")
        return EXIT_FAILED
    try:
        applied = await db.migrate()
        version = await db.schema_version()
    except RuntimeError as exc:  # the schema is newer than this wanbot: the message says so
        say(str(exc))
        return EXIT_FAILED
    finally:
        await db.close()
    done = ", ".join(applied) if applied else "nothing to do"
    print(f"database {where}: schema version {version} ({done})")
    if copy_from is None:
        return EXIT_OK
    return await _copy(copy_from, settings)


def _open_errors(settings: Settings) -> tuple[type[BaseException], ...]:
    """What opening the configured database raises when it is unreachable or unusable."""
    if settings.database_engine == "sqlite":
        return (OSError, sqlite3.Error)
    import asyncpg  # noqa: PLC0415 - only on the PostgreSQL path

    return (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def _copy(source: Path, settings: Settings) -> int:
    import asyncpg  # noqa: PLC0415 - only on the PostgreSQL path

    from bot.store.copy import CopyRefused, copy_sqlite_to_pg  # noqa: PLC0415 - the same

    # A connection of its own: COPY and one long transaction are not the store's pool's business.
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=CONNECT_TIMEOUT)
    except _open_errors(settings) as exc:
        say(f"cannot open the database {settings.database_label}: {exc or type(exc).__name__}")
        return EXIT_FAILED
    try:
        report = await copy_sqlite_to_pg(source, conn)
    except CopyRefused as exc:
        say(str(exc))
        return EXIT_FAILED
    finally:
        await conn.close()
    for line in report_lines(report, source, settings.database_label):
        print(line)
    if not report.ok:
        say("figures differ (marked DIFFERS above): the copy was rolled back, nothing was kept")
        return EXIT_FAILED
    return EXIT_OK


def report_lines(report: CopyReport, source: Path, target: str) -> list[str]:
    """The copy as a table: every figure from both sides, and what was left behind."""
    from bot.store.copy import NOT_COPIED  # noqa: PLC0415 - see the module docstring

    lines = [
        f"copied {source} into {target}",
        f"{'TABLE':<14}  {'FIGURE':<26}  {'SQLITE':>16}  {'POSTGRESQL':>16}",
    ]
    for m in report.measures:
        lines.append(
            f"{m.table:<14}  {m.what:<26}  {_number(m.sqlite):>16}  {_number(m.postgresql):>16}"
            f"  {'ok' if m.ok else 'DIFFERS'}"
        )
    lines.extend(f"{table:<14}  not copied: {why}" for table, why in NOT_COPIED.items())
    tables = _count(len({m.table for m in report.measures}), "table")
    rows = _count(sum(int(m.sqlite) for m in report.measures if m.what == "rows"), "row")
    if report.ok:
        lines.append(f"{tables}, {rows} copied; every figure agrees (committed)")
    else:
        lines.append(f"{tables}, {rows} read; some figures differ (rolled back)")
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _number(value: float) -> str:
    return f"{value:.15g}"
