"""Several real ``wanbot`` processes on one PostgreSQL (and one process on SQLite beside them).

    python -m bench.processes [--quick] [--jobs 200] [--tasks 0,5] [--rate 20] [--callbacks]

Each configuration (SQLite x1, PostgreSQL x1, x2, x4; ``--quick``: SQLite x1, PostgreSQL x1,
x2) starts N ``wanbot run`` processes (``tests.fakes.run_wanbot``, SHARD_COUNT=N, SHARD_IDS=i)
against ONE fake Discord and ONE fake crun in this process. Servers are spread over the shards
((guild_id >> 22) % N), members over the servers. Per task time (crun answers after 0 and 5 s;
``--quick``: 0 and 1 s) the members send ``--jobs`` /imagine as fast as the bot acknowledges
them (per-member and per-server limits raised so quotas are not what binds) and the bench
measures:

- jobs/s end to end: from the first /imagine to the last result message posted to Discord;
- CPU per job: utime+stime of every bot process (/proc/PID/stat) over that same span / jobs;
- crun requests/s: the fake crun's API arrivals (media downloads left out), the busiest 1 s
  window and the mean, next to API_RATE_LIMIT (``--rate``, set so that it binds);
- TaskInfo overlaps: TaskInfo requests that reached crun while another one for the same task
  was still being answered (the fake answers after ``--info-delay`` s so overlaps show). Must
  be 0.

With N >= 2 on PostgreSQL, a takeover: jobs (task time 5 s) go to every shard; once they are at
crun, the last process is SIGKILLed and the bench reads the jobs table until every unfinished job
that process owned is owned by a live process (the owner column holds the instance id,
``host-pid-hex``) or delivered, and then until all are delivered.

Then quota reservations/s: K OS processes (1 on SQLite; 1, 2, 4 on PostgreSQL) each open the store
and call ``JobRepository.create`` with a charge (the reservation transaction /imagine uses) from
16 concurrent tasks for a few seconds; the total admitted per second.

Prints figures, not a verdict. Full run about 15 minutes, ``--quick`` under 3. Every schema it
creates is dropped, every process it starts is ended.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from bot.settings import Settings
from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import (
    DiscordFake,
    FakeChannel,
    FakeGuild,
    FakeMember,
    InteractionHandle,
)
from tests.helpers import png
from tests.processes import ROOT, Running, cli_env, start

PG_BASE = os.environ.get("WANBOT_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"
MEMBERS_PER_SERVER = 5
SUBMITTING = 24  # /imagine awaiting their acknowledgement at once
TAKEOVER_TASK = 5.0
TAKEOVER_PER_SHARD = 6
TAKEOVER_TIMEOUT = 120.0
NOT_API = {"media", "files", "upload_put"}  # downloads: not crun API requests
PROMPT = re.compile(r"bench (\w+) #(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")
UNFINISHED = ("none", "started")  # delivery_state of a job not yet done (bot/store/job_rows.py)


# --- PostgreSQL schemas and reading the bot's tables ------------------------------------------


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A new, empty schema (tests/pg.py fresh_pg_url), dropped with everything in it after."""
    schema = f"wanbot_bench_{os.urandom(6).hex()}"
    admin = await asyncpg.connect(PG_BASE, timeout=5)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        joiner = "&" if "?" in PG_BASE else "?"
        yield f"{PG_BASE}{joiner}search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


