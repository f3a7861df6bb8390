"""The crash test: the real ``wanbot run`` process, SIGKILLed again and again.

Jobs from several members go through the fake Discord (/imagine and /edit with an attachment)
to the fake crun (a mix of task latencies, some tasks fail). The process is killed with SIGKILL
at chosen moments (a CreateTask in flight, a TaskInfo poll in flight, an input upload in flight,
right after a result message was posted) and at random ones, and restarted each time. It runs
once on SQLite and once on PostgreSQL (a fresh schema). After the last (graceful) stop the test
reads the database and checks (crash_world.final_checks):

- every job reached a final state and its delivery is done;
- each succeeded job has exactly one result message (footer ``job <id>``), every other job a
  failure/"not sure it started" message;
- crun holds at most one task per job (CreateTask never resent), and every task the bot does not
  know by id belongs to an uncertain job;
- each member's ledger equals the sum over their jobs (crun's charge for succeeded jobs, 0 for the
  refunded ones) and nothing is left reserved.

Reduced by default (12 jobs, 5 kills) so CI stays fast; ``WANBOT_FULL=1`` runs 50 jobs, 8 kills.
"""

from __future__ import annotations

import asyncio
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
from tests.reliability.crash_world import TERMINAL, BotDb, Place, Proc, World, final_checks

pytest_plugins = ["tests.pg"]  # pg_url: a fresh, empty schema per test

FULL = os.environ.get("WANBOT_FULL") == "1"
N_JOBS = 50 if FULL else 12
N_KILLS = 8 if FULL else 5
SEED = int(os.environ.get("WANBOT_CRASH_SEED", "20261125"))

# The moments aimed at first; later kills (and the full run's extra ones) land at random.
PLANNED = ("submit", "poll", "upload", "delivery", "random")

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.timeout(600 if FULL else 120),
]


def _latency(inp: dict[str, Any]) -> float:
    """A fixed mix of task latencies, picked from the prompt (so it is reproducible)."""
    digest = hashlib.sha256(str(inp.get("prompt")).encode()).digest()
    return (0.05, 0.3, 0.8, 2.0)[digest[0] % 4]


def _outcome(inp: dict[str, Any]) -> tuple[str, str] | None:
    return ("failed", "the model could not draw this") if "[fails]" in inp["prompt"] else None


async def _kill_at(w: World, proc: Proc, moment: str) -> str:
    """Arrange ``moment`` and SIGKILL the process in the middle of it; return what the database
    says about the job caught in the middle (so the report shows the kill landed where aimed)."""
    crun = w.crun
    target: str | None = None

    async def nothing_submitting() -> bool:
        rows = await w.rows("SELECT status FROM jobs")
        return not any(r["status"] in ("queued", "submitting") for r in rows)

    if moment in ("submit", "upload"):
        # The slowed request must be the new job's, not an earlier one still on its way out.
        await wait_until(nothing_submitting, 20, "earlier submissions to finish")
    if moment == "submit":
        before = crun.calls["create"]
        crun.slow("create", 3.0)  # still creates (and bills) the task after the pause
        sent = await w.imagine()
        await wait_until(lambda: crun.calls["create"] > before, 20, "a CreateTask in flight")
        assert await w.stored(sent.prompt), "CreateTask went out before the job was stored"
        target = sent.prompt
    elif moment == "upload":
        before = crun.calls["upload_put"]
        crun.slow("upload_put", 3.0)
        sent = await w.edit()
        await wait_until(lambda: crun.calls["upload_put"] > before, 20, "an upload in flight")
        assert await w.stored(sent.prompt)
        target = sent.prompt
    elif moment == "poll":
        await w.submit(1)
        before = crun.calls["info"]
        crun.slow("info", 3.0)
        await wait_until(lambda: crun.calls["info"] > before, 20, "a TaskInfo poll in flight")
    elif moment == "delivery":
        before = sum(w.result_messages().values())
        await w.submit(1)
        # Kill the moment a new result message lands, before the bot can record the delivery.
        await w.fake.wait_for(
            lambda: sum(w.result_messages().values()) > before, 30, "a result message"
        )
    else:
        # A random moment with work in flight: this wait picks when to kill, it asserts nothing.
        await w.submit(1)
        await asyncio.sleep(w.rng.uniform(0.05, 1.5))
    await w.kill(proc, moment)
    crun.clear_faults()
    rows = await w.rows(
        "SELECT request_json, status, delivery_state, create_sent_at, task_id FROM jobs"
    )
    if target is not None:
        (row,) = [r for r in rows if target in r["request_json"]]
        if moment == "submit":  # CreateTask sent, its answer never read
            assert row["create_sent_at"] is not None and row["task_id"] is None
        else:  # inputs half uploaded, CreateTask not sent yet
            assert row["status"] == "submitting" and row["create_sent_at"] is None
        return f"{moment}:{row['status']}"
    busy = [r for r in rows if r["status"] not in TERMINAL or r["delivery_state"] != "done"]
    if moment == "poll":
        assert any(r["status"] in ("pending", "running") for r in busy)
    states = sorted({f"{r['status']}/{r['delivery_state']}" for r in busy})
    return f"{moment}:{'+'.join(states) or 'idle'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The bot's DATABASE_URL: a SQLite file under tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'wanbot.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


async def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, database_url: str) -> None:
    rng = random.Random(SEED)
    db = BotDb(database_url)
    async with (
        DiscordFake() as fake,
        FakeCrun(latency_fn=_latency, outcome=_outcome, image_size=(64, 64)) as crun,
    ):
        guild = fake.add_guild("Crash Lab")
        channel = fake.add_channel(guild, "art")
        users = [fake.add_member(guild, username=f"user{i}") for i in range(4)]
        env = cli_env(
            crun,
            tmp_path,
            DISCORD_TOKEN=fake.token,
            DATABASE_URL=database_url,
            USER_CONCURRENT_JOBS="100",
            GUILD_CONCURRENT_JOBS="100",
            API_RATE_LIMIT="100",
        )
        w = World(fake, crun, tmp_path, [Place(guild, channel, users)], env, rng, db)

        moments = [PLANNED[i] if i < len(PLANNED) else "random" for i in range(N_KILLS)]
        # Spread the plain requests over the runs; the kill moments add one request each.
        plain = N_JOBS - N_KILLS
        per_run = [plain // (N_KILLS + 1)] * (N_KILLS + 1)
        for i in range(plain - sum(per_run)):
            per_run[i] += 1

        try:
            hits: list[str] = []
            for i, moment in enumerate(moments):
                proc = await w.boot()
                await w.submit(per_run[i])
                hits.append(await _kill_at(w, proc, moment))

            await w.boot()
            await w.submit(per_run[-1])
            await wait_until(w.settled, 60, "every job to finish and be delivered")
            await w.stop_all()

            summary = await final_checks(w)
        finally:
            await w.cleanup()
            await db.close()
    print(f"\ncrash test ({db.engine}): {summary} ({' '.join(hits)})")
    assert len(w.kills) >= N_KILLS
