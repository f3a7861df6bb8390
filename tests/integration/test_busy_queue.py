"""Busy servers through the real engine against the fake crun: every reasonable request is
accepted and waits its turn; only the queue limits refuse; places shown go down; a waiting job
can be cancelled for nothing; the line survives a restart; a top-up is seen at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.domain.models import (
    DeliveryState,
    GenerationRequest,
    ImageRef,
    ImageSource,
    Job,
    JobStatus,
    Mode,
    Target,
)
from bot.domain.quota import QuotaPolicy
from bot.domain.text import Text
from bot.errors import QuotaExceeded, ServiceUnavailable
from bot.jobs.credits import CreditMonitor, CreditState
from bot.jobs.delivery import ProgressKind
from bot.jobs.engine import CancelResult, JobEngine
from bot.store.instances import InstanceRepository
from bot.store.meta import MetaRepository
from bot.store.quotas import Charge, QuotaRepository
from tests.conftest import Harness
from tests.helpers import crash, png, wait_until

TEST = Target("test", {})
GUILD = 31
OTHER_GUILD = 32


def req(name: str = "a kite over the dunes") -> GenerationRequest:
    return GenerationRequest(prompt=name)


async def submit(
    engine: JobEngine, user: int, guild: int | None = GUILD, name: str = "a kite"
) -> Job:
    return await engine.submit(
        req(name), user_id=user, guild_id=guild, target=TEST, charge=Charge(1.0)
    )


async def status(h: Harness, job_id: str) -> JobStatus:
    return (await h.jobs.require(job_id)).status


async def at_crun(h: Harness, count: int) -> None:
    """Wait until ``count`` tasks exist and every one's job has its task id stored."""
    await wait_until(lambda: len(h.crun.tasks) == count, what=f"{count} tasks at crun")

    async def stored() -> bool:
        return all([await h.jobs.by_task_id(t) is not None for t in list(h.crun.tasks)])

    await wait_until(stored, what="the task ids to be stored")


def most_at_once(jobs: list[Job]) -> int:
    """The most jobs that were at crun at the same moment (submitted .. finished)."""
    edges = sorted(
        [(j.submitted_at or 0.0, 1) for j in jobs] + [(j.finished_at or 0.0, -1) for j in jobs]
    )
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


async def test_twenty_members_at_once_on_one_server_all_get_images(harness: Harness) -> None:
    harness.crun.task_latency = 0.2
    engine = await harness.engine()  # 20 at crun, 10 per server, 2 per member (the defaults)
    jobs = await asyncio.gather(*(submit(engine, 100 + i) for i in range(20)))  # none refused
    done = [await engine.wait_finished(j.id, timeout=30) for j in jobs]
    assert [d.status for d in done] == [JobStatus.SUCCEEDED] * 20
    assert sorted(harness.sink.delivered) == sorted(j.id for j in jobs)
    assert len(harness.sink.attempts) == 20  # each delivered once
    assert most_at_once(done) <= 10  # the server's running limit held the rest in line
    assert harness.crun.calls["create"] == 20


async def test_a_members_sixth_waiting_job_is_refused_with_the_member_limit(
    harness: Harness,
) -> None:
    harness.crun.task_latency = None
    engine = await harness.engine()
    for _ in range(2):  # USER_CONCURRENT_JOBS: both run
        await submit(engine, 1)
    await at_crun(harness, 2)
    for _ in range(5):  # USER_QUEUE_LIMIT: five more wait
        await submit(engine, 1)
    with pytest.raises(QuotaExceeded) as refused:
        await submit(engine, 1)
    assert refused.value.user_message.startswith("You already have 5 images waiting in line")
    assert "nothing was charged" in refused.value.user_message
    await submit(engine, 2)  # the limit is the member's own
    assert engine.queue_depth == 6
    rows = await harness.db.fetchall("SELECT COUNT(*) FROM ledger")
    assert rows[0][0] == 8  # the refused request reserved nothing


async def test_server_and_bot_queue_limits_each_have_their_own_message(harness: Harness) -> None:
    harness.crun.task_latency = None
    quota = QuotaPolicy(guild_queue_limit=3, queue_limit=5)
    engine = await harness.engine(max_concurrent_jobs=1, quota=quota)
    await submit(engine, 1)
    await at_crun(harness, 1)
    for user in (2, 3, 4):
        await submit(engine, user)
    with pytest.raises(QuotaExceeded, match="This server already has 3 images waiting in line"):
        await submit(engine, 5)
    await submit(engine, 6, guild=OTHER_GUILD)  # another server still has room
    await submit(engine, 7, guild=None)  # and so do DMs
    with pytest.raises(QuotaExceeded, match="The bot already has 5 images waiting in line"):
        await submit(engine, 8, guild=OTHER_GUILD + 1)