class Tables:
    """Reads the jobs table of either engine while the bot runs (read only)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg: asyncpg.Connection | None = None

    async def jobs(self) -> list[dict[str, Any]]:
        sql = "SELECT id, owner, status, task_id, delivery_state, request_json FROM jobs"
        if self.url.startswith("sqlite:///"):
            return await asyncio.to_thread(self._sqlite, sql)
        if self._pg is None:
            self._pg = await asyncpg.connect(self.url, timeout=5)
        try:
            return [dict(r) for r in await self._pg.fetch(sql)]
        except asyncpg.UndefinedTableError:
            return []

    def _sqlite(self, sql: str) -> list[dict[str, Any]]:
        path = Path(self.url.removeprefix("sqlite:///"))
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql)]
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()


# --- figures --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_window(times: list[float], width: float = 1.0) -> int:
    """The most of ``times`` in any ``width``-second window."""
    times = sorted(times)
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def owner_pid(owner: str | None) -> int | None:
    """The pid in an instance id (``host-pid-hex``, bot/jobs/engine.py), if it has one."""
    if not owner:
        return None
    parts = owner.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def engine_timing() -> str:
    """The lease the processes run with (they inherit JOB_LEASE_SECONDS from this one)."""
    lease = os.environ.get("JOB_LEASE_SECONDS") or str(
        Settings.model_fields["job_lease_seconds"].default
    )
    return f"JOB_LEASE_SECONDS={lease} (heartbeat every {float(lease) / 4:g} s)"


# --- the world: servers, members, processes -------------------------------------------------


@dataclasses.dataclass
class Server:
    guild: FakeGuild
    channel: FakeChannel
    members: list[FakeMember]
    shard: int


@dataclasses.dataclass
class Config:
    engine: str  # "sqlite" | "pg"
    procs: int


@dataclasses.dataclass
class World:
    a: argparse.Namespace
    config: Config
    fake: DiscordFake
    crun: FakeCrun
    url: str
    tmp: Path
    servers: list[Server]
    runs: list[Running] = dataclasses.field(default_factory=list)
    dead: set[int] = dataclasses.field(default_factory=set)  # pids killed

    @property
    def live(self) -> list[Running]:
        return [r for r in self.runs if r.proc.pid not in self.dead]

    def env(self, shard: int) -> dict[str, str]:
        n = self.config.procs
        extra = {
            "DISCORD_TOKEN": self.fake.token,
            "DATABASE_URL": self.url,
            "SHARD_COUNT": str(n),
            "SHARD_IDS": str(shard),
            "API_RATE_LIMIT": str(self.a.rate),
            "POLL_INTERVAL_MIN": str(self.a.poll_min),
            "POLL_INTERVAL_MAX": str(self.a.poll_max),
            "MAX_CONCURRENT_JOBS": "100",
            "USER_CONCURRENT_JOBS": "100",
            "GUILD_CONCURRENT_JOBS": "10000",
            "USER_QUEUE_LIMIT": "1000",
            "GUILD_QUEUE_LIMIT": "100000",
            "QUEUE_LIMIT": "1000000",
            "LOG_LEVEL": "WARNING",
        }
        if self.a.callbacks:
            port = free_port()
            extra["CALLBACK_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
            extra["CALLBACK_LISTEN"] = f"127.0.0.1:{port}"
        return cli_env(self.crun, self.tmp, **extra)

    async def boot(self) -> None:
        n = self.config.procs
        for shard in range(n):
            proc = await start(self.env(shard), ROOT, "run", discord=self.fake)
            self.runs.append(Running(proc))

        def ready() -> bool:
            up = sum(1 for s in self.fake.sessions if s.conn is not None)
            gone = any(r.proc.returncode is not None for r in self.runs)
            return gone or (up >= n and self.fake.command_syncs >= 1)

        try:
            await self.fake.wait_for(ready, 60, f"{n} gateway sessions and the command sync")
        except TimeoutError as exc:
            raise RuntimeError(self.stderr_tail()) from exc
        if any(r.proc.returncode is not None for r in self.runs):
            raise RuntimeError(self.stderr_tail())

    def stderr_tail(self) -> str:
        return "\n".join(r.err.decode("utf-8", "replace")[-2000:] for r in self.runs)

    def cpu(self) -> float:
        return sum(cpu_seconds(r.proc.pid) for r in self.live)

    async def stop(self) -> None:
        async def one(run: Running) -> None:
            if run.proc.returncode is None:
                try:
                    await run.stop(timeout=30)
                except (TimeoutError, ProcessLookupError):
                    with contextlib.suppress(ProcessLookupError):
                        run.proc.kill()
                    await run.proc.wait()

        await asyncio.gather(*(one(r) for r in self.runs))

    # --- members' requests and what they get back ---------------------------------------------

    async def imagine_all(
        self, label: str, count: int
    ) -> tuple[float, dict[str, InteractionHandle], list[str]]:
        """Send ``count`` /imagine (members in turn), each once the bot has acknowledged enough
        of the earlier ones; returns when the first went out, the handles by prompt and the
        prompts never acknowledged."""
        # Server by server in turn (so every shard gets its share), a member of each in turn.
        members = [(s, s.members[j]) for j in range(MEMBERS_PER_SERVER) for s in self.servers]
        gate = asyncio.Semaphore(SUBMITTING)
        handles: dict[str, InteractionHandle] = {}
        unanswered: list[str] = []

        async def one(k: int) -> None:
            server, member = members[k % len(members)]
            prompt = f"bench {label} #{k}"
            async with gate:
                handles[prompt] = handle = await self.fake.slash(
                    member, server.guild, server.channel, "imagine", {"prompt": prompt}
                )
                try:
                    await handle.wait_response(timeout=60)
                except TimeoutError:
                    unanswered.append(prompt)

        first = time.monotonic()
        await asyncio.gather(*(one(k) for k in range(count)))
        return first, handles, unanswered

    def results(self, label: str) -> dict[int, float]:
        """Prompt number -> when its first result message (with files) reached Discord."""
        seen: dict[int, float] = {}
        for rec in self.fake.requests:
            if rec.method != "POST" or not rec.files:
                continue
            for m in PROMPT.finditer(json.dumps(rec.json)):
                if m.group(1) == label:
                    seen.setdefault(int(m.group(2)), rec.at)
        return seen


def refused_by(handle: InteractionHandle) -> bool:
    """The bot said no in private (bench/busy_servers.py ``refused``)."""
    private = [f for f in handle.followups if f.ephemeral]
    return bool(private) or bool(handle.original is not None and handle.original.ephemeral)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def servers_for(fake: DiscordFake, procs: int) -> list[Server]:
    """Two servers per shard (at least 8 in all), each with a channel and a few members."""
    count = max(8, 2 * procs)
    servers = []
    for i in range(count):
        shard = i % procs
        guild_id = fake.snowflake()
        while (guild_id >> 22) % procs != shard:  # Discord's rule; skips at most a few ms
            guild_id = fake.snowflake()
        guild = fake.add_guild(f"Bench {i}", id=guild_id)
        channel = fake.add_channel(guild, "art")
        members = [fake.add_member(guild, username=f"s{i}m{j}") for j in range(MEMBERS_PER_SERVER)]
        servers.append(Server(guild, channel, members, shard))
    return servers


async def poll_until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float,  # noqa: ASYNC109 - a bounded wait
    every: float = 0.2,
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(every)
    return False


# --- the phases -----------------------------------------------------------------------------


async def load(w: World, label: str, jobs: int, task: float) -> dict[str, Any]:
    crun = w.crun
    crun.task_latency = task
    arrivals_before = len(crun.arrivals)
    overlaps_before = crun.info_overlaps
    cpu0, bench0 = w.cpu(), time.process_time()
    first, handles, unanswered = await w.imagine_all(label, jobs)

    def refused() -> list[str]:  # told no in private (a refusal is ephemeral)
        return [p for p, h in handles.items() if refused_by(h)] + unanswered

    timeout = 120 + jobs * max(task, 1) / 2
    done = await poll_until(lambda: len(w.results(label)) + len(refused()) >= jobs, timeout)
    got = w.results(label)
    acks = [h.response.at - h.created_at for h in handles.values() if h.response is not None]
    last = max(got.values()) if got else time.monotonic()
    cpu1, bench1 = w.cpu(), time.process_time()
    span = max(last - first, 1e-9)
    api = [t for e, t in crun.arrivals[arrivals_before:] if e not in NOT_API and first <= t <= last]
    tasks = {tid for tid, t in crun.tasks.items() if f"bench {label} #" in t.input["prompt"]}
    peak_info = max((crun.info_peak.get(tid, 0) for tid in tasks), default=0)
    info_calls = sum(
        1 for e, body in crun.requests[:] if e == "info" and body.get("task_id") in tasks
    )
    return {
        "config": f"{w.config.engine} x{w.config.procs}",
        "task s": f"{task:g}",
        "jobs": f"{len(got)}/{jobs}" + ("" if done else " (timed out)"),
        "refused": str(len(refused())),
        "jobs/s": f"{len(got) / span:.2f}",
        "ack max s": f"{max(acks):.2f}" if acks else "-",
        "CPU ms/job": f"{1000 * (cpu1 - cpu0) / max(len(got), 1):.0f}",
        "crun req/s peak/mean": f"{peak_window(api)}/{len(api) / span:.1f} (budget {w.a.rate:g})",
        "TaskInfo/job": f"{info_calls / max(len(tasks), 1):.1f}",
        "TaskInfo overlaps (peak)": f"{crun.info_overlaps - overlaps_before} ({peak_info})",
        "fakes CPU s": f"{bench1 - bench0:.1f}",
    }


async def takeover(w: World) -> dict[str, Any]:
    """SIGKILL the last process with jobs of every shard at crun; time until its jobs are owned
    by a live process (or delivered), and until they are all delivered."""
    crun, tables = w.crun, Tables(w.url)
    crun.task_latency = TAKEOVER_TASK
    label = "takeover"
    try:
        per = TAKEOVER_PER_SHARD * w.config.procs
        _first, handles, unanswered = await w.imagine_all(label, per)
        refused = [p for p, h in handles.items() if refused_by(h)] + unanswered
        victim = w.runs[-1]
        pid = victim.proc.pid

        async def mine() -> list[dict[str, Any]]:
            return [
                r
                for r in await tables.jobs()
                if f"bench {label} #" in r["request_json"]
                and owner_pid(r["owner"]) == pid
                and r["delivery_state"] in UNFINISHED
            ]

        async def at_crun() -> bool:  # the victim's jobs have all been submitted
            rows = await mine()
            return bool(rows) and all(r["task_id"] for r in rows)

        await poll_until(at_crun, 60)
        victims = {r["id"]: r for r in await mine()}
        victim_tasks = {r["task_id"] for r in victims.values()}
        requests_before = len(crun.requests)
        killed = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        w.dead.add(pid)
        # Reap it: a zombie's pid still answers kill(pid, 0), which would look like a live owner.
        await asyncio.wait_for(victim.proc.wait(), 15)
        live = {r.proc.pid for r in w.live}
        owned_at: float | None = None
        done_at: float | None = None
        owners: set[str] = set()
        deadline = killed + TAKEOVER_TIMEOUT
        while time.monotonic() < deadline and done_at is None:
            rows = {r["id"]: r for r in await tables.jobs() if r["id"] in victims}
            taken = [
                r
                for r in rows.values()
                if r["delivery_state"] not in UNFINISHED or owner_pid(r["owner"]) in live
            ]
            owners |= {r["owner"] for r in taken if r["owner"]}
            if owned_at is None and len(taken) == len(victims):
                owned_at = time.monotonic()
            if all(r["delivery_state"] not in UNFINISHED for r in rows.values()):
                done_at = time.monotonic()
            await asyncio.sleep(0.1)
        stuck = [
            f"{r['id']}:{r['status']}/{r['delivery_state']}/owner={r['owner']}"
            for r in await tables.jobs()
            if r["id"] in victims and r["delivery_state"] in UNFINISHED
        ]
        polled = sum(
            1
            for e, body in crun.requests[requests_before:]
            if e == "info" and body.get("task_id") in victim_tasks
        )
        if stuck:
            for run in w.live:
                tail = run.err.decode("utf-8", "replace")[-3000:]
                print(f"  stuck jobs; pid {run.proc.pid} stderr tail:\n{tail}", file=sys.stderr)
    finally:
        await tables.close()
    return {
        "config": f"{w.config.engine} x{w.config.procs}",
        "victim jobs": str(len(victims)) + (f" ({len(refused)} refused)" if refused else ""),
        "taken over after s": f"{owned_at - killed:.1f}" if owned_at else "NEVER",
        "all delivered after s": f"{done_at - killed:.1f}" if done_at else "NOT YET",
        "new owners": str(len({owner_pid(o) for o in owners} - {pid})),
        "TaskInfo for them after kill": str(polled),
        "stuck": "; ".join(stuck[:3]) or "-",
        "timing": engine_timing(),
    }


async def run_config(
    a: argparse.Namespace, config: Config, tasks: list[float]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rows: list[dict[str, Any]] = []
    over: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="wanbot-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            if config.engine == "pg":
                url = await stack.enter_async_context(pg_schema())
            else:
                url = f"sqlite:///{Path(tmp) / 'data' / 'wanbot.sqlite3'}"
            crun = await stack.enter_async_context(FakeCrun(image_bytes=png(64, 64), balance=1e12))
            crun.info_delay = a.info_delay
            fake = await stack.enter_async_context(DiscordFake(interaction_ack_deadline=None))
            w = World(a, config, fake, crun, url, Path(tmp), servers_for(fake, config.procs))
            try:
                t0 = time.monotonic()
                await w.boot()
                print(f"  {config.engine} x{config.procs}: up in {time.monotonic() - t0:.1f} s")
                for i, task in enumerate(tasks):
                    row = await load(w, f"p{i}", a.jobs, task)
                    print("  " + "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
                    rows.append(row)
                if config.engine == "pg" and config.procs >= 2 and not a.no_takeover:
                    over = await takeover(w)
                    print("  " + "  ".join(f"{k}={v}" for k, v in over.items()), flush=True)
                for run in w.runs:
                    if b"Traceback" in run.err:
                        print(f"  !! traceback in pid {run.proc.pid}:", file=sys.stderr)
                        print(run.err.decode("utf-8", "replace")[-3000:], file=sys.stderr)
            finally:
                await w.stop()
    return rows, over


# --- quota reservations from K processes ----------------------------------------------------

CHILD = """
import asyncio, random, sys, time
from bot.domain.models import GenerationRequest, Target
from bot.domain.quota import Limits, QuotaPolicy
from bot.errors import QuotaExceeded
from bot.store.engine import open_database
from bot.store.jobs import JobRepository
from bot.store.quotas import Charge

