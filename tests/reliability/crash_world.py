"""What the crash tests share: the world of real ``wanbot run`` processes against the fake Discord
and the fake crun, reading the bot's database on either engine, killing and booting processes,
sending requests, reading what members see, and the final checks.

Used by test_crash.py (one process, restarted after each SIGKILL, on SQLite and on PostgreSQL)
and test_crash_processes.py (several processes, one shard each, on one PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import io
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from PIL import Image

from bot.store.pg_database import PgDatabase
from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import (
    DiscordFake,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    InteractionHandle,
)
from tests.fakes.discord_fake.protocol import DISCORD_EPOCH_MS
from tests.helpers import wait_until
from tests.processes import Running, start

TERMINAL = {"succeeded", "failed", "uncertain", "expired"}
FAILURE_TITLES = {"Could not make this image", "Not sure it started"}
# Columns that may name the engine instance holding a job (its id is ``host-pid-hex``).
HOLDER_COLUMNS = ("owner", "lease_owner", "leased_by", "lease_holder")

Row = Mapping[str, Any]


def png(size: int, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


def guild_id_on_shard(shard: int, shard_count: int) -> int:
    """A fresh snowflake whose guild the gateway routes to ``shard`` ((id >> 22) % count)."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    ms += (shard - ms) % shard_count
    return (ms << 22) | (shard + 1)


class BotDb:
    """Read-only access to the bot's database, whichever engine DATABASE_URL names."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg: PgDatabase | None = None

    @property
    def engine(self) -> str:
        return "sqlite" if self.url.startswith("sqlite:///") else "postgres"

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        if self.engine == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            return await asyncio.to_thread(_sqlite_rows, path, sql, tuple(args))
        if self._pg is None:  # the same URL (and search_path) the processes open
            self._pg = await PgDatabase.open(self.url, migrate=False, min_size=1, max_size=2)
        try:
            return list(await self._pg.fetchall(sql, tuple(args)))
        except asyncpg.UndefinedTableError:  # no process has migrated the schema yet
            return []

    async def tables(self) -> set[str]:
        if self.engine == "sqlite":
            rows = await self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {r["name"] for r in rows}
        rows = await self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r["table_name"] for r in rows}

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
            self._pg = None


def _sqlite_rows(path: Path, sql: str, args: tuple[Any, ...]) -> list[Row]:
    """Read the SQLite file (read-only; WAL lets us read while the bot runs)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def holder_pid(row: Row) -> int | None:
    """The pid of the engine instance that holds a job row, if the row names one."""
    keys = set(row.keys())  # sqlite3.Row and asyncpg.Record both list their columns
    for column in HOLDER_COLUMNS:
        if column in keys and row[column]:
            _, pid, _ = str(row[column]).rsplit("-", 2)
            return int(pid)
    return None


@dataclass
class Place:
    """A guild (on one gateway shard) with a channel and the members who send requests."""

    guild: FakeGuild
    channel: FakeChannel
    users: list[FakeMember]
    shard: int = 0


@dataclass
class Sent:
    prompt: str
    user: FakeMember
    handle: InteractionHandle
    place: Place


@dataclass
class Proc:
    """One ``wanbot run`` process and the gateway sessions it opened."""

    run: Running
    shards: str  # SHARD_IDS ("" when not sharded)
    sessions: set[str]

    @property
    def pid(self) -> int:
        return self.run.proc.pid

    @property
    def alive(self) -> bool:
        return self.run.proc.returncode is None


