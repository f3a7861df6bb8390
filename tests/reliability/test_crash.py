"""The crash test: the real ``wanbot run`` process, SIGKILLed again and again.

Jobs from several members go through the fake Discord (/imagine and /edit with an attachment)
to the fake crun (a mix of task latencies, some tasks fail). The process is killed with SIGKILL
at chosen moments (a CreateTask in flight, a TaskInfo poll in flight, an input upload in flight,
right after a result message was posted) and at random ones, and restarted each time. After the
last (graceful) stop the test reads the SQLite file and checks:

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
import io
import os
import random
import signal
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import (
    DiscordFake,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    InteractionHandle,
)
from tests.helpers import wait_until
from tests.processes import Running, cli_env, start

FULL = os.environ.get("WANBOT_FULL") == "1"
N_JOBS = 50 if FULL else 12
N_KILLS = 8 if FULL else 5
SEED = int(os.environ.get("WANBOT_CRASH_SEED", "20261125"))

TERMINAL = {"succeeded", "failed", "uncertain", "expired"}
FAILURE_TITLES = {"Could not make this image", "Not sure it started"}
# The moments aimed at first; later kills (and the full run's extra ones) land at random.
PLANNED = ("submit", "poll", "upload", "delivery", "random")

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.timeout(600 if FULL else 120),
]


def _png(size: int, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


def _latency(inp: dict[str, Any]) -> float:
    """A fixed mix of task latencies, picked from the prompt (so it is reproducible)."""
    digest = hashlib.sha256(str(inp.get("prompt")).encode()).digest()
    return (0.05, 0.3, 0.8, 2.0)[digest[0] % 4]


def _outcome(inp: dict[str, Any]) -> tuple[str, str] | None:
    return ("failed", "the model could not draw this") if "[fails]" in inp["prompt"] else None


@dataclass
class Sent:
    prompt: str
    user: FakeMember
    handle: InteractionHandle


@dataclass
class World:
    fake: DiscordFake
    crun: FakeCrun
    tmp_path: Path
    guild: FakeGuild
    channel: FakeChannel
    users: list[FakeMember]
    env: dict[str, str]
    rng: random.Random
    sent: list[Sent] = field(default_factory=list)
    runs: list[Running] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return self.tmp_path / "data" / "wanbot.sqlite3"

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Read the bot's database (read-only; WAL lets us read while it runs)."""
        if not self.db_path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql, args))
        finally:
            conn.close()

    async def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return await asyncio.to_thread(self.query, sql, args)

    async def stored(self, prompt: str) -> bool:
        rows = await self.rows("SELECT request_json FROM jobs")
        return any(prompt in r["request_json"] for r in rows)

    # --- the process --------------------------------------------------------------------------

    async def boot(self) -> Running:
        old = {s.id for s in self.fake.sessions}
        run = Running(await start(self.env, self.tmp_path, "run", discord=self.fake))
        self.runs.append(run)
        try:
            await self.fake.wait_for(
                lambda: (
                    run.proc.returncode is not None
                    or any(s.id not in old and s.conn is not None for s in self.fake.sessions)
                ),
                30,
                "the restarted bot's gateway session",
            )
        except TimeoutError as exc:
            raise AssertionError(run.err.decode()[-4000:]) from exc
        assert run.proc.returncode is None, run.err.decode()[-4000:]
        return run

    async def kill(self, run: Running, moment: str) -> None:
        run.proc.send_signal(signal.SIGKILL)
        # Reap it: a zombie's pid still answers kill(pid, 0), which would look like a live owner.
        await asyncio.wait_for(asyncio.gather(run.proc.wait(), *run._readers), 15)
        assert run.proc.returncode == -signal.SIGKILL
        self.kills.append(moment)
        await self.fake.wait_for(
            lambda: all(s.conn is None for s in self.fake.sessions), 15, "the gateway to drop"
        )

    # --- requests -------------------------------------------------------------------------------

    def _next_prompt(self) -> str:
        n = len(self.sent)
        prompt = f"crash job {n}: a lighthouse number {n}"
        return prompt + " [fails]" if n % 5 == 4 else prompt

    async def imagine(self) -> Sent:
        user = self.users[len(self.sent) % len(self.users)]
        prompt = self._next_prompt()
        handle = await self.fake.slash(
            user, self.guild, self.channel, "imagine", {"prompt": prompt}
        )
        return self._record(prompt, user, handle)

    async def edit(self) -> Sent:
        user = self.users[len(self.sent) % len(self.users)]
        prompt = self._next_prompt() + " (edit of image 1)"
        n = len(self.sent)
        handle = await self.fake.slash(
            user,
            self.guild,
            self.channel,
            "edit",
            {"prompt": prompt},
            attachments={"image": (f"in-{n}.png", _png(256, (n * 20 % 256, 90, 160)))},
        )
        return self._record(prompt, user, handle)

    def _record(self, prompt: str, user: FakeMember, handle: InteractionHandle) -> Sent:
        sent = Sent(prompt, user, handle)
        self.sent.append(sent)
        return sent

    async def submit(self, count: int) -> None:
        """Send ``count`` requests and wait until each one is a stored job."""
        for _ in range(count):
            sent = await (self.edit() if self.rng.random() < 0.2 else self.imagine())
            await sent.handle.wait_response(timeout=15)
            await wait_until(lambda s=sent: self.stored(s.prompt), 15, f"job for {sent.prompt}")

    # --- what members see ---------------------------------------------------------------------

    def visible(self) -> list[FakeMessage]:
        """Every message a member can see: the channel, and each interaction's own messages."""
        seen: dict[int, FakeMessage] = {}
        for msg in self.fake.messages.get(self.channel.id, []):
            seen[msg.id] = msg
        for s in self.sent:
            for msg in [s.handle.original, *s.handle.followups]:
                if msg is not None:
                    seen[msg.id] = msg
        return [m for m in seen.values() if not m.deleted]

    def result_messages(self) -> Counter[str]:
        """job id -> number of result messages (images attached, footer ``job <id>``)."""
        counts: Counter[str] = Counter()
        for msg in self.visible():
            if msg.attachments:
                for job_id in _footer_jobs(msg):
                    counts[job_id] += 1
        return counts

    def failure_messages(self) -> set[str]:
        return {
            job_id
            for msg in self.visible()
            for e in msg.embeds
            if e.get("title") in FAILURE_TITLES
            for job_id in _footer_jobs_of(e)
        }