async def test_places_shown_go_down_as_the_line_moves(harness: Harness) -> None:
    harness.crun.task_latency = None
    engine = await harness.engine(max_concurrent_jobs=1, queue_update_interval=0.05)
    await submit(engine, 1)
    await at_crun(harness, 1)
    waiting = [await submit(engine, user) for user in (2, 3, 4, 5)]
    last = waiting[-1].id

    def shown(job_id: str) -> list[int | None]:
        log = harness.sink.progress_log
        return [p.queue_position for j, p in log if j == job_id and p.kind is ProgressKind.QUEUED]

    assert shown(last) == [4]  # told at once, in submit()
    for step in range(1, 4):
        harness.crun.finish(list(harness.crun.tasks)[-1])
        await at_crun(harness, 1 + step)
        await wait_until(lambda s=step: shown(last)[-1:] == [4 - s], what=f"place {4 - step}")
    assert shown(last) == [4, 3, 2, 1]
    harness.crun.finish(list(harness.crun.tasks)[-1])
    await at_crun(harness, 5)
    harness.crun.finish(list(harness.crun.tasks)[-1])
    await engine.wait_finished(last, timeout=10)
    # Once a job went to crun, it is never shown as waiting again.
    for job in waiting:
        kinds = [p.kind for j, p in harness.sink.progress_log if j == job.id]
        first_sent = kinds.index(ProgressKind.SUBMITTED)
        assert ProgressKind.QUEUED not in kinds[first_sent:]


async def test_cancel_while_waiting_refunds_and_sends_nothing_to_crun(harness: Harness) -> None:
    harness.crun.task_latency = None
    engine = await harness.engine(max_concurrent_jobs=1)
    first = await submit(engine, 1)
    await at_crun(harness, 1)
    waiting = await engine.submit(req(), user_id=2, guild_id=GUILD, target=TEST, charge=Charge(2.0))
    assert engine.queued_for(2) == [(waiting.id, 1)]

    assert await engine.cancel(waiting.id, by_user_id=99) is CancelResult.CANCELLED
    done = await engine.wait_finished(waiting.id, timeout=5)
    assert done.status is JobStatus.FAILED
    assert done.error_code == "cancelled"
    assert done.delivery_state is DeliveryState.DONE  # the status message said so: no post
    ledger = await QuotaRepository(harness.db, QuotaPolicy()).ledger_state(waiting.id)
    assert ledger == ("refunded", 2.0, 0.0)
    told = [p for j, p in harness.sink.progress_log if j == waiting.id]
    assert told[-1].kind is ProgressKind.CANCELLED
    assert told[-1].cancelled_by == 99
    assert engine.waiting_for(2) == []

    harness.crun.finish(next(iter(harness.crun.tasks)))
    await engine.wait_finished(first.id, timeout=10)
    assert engine.queue_depth == 0
    assert harness.crun.calls["create"] == 1  # only the first job ever reached crun
    assert waiting.id not in harness.sink.delivered
    assert await engine.cancel(waiting.id, by_user_id=2) is CancelResult.FINISHED
    assert await engine.cancel("nosuchjob", by_user_id=2) is CancelResult.NOT_FOUND


