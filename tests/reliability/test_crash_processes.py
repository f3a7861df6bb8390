"""Several real ``wanbot run`` processes on one PostgreSQL database, one SIGKILLed mid-flight.

Two (then three) processes share one schema, one fake Discord and one fake crun; process ``i``
runs with SHARD_COUNT=N, SHARD_IDS=i, and each shard owns a guild whose members send /imagine and
/edit requests (the fake gateway routes a guild's events to the shard that owns it). One process
at a time is SIGKILLed at a planned moment, in turn on each shard:

- ``submit``: a CreateTask in flight (slowed at crun, which still creates and bills the task);
- ``poll``: a TaskInfo poll in flight for a job that process tracks (slowed at crun);
- ``delivery``: right after a result message of a job that process holds was posted.

After the ``poll`` kill the dead process is not restarted until the survivors have finished every
job it left behind (they take dead instances' jobs over); only then does its shard come back (a
process with the same SHARD_IDS, as an orchestrator would restart it). After the other kills it is
restarted at once. After a last batch of requests and a graceful SIGTERM of all processes, the
database and the fakes must agree (crash_world.final_checks): every job final and delivered
exactly once, at most one crun task per job, the ledger equal to the jobs, nothing reserved.

Reduced by default (9 jobs for 2 processes, 12 for 3); ``WANBOT_FULL=1`` runs 30/40 jobs and
kills at every moment on every shard.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import DiscordFake
from tests.helpers import wait_until
from tests.processes import cli_env
from tests.reliability.crash_world import (
    TERMINAL,
    BotDb,
    Place,
    Proc,
    Row,
    World,
    final_checks,
    guild_id_on_shard,
    holder_pid,
)

pytest_plugins = ["tests.pg"]  # pg_url: a fresh, empty schema per test

FULL = os.environ.get("WANBOT_FULL") == "1"
SEED = int(os.environ.get("WANBOT_CRASH_SEED", "20261204"))
MOMENTS = ("submit", "poll", "delivery")
TAKEOVER = "poll"  # the kill after which the survivors must finish the dead process's jobs
SLOW = " [slow]"  # a task crun keeps running long enough to be polled while the kill lands
STEADY = " [steady]"  # a task that runs long enough for its holder to be looked up first

pytestmark = [
    pytest.mark.process,
    pytest.mark.postgres,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.timeout(600 if FULL else 180),
]


def _latency(inp: dict[str, Any]) -> float:
    if SLOW in str(inp.get("prompt")):
        return 2.5
    if STEADY in str(inp.get("prompt")):
        return 1.0
    digest = hashlib.sha256(str(inp.get("prompt")).encode()).digest()
    return (0.05, 0.3, 0.8)[digest[0] % 3]


def _outcome(inp: dict[str, Any]) -> tuple[str, str] | None:
    return ("failed", "the model could not draw this") if "[fails]" in inp["prompt"] else None


def _unsettled(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["status"] not in TERMINAL or r["delivery_state"] != "done"]


async def _holder(w: World, prompt: str, place: Place) -> Proc:
    """The live process holding the job of ``prompt``: the one its row names, else (a schema
    whose rows name no holder) the one that owns the guild's shard."""
    row = await w.job_of(prompt)
    proc = w.proc_of(holder_pid(row))
    if proc is None:
        proc = next(p for p in w.live() if p.shards == str(place.shard))
    return proc


async def _kill_at(w: World, place: Place, moment: str) -> tuple[Proc, str]:
    """Aim ``moment`` at a job from ``place`` and SIGKILL the process holding it in the middle
    of it; returns the killed process and what the database says about the job caught."""
    crun = w.crun

    async def nothing_submitting() -> bool:
        rows = await w.rows("SELECT status FROM jobs")
        return not any(r["status"] in ("queued", "submitting") for r in rows)

    # The aimed-at job never fails (a tagged request does not), and runs long enough.
    w.tags = {len(w.sent): {"poll": SLOW, "delivery": STEADY}.get(moment, "")}
    if moment == "submit":
        # The slowed CreateTask must be this job's, not an earlier one still on its way out.
        await wait_until(nothing_submitting, 20, "earlier submissions to finish")
        before = crun.calls["create"]
        crun.slow("create", 3.0)  # still creates (and bills) the task after the pause
        sent = await w.imagine(place)
        await wait_until(lambda: crun.calls["create"] > before, 20, "a CreateTask in flight")
        row = await w.job_of(sent.prompt)
        assert row["create_sent_at"] is not None, "CreateTask went out before it was recorded"
        proc = await _holder(w, sent.prompt, place)
    elif moment == "poll":
        (sent,) = await w.submit(1, place, edit=False)

        async def submitted() -> bool:
            return (await w.job_of(sent.prompt))["task_id"] is not None

        await wait_until(submitted, 20, "the slow job's CreateTask answer")
        task_id = (await w.job_of(sent.prompt))["task_id"]
        proc = await _holder(w, sent.prompt, place)
        seen = len(crun.requests)
        crun.slow("info", 3.0, times=1000)  # every poll from now on hangs, this job's too
        await wait_until(
            lambda: any(
                name == "info" and body.get("task_id") == task_id
                for name, body in crun.requests[seen:]
            ),
            20,
            "a TaskInfo poll of the slow job in flight",
        )
    else:
        (sent,) = await w.submit(1, place, edit=False)

        async def at_crun() -> bool:  # claimed and submitted: its row names who holds it
            return (await w.job_of(sent.prompt))["task_id"] is not None

        await wait_until(at_crun, 20, "the job to reach crun")
        proc = await _holder(w, sent.prompt, place)
        job_id = (await w.job_of(sent.prompt))["id"]
        # Kill the moment its result message lands, before the bot can record the delivery.
        await w.fake.wait_for(lambda: w.result_messages()[job_id] > 0, 30, "a result message")
    await w.kill(proc, moment)
    crun.clear_faults()
    w.tags = {}
    row = await w.job_of(sent.prompt)
    if moment == "submit":  # CreateTask sent, its answer never read
        assert row["task_id"] is None, dict(row)
    elif moment == "poll":
        assert row["status"] in ("pending", "running"), dict(row)
    # Where it was sent (the guild's shard) and who held it (the shared line may differ).
    where = f"guild@shard{place.shard}/held@shard{proc.shards}"
    return proc, f"{moment}({where}):{row['status']}/{row['delivery_state']}"


