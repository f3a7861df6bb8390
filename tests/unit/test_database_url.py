"""DATABASE_URL selects the store: SQLite by default, PostgreSQL for postgresql:// URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings
from bot.store.database import Database
from bot.store.engine import engine_of, open_database
from bot.store.pg_database import PgDatabase

pytest_plugins = ["tests.pg"]  # pg_url


def test_sqlite_stays_the_default() -> None:
    s = load_settings(_env_file=None)
    assert s.database_engine == "sqlite"
    assert s.database_path == Path("data/wanbot.sqlite3")
    assert s.database_label == "data/wanbot.sqlite3"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls_are_accepted_and_shown_without_secrets(scheme: str) -> None:
    s = load_settings(
        _env_file=None, database_url=f"{scheme}://bot:hunter2@db.internal:5433/wanbot?sslmode=x"
    )
    assert s.database_engine == "postgresql"
    assert s.database_label == f"{scheme}://bot@db.internal:5433/wanbot"
    assert "hunter2" not in s.database_label
    with pytest.raises(ValueError, match="PostgreSQL"):
        _ = s.database_path


def test_other_urls_are_refused_with_both_forms_named() -> None:
    with pytest.raises(ConfigError, match=r"DATABASE_URL: must be sqlite:///PATH .* postgresql://"):
        load_settings(_env_file=None, database_url="mysql://localhost/wanbot")
    with pytest.raises(ValueError, match="postgresql://"):
        engine_of("data/wanbot.sqlite3")


async def test_the_factory_opens_the_engine_the_url_names(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    try:
        assert isinstance(db, Database)
        assert await db.schema_version() > 0
    finally:
        await db.close()


@pytest.mark.postgres
async def test_the_factory_opens_postgres_for_a_postgres_url(pg_url: str) -> None:
    db = await open_database(pg_url.replace("postgresql://", "postgres://", 1), migrate=False)
    try:
        assert isinstance(db, PgDatabase)
        assert await db.schema_version() == 0
        await db.migrate()
        await db.check_writable()
        assert await db.fetchall("SELECT key FROM meta") == []
    finally:
        await db.close()
    with pytest.raises(ValueError, match="closed"):
        await db.fetchall("SELECT 1")
