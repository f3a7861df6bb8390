"""PostgreSQL for tests: a fresh, empty schema per test on the server of WANBOT_TEST_PG_URL.

A pytest plugin: a test module that says ``pytest_plugins = ["tests.pg"]`` gets its fixtures
(import nothing from here: the plugin must be imported by pytest first).

- ``store``: a migrated store, once on SQLite (a file in ``tmp_path``) and once on PostgreSQL
  (marker ``postgres``, which CI selects with ``-m postgres``).
- ``make_runtime``: Runtimes on one fresh schema, as separate processes would be.
- ``pg_url``: the URL of a new, empty schema (``?search_path=...``, which asyncpg passes on as a
  server setting: the store, the migrations and a `wanbot` process given that URL all stay in
  it), dropped with everything in it afterwards. ``pg_db``: a migrated ``PgDatabase`` on it.

With no server reachable each PostgreSQL test is skipped, and the run ends with one line saying
why; with WANBOT_REQUIRE_PG=1 (CI sets it) a missing server fails them instead.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.database import Database
from bot.store.pg_database import PgDatabase, PgListener
from tests.conftest import FAST
from tests.fakes.crun_server import FakeCrun
from tests.helpers import RecordingSink

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

ENGINES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# Per URL: why the server could not be reached (asked once), or that it was reached.
_unreachable: dict[str, str] = {}
_reached: set[str] = set()


def base_url() -> str:
    return os.environ.get("WANBOT_TEST_PG_URL") or DEFAULT_URL


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def _required() -> bool:
    return os.environ.get("WANBOT_REQUIRE_PG") == "1"


def _give_up(reason: str) -> NoReturn:
    """Skip the test (fail it under WANBOT_REQUIRE_PG=1), saying why in one line."""
    message = (
        f"PostgreSQL not reachable at {_where(base_url())}: {reason}; set WANBOT_TEST_PG_URL "
        f"(default {DEFAULT_URL}) to a server where this user may create schemas"
    )
    if _required():
        pytest.fail(message + " (WANBOT_REQUIRE_PG=1: a missing server is a failure)")
    pytest.skip(message)


async def _admin() -> asyncpg.Connection:
    url = base_url()
    if url not in _unreachable:  # asked once per run
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if url in _reached:  # it was there a moment ago: a real failure, not a missing server
                raise
            _unreachable[url] = " ".join(f"{type(exc).__name__}: {exc}".split())
        else:
            _reached.add(url)
            return conn
    _give_up(_unreachable[url])  # outside the except: the skip carries no traceback


def _with_schema(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}search_path={schema}"


@asynccontextmanager
async def fresh_pg_url() -> AsyncIterator[str]:
    """A URL whose default schema is new and empty; dropped (with all in it) afterwards."""
    schema = f"wanbot_test_{secrets.token_hex(6)}"
    admin = await _admin()
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield _with_schema(base_url(), schema)
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@asynccontextmanager
async def open_store(engine: str, tmp_path: Path) -> AsyncIterator[Database | PgDatabase]:
    """A migrated store of either engine: a SQLite file in ``tmp_path`` or a fresh schema."""
    if engine == "sqlite":
        db: Database | PgDatabase = await Database.open(tmp_path / "db" / "wanbot.sqlite3")
        try:
            yield db
        finally:
            await db.close()
        return
    async with fresh_pg_url() as url:
        db = await PgDatabase.open(url, max_size=4)
        try:
            yield db
        finally:
            await db.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After the run: the one line that says why the PostgreSQL tests did not run."""
    outcome = "failed (WANBOT_REQUIRE_PG=1)" if _required() else "skipped"
    for url, reason in _unreachable.items():
        terminalreporter.write_line(
            f"PostgreSQL tests {outcome}: not reachable at {_where(url)}: {reason}; "
            "set WANBOT_TEST_PG_URL to run them"
        )


@pytest.fixture(params=ENGINES)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database | PgDatabase]:
    async with open_store(request.param, tmp_path) as db:
        yield db


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_url() as url:
        yield url


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[PgDatabase]:
    db = await PgDatabase.open(pg_url, max_size=4)
    try:
        yield db
    finally:
        await db.close()


# --- runtimes as separate processes would be ------------------------------------------------

RuntimeFactory = Callable[..., Awaitable[Runtime]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def make_runtime(pg_url: str, crun: FakeCrun) -> AsyncIterator[RuntimeFactory]:
    """Runtimes as separate `wanbot run` processes would be: one schema, one fake crun, each
    with its own callback server (crun is told the URL of the process that submitted).
    ``make(sink=..., settings={...}, **engine_config)``; the sink serves target kind "test"."""
    opened: list[Runtime] = []

    async def make(
        *, sink: RecordingSink | None = None, settings: dict[str, Any] | None = None, **config: Any
    ) -> Runtime:
        port = _free_port()
        values: dict[str, Any] = {
            "wan_api_key": crun.api_key,
            "wan_api_base": crun.base_url,
            "database_url": pg_url,
            "allow_http_results": True,
            "callback_public_url": f"http://127.0.0.1:{port}",
            "callback_listen": f"127.0.0.1:{port}",
            **(settings or {}),
        }
        made = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        engine_config = dataclasses.replace(
            FAST, quota=made.quota_policy(), callback_base_url=made.callback_public_url, **config
        )
        chosen = sink or RecordingSink()
        runtime = Runtime(made, sinks={"test": lambda _rt: chosen}, engine_config=engine_config)
        await runtime.open()
        opened.append(runtime)
        await cast(PgListener, runtime.wake_listener).connected.wait()
        return runtime

    yield make
    for runtime in reversed(opened):
        await runtime.close()