async def _taken_over(w: World, dead: Proc) -> str:
    """With ``dead``'s shard down, the survivors finish every job it left unfinished."""
    rows = await w.rows("SELECT * FROM jobs")
    left = {r["id"] for r in _unsettled(rows) if holder_pid(r) in (dead.pid, None)}
    assert left, "the kill left no job behind to take over"
    # The survivors still take requests meanwhile (the dead shard's guilds get none).
    await w.submit(1)

    async def finished() -> bool:
        rows = await w.rows("SELECT * FROM jobs")
        return not [r for r in _unsettled(rows) if r["id"] in left]

    try:
        await wait_until(finished, 60, f"the survivors to finish the dead process's jobs {left}")
    except AssertionError as exc:  # show where each job stands and what the survivors said
        rows = [dict(r) for r in await w.rows("SELECT * FROM jobs") if r["id"] in left]
        logs = "\n".join(line for p in w.live() for line in p.run.lines[-40:])
        who = f"dead pid {dead.pid} (shard {dead.shards}); survivors " + ", ".join(
            f"pid {p.pid} (shard {p.shards})" for p in w.live()
        )
        raise AssertionError(f"{exc}\n{who}\njobs: {rows}\nsurvivors' logs:\n{logs}") from None
    assert not dead.alive and all(p.shards != dead.shards for p in w.live())
    rows = [r for r in await w.rows("SELECT * FROM jobs") if r["id"] in left]
    # Whoever holds them now (if rows name a holder) is a survivor, never the dead process.
    assert all(holder_pid(r) != dead.pid for r in rows), [dict(r) for r in rows]
    return f"takeover:{len(left)} job(s)"


@pytest.mark.parametrize("processes", [2, 3])
async def test_processes_on_one_database_sigkilled_lose_nothing(
    tmp_path: Path, pg_url: str, processes: int
) -> None:
    rng = random.Random(SEED + processes)
    n_jobs = (30 if processes == 2 else 40) if FULL else (9 if processes == 2 else 12)
    # Default: each moment once, on shards in turn; full: every moment on every shard.
    m = len(MOMENTS)
    kills = [
        (MOMENTS[i % m], (i % m + i // m) % processes) for i in range(m * processes if FULL else m)
    ]
    db = BotDb(pg_url)
    async with (
        DiscordFake() as fake,
        FakeCrun(latency_fn=_latency, outcome=_outcome, image_size=(64, 64)) as crun,
    ):
        places = []
        for shard in range(processes):
            guild = fake.add_guild(f"Crash Lab {shard}", id=guild_id_on_shard(shard, processes))
            channel = fake.add_channel(guild, "art")
            users = [fake.add_member(guild, username=f"s{shard}user{i}") for i in range(2)]
            places.append(Place(guild, channel, users, shard))
        env = cli_env(
            crun,
            tmp_path,
            DISCORD_TOKEN=fake.token,
            DATABASE_URL=pg_url,
            SHARD_COUNT=str(processes),
            USER_CONCURRENT_JOBS="100",
            GUILD_CONCURRENT_JOBS="100",
            API_RATE_LIMIT="100",
            LOG_LEVEL="INFO",
            # A short job lease (renewed every quarter of it), so a dead process's jobs are taken
            # over within seconds; settings without it ignore it (the heartbeat is then 15 s).
            JOB_LEASE_SECONDS="3",
        )
        w = World(fake, crun, tmp_path, places, env, rng, db)

        # The requests not aimed at a kill, spread over the phases around the kills; the
        # takeover phase sends one of its own.
        plain = n_jobs - len(kills) - sum(1 for moment, _ in kills if moment == TAKEOVER)
        per_phase = [plain // (len(kills) + 1)] * (len(kills) + 1)
        for i in range(plain - sum(per_phase)):
            per_phase[i] += 1

        hits: list[str] = []
        try:
            for shard in range(processes):  # shard 0 first: its process syncs the commands
                await w.boot(str(shard))
            await w.submit(1, places[-1], edit=True)  # an /edit from the start
            await w.submit(max(per_phase[0] - 1, 0))
            for i, (moment, shard) in enumerate(kills):
                dead, hit = await _kill_at(w, places[shard], moment)
                hits.append(hit)
                if moment == TAKEOVER:
                    hits.append(await _taken_over(w, dead))
                await w.boot(dead.shards)  # the orchestrator brings the shard back
                await w.submit(per_phase[i + 1])

            await wait_until(w.settled, 60, "every job to finish and be delivered")
            await w.stop_all()
            summary = await final_checks(w)
        finally:
            await w.cleanup()
            await db.close()
    took = sum(1 for p in w.procs for line in p.run.lines if "took over" in line)
    print(
        f"\ncrash test ({processes} processes): {summary} ({' '.join(hits)});"
        f" 'took over' log lines={took}"
    )
    assert len(w.kills) == len(kills)