def _footer_jobs_of(embed: dict[str, Any]) -> list[str]:
    text = str((embed.get("footer") or {}).get("text") or "")
    parts = text.split()
    return [parts[1]] if len(parts) >= 2 and parts[0] == "job" else []


def _footer_jobs(msg: FakeMessage) -> list[str]:
    return [j for e in msg.embeds for j in _footer_jobs_of(e)]


async def _kill_at(w: World, run: Running, moment: str) -> str:
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
    await w.kill(run, moment)
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


async def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
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
            USER_CONCURRENT_JOBS="100",
            GUILD_CONCURRENT_JOBS="100",
            API_RATE_LIMIT="100",
        )
        w = World(fake, crun, tmp_path, guild, channel, users, env, rng)

        moments = [PLANNED[i] if i < len(PLANNED) else "random" for i in range(N_KILLS)]
        # Spread the plain requests over the runs; the kill moments add one request each.
        plain = N_JOBS - N_KILLS
        per_run = [plain // (N_KILLS + 1)] * (N_KILLS + 1)
        for i in range(plain - sum(per_run)):
            per_run[i] += 1

        hits: list[str] = []
        for i, moment in enumerate(moments):
            run = await w.boot()
            await w.submit(per_run[i])
            hits.append(await _kill_at(w, run, moment))

        final = await w.boot()
        await w.submit(per_run[-1])

        async def all_settled() -> bool:
            rows = await w.rows("SELECT status, delivery_state FROM jobs")
            return len(rows) == len(w.sent) and all(
                r["status"] in TERMINAL and r["delivery_state"] in ("done", "gave-up") for r in rows
            )

        await wait_until(all_settled, 60, "every job to finish and be delivered")
        assert await final.stop() == 0, final.err.decode()

    jobs = w.query("SELECT * FROM jobs")
    ledger = {r["job_id"]: r for r in w.query("SELECT * FROM ledger")}
    by_prompt = {s.prompt: s for s in w.sent}

    # Every request became exactly one job, and every job is final and delivered.
    job_prompts = [next(p for p in by_prompt if p in j["request_json"]) for j in jobs]
    assert sorted(job_prompts) == sorted(by_prompt)
    assert all(j["status"] in TERMINAL for j in jobs)
    assert [j["id"] for j in jobs if j["delivery_state"] != "done"] == []

    # What members saw: one result per succeeded job, a failure message for every other job.
    results = w.result_messages()
    failures = w.failure_messages()
    for j in jobs:
        if j["status"] == "succeeded":
            assert results[j["id"]] == 1, (j["id"], results[j["id"]])
        else:
            assert results[j["id"]] == 0, j["id"]
            assert j["id"] in failures, (j["id"], j["status"])
    assert set(results) <= {j["id"] for j in jobs}

    # CreateTask never resent: at most one crun task per job, and the unknown ones are uncertain.
    tasks_per_prompt = Counter(t.input["prompt"] for t in crun.tasks.values())
    assert max(tasks_per_prompt.values()) == 1
    known = {j["task_id"] for j in jobs if j["task_id"]}
    assert known <= set(crun.tasks)
    unknown = [t for tid, t in crun.tasks.items() if tid not in known]
    uncertain = {p for p, j in zip(job_prompts, jobs, strict=True) if j["status"] == "uncertain"}
    assert all(t.input["prompt"] in uncertain for t in unknown)

    # The ledger: settled to crun's charge for succeeded jobs, refunded (0) for the rest.
    expected: Counter[int] = Counter()
    spent: Counter[int] = Counter()
    for j in jobs:
        row = ledger[j["id"]]
        if j["status"] == "succeeded":
            assert row["state"] == "settled", j["id"]
            assert row["charged"] == crun.tasks[j["task_id"]].credits
            expected[j["user_id"]] += crun.tasks[j["task_id"]].credits or 0
        else:
            assert (row["state"], row["charged"]) == ("refunded", 0), j["id"]
    for row in ledger.values():
        assert row["state"] != "reserved", row["job_id"]
        spent[row["user_id"]] += row["charged"] or 0
    assert spent == expected
    assert set(ledger) == {j["id"] for j in jobs}

    for run in w.runs:
        assert crun.api_key.encode() not in run.err + run.out
        assert fake.token.encode() not in run.err + run.out
        assert b"Traceback" not in run.err, run.err.decode()[-4000:]

    status = Counter(j["status"] for j in jobs)
    delivered = sum(1 for j in jobs if j["status"] == "succeeded" and results[j["id"]] == 1)
    lost = len(w.sent) - delivered - status["failed"] - status["uncertain"] - status["expired"]
    posts = Counter(
        j
        for rec in fake.requests_to("POST", r"/channels/\d+/messages$")
        for e in (rec.json or {}).get("embeds") or []
        for j in _footer_jobs_of(e)
    )
    resent = sum(n - 1 for n in posts.values() if n > 1)
    print(
        f"\ncrash test: jobs={len(jobs)} kills={len(w.kills)} ({' '.join(hits)})"
        f" channel posts re-sent after a kill={resent} (deduplicated by nonce/history)"
        f" delivered={delivered} failed={status['failed']} uncertain={status['uncertain']}"
        f" expired={status['expired']} lost={lost}"
    )
    assert lost == 0
    assert len(w.kills) >= N_KILLS