url, index, seconds, workers = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
BIG = 10**9
POLICY = QuotaPolicy(
    default_limits=Limits(daily=1e9), user_concurrent=BIG, guild_concurrent=BIG,
    user_queue_limit=BIG, guild_queue_limit=BIG, queue_limit=BIG,
)

async def main():
    db = await open_database(url, migrate=False)
    try:
        jobs = JobRepository(db)
        print("ready", flush=True)
        line = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 60)
        assert line.strip() == "go", line
        rng = random.Random(index)
        admitted = refused = 0
        end = time.monotonic() + seconds

        async def worker():
            nonlocal admitted, refused
            while time.monotonic() < end:
                user = rng.randrange(1000)
                try:
                    await jobs.create(
                        user_id=user, guild_id=1 + user % 20,
                        request=GenerationRequest(prompt="bench reservation"),
                        target=Target("bench", {}), now=time.time(), owner=None,
                        charge=Charge(1.0), policy=POLICY,
                    )
                    admitted += 1
                except QuotaExceeded:
                    refused += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(workers)))
        print(f"done {admitted} {refused} {time.monotonic() - t0:.3f}", flush=True)
    finally:
        await db.close()

asyncio.run(main())
"""


async def _line(proc: asyncio.subprocess.Process, prefix: str, timeout: float) -> str:  # noqa: ASYNC109
    assert proc.stdout is not None and proc.stderr is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()
    if not line.startswith(prefix):
        err = await asyncio.wait_for(proc.stderr.read(), 10)
        raise RuntimeError(f"child said {line!r}, expected {prefix!r}:\n{err.decode()[-3000:]}")
    return line


async def reservations(engine: str, k: int, seconds: float, workers: int) -> dict[str, Any]:
    from bot.store.engine import open_database  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="wanbot-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            if engine == "pg":
                url = await stack.enter_async_context(pg_schema())
            else:
                url = f"sqlite:///{Path(tmp) / 'quota.sqlite3'}"
            db = await open_database(url)  # migrate once; the children do not
            await db.close()
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            procs = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    CHILD,
                    url,
                    str(i),
                    str(seconds),
                    str(workers),
                    cwd=ROOT,
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                for i in range(k)
            ]
            try:
                for p in procs:
                    await _line(p, "ready", 60)
                for p in procs:
                    assert p.stdin is not None
                    p.stdin.write(b"go\n")
                    await p.stdin.drain()
                lines = [await _line(p, "done ", seconds + 60) for p in procs]
                await asyncio.gather(*(p.wait() for p in procs))
            finally:
                for p in procs:
                    if p.returncode is None:
                        p.kill()
                        await p.wait()
    admitted = sum(int(x.split()[1]) for x in lines)
    refused = sum(int(x.split()[2]) for x in lines)
    span = max(float(x.split()[3]) for x in lines)
    return {
        "config": f"{engine} x{k}",
        "workers/process": str(workers),
        "admitted": str(admitted),
        "refused": str(refused),
        "reservations/s": f"{admitted / span:.0f}",
    }


# --- the report -----------------------------------------------------------------------------


def table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print(f"\n{title}")
    print(" | ".join(c.ljust(width[c]) for c in cols))
    print("-+-".join("-" * width[c] for c in cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")).ljust(width[c]) for c in cols))


async def main_async(a: argparse.Namespace) -> None:
    configs = [Config("sqlite", 1), Config("pg", 1), Config("pg", 2)]
    if not a.quick:
        configs.append(Config("pg", 4))
    if a.only:
        configs = [c for c in configs if f"{c.engine}x{c.procs}" in a.only.split(",")]
    tasks = [float(t) for t in a.tasks.split(",")]
    load_rows: list[dict[str, Any]] = []
    takeovers: list[dict[str, Any]] = []
    quota_rows: list[dict[str, Any]] = []
    for config in configs:
        print(f"== {config.engine} x{config.procs}", flush=True)
        rows, over = await run_config(a, config, tasks)
        load_rows += rows
        if over is not None:
            takeovers.append(over)
    if not a.no_quota:
        ks = [("sqlite", 1), ("pg", 1), ("pg", 2)] + ([] if a.quick else [("pg", 4)])
        for engine, k in ks:
            row = await reservations(engine, k, a.quota_seconds, 16)
            print("  " + "  ".join(f"{c}={v}" for c, v in row.items()), flush=True)
            quota_rows.append(row)

    print(
        f"\nmachine: {os.cpu_count()} cores, {sys.platform}, Python {sys.version.split()[0]};"
        f" {'--quick; ' if a.quick else ''}{a.jobs} jobs per run, API_RATE_LIMIT {a.rate:g},"
        f" POLL_INTERVAL_MIN/MAX {a.poll_min:g}/{a.poll_max:g} s,"
        f" callbacks {'on' if a.callbacks else 'off'}, fake TaskInfo delay {a.info_delay:g} s"
    )
    table("end to end (bot CPU: all bot processes, from first /imagine to last result)", load_rows)
    table("takeover after SIGKILL of one process (PostgreSQL)", takeovers)
    table("quota reservations (JobRepository.create with a charge) from K processes", quota_rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="40 jobs, tasks 0 and 1 s, up to 2 procs")
    p.add_argument("--jobs", type=int, help="jobs per run (default 200, --quick 40)")
    p.add_argument("--tasks", help="crun task times, s (default 0,5; --quick 0,1)")
    p.add_argument("--rate", type=float, default=20.0, help="API_RATE_LIMIT (requests/s)")
    p.add_argument("--poll-min", type=float, default=0.5, help="POLL_INTERVAL_MIN")
    p.add_argument("--poll-max", type=float, default=2.0, help="POLL_INTERVAL_MAX")
    p.add_argument("--info-delay", type=float, default=0.1, help="fake TaskInfo answer delay")
    p.add_argument("--callbacks", action="store_true", help="crun callbacks on (one port each)")
    p.add_argument("--only", help="configurations, e.g. pgx2,sqlitex1")
    p.add_argument("--quota-seconds", type=float, help="reservation phase length (3; quick 2)")
    p.add_argument("--no-quota", action="store_true", help="skip the reservation phase")
    p.add_argument("--no-takeover", action="store_true", help="skip the SIGKILL takeover")
    a = p.parse_args()
    a.jobs = a.jobs or (40 if a.quick else 200)
    a.tasks = a.tasks or ("0,1" if a.quick else "0,5")
    a.quota_seconds = a.quota_seconds or (2.0 if a.quick else 3.0)
    t0 = time.perf_counter()
    asyncio.run(main_async(a))
    print(f"[{time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
