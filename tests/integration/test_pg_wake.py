"""Several processes on one PostgreSQL: a crun callback that reaches any process wakes the job
where it is tracked (NOTIFY/LISTEN), and each process counts its leases and takeovers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import aiohttp
import asyncpg
import pytest

from bot.domain.models import GenerationRequest, JobStatus, Target
from bot.runtime import WAKE_CHANNEL, Runtime
from bot.store.instances import InstanceRepository
from bot.store.pg_database import PgListener
from bot.store.quotas import Charge
from tests.fakes.crun_server import FakeCrun
from tests.helpers import crash, wait_until

pytest_plugins = ["tests.pg"]  # make_runtime: runtimes on a fresh schema of the test server

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

REQ = GenerationRequest(prompt="a heron in the reeds")
TEST = Target("test", {})
RuntimeFactory = Callable[..., Awaitable[Runtime]]  # tests.pg's make_runtime
SLOW_POLLS = 30.0  # only a wake can explain a poll within a few seconds


async def _submitted(
    runtime: Runtime, other: Runtime, crun: FakeCrun
) -> tuple[str, str, Runtime, Runtime]:
    """Submit a job on ``runtime`` and wait until crun has its task: (job id, task id, the
    runtime that tracks it, the one that does not). Either may have taken it from the line."""
    job = await runtime.engine.submit(REQ, user_id=7, guild_id=70, target=TEST, charge=Charge(1.0))

    async def has_task() -> bool:
        return (await runtime.jobs.require(job.id)).task_id is not None

    await wait_until(has_task, what="the task at crun")
    row = await runtime.db.fetchone("SELECT task_id, owner FROM jobs WHERE id = ?", (job.id,))
    assert row is not None and row["task_id"] is not None
    if row["owner"] == runtime.engine.instance_id:
        return job.id, row["task_id"], runtime, other
    assert row["owner"] == other.engine.instance_id
    return job.id, row["task_id"], other, runtime


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
    job_id, task_id, tracker, other = await _submitted(a, b, crun)
    token = await a.jobs.callback_token(job_id)
    assert token is not None
    crun.finish(task_id)
    polls = _info_calls(crun, task_id)

    assert await _post_callback(other, job_id, token) == 200
    done = await tracker.engine.wait_finished(job_id, timeout=5)  # its next poll is 30 s away

    assert done.status is JobStatus.SUCCEEDED
    assert _info_calls(crun, task_id) > polls
    assert not other.engine.wake(job_id)  # the other never tracked it


async def test_a_wrong_token_wakes_and_notifies_nothing(
    make_runtime: RuntimeFactory, crun: FakeCrun, pg_url: str
) -> None:
    crun.task_latency = None
    crun.callbacks_enabled = False
    a = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    b = await make_runtime(poll_interval_max=SLOW_POLLS, callback_poll_interval=SLOW_POLLS)
    job_id, task_id, tracker, other = await _submitted(a, b, crun)
    token = await a.jobs.callback_token(job_id)
    assert token is not None
    crun.finish(task_id)
    polls = _info_calls(crun, task_id)
    heard: list[str] = []
    watcher = await asyncpg.connect(pg_url)
    try:
        await watcher.add_listener(WAKE_CHANNEL, lambda *args: heard.append(args[-1]))
        assert await _post_callback(other, job_id, "not-the-token") == 404
        assert await _post_callback(other, job_id, token) == 200
        # NOTIFYs arrive in order: had the refused POST published anything, it would come first.
        await wait_until(lambda: job_id in heard, what="the NOTIFY of the accepted callback")
    finally:
        await watcher.close()
    assert heard.count(job_id) == 1
    # The tracker hears the NOTIFY on its own connection and polls: wait for that, then look.
    assert (await tracker.engine.wait_finished(job_id, timeout=5)).status is JobStatus.SUCCEEDED
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
    job_id, task_id, tracker, other = await _submitted(a, b, crun)
    token = await a.jobs.callback_token(job_id)
    assert token is not None
    crun.finish(task_id)
    assert await _post_callback(other, job_id, token) == 200
    assert (await tracker.engine.wait_finished(job_id, timeout=5)).status is JobStatus.SUCCEEDED


def _sample(runtime: Runtime, name: str) -> float | None:
    return runtime.metrics.registry.get_sample_value(name)


async def test_leases_held_and_takeovers_are_counted_per_process(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    crun.task_latency = None
    a = await make_runtime()
    b = await make_runtime()
    job_id, task_id, tracker, other = await _submitted(a, b, crun)
    assert _sample(tracker, "wanbot_leases_held") == 1
    assert _sample(other, "wanbot_leases_held") == 0
    assert _sample(other, "wanbot_lease_takeovers_total") == 0

    await crash(tracker.engine)  # it dies holding the job; its lease lapses as a dead one's
    await InstanceRepository(b.db).heartbeat(tracker.engine.instance_id, now=0.0, lease_until=0.0)
    await wait_until(lambda: _sample(other, "wanbot_leases_held") == 1, what="the takeover")

    assert _sample(other, "wanbot_lease_takeovers_total") == 1
    crun.finish(task_id)
    assert (await other.engine.wait_finished(job_id, timeout=10)).status is JobStatus.SUCCEEDED
    await wait_until(lambda: _sample(other, "wanbot_leases_held") == 0, what="lease given back")
    assert _sample(other, "wanbot_lease_takeovers_total") == 1