async def test_cancel_after_createtask_went_out_says_it_is_at_crun(harness: Harness) -> None:
    harness.crun.task_latency = None
    engine = await harness.engine()
    job = await submit(engine, 1)
    await at_crun(harness, 1)
    assert await engine.cancel(job.id, by_user_id=1) is CancelResult.AT_CRUN
    harness.crun.finish(next(iter(harness.crun.tasks)))
    done = await engine.wait_finished(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert all(p.kind is not ProgressKind.CANCELLED for _, p in harness.sink.progress_log)


async def test_cancel_racing_the_worker_that_took_the_job_has_one_winner(
    harness: Harness, tmp_path: Path
) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(png(300, 300))
    edit = GenerationRequest(
        prompt="make it blue", mode=Mode.EDIT, images=(ImageRef(ImageSource.PATH, str(image)),)
    )
    harness.crun.slow("upload_url", 0.5)  # the worker holds the job, uploading its input
    engine = await harness.engine()
    job = await engine.submit(edit, user_id=1, guild_id=GUILD, target=TEST, charge=Charge(1.0))
    await wait_until(lambda: harness.crun.calls["upload_url"] == 1, what="the upload to start")
    assert await status(harness, job.id) is JobStatus.SUBMITTING
    assert await engine.cancel(job.id, by_user_id=1) is CancelResult.CANCELLED
    await wait_until(lambda: engine.inflight == 0, what="the worker to let the job go")
    assert harness.crun.calls["create"] == 0  # the cancel won: CreateTask never went out
    ledger = await QuotaRepository(harness.db, QuotaPolicy()).ledger_state(job.id)
    assert ledger is not None
    assert ledger[0] == "refunded"


async def test_a_restart_keeps_the_line_in_order(harness: Harness) -> None:
    harness.crun.task_latency = None
    first = await harness.engine(max_concurrent_jobs=1)
    running = await submit(first, 1, name="a1")
    await at_crun(harness, 1)
    asked = [("a2", 1, GUILD), ("a3", 1, GUILD), ("b1", 2, GUILD), ("b2", 2, GUILD)]
    asked += [("c1", 3, OTHER_GUILD), ("d1", 4, None), ("c2", 3, OTHER_GUILD)]
    ids = {(await submit(first, user, guild, name=name)).id: name for name, user, guild in asked}
    before = sorted(ids, key=lambda j: first.queue_position(j) or 0)

    await crash(first)
    await InstanceRepository(harness.db).heartbeat(first.instance_id, now=0.0, lease_until=0.0)
    second = await harness.engine(max_concurrent_jobs=1)
    after = sorted(ids, key=lambda j: second.queue_position(j) or 0)
    assert [second.queue_position(j) for j in after] == list(range(1, len(ids) + 1))
    assert [ids[j] for j in after] == [ids[j] for j in before]

    served = []
    for count in range(2, len(ids) + 2):  # finish what runs; the next in line goes
        harness.crun.finish(list(harness.crun.tasks)[-1])
        await at_crun(harness, count)
        served.append(list(harness.crun.tasks.values())[-1].input["prompt"])
    assert served == [ids[j] for j in before]
    harness.crun.finish(list(harness.crun.tasks)[-1])
    await second.wait_finished(running.id, timeout=10)


class Alerts:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    async def __call__(self, topic: str, message: Text) -> None:
        self.posted.append((topic, message.english()))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def paused_monitor(h: Harness, clock: Clock, alerts: Alerts) -> CreditMonitor:
    """A monitor that found the account empty; its own timer would look again in an hour."""
    h.crun.balance = 0
    credits = CreditMonitor(
        h.client,
        MetaRepository(h.db),
        threshold=1,
        alert=alerts,
        interval=3600,
        out_interval=3600,
        clock=clock,
    )
    await credits.start()
    assert credits.paused
    return credits


async def test_a_top_up_is_picked_up_by_the_very_next_request(harness: Harness) -> None:
    alerts = Alerts()
    credits = await paused_monitor(harness, Clock(), alerts)
    engine = await harness.engine(credits=credits)
    harness.crun.balance = 1000  # an admin tops up
    job = await submit(engine, 1)  # accepted at once: no waiting for the timer
    assert (await engine.wait_finished(job.id, timeout=10)).status is JobStatus.SUCCEEDED
    assert [topic for topic, _ in alerts.posted] == [CreditState.OUT, CreditState.OK]
    assert "resumed" in alerts.posted[-1][1]  # the recovery is announced now
    await credits.stop()


async def test_balance_looks_while_paused_are_shared_and_at_most_one_per_10_s(
    harness: Harness,
) -> None:
    clock, alerts = Clock(), Alerts()
    credits = await paused_monitor(harness, clock, alerts)
    engine = await harness.engine(credits=credits)
    looks = harness.crun.calls["balance"]
    refused = await asyncio.gather(
        *(submit(engine, user) for user in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ServiceUnavailable) and "paused" in str(r) for r in refused)
    assert harness.crun.calls["balance"] == looks + 1  # five requests, one shared look

    harness.crun.balance = 1000
    clock.now += 3
    with pytest.raises(ServiceUnavailable, match="paused"):
        await submit(engine, 1)  # looked 3 s ago: not again yet
    assert harness.crun.calls["balance"] == looks + 1
    clock.now += 7
    job = await submit(engine, 1)
    assert harness.crun.calls["balance"] == looks + 2
    assert (await engine.wait_finished(job.id, timeout=10)).status is JobStatus.SUCCEEDED
    await credits.stop()
