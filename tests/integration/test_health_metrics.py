"""/healthz and /metrics on the runtime's HTTP server, against the fake crun (and fake Discord)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import re
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bot.app import WanBot
from bot.domain.models import GenerationRequest, Target
from bot.errors import QuotaExceeded
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.quotas import Charge
from tests.conftest import FAST
from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import DiscordFake
from tests.helpers import RecordingSink, wait_until

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(60)


def settings_for(crun: FakeCrun, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "wan_api_key": crun.api_key,
        "wan_api_base": crun.base_url,
        "database_url": f"sqlite:///{tmp_path / 'wanbot.sqlite3'}",
        "allow_http_results": True,
        "wan_get_retries": 0,
        "health_listen": "127.0.0.1:0",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


RuntimeFactory = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make_runtime(crun: FakeCrun, tmp_path: Path) -> AsyncIterator[RuntimeFactory]:
    opened: list[Runtime] = []

    async def make(*, sink: RecordingSink | None = None, **overrides: Any) -> Runtime:
        settings = settings_for(crun, tmp_path, **overrides)
        config = dataclasses.replace(FAST, quota=settings.quota_policy())
        chosen = sink or RecordingSink()
        runtime = Runtime(settings, sinks={"test": lambda _rt: chosen}, engine_config=config)
        await runtime.open()
        opened.append(runtime)
        return runtime

    yield make
    for runtime in opened:
        await runtime.close()


def base_url(runtime: Runtime, index: int = 0) -> str:
    assert runtime.callback_server is not None
    return f"http://127.0.0.1:{runtime.callback_server.ports[index]}"


async def get(url: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
        session.get(url) as resp,
    ):
        return resp.status, await resp.text()


async def health(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    status, text = await get(base_url(runtime) + "/healthz")
    return status, json.loads(text)


async def scrape(runtime: Runtime) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = await get(base_url(runtime) + "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- /healthz ------------------------------------------------------------------------------------


async def test_healthz_is_ok_then_names_each_failing_part(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    runtime = await make_runtime()
    status, body = await health(runtime)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "api"}  # the CLI has no gateway
    assert body["checks"]["api"]["detail"].startswith("last successful call")

    # The API: no recent success, and the balance probe fails.
    runtime.health.api_fresh_for = 0
    crun.fail("balance", 500, times=100)
    status, body = await health(runtime)
    assert status == 503
    assert body["failing"] == ["api"]
    assert body["checks"]["api"] == {"ok": False, "detail": "crun answered 500 (ServerError)"}
    assert body["checks"]["database"]["ok"] is True

    # The answer is cached: asking again does not call crun again.
    probes = crun.calls["balance"]
    assert (await health(runtime))[0] == 503
    assert crun.calls["balance"] == probes

    # crun is back (and the cache has expired): healthy again.
    crun.clear_faults()
    runtime.health.probe_cache_for = 0
    status, body = await health(runtime)
    assert status == 200, body
    assert body["checks"]["api"]["detail"] == "crun answered a balance check"

    # The database refuses writes.
    await runtime.db.execute("PRAGMA query_only = 1")
    try:
        status, body = await health(runtime)
    finally:
        await runtime.db.execute("PRAGMA query_only = 0")
    assert status == 503
    assert body["failing"] == ["database"]
    assert "readonly" in body["checks"]["database"]["detail"]
    assert (await health(runtime))[0] == 200


async def test_a_locked_database_is_reported_within_the_timeout(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """Another process holds the write lock: health answers in time instead of hanging."""
    runtime = await make_runtime()
    runtime.health.timeout = 0.3
    # In a thread: the bot's own writes must be able to finish while we wait for the lock.
    locker = sqlite3.connect(
        tmp_path / "wanbot.sqlite3", isolation_level=None, check_same_thread=False
    )
    try:
        await asyncio.to_thread(locker.execute, "BEGIN IMMEDIATE")
        status, body = await asyncio.wait_for(health(runtime), 3)
        assert status == 503
        assert body["failing"] == ["database"]
        assert body["checks"]["database"]["detail"] == "no answer within 0.3 s (locked or stalled)"
        await asyncio.to_thread(locker.execute, "ROLLBACK")
    finally:
        await asyncio.to_thread(locker.close)

    async def healthy() -> bool:
        return (await health(runtime))[0] == 200

    await wait_until(healthy, timeout=10, what="health to recover once the lock is gone")


async def test_an_api_that_does_not_answer_is_reported_within_the_timeout(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    runtime = await make_runtime()
    runtime.health.api_fresh_for = 0
    runtime.health.timeout = 0.3
    crun.slow("balance", 30)
    status, body = await asyncio.wait_for(health(runtime), 10)
    assert status == 503
    assert body["checks"]["api"] == {
        "ok": False,
        "detail": "no answer from crun within 0.3 s",
    }


async def test_a_rejected_key_is_named_without_showing_it(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    runtime = await make_runtime()
    runtime.health.api_fresh_for = 0
    crun.fail("balance", 401, times=5)
    status, text = await get(base_url(runtime) + "/healthz")
    assert status == 503
    assert "crun rejected the API key (401)" in text
    assert crun.api_key not in text


async def test_gateway_part_follows_the_discord_connection(crun: FakeCrun, tmp_path: Path) -> None:
    async with DiscordFake() as fake:
        fake.add_guild("Wan Lab")
        settings = settings_for(crun, tmp_path, discord_token=fake.token)
        bot = WanBot(settings, engine_config=FAST)
        bot._connection.guild_ready_timeout = 0.05
        connect: asyncio.Task[None] | None = None
        try:
            await bot.login(fake.token)  # setup_hook: the runtime and its HTTP server are up
            status, body = await health(bot.runtime)
            assert status == 503
            assert body["failing"] == ["gateway"]
            assert body["checks"]["gateway"] == {"ok": False, "detail": "not connected"}
            connect = asyncio.create_task(bot.connect(reconnect=False))
            await asyncio.wait_for(bot.wait_until_ready(), 10)
            status, body = await health(bot.runtime)
            assert status == 200, body
            assert body["checks"]["gateway"] == {"ok": True, "detail": "connected"}
        finally:
            await bot.close()
            if connect is not None:
                await asyncio.wait_for(connect, 10)


# --- one server for callbacks, health and metrics ------------------------------------------------


async def test_health_and_metrics_ride_on_the_callback_server(
    make_runtime: RuntimeFactory,
) -> None:
    port = _free_port()
    runtime = await make_runtime(
        health_listen=None,
        callback_public_url=f"http://127.0.0.1:{port}",
        callback_listen=f"127.0.0.1:{port}",
    )
    assert runtime.callback_server is not None
    assert runtime.callback_server.ports == [port]
    assert (await health(runtime))[0] == 200
    assert (await get(base_url(runtime) + "/metrics"))[0] == 200
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url(runtime) + "/crun/callback/nosuchjob?t=x", json={}) as resp,
    ):
        assert resp.status == 404  # the receiver is there, and refuses unknown jobs
        assert await resp.text() == "not found"


async def test_a_separate_health_address_is_the_same_app(make_runtime: RuntimeFactory) -> None:
    port = _free_port()
    runtime = await make_runtime(
        health_listen="127.0.0.1:0",
        callback_public_url=f"http://127.0.0.1:{port}",
        callback_listen=f"127.0.0.1:{port}",
    )
    assert runtime.callback_server is not None
    ports = runtime.callback_server.ports
    assert len(ports) == 2
    assert ports[0] == port
    assert ports[1] not in (0, port)
    for index in (0, 1):
        assert (await get(base_url(runtime, index) + "/healthz"))[0] == 200


async def test_no_server_unless_asked(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime(health_listen=None)
    assert runtime.callback_server is None


# --- /metrics ------------------------------------------------------------------------------------


def noise_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buf, "PNG")
    return buf.getvalue()


async def test_metrics_change_as_jobs_run(make_runtime: RuntimeFactory, crun: FakeCrun) -> None:
    crun.outcome = lambda inp: ("failed", "model error") if "fail" in inp["prompt"] else None
    crun.image_bytes = noise_png(400, 400)  # ~480 KB: too big for the sink below
    sink = RecordingSink(upload_limit=200 * 1024)
    runtime = await make_runtime(sink=sink, quota_daily_default=3)
    engine = runtime.engine
    target = Target("test", {})

    before = await scrape(runtime)
    assert value(before, "wanbot_jobs", status="succeeded") == 0
    assert value(before, "wanbot_jobs_finished_total", status="succeeded") == 0
    assert value(before, "wanbot_queue_depth") == 0
    assert value(before, "wanbot_api_calls_total", endpoint="schema", code="200") == 1

    ok = await engine.submit(
        GenerationRequest(prompt="a heron"), user_id=1, guild_id=9, target=target
    )
    bad = await engine.submit(
        GenerationRequest(prompt="please fail"), user_id=2, guild_id=9, target=target
    )
    await engine.wait_finished(ok.id, 15)
    await engine.wait_finished(bad.id, 15)
    with pytest.raises(QuotaExceeded):
        await engine.submit(
            GenerationRequest(prompt="too dear"),
            user_id=1,
            guild_id=9,
            target=target,
            charge=Charge(5.0),
        )
    crun.fail("balance", 429, times=1)
    await runtime.credits.check()  # one failed call, counted by code

    after = await scrape(runtime)
    assert value(after, "wanbot_jobs", status="succeeded") == 1
    assert value(after, "wanbot_jobs", status="failed") == 1
    assert value(after, "wanbot_jobs", status="queued") == 0
    assert value(after, "wanbot_jobs_finished_total", status="succeeded") == 1
    assert value(after, "wanbot_jobs_finished_total", status="failed") == 1
    assert value(after, "wanbot_job_duration_seconds_count") == 2
    assert value(after, "wanbot_delivery_latency_seconds_count") == 2
    assert value(after, "wanbot_deliveries_total", state="done") == 2
    assert value(after, "wanbot_api_calls_total", endpoint="create", code="200") == 2
    assert value(after, "wanbot_api_calls_total", endpoint="balance", code="429") == 1
    assert value(after, "wanbot_api_errors_total", endpoint="balance", code="429") == 1
    assert value(after, "wanbot_api_errors_total", endpoint="create", code="200") == 0
    assert value(after, "wanbot_quota_denials_total") == 1
    assert value(after, "wanbot_uploads_reencoded_total") == 1
    assert sink.delivered[ok.id].images[0].reencoded
    assert value(after, "wanbot_jobs_inflight") == 0


async def test_queue_gauges_are_read_at_scrape_time(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    crun.task_latency = None  # tasks wait until finished by hand
    runtime = await make_runtime()
    engine = runtime.engine
    target = Target("test", {})
    job = await engine.submit(GenerationRequest(prompt="a"), user_id=1, guild_id=1, target=target)
    await wait_until(lambda: len(crun.tasks) == 1, timeout=10, what="the task at crun")
    samples = await scrape(runtime)
    assert value(samples, "wanbot_jobs_inflight") == 1
    assert (
        value(samples, "wanbot_jobs", status="pending")
        + value(samples, "wanbot_jobs", status="running")
        == 1
    )
    crun.finish(next(iter(crun.tasks)))
    await engine.wait_finished(job.id, 10)
    samples = await scrape(runtime)
    assert value(samples, "wanbot_jobs_inflight") == 0


async def test_two_runtimes_keep_separate_counts(
    make_runtime: RuntimeFactory, crun: FakeCrun, tmp_path: Path
) -> None:
    first = await make_runtime()
    first.metrics.quota_denied()
    second = await make_runtime(database_url=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    assert value(await scrape(first), "wanbot_quota_denials_total") == 1
    assert value(await scrape(second), "wanbot_quota_denials_total") == 0


# --- the container's health check and entry point --------------------------------------------


def dockerfile_instruction(name: str) -> str:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)  # line continuations
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip().upper().startswith(name + " ")]
    assert len(lines) == 1, f"expected one {name} in the Dockerfile, found {lines}"
    return lines[0][len(name) :].strip()


async def test_the_dockerfile_healthcheck_command_tells_healthy_from_failing(
    make_runtime: RuntimeFactory,
) -> None:
    healthcheck = dockerfile_instruction("HEALTHCHECK")
    _, _, exec_form = healthcheck.partition(" CMD ")
    argv = json.loads(exec_form)
    assert argv[:2] == ["python", "-c"]  # slim images have no curl
    runtime = await make_runtime()
    assert runtime.callback_server is not None
    env = {**os.environ, "HEALTH_LISTEN": f"0.0.0.0:{runtime.callback_server.port}"}

    async def run_check() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv[1:],
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(proc.wait(), 30)

    assert await run_check() == 0
    await runtime.db.execute("PRAGMA query_only = 1")
    try:
        assert await run_check() != 0
    finally:
        await runtime.db.execute("PRAGMA query_only = 0")


def test_the_container_runs_the_readme_command() -> None:
    entrypoint = json.loads(dockerfile_instruction("ENTRYPOINT"))
    cmd = json.loads(dockerfile_instruction("CMD"))
    assert entrypoint + cmd == ["wanbot", "run"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/wanbot run" in readme
    assert "USER wanbot" in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'VOLUME ["/data"]' in (ROOT / "Dockerfile").read_text(encoding="utf-8")
