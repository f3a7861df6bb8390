"""The job engine end to end against the fake crun server and a real SQLite file."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.domain.models import (
    DeliveryState,
    GenerationRequest,
    ImageRef,
    ImageSource,
    JobStatus,
    Mode,
    Resolution,
    Target,
)
from bot.errors import InvalidInput
from bot.jobs.delivery import ProgressKind
from bot.jobs.engine import JobEngine
from bot.store.instances import InstanceRepository
from bot.wan.callbacks import CallbackServer, make_app
from tests.conftest import Harness
from tests.helpers import crash, wait_until

T2I = GenerationRequest(prompt="a lighthouse on a basalt cliff at dusk", n=2)
TEST = Target("test", {})


async def _status(h: Harness, job_id: str) -> JobStatus:
    return (await h.jobs.require(job_id)).status


class LateWake:
    """The callback server starts before the engine (the engine needs its port)."""

    engine: JobEngine | None = None

    def __call__(self, job_id: str) -> bool:
        return self.engine.wake(job_id) if self.engine else False


def _png(size: tuple[int, int], color: tuple[int, ...] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


async def test_text_to_image_is_delivered_once_with_real_pngs(harness: Harness) -> None:
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=2, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)

    assert done.status is JobStatus.SUCCEEDED
    assert done.delivery_state is DeliveryState.DONE
    assert harness.crun.calls["create"] == 1
    outcome = harness.sink.delivered[job.id]
    assert len(outcome.images) == 2
    for n, img in enumerate(outcome.images, start=1):
        assert img.filename == f"wan-{job.id}-{n}.png"
        with Image.open(io.BytesIO(img.data)) as im:
            assert im.format == "PNG"
            assert im.size == harness.crun.image_size
    assert harness.sink.attempts == [job.id]
    # What crun received is the contract's mapping of the request.
    sent = harness.crun.tasks[done.task_id or ""].input
    assert sent["prompt"] == T2I.prompt
    assert sent["n"] == 2
    kinds = [p.kind for _, p in harness.sink.progress_log]
    assert ProgressKind.SUBMITTED in kinds


async def test_invalid_request_is_refused_before_anything_is_stored(harness: Harness) -> None:
    engine = await harness.engine()
    bad = GenerationRequest(prompt="x", mode=Mode.EDIT)  # an edit without images
    try:
        await engine.submit(bad, user_id=1, guild_id=None, target=TEST)
    except InvalidInput as exc:
        assert "image" in exc.user_message.lower()
    else:
        raise AssertionError("expected InvalidInput")
    assert await harness.jobs.count_by_status() == {}
    assert harness.crun.calls["create"] == 0


async def test_job_row_exists_before_create_task_is_sent(harness: Harness) -> None:
    harness.crun.slow("create", 0.3)
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await wait_until(lambda: harness.crun.calls["create"] == 1, what="CreateTask to arrive")
    assert await _status(harness, job.id) is JobStatus.SUBMITTING
    assert await harness.jobs.create_was_sent(job.id)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED


async def test_ambiguous_500_is_never_resubmitted(harness: Harness) -> None:
    harness.crun.fail_after_create(mode="500")
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)

    assert done.status is JobStatus.UNCERTAIN
    assert harness.crun.calls["create"] == 1
    assert len(harness.crun.tasks) == 1  # crun did create (and bill) one task; we made no second
    message = harness.sink.delivered[job.id].error_message or ""
    assert "not sent again" in message
    assert job.id in message


async def test_ambiguous_dropped_connection_is_never_resubmitted(harness: Harness) -> None:
    harness.crun.fail_after_create(mode="drop")
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.UNCERTAIN
    assert harness.crun.calls["create"] == 1


async def test_ambiguous_timeout_is_never_resubmitted(harness: Harness) -> None:
    harness.crun.fail_after_create(mode="slow", seconds=3.0)
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)  # the client times out after 2 s
    assert done.status is JobStatus.UNCERTAIN
    assert harness.crun.calls["create"] == 1


async def test_rate_limited_submit_is_requeued_and_succeeds(harness: Harness) -> None:
    harness.crun.fail("create", 429, retry_after=0.05)
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert harness.crun.calls["create"] == 2
    assert len(harness.crun.tasks) == 1
    events = [e for _, e, _ in await harness.jobs.events(job.id)]
    assert "requeued" in events


async def test_maintenance_then_recovery(harness: Harness) -> None:
    harness.crun.fail("create", 455, times=2)
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert harness.crun.calls["create"] == 3


async def test_out_of_credits_fails_with_a_clear_message(harness: Harness) -> None:
    harness.crun.balance = 1  # less than one image costs
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.FAILED
    assert done.error_code == "api-402"
    assert "credits have run out" in (harness.sink.delivered[job.id].error_message or "")
    assert harness.crun.calls["create"] == 1


async def test_validation_error_from_the_api_is_shown(harness: Harness) -> None:
    harness.crun.fail("create", 422, message="n must be <= 4")
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await engine.wait_finished(job.id, timeout=10)
    message = harness.sink.delivered[job.id].error_message or ""
    assert "n must be <= 4" in message
    assert harness.crun.api_key not in message


async def test_upstream_failure_is_reported_with_its_reason(harness: Harness) -> None:
    harness.crun.outcome = lambda _input: ("failed", "DataInspectionFailed: input unsafe")
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.FAILED
    assert "content filter" in (harness.sink.delivered[job.id].error_message or "")


async def test_transient_poll_errors_are_retried(harness: Harness) -> None:
    harness.crun.fail("info", 500, times=5)
    harness.crun.drop("info", times=2)
    harness.crun.malformed("info", times=2)
    harness.crun.fail("info", 429, retry_after=0.05)
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=15)
    assert done.status is JobStatus.SUCCEEDED
    assert harness.crun.calls["create"] == 1


async def test_task_unknown_to_crun_is_eventually_lost(harness: Harness) -> None:
    harness.crun.fail("info", 404, times=50)
    engine = await harness.engine(not_found_limit=3)
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.FAILED
    assert done.error_code == "lost"


async def test_hard_deadline_expires_and_soft_deadline_warns_once(harness: Harness) -> None:
    harness.crun.task_latency = None  # the task never finishes
    engine = await harness.engine(soft_deadline=0.1, hard_deadline=0.6)
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.EXPIRED
    slow = [p for jid, p in harness.sink.progress_log if p.kind is ProgressKind.SLOW]
    assert len(slow) == 1
    assert "abandoned" in (harness.sink.delivered[job.id].error_message or "")


async def test_running_status_is_reported(harness: Harness) -> None:
    harness.crun.task_latency = 1.0  # running after 0.5 s; polled every 20-50 ms
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await engine.wait_finished(job.id, timeout=10)
    kinds = [p.kind for jid, p in harness.sink.progress_log if jid == job.id]
    assert ProgressKind.RUNNING in kinds


async def test_concurrency_cap_holds_jobs_in_a_fair_queue(harness: Harness) -> None:
    harness.crun.task_latency = None
    engine = await harness.engine(max_concurrent_jobs=2)
    flood = [await engine.submit(T2I, user_id=1, guild_id=None, target=TEST) for _ in range(4)]
    other = await engine.submit(T2I, user_id=2, guild_id=None, target=TEST)
    await wait_until(lambda: len(harness.crun.tasks) == 2, what="two tasks at crun")
    assert engine.queue_position(other.id) == 1  # not behind user 1's backlog
    queued = [p for jid, p in harness.sink.progress_log if p.kind is ProgressKind.QUEUED]
    assert queued  # the waiting users were told their place
    first = next(iter(harness.crun.tasks))
    harness.crun.finish(first)
    await wait_until(lambda: len(harness.crun.tasks) == 3, what="the next task")
    third = list(harness.crun.tasks.values())[2]
    # crun has the task a moment before the bot has stored its id.
    await wait_until(lambda: harness.crun.calls["create"] >= 3, what="the third create")
    stored = None
    for _ in range(200):
        stored = await harness.jobs.by_task_id(third.task_id)
        if stored is not None:
            break
        await asyncio.sleep(0.01)
    assert stored is not None
    assert stored.id == other.id
    for task_id in list(harness.crun.tasks):
        if not harness.crun.tasks[task_id].terminal:
            harness.crun.finish(task_id)
    for job in [*flood, other]:
        while not (await harness.jobs.require(job.id)).finished:
            for task_id, task in list(harness.crun.tasks.items()):
                if not task.terminal:
                    harness.crun.finish(task_id)
            await asyncio.sleep(0.01)
    assert len(harness.crun.tasks) == 5


async def test_delivery_retries_transient_errors_and_counts_once(harness: Harness) -> None:
    harness.sink.fail_next = 2
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.delivery_state is DeliveryState.DONE
    assert done.delivery_attempts == 3
    assert harness.sink.attempts == [job.id] * 3
    assert list(harness.sink.delivered) == [job.id]


async def test_deleted_target_gives_up_without_retrying(harness: Harness) -> None:
    engine = await harness.engine()
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    harness.sink.gone.add(job.id)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.delivery_state is DeliveryState.GAVE_UP
    assert harness.sink.attempts == [job.id]


async def test_edit_uploads_local_images_and_resumes_uploads(
    harness: Harness, tmp_path: Path
) -> None:
    paths = []
    for i, color in enumerate([(255, 0, 0), (0, 255, 0)]):
        p = tmp_path / f"in{i}.png"
        p.write_bytes(_png((300, 400), color))
        paths.append(p)
    request = GenerationRequest(
        prompt="put the mug from image 1 on the desk in image 2",
        mode=Mode.EDIT,
        images=tuple(ImageRef(ImageSource.PATH, str(p), name=p.name) for p in paths),
        resolution=Resolution.R2K,
    )
    engine = await harness.engine()
    job = await engine.submit(request, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert harness.crun.calls["upload_put"] == 2
    sent = harness.crun.tasks[done.task_id or ""].input
    assert sent["img_urls"] == list(done.uploaded_urls)
    # The uploaded bytes are the images we were given (PNG without alpha passes through).
    assert sorted(harness.crun.uploads.values()) == sorted(p.read_bytes() for p in paths)


async def test_bad_input_image_fails_the_job_with_its_name(
    harness: Harness, tmp_path: Path
) -> None:
    p = tmp_path / "tiny.png"
    p.write_bytes(_png((10, 10)))
    request = GenerationRequest(
        prompt="edit this", mode=Mode.EDIT, images=(ImageRef(ImageSource.PATH, str(p), "tiny.png"),)
    )
    engine = await harness.engine()
    job = await engine.submit(request, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.FAILED
    assert "tiny.png" in (harness.sink.delivered[job.id].error_message or "")
    assert harness.crun.calls["create"] == 0


async def test_callback_wakes_the_engine_long_before_the_next_poll(harness: Harness) -> None:
    engine_ref = LateWake()
    app = make_app(harness.jobs.callback_token, engine_ref)
    server = CallbackServer(app, "127.0.0.1", 0)
    port = await server.start()
    try:
        harness.crun.task_latency = 0.2
        # Fallback polling every 30 s: only the callback can finish this in time.
        engine = await harness.engine(
            callback_base_url=f"http://127.0.0.1:{port}",
            callback_poll_interval=30.0,
            poll_interval_max=30.0,
        )
        engine_ref.engine = engine
        job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
        done = await engine.wait_finished(job.id, timeout=8)
        assert done.status is JobStatus.SUCCEEDED
        attempts = await harness.crun.wait_for_callbacks(1)
        assert attempts[0].status == 200
        assert harness.crun.calls["info"] == 1  # one TaskInfo, triggered by the callback
    finally:
        await server.stop()


async def test_callback_with_a_wrong_token_is_refused(harness: Harness) -> None:
    engine = await harness.engine()
    harness.crun.task_latency = None
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await wait_until(lambda: len(harness.crun.tasks) == 1, what="the task")
    woke: list[str] = []
    app = make_app(harness.jobs.callback_token, lambda jid: woke.append(jid) is None)
    server = CallbackServer(app, "127.0.0.1", 0)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as s:
            base = f"http://127.0.0.1:{port}/crun/callback"
            async with s.post(f"{base}/{job.id}?t=wrong", json={}) as r:
                assert r.status == 404
            async with s.post(f"{base}/nosuchjob?t=x", json={}) as r:
                assert r.status == 404
            token = await harness.jobs.callback_token(job.id)
            async with s.post(f"{base}/{job.id}?t={token}", data=b"x" * 200_000) as r:
                assert r.status == 413  # body cap
            async with s.post(f"{base}/{job.id}?t={token}", json={"status": "success"}) as r:
                assert r.status == 200
        assert woke == [job.id]
    finally:
        await server.stop()
    harness.crun.finish(next(iter(harness.crun.tasks)))
    await engine.wait_finished(job.id, timeout=10)


async def test_lying_callback_is_not_trusted(harness: Harness) -> None:
    """A callback claiming success with foreign URLs only triggers a TaskInfo read."""
    harness.crun.task_latency = None
    engine_ref = LateWake()
    app = make_app(harness.jobs.callback_token, engine_ref)
    server = CallbackServer(app, "127.0.0.1", 0)
    port = await server.start()
    try:
        engine = await harness.engine(
            callback_base_url=f"http://127.0.0.1:{port}", callback_poll_interval=30.0
        )
        engine_ref.engine = engine
        job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
        await wait_until(lambda: len(harness.crun.tasks) == 1, what="the task")
        task = next(iter(harness.crun.tasks.values()))
        token = await harness.jobs.callback_token(job.id)
        async with aiohttp.ClientSession() as s:
            lie = {
                "task_id": task.task_id,
                "status": "success",
                "result": {"media_urls": ["https://evil.example/x.png"]},
            }
            async with s.post(task.callback_url or "", json=lie) as r:
                assert r.status == 200
        assert token and token in (task.callback_url or "")
        await wait_until(lambda: harness.crun.calls["info"] >= 1, what="the verifying TaskInfo")
        assert await _status(harness, job.id) is JobStatus.PENDING
        harness.crun.finish(task.task_id)
        done = await engine.wait_finished(job.id, timeout=10)
        assert all("evil" not in u for u in done.result_urls)
    finally:
        await server.stop()


async def test_a_callback_poll_jumps_the_queue_of_submits(harness: Harness) -> None:
    """A member is waiting on a woken poll: it goes before creates already waiting for the
    rate limiter, instead of behind them."""
    harness.crun.task_latency = None
    waker = LateWake()
    server = CallbackServer(make_app(harness.jobs.callback_token, waker), "127.0.0.1", 0)
    port = await server.start()
    try:
        engine = await harness.engine(
            callback_base_url=f"http://127.0.0.1:{port}",
            callback_poll_interval=30.0,
            api_rate_limit=2.0,  # one routine request per ~0.5 s: a queue forms at once
            max_concurrent_jobs=50,
        )
        waker.engine = engine
        first = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
        await wait_until(lambda: len(harness.crun.tasks) == 1, what="the first task")
        task_id = next(iter(harness.crun.tasks))
        for user in range(2, 8):
            await engine.submit(T2I, user_id=user, guild_id=None, target=TEST)
        await wait_until(lambda: harness.crun.calls["create"] >= 2, what="the queue to move")
        mark = len(harness.crun.requests)
        harness.crun.finish(task_id)
        await engine.wait_finished(first.id, timeout=10)
        later = harness.crun.requests[mark:]
        poll = next(i for i, (ep, rec) in enumerate(later) if ep == "info" and task_id in str(rec))
        creates_first = sum(1 for ep, _ in later[:poll] if ep == "create")
        # Without priority the poll waited behind the four submit workers' creates.
        assert creates_first <= 1, later[: poll + 1]
    finally:
        await server.stop()


# --- restarts -----------------------------------------------------------------------------------


async def _crash_and_restart(harness: Harness, old: JobEngine) -> JobEngine:
    await crash(old)
    # The crashed instance shares our pid, so lapse its leases as a dead process's would.
    await InstanceRepository(harness.db).heartbeat(old.instance_id, now=0.0, lease_until=0.0)
    return await harness.engine()


async def test_restart_mid_poll_resumes_and_delivers_once(harness: Harness) -> None:
    harness.crun.task_latency = None
    first = await harness.engine()
    job = await first.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await wait_until(lambda: len(harness.crun.tasks) == 1, what="the task")
    task_id = next(iter(harness.crun.tasks))
    await wait_until(lambda: _is(harness, job.id, JobStatus.PENDING), what="pending")
    second = await _crash_and_restart(harness, first)
    harness.crun.finish(task_id)
    done = await second.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert harness.crun.calls["create"] == 1
    assert list(harness.sink.delivered) == [job.id]
    assert harness.sink.attempts == [job.id]


async def _is(h: Harness, job_id: str, status: JobStatus) -> bool:
    return await _status(h, job_id) is status


async def test_restart_mid_submit_before_send_submits_once(harness: Harness) -> None:
    harness.crun.slow("upload_url", 5.0)  # hold the job inside the upload step
    p = harness.tmp_path / "in.png"
    p.write_bytes(_png((300, 300)))
    request = GenerationRequest(
        prompt="make it blue", mode=Mode.EDIT, images=(ImageRef(ImageSource.PATH, str(p)),)
    )
    first = await harness.engine()
    job = await first.submit(request, user_id=1, guild_id=None, target=TEST)
    await wait_until(lambda: harness.crun.calls["upload_url"] == 1, what="the upload to start")
    assert await _status(harness, job.id) is JobStatus.SUBMITTING
    harness.crun.clear_faults()
    second = await _crash_and_restart(harness, first)
    done = await second.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert harness.crun.calls["create"] == 1


async def test_restart_after_create_sent_marks_uncertain(harness: Harness) -> None:
    harness.crun.slow("create", 1.0)
    first = await harness.engine()
    job = await first.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await wait_until(lambda: harness.crun.calls["create"] == 1, what="CreateTask in flight")
    second = await _crash_and_restart(harness, first)
    done = await second.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.UNCERTAIN
    assert harness.crun.calls["create"] == 1
    assert list(harness.sink.delivered) == [job.id]


async def test_restart_mid_delivery_redelivers_with_the_same_key(harness: Harness) -> None:
    harness.sink.block = asyncio.Event()
    first = await harness.engine()
    job = await first.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await asyncio.wait_for(harness.sink.entered.wait(), 10)
    assert (await harness.jobs.require(job.id)).delivery_state is DeliveryState.STARTED
    second = await _crash_and_restart(harness, first)
    harness.sink.block.set()
    done = await second.wait_finished(job.id, timeout=10)
    assert done.delivery_state is DeliveryState.DONE
    # The sink saw two attempts for the same job id and kept exactly one result.
    assert harness.sink.attempts == [job.id, job.id]
    assert list(harness.sink.delivered) == [job.id]
    assert harness.crun.calls["create"] == 1


async def test_graceful_stop_releases_jobs_for_the_next_start(harness: Harness) -> None:
    harness.crun.task_latency = None
    first = await harness.engine()
    job = await first.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await wait_until(lambda: _is(harness, job.id, JobStatus.PENDING), what="pending")
    await first.stop()
    second = await harness.engine(instance_stale_after=3600.0)  # no waiting for staleness
    harness.crun.finish(next(iter(harness.crun.tasks)))
    done = await second.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED


async def test_a_live_engine_does_not_steal_another_live_engines_jobs(harness: Harness) -> None:
    harness.crun.task_latency = None
    first = await harness.engine()
    job = await first.submit(T2I, user_id=1, guild_id=None, target=TEST)
    await wait_until(lambda: _is(harness, job.id, JobStatus.PENDING), what="pending")
    second = await harness.engine(start=False)
    assert await second.start() == 0
    polls_before = harness.crun.calls["info"]
    harness.crun.finish(next(iter(harness.crun.tasks)))
    await first.wait_finished(job.id, timeout=10)
    assert harness.crun.calls["info"] > polls_before
    row = await harness.jobs.require(job.id)
    assert row.delivery_state is DeliveryState.DONE
    assert harness.sink.attempts == [job.id]


async def test_an_unexpected_poll_error_does_not_strand_the_job(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await harness.engine()
    real = harness.client.task_info
    calls = {"n": 0}

    async def flaky(task_id: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RecursionError("a parser bug")
        return await real(task_id, **kwargs)

    monkeypatch.setattr(harness.client, "task_info", flaky)
    job = await engine.submit(T2I, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert calls["n"] >= 2


async def test_the_engine_keeps_nothing_per_job_once_jobs_are_done(harness: Harness) -> None:
    # A bot runs for months: every per-job entry the engine keeps in memory must go when the job
    # is delivered, whatever way it ended (regression: one wait event per job stayed forever).
    harness.crun.outcome = lambda inp: (
        ("failed", "DataInspectionFailed") if "refuse" in inp["prompt"] else ("success", None)
    )
    harness.crun.fail("info", 500, times=3)
    harness.sink.fail_next = 1
    engine = await harness.engine(max_concurrent_jobs=2)
    prompts = ["a fox", "a cat", "please refuse this", "an owl", "a heron"]
    jobs = [
        await engine.submit(GenerationRequest(prompt=p), user_id=i % 2, guild_id=7, target=TEST)
        for i, p in enumerate(prompts)
    ]
    harness.sink.gone.add(jobs[-1].id)
    done = [await engine.wait_finished(j.id, timeout=15) for j in jobs]
    assert [d.status for d in done].count(JobStatus.FAILED) == 1
    assert all(d.delivery_state is not DeliveryState.NONE for d in done)
    await wait_until(lambda: engine._scheduler.idle, what="the last deliveries to return")
    per_job = {
        "job records": len(engine._records),
        "slots at crun": engine.inflight,
        "scheduled steps": engine._scheduler.pending,
    }
    assert {name: n for name, n in per_job.items() if n} == {}
    assert engine.queue_depth == 0
    # wait_finished still answers for a job it no longer tracks, from the store.
    again = await engine.wait_finished(jobs[0].id, timeout=1)
    assert again.delivery_state is DeliveryState.DONE
