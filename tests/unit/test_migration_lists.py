"""One numbered list of migrations for two engines: every SQLite file has its PostgreSQL twin, and
the copy to PostgreSQL knows every table. (That the twins build the same tables is checked
against a real server in tests/integration/test_pg_migrate.py.)"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from bot.cli.args import build_parser
from bot.cli.migrate import cmd_migrate, report_lines
from bot.settings import Settings
from bot.store.copy import COPIED, NOT_COPIED, CopyReport, Measure
from bot.store.database import Database, migrations
from bot.store.pg_migrations import pg_migrations


def test_both_engines_have_the_same_numbered_list() -> None:
    lite = [(version, name) for version, name, _ in migrations()]
    pg = [(version, name) for version, name, _ in pg_migrations()]
    assert lite == pg
    assert [v for v, _ in lite] == list(range(1, len(lite) + 1))


def test_the_sqlite_loader_reads_only_its_own_folder() -> None:
    """The pg/ subpackage sits inside the SQLite migrations package: its files must not be
    taken for SQLite migrations (the loader matches NNNN_name.sql names at its top level)."""
    top = {entry.name for entry in resources.files("bot.store.migrations").iterdir()}
    assert "pg" in top  # otherwise this test proves nothing
    sql_files = sorted(n for n in top if n.endswith(".sql"))
    assert [name for _, name, _ in migrations()] == sql_files
    assert all("SERIAL" not in sql and "DOUBLE PRECISION" not in sql for *_, sql in migrations())


def test_postgresql_twins_use_no_sqlite_only_types() -> None:
    """Discord ids overflow PostgreSQL's INTEGER; REAL is single precision there (timestamps
    would lose seconds); AUTOINCREMENT is SQLite's spelling of BIGSERIAL."""
    for _, name, sql in pg_migrations():
        code = "\n".join(line.split("--")[0] for line in sql.splitlines())
        for word in ("INTEGER", "REAL", "AUTOINCREMENT"):
            assert not re.search(rf"\b{word}\b", code, re.IGNORECASE), f"{name} uses {word}"


async def test_the_copy_knows_every_table_and_copies_parents_first(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "w.sqlite3")
    await db.close()
    con = sqlite3.connect(tmp_path / "w.sqlite3")
    tables = {
        r[0]
        for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("sqlite_")
    }
    parents = {t: {r[2] for r in con.execute(f"PRAGMA foreign_key_list({t})")} for t in COPIED}
    con.close()
    assert set(COPIED) | set(NOT_COPIED) == tables  # a new table must be placed by its migration
    assert not set(COPIED) & set(NOT_COPIED)
    for i, table in enumerate(COPIED):
        assert parents[table] <= {table, *COPIED[:i]}, f"{table} is copied before its parent"


def test_copy_from_takes_a_sqlite_url() -> None:
    args = build_parser().parse_args(["migrate", "--copy-from", "sqlite:///data/wanbot.sqlite3"])
    assert args.copy_from == Path("data/wanbot.sqlite3")
    args = build_parser().parse_args(["migrate", "--copy-from", "sqlite:////srv/w.sqlite3"])
    assert args.copy_from == Path("/srv/w.sqlite3")
    for bad in ("data/wanbot.sqlite3", "sqlite:///", "postgresql://h/db"):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(["migrate", "--copy-from", bad])
        assert exit_.value.code == 64


async def test_copy_from_is_refused_when_database_url_is_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wanbot.sqlite3'}")
    args = build_parser().parse_args(["migrate", "--copy-from", "sqlite:///old.sqlite3"])
    code = await cmd_migrate(settings, args)
    out, err = capsys.readouterr()
    assert code == 2  # a configuration error: DATABASE_URL must name PostgreSQL
    assert "--copy-from copies into PostgreSQL, but DATABASE_URL is the SQLite file" in err
    assert "Nothing was copied" in err
    assert out == ""
    assert not (tmp_path / "wanbot.sqlite3").exists()  # refused before anything was opened


def test_the_report_marks_each_figure_and_says_what_was_kept() -> None:
    good = CopyReport(
        [Measure("jobs", "rows", 5, 5), Measure("jobs", "SUM(credits)", 1.75, 1.75)], True
    )
    lines = report_lines(good, Path("data/wanbot.sqlite3"), "postgresql://bot@db/wanbot")
    assert lines[0] == "copied data/wanbot.sqlite3 into postgresql://bot@db/wanbot"
    assert lines[2].split() == ["jobs", "rows", "5", "5", "ok"]
    assert lines[3].split() == ["jobs", "SUM(credits)", "1.75", "1.75", "ok"]
    assert lines[4].startswith("instances       not copied: per-process rows")
    assert lines[-1] == "1 table, 5 rows copied; every figure agrees (committed)"
    bad = CopyReport([Measure("ledger", "SUM(reserved)", 10.5, 9.45)], False)
    lines = report_lines(bad, Path("w.sqlite3"), "postgresql://db/w")
    assert lines[2].endswith("DIFFERS")
    assert lines[-1].endswith("some figures differ (rolled back)")


def test_the_operations_guide_shows_the_report_as_it_is_printed() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text("utf-8")
    report = CopyReport([Measure(t, "rows", 1, 1) for t in COPIED], True)
    lines = report_lines(report, Path("data/wanbot.sqlite3"), "postgresql://wanbot@db/wanbot")
    assert "## Moving to PostgreSQL" in doc
    assert lines[1] in doc  # the header
    assert lines[-2] in doc  # what is not copied, and why
    for table in (*COPIED, *NOT_COPIED):
        assert f"`{table}`" in doc, f"docs/operations.md does not say what happens to {table}"
