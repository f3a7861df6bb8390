"""Several processes on one PostgreSQL share one waiting line and hold jobs by lease.

- The line's order is decided in the database: jobs submitted through two processes start in the
  fair order (servers in turn, then members), and the running limits hold across processes.
- Claims use ``FOR UPDATE SKIP LOCKED``: processes claiming at the same moment take different
  jobs, every job exactly once.
- A process that loses a job's lease lets the job go; the new holder delivers it, once, and the
  delivery record names it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from bot.domain.models import GenerationRequest, Target
from bot.jobs.delivery import ProgressKind
from bot.runtime import Runtime
from bot.store import instances as instances_module
from bot.store.instances import InstanceRepository
from bot.store.jobs import JobRepository
from bot.store.pg_database import PgDatabase
from bot.store.quotas import Charge
from tests.fakes.crun_server import FakeCrun, FakeTask
from tests.helpers import RecordingSink, wait_until

pytest_plugins = ["tests.pg"]  # make_runtime, pg_url: a fresh schema on the test server

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

TEST = Target("test", {})
RuntimeFactory = Callable[..., Awaitable[Runtime]]  # tests.pg's make_runtime


async def _submit(runtime: Runtime, prompt: str, *, user: int, guild: int) -> str:
    request = GenerationRequest(prompt=prompt)
    job = await runtime.engine.submit(
        request, user_id=user, guild_id=guild, target=TEST, charge=Charge(1.0)
    )
    return job.id


def _open_tasks(crun: FakeCrun) -> list[FakeTask]:
    return [t for t in crun.tasks.values() if not t.terminal]


async def _next_start(crun: FakeCrun, seen: set[str]) -> FakeTask:
    """The next task to reach crun; it must be the only one there (the limit is global)."""
    await wait_until(lambda: any(t not in seen for t in crun.tasks), what="the next task")
    fresh = [t for tid, t in crun.tasks.items() if tid not in seen]
    assert len(fresh) == 1 and len(_open_tasks(crun)) == 1, [t.input for t in fresh]
    seen.add(fresh[0].task_id)
    return fresh[0]


async def _all_delivered(runtime: Runtime, count: int) -> None:
    async def done() -> bool:
        row = await runtime.db.fetchone("SELECT COUNT(*) FROM jobs WHERE delivery_state = 'done'")
        return row is not None and row[0] == count

    await wait_until(done, what=f"{count} deliveries")


async def test_the_line_is_one_for_every_process_and_its_order_comes_from_the_database(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    crun.task_latency = None  # a task ends when the test says
    crun.callbacks_enabled = False
    a = await make_runtime(max_concurrent_jobs=1)  # one job at crun for both together
    b = await make_runtime(max_concurrent_jobs=1)
    # Arrivals alternate between the processes. Member 11 of server 1 asks three times first.
    for runtime, prompt, user, guild in [
        (a, "p0 server 1, member 11", 11, 1),
        (b, "p1 server 1, member 11", 11, 1),
        (a, "p2 server 1, member 11", 11, 1),
        (b, "p3 server 2, member 22", 22, 2),
        (a, "p4 server 1, member 33", 33, 1),
    ]:
        await _submit(runtime, prompt, user=user, guild=guild)
    started: list[str] = []
    seen: set[str] = set()
    for _ in range(5):
        task = await _next_start(crun, seen)
        started.append(str(task.input["prompt"])[:2])
        crun.finish(task.task_id)
    # Server 2 before server 1's second turn, member 33 before member 11's second job.
    assert started == ["p0", "p3", "p4", "p1", "p2"]
    await _all_delivered(a, 5)
    rows = await a.db.fetchall("SELECT instance FROM deliveries")
    assert len(rows) == 5
    assert {r["instance"] for r in rows} <= {a.engine.instance_id, b.engine.instance_id}


async def test_a_members_running_limit_holds_across_processes(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    crun.task_latency = None
    crun.callbacks_enabled = False
    limits = {"user_concurrent_jobs": 1}
    a = await make_runtime(settings=limits)
    b = await make_runtime(settings=limits)
    for i, runtime in enumerate((a, b, a, b)):
        await _submit(runtime, f"seven {i}", user=7, guild=1)
    await _submit(b, "eight", user=8, guild=1)

    def at_crun(prefix: str) -> list[FakeTask]:
        return [t for t in _open_tasks(crun) if str(t.input["prompt"]).startswith(prefix)]

    # Member 8's job started after member 7's first: the line moved past 7's waiting jobs.
    await wait_until(lambda: len(at_crun("eight")) == 1, what="member 8's job at crun")
    assert len(at_crun("seven")) == 1
    for _ in range(3):
        (running,) = at_crun("seven")
        crun.finish(running.task_id)
        await wait_until(
            lambda done=running: len(at_crun("seven")) == 1 and at_crun("seven")[0] is not done,
            what="member 7's next job",
        )
        assert len(at_crun("seven")) == 1


async def test_processes_claiming_at_once_take_each_job_exactly_once(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(instances_module, "CLAIM_BATCH", 7)  # many small claims that overlap
    one = await PgDatabase.open(pg_url, max_size=8)
    two = await PgDatabase.open(pg_url, max_size=8, migrate=False)
    try:
        jobs = JobRepository(one)
        request = GenerationRequest(prompt="an orphan")
        for i in range(200):
            await jobs.create(
                user_id=i, guild_id=None, request=request, target=TEST, now=1.0, owner=None
            )
        sides = [(InstanceRepository(one), "one"), (InstanceRepository(two), "two")]
        for repo, name in sides:
            await repo.register(name, now=1.0)
        claims = [
            repo.claim_orphans(name, ["test"], now=2.0, lease_until=1000.0)
            for _ in range(20)
            for repo, name in sides
        ]
        counts = await asyncio.gather(*claims)
        owners = await one.fetchall("SELECT owner, COUNT(*) AS n FROM jobs GROUP BY owner")
    finally:
        await two.close()
        await one.close()
    assert sum(counts) == 200  # a job claimed twice would be counted twice
    assert {r["owner"]: r["n"] for r in owners}.keys() == {"one", "two"}
    assert sum(r["n"] for r in owners) == 200


async def test_a_process_that_lost_a_lease_lets_the_job_go_and_the_holder_delivers_it_once(
    make_runtime: RuntimeFactory, crun: FakeCrun, caplog: pytest.LogCaptureFixture
) -> None:
    crun.task_latency = None
    crun.callbacks_enabled = False
    sinks = [RecordingSink(), RecordingSink()]
    a = await make_runtime(sink=sinks[0])
    b = await make_runtime(sink=sinks[1])
    job_id = await _submit(a, "a lighthouse at dusk", user=5, guild=1)

    async def at_crun() -> bool:
        return (await a.jobs.require(job_id)).task_id is not None

    await wait_until(at_crun, what="the task at crun")
    row = await a.db.fetchone("SELECT owner FROM jobs WHERE id = ?", (job_id,))
    assert row is not None
    holder, other = (a, b) if row["owner"] == a.engine.instance_id else (b, a)
    lost, kept = sinks if holder is a else sinks[::-1]
    assert holder.engine.inflight == 1

    # The holder stalled past its lease and the other process took the job over.
    with caplog.at_level(logging.WARNING, logger="bot.jobs.engine"):
        await other.db.execute(
            "UPDATE jobs SET owner = ?, lease_until = 1e12 WHERE id = ?",
            (other.engine.instance_id, job_id),
        )
        await wait_until(lambda: holder.engine.inflight == 0, what="the holder letting go")
        await wait_until(lambda: other.engine.inflight == 1, what="the new holder's poll")
    assert f"job {job_id}: its lease was taken over; letting it go" in caplog.text

    crun.finish(next(iter(crun.tasks)))
    await _all_delivered(other, 1)
    assert list(kept.delivered) == [job_id]
    assert lost.attempts == []
    (record,) = await other.db.fetchall("SELECT job_id, instance, attempts FROM deliveries")
    assert tuple(record) == (job_id, other.engine.instance_id, 1)
    assert len(crun.tasks) == 1


async def test_a_job_that_starts_at_once_is_not_first_shown_a_place_in_line(
    make_runtime: RuntimeFactory, crun: FakeCrun
) -> None:
    crun.task_latency = None
    crun.callbacks_enabled = False
    sink = RecordingSink()
    a = await make_runtime(sink=sink, max_concurrent_jobs=1)
    first = await _submit(a, "first", user=1, guild=1)
    await wait_until(lambda: len(crun.tasks) == 1, what="the first job at crun")
    second = await _submit(a, "second", user=2, guild=2)

    def shown_in_line(job_id: str) -> bool:
        return any(j == job_id and p.kind is ProgressKind.QUEUED for j, p in sink.progress_log)

    # The second waits for the one slot: its place is shown (the line's figures say so).
    await wait_until(lambda: shown_in_line(second), what="the second job's place")
    assert not shown_in_line(first)
