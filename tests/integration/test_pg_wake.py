"""Several processes on one PostgreSQL: a crun callback that reaches any process wakes the job
where it is tracked (NOTIFY/LISTEN), and each process counts its leases and takeovers."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import aiohttp
import asyncpg
import pytest

from bot.domain.models import GenerationRequest, JobStatus, Target
from bot.runtime import WAKE_CHANNEL, Runtime
from bot.settings import Settings
from bot.store.instances import InstanceRepository
from bot.store.pg_database import PgListener
from bot.store.quotas import Charge
from tests.conftest import FAST
from tests.fakes.crun_server import FakeCrun
from tests.helpers import RecordingSink, crash, wait_until

pytest_plugins = ["tests.pg"]  # pg_url: a fresh schema on the test server

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

REQ = GenerationRequest(prompt="a heron in the reeds")
TEST = Target("test", {})
SLOW_POLLS = 30.0  # only a wake can explain a poll within a few seconds

RuntimeFactory = Callable[..., Awaitable[Runtime]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def make_runtime(pg_url: str, crun: FakeCrun) -> AsyncIterator[RuntimeFactory]:
    """Runtimes as separate `wanbot run` processes would be: one schema, one fake crun, each
    with its own callback server (crun is told the URL of the process that submitted)."""
    opened: list[Runtime] = []

    async def make(**config: Any) -> Runtime:
        port = _free_port()
        values: dict[str, Any] = {
            "wan_api_key": crun.api_key,
            "wan_api_base": crun.base_url,
            "database_url": pg_url,
            "allow_http_results": True,
            "callback_public_url": f"http://127.0.0.1:{port}",
            "callback_listen": f"127.0.0.1:{port}",
        }
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        engine_config = dataclasses.replace(
            FAST,
            quota=settings.quota_policy(),
            callback_base_url=settings.callback_public_url,
            **config,
        )
        sink = RecordingSink()
        runtime = Runtime(settings, sinks={"test": lambda _rt: sink}, engine_config=engine_config)
        await runtime.open()
        opened.append(runtime)
        await cast(PgListener, runtime.wake_listener).connected.wait()
        return runtime

    yield make
    for runtime in reversed(opened):
        await runtime.close()


async def _submitted(runtime: Runtime, crun: FakeCrun) -> tuple[str, str]:
    """Submit a job on ``runtime`` and wait until crun has its task: (job id, task id)."""
    job = await runtime.engine.submit(REQ, user_id=7, guild_id=70, target=TEST, charge=Charge(1.0))

    async def has_task() -> bool:
        return (await runtime.jobs.require(job.id)).task_id is not None

    await wait_until(has_task, what="the task at crun")
    task_id = (await runtime.jobs.require(job.id)).task_id
    assert task_id is not None
    return job.id, task_id


async def _post_callback(runtime: Runtime, job_id: str, token: str) -> int:
    assert runtime.callback_server is not None
    url = f"http://127.0.0.1:{runtime.callback_server.port}/crun/callback/{job_id}?t={token}"
    async with aiohttp.ClientSession() as session, session.post(url, json={}) as resp:
        return resp.status


def _info_calls(crun: FakeCrun, task_id: str) -> int:
    return sum(1 for ep, rec in crun.requests if ep == "info" and task_id in str(rec))


async def test_a_callback_that_reaches_another_process_wakes_the_one_tracking_the_job(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    crun.task_latency = None  # tasks end when the test says
    crun.callbacks_enabled = False  # the test delivers the callback, to the other process
    a = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    b = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    job_id, task_id = await _submitted(a, crun)
    token = await a.jobs.callback_token(job_id)
    assert token is not None
    crun.finish(task_id)
    polls = _info_calls(crun, task_id)

    assert await _post_callback(b, job_id, token) == 200
    done = await a.engine.wait_finished(job_id, timeout=5)  # its next poll is 30 s away

    assert done.status is JobStatus.SUCCEEDED
    assert _info_calls(crun, task_id) > polls
    assert not b.engine.wake(job_id)  # B never tracked it: A polled it


async def test_a_wrong_token_wakes_and_notifies_nothing(
    make_runtime: RuntimeFactory, crun: FakeCrun, pg_url: str
) -> None:
    crun.task_latency = None
    crun.callbacks_enabled = False
    a = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    b = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    job_id, task_id = await _submitted(a, crun)
    token = await a.jobs.callback_token(job_id)
    assert token is not None
    crun.finish(task_id)
    polls = _info_calls(crun, task_id)
    heard: list[str] = []
    watcher = await asyncpg.connect(pg_url)
    try:
        await watcher.add_listener(WAKE_CHANNEL, lambda *args: heard.append(args[-1]))
        assert await _post_callback(b, job_id, "not-the-token") == 404
        assert await _post_callback(b, job_id, token) == 200
        # NOTIFYs arrive in order: had the refused POST published anything, it would come first.
        await wait_until(lambda: job_id in heard, what="the NOTIFY of the accepted callback")
    finally:
        await watcher.close()
    assert heard.count(job_id) == 1
    # A hears the NOTIFY on its own connection and polls: wait for that, then look.
    assert (await a.engine.wait_finished(job_id, timeout=5)).status is JobStatus.SUCCEEDED
    assert _info_calls(crun, task_id) > polls


async def test_the_listener_comes_back_after_its_connection_drops(
    make_runtime: RuntimeFactory, crun: FakeCrun, pg_url: str
) -> None:
    crun.task_latency = None
    crun.callbacks_enabled = False
    a = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    b = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    listener = cast(PgListener, a.wake_listener)
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", listener.server_pid)
    finally:
        await admin.close()
    await wait_until(lambda: listener.connections == 2, timeout=10, what="a new LISTEN")
    job_id, task_id = await _submitted(a, crun)
    token = await a.jobs.callback_token(job_id)
    assert token is not None
    crun.finish(task_id)
    assert await _post_callback(b, job_id, token) == 200
    assert (await a.engine.wait_finished(job_id, timeout=5)).status is JobStatus.SUCCEEDED


def _sample(runtime: Runtime, name: str) -> float | None:
    return runtime.metrics.registry.get_sample_value(name)


async def test_leases_held_and_takeovers_are_counted_per_process(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    crun.task_latency = None
    a = await make_runtime()
    b = await make_runtime()
    job_id, task_id = await _submitted(a, crun)
    assert _sample(a, "wanbot_leases_held") == 1
    assert _sample(b, "wanbot_leases_held") == 0
    assert _sample(b, "wanbot_lease_takeovers_total") == 0

    await crash(a.engine)  # A dies holding the job; its heartbeat ages as a dead one's would
    await InstanceRepository(b.db).heartbeat(a.engine.instance_id, now=0.0)
    await wait_until(lambda: _sample(b, "wanbot_leases_held") == 1, what="B's takeover")

    assert _sample(b, "wanbot_lease_takeovers_total") == 1
    crun.finish(task_id)
    assert (await b.engine.wait_finished(job_id, timeout=10)).status is JobStatus.SUCCEEDED
    await wait_until(lambda: _sample(b, "wanbot_leases_held") == 0, what="the lease given back")
    assert _sample(b, "wanbot_lease_takeovers_total") == 1