@dataclass
class World:
    fake: DiscordFake
    crun: FakeCrun
    tmp_path: Path
    places: list[Place]
    env: dict[str, str]
    rng: Any  # random.Random
    db: BotDb
    sent: list[Sent] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    down: set[int] = field(default_factory=set)  # shards with no process now: send them nothing
    tags: Mapping[int, str] = field(default_factory=dict)  # request number -> prompt suffix

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return await self.db.rows(sql, args)

    async def stored(self, prompt: str) -> bool:
        rows = await self.rows("SELECT request_json FROM jobs")
        return any(prompt in r["request_json"] for r in rows)

    async def job_of(self, prompt: str) -> Row:
        (row,) = [r for r in await self.rows("SELECT * FROM jobs") if prompt in r["request_json"]]
        return row

    def live(self) -> list[Proc]:
        return [p for p in self.procs if p.alive]

    def proc_of(self, pid: int | None) -> Proc | None:
        return next((p for p in self.live() if p.pid == pid), None)

    # --- the processes ------------------------------------------------------------------------

    async def boot(self, shards: str = "", **extra: str) -> Proc:
        """Start ``wanbot run`` (SHARD_IDS=``shards`` when given) and wait for its gateway."""
        old = {s.id for s in self.fake.sessions}
        env = dict(self.env, **extra)
        if shards:
            env["SHARD_IDS"] = shards
        run = Running(await start(env, self.tmp_path, "run", discord=self.fake))
        proc = Proc(run, shards, set())
        self.procs.append(proc)
        try:
            await self.fake.wait_for(
                lambda: (
                    run.proc.returncode is not None
                    or any(s.id not in old and s.conn is not None for s in self.fake.sessions)
                ),
                30,
                "the started bot's gateway session",
            )
        except TimeoutError as exc:
            raise AssertionError(run.err.decode()[-4000:]) from exc
        assert run.proc.returncode is None, run.err.decode()[-4000:]
        proc.sessions = {s.id for s in self.fake.sessions if s.id not in old}
        if shards:
            self.down -= {int(i) for i in shards.split(",")}
        return proc

    async def kill(self, proc: Proc, moment: str) -> None:
        run = proc.run
        run.proc.send_signal(signal.SIGKILL)
        # Reap it: a zombie's pid still answers kill(pid, 0), which would look like a live owner.
        await asyncio.wait_for(asyncio.gather(run.proc.wait(), *run._readers), 15)
        assert run.proc.returncode == -signal.SIGKILL
        self.kills.append(moment)
        if proc.shards:
            self.down |= {int(i) for i in proc.shards.split(",")}
        await self.fake.wait_for(
            lambda: all(s.conn is None for s in self.fake.sessions if s.id in proc.sessions),
            15,
            "the gateway to drop",
        )

    async def stop_all(self) -> None:
        """SIGTERM every live process at once; each must exit cleanly."""
        live = self.live()
        codes = await asyncio.gather(*(p.run.stop() for p in live))
        for proc, code in zip(live, codes, strict=True):
            assert code == 0, proc.run.err.decode()[-4000:]

    async def cleanup(self) -> None:
        """After a failure: end whatever still runs (only the processes this test started)."""
        for proc in self.live():
            proc.run.proc.kill()
            await asyncio.wait_for(proc.run.proc.wait(), 15)

    # --- requests -------------------------------------------------------------------------------

    def _next(self) -> tuple[str, Place, FakeMember]:
        n = len(self.sent)
        prompt = f"crash job {n}: a lighthouse number {n}" + self.tags.get(n, "")
        if n % 5 == 4 and n not in self.tags:  # a tagged request is aimed at: it never fails
            prompt += " [fails]"
        places = [p for p in self.places if p.shard not in self.down]
        place = places[n % len(places)]
        user = place.users[(n // len(places)) % len(place.users)]
        return prompt, place, user

    async def imagine(self, place: Place | None = None) -> Sent:
        prompt, auto, user = self._next()
        if place is not None and place is not auto:
            user = place.users[len(self.sent) % len(place.users)]
        place = place or auto
        handle = await self.fake.slash(
            user, place.guild, place.channel, "imagine", {"prompt": prompt}
        )
        return self._record(prompt, user, handle, place)

    async def edit(self, place: Place | None = None) -> Sent:
        prompt, auto, user = self._next()
        if place is not None and place is not auto:
            user = place.users[len(self.sent) % len(place.users)]
        place = place or auto
        prompt += " (edit of image 1)"
        n = len(self.sent)
        handle = await self.fake.slash(
            user,
            place.guild,
            place.channel,
            "edit",
            {"prompt": prompt},
            attachments={"image": (f"in-{n}.png", png(256, (n * 20 % 256, 90, 160)))},
        )
        return self._record(prompt, user, handle, place)

    def _record(
        self, prompt: str, user: FakeMember, handle: InteractionHandle, place: Place
    ) -> Sent:
        sent = Sent(prompt, user, handle, place)
        self.sent.append(sent)
        return sent

    async def submit(
        self, count: int, place: Place | None = None, *, edit: bool | None = None
    ) -> list[Sent]:
        """Send ``count`` requests (/edit when ``edit``, else 1 in 5 at random) and wait until
        each one is a stored job."""
        out = []
        for _ in range(count):
            as_edit = self.rng.random() < 0.2 if edit is None else edit
            sent = await (self.edit(place) if as_edit else self.imagine(place))
            await sent.handle.wait_response(timeout=15)
            await wait_until(lambda s=sent: self.stored(s.prompt), 15, f"job for {sent.prompt}")
            out.append(sent)
        return out

    async def settled(self) -> bool:
        rows = await self.rows("SELECT status, delivery_state FROM jobs")
        return len(rows) == len(self.sent) and all(
            r["status"] in TERMINAL and r["delivery_state"] in ("done", "gave-up") for r in rows
        )

    # --- what members see ---------------------------------------------------------------------

    def visible(self) -> list[FakeMessage]:
        """Every message a member can see: the channels, and each interaction's own messages."""
        seen: dict[int, FakeMessage] = {}
        for place in self.places:
            for msg in self.fake.messages.get(place.channel.id, []):
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
                for job_id in footer_jobs(msg):
                    counts[job_id] += 1
        return counts

    def failure_messages(self) -> set[str]:
        return {
            job_id
            for msg in self.visible()
            for e in msg.embeds
            if e.get("title") in FAILURE_TITLES
            for job_id in footer_jobs_of(e)
        }


def footer_jobs_of(embed: Mapping[str, Any]) -> list[str]:
    text = str((embed.get("footer") or {}).get("text") or "")
    parts = text.split()
    return [parts[1]] if len(parts) >= 2 and parts[0] == "job" else []


def footer_jobs(msg: FakeMessage) -> list[str]:
    return [j for e in msg.embeds for j in footer_jobs_of(e)]


async def final_checks(w: World) -> str:
    """After the last graceful stop: every request one job, final and delivered once; crun holds
    at most one task per job; the ledger equals the jobs. Returns a one-line summary."""
    jobs = await w.rows("SELECT * FROM jobs")
    ledger = {r["job_id"]: r for r in await w.rows("SELECT * FROM ledger")}
    by_prompt = {s.prompt: s for s in w.sent}
    ids = {j["id"] for j in jobs}

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
    assert set(results) <= ids

    # CreateTask never resent: at most one crun task per job, and the unknown ones are uncertain.
    tasks_per_prompt = Counter(t.input["prompt"] for t in w.crun.tasks.values())
    assert max(tasks_per_prompt.values()) == 1, tasks_per_prompt.most_common(3)
    known = {j["task_id"] for j in jobs if j["task_id"]}
    assert known <= set(w.crun.tasks)
    unknown = [t for tid, t in w.crun.tasks.items() if tid not in known]
    uncertain = {p for p, j in zip(job_prompts, jobs, strict=True) if j["status"] == "uncertain"}
    assert all(t.input["prompt"] in uncertain for t in unknown)

    # The ledger: settled to crun's charge for succeeded jobs, refunded (0) for the rest.
    expected: Counter[int] = Counter()
    spent: Counter[int] = Counter()
    for j in jobs:
        row = ledger[j["id"]]
        if j["status"] == "succeeded":
            assert row["state"] == "settled", j["id"]
            assert row["charged"] == w.crun.tasks[j["task_id"]].credits
            expected[j["user_id"]] += w.crun.tasks[j["task_id"]].credits or 0
        else:
            assert (row["state"], row["charged"]) == ("refunded", 0), j["id"]
    for row in ledger.values():
        assert row["state"] != "reserved", row["job_id"]
        spent[row["user_id"]] += row["charged"] or 0
    assert spent == expected
    assert set(ledger) == ids

    # A `deliveries` table (one row per delivered job, keyed by job id) is newer than this test:
    # where the schema has it, it must hold exactly the delivered jobs; where not, there is
    # nothing to compare (this check is the only one that depends on the schema's version).
    if "deliveries" in await w.db.tables():
        rows = await w.rows("SELECT job_id FROM deliveries")
        per_job = Counter(r["job_id"] for r in rows)
        assert all(n == 1 for n in per_job.values()), per_job.most_common(3)
        assert set(per_job) == {j["id"] for j in jobs if j["delivery_state"] == "done"}

    for proc in w.procs:
        run = proc.run
        assert w.crun.api_key.encode() not in run.err + run.out
        assert w.fake.token.encode() not in run.err + run.out
        assert b"Traceback" not in run.err, run.err.decode()[-4000:]

    status = Counter(j["status"] for j in jobs)
    delivered = sum(1 for j in jobs if j["status"] == "succeeded" and results[j["id"]] == 1)
    lost = len(w.sent) - delivered - status["failed"] - status["uncertain"] - status["expired"]
    posts = Counter(
        j
        for rec in w.fake.requests_to("POST", r"/channels/\d+/messages$")
        for e in (rec.json or {}).get("embeds") or []
        for j in footer_jobs_of(e)
    )
    resent = sum(n - 1 for n in posts.values() if n > 1)
    assert lost == 0
    return (
        f"jobs={len(jobs)} kills={len(w.kills)}"
        f" channel posts re-sent after a kill={resent} (deduplicated by nonce/history)"
        f" delivered={delivered} failed={status['failed']} uncertain={status['uncertain']}"
        f" expired={status['expired']} lost={lost}"
    )
