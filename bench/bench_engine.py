"""Engine benchmarks against the in-project fakes: delivery latency, API economy, capacity, CPU.

    python -m bench.bench_engine [--quick] [--only poll,callback,capacity,cpu]

Prints one table; not a pass/fail test. The runs:

poll      Poll mode with the realistic latency mix (tasks take 10-90 s) and the default schedule
          (5 s for the first minute, growing to 15 s; API_RATE_LIMIT 5/s; 20 jobs at crun at
          once). ``--quick`` divides every duration by 10 (intervals 0.5/1.5 s, tasks 1-9 s) and
          multiplies the rate limit by 10, so the schedule and the API load per job are the same
          and the figures are reported relative to the interval. Gives the poll-mode delivery
          latency and the API economy (TaskInfo calls per job, per 5 s of job time, and the most
          requests crun saw in any 1 s window).
callback  Callbacks on (CallbackServer on 127.0.0.1, EngineConfig.callback_base_url), default
          intervals and rate limit, real time, a realistic 2K result (~7 MB PNG). Two loads:
          steady (a request a second, the target) and a 100-request burst (stress).
capacity  5,000 jobs in flight in one process (the fake crun runs in a subprocess so the RSS and
          CPU are the bot's alone), default poll schedule, rate limit out of the way. Peak RSS,
          event-loop lag of a 10 ms ticker, and how late each TaskInfo went out after its due time.
cpu       Bot CPU per job (time.process_time of this process over a batch / jobs; fake crun in a
          subprocess, 64 px results so nothing is re-encoded).

Delivery latency is measured from the moment the fake crun marks the task done (loop clock, a
hook in a subclass here) to the moment the sink's ``deliver()`` is called.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import dataclasses
import os
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.domain.models import GenerationRequest, Target
from bot.jobs.delivery import FileSink, Outcome
from bot.jobs.engine import EngineConfig, JobEngine
from bot.jobs.scheduler import Action
from bot.media import MediaFetcher
from bot.store.database import Database
from bot.store.jobs import JobRepository
from bot.wan.callbacks import CallbackServer, make_app
from bot.wan.client import WanClient
from bot.wan.contract import Contract
from bot.wan.types import TaskInfo
from tests.fakes.crun_server import FakeCrun, FakeTask
from tests.helpers import RecordingSink

REQUEST = GenerationRequest(prompt="a lighthouse on a basalt cliff at dusk", n=1)
TARGET = Target("test", {})
TICK = 0.010
Row = tuple[str, str, str, str]

# --- instrumented fakes and engine ---------------------------------------------------------------


class TimedCrun(FakeCrun):
    """FakeCrun that records when each task completes and when each API request arrives."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.completed: dict[str, float] = {}  # task id -> loop time
        self.hits: dict[str, list[float]] = {}  # endpoint -> loop times
        # task id -> loop time its latest TaskInfo arrived: "TaskInfo sent", past the bot's
        # rate limiter (the fake is on loopback, so arrival is the send).
        self.info_at: dict[str, float] = {}

    async def __aenter__(self) -> TimedCrun:
        await self.start()
        return self

    def _complete(self, task: FakeTask, status: str, message: str | None) -> None:
        if not task.terminal:
            self.completed[task.task_id] = asyncio.get_running_loop().time()
        super()._complete(task, status, message)

    def _wrap(
        self,
        endpoint: str,
        handler: Callable[[web.Request, Any], Awaitable[web.StreamResponse]],
        *,
        auth: bool = True,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        inner = super()._wrap(endpoint, handler, auth=auth)
        hits = self.hits.setdefault(endpoint, [])

        async def timed(request: web.Request) -> web.StreamResponse:
            now = asyncio.get_running_loop().time()
            hits.append(now)
            if endpoint == "info" and "task_id" in request.query:
                self.info_at[request.query["task_id"]] = now
            return await inner(request)

        return timed


class TimedSink(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.at: dict[str, float] = {}  # job id -> loop time deliver() was called

    async def deliver(self, outcome: Outcome) -> dict[str, Any]:
        self.at.setdefault(outcome.job.id, asyncio.get_running_loop().time())
        return await super().deliver(outcome)


_due: contextvars.ContextVar[float | None] = contextvars.ContextVar("due", default=None)


class TimedEngine(JobEngine):
    """Remembers each job's poll due time so the client can tell how late TaskInfo went out."""

    poll_due: dict[str, float]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        schedule = self._scheduler.schedule

        def timed_schedule(action: Action, job_id: str, due: float) -> None:
            if action is Action.POLL:
                self.poll_due[job_id] = due
            schedule(action, job_id, due)

        self._scheduler.schedule = timed_schedule  # type: ignore[method-assign]

    def _start_step(self, action: Action, job_id: str) -> Coroutine[Any, Any, None] | None:
        step = super()._start_step(action, job_id)
        if action is Action.POLL and step is not None:
            return self._timed_poll(job_id, step)
        return step

    async def _timed_poll(self, job_id: str, poll: Coroutine[Any, Any, None]) -> None:
        _due.set(self.poll_due.get(job_id))
        await poll


class TimedClient(WanClient):
    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.lateness: list[float] = []

    async def task_info(self, task_id: str, *, urgent: bool = False) -> TaskInfo:
        due = _due.get()
        if due is not None:
            self.lateness.append(time.time() - due)
        return await super().task_info(task_id, urgent=urgent)


@contextlib.asynccontextmanager
async def engine_setup(
    base_url: str, api_key: str, config: EngineConfig, sink: RecordingSink
) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.sqlite3")
        client = TimedClient(api_key, base_url=base_url, limiter=config.crun_limiter())
        fetcher = MediaFetcher(max_bytes=64 * 1024 * 1024, allow_http=True, timeout=30.0)
        engine = TimedEngine(
            jobs=JobRepository(db),
            client=client,
            contract=Contract(),
            fetcher=fetcher,
            sinks={"test": sink, "files": FileSink()},
            config=config,
        )
        engine.poll_due = {}
        try:
            yield engine
        finally:
            if engine.started:
                await engine.stop()
            await fetcher.close()
            await client.close()
            await db.close()


# --- helpers -------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class Ticker:
    """A 10 ms ticker: how late each wake-up is = event-loop lag."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            self.lags.append(loop.time() - before - TICK)

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def realistic_2k_png() -> bytes:
    from bench.bench_media import realistic_png  # noqa: PLC0415 - only needed here

    return realistic_png(2048)


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms"


async def submit_all(engine: JobEngine, n: int, gap: float = 0.0) -> list[str]:
    """Submit n jobs from n users, all at once or one every ``gap`` seconds."""
    ids = []
    start = asyncio.get_running_loop().time()
    for i in range(n):
        if gap:
            await asyncio.sleep(max(0.0, start + i * gap - asyncio.get_running_loop().time()))
        job = await engine.submit(REQUEST, user_id=i, guild_id=None, target=TARGET)
        ids.append(job.id)
    return ids


async def wait_all(engine: JobEngine, ids: list[str], timeout: float) -> None:  # noqa: ASYNC109
    await asyncio.wait_for(asyncio.gather(*(engine.wait_finished(j) for j in ids)), timeout=timeout)


# --- 1+2. poll mode: delivery latency and API economy --------------------------------------------


async def run_poll(quick: bool, image: bytes) -> list[Row]:
    s = 0.1 if quick else 1.0
    n = 60 if quick else 40
    rng = random.Random(7)
    latencies: dict[str, float] = {}

    def latency_fn(inp: dict[str, Any]) -> float:
        return rng.uniform(10.0, 90.0) * s

    base = EngineConfig()
    config = dataclasses.replace(
        base,
        poll_interval_min=base.poll_interval_min * s,
        poll_interval_max=base.poll_interval_max * s,
        fast_phase=base.fast_phase * s,
        api_rate_limit=base.api_rate_limit / s,
        retry_backoff_base=base.retry_backoff_base * s,
        heartbeat_interval=base.heartbeat_interval * s,
        drain_timeout=1.0,
    )
    sink = TimedSink()
    async with TimedCrun(latency_fn=latency_fn, image_bytes=image, balance=1e12) as crun:
        async with engine_setup(crun.base_url, crun.api_key, config, sink) as engine:
            await engine.start()
            ids = await submit_all(engine, n)
            await wait_all(engine, ids, timeout=600 * s + 60)
            jobs = [await engine.jobs.require(j) for j in ids]
        for task in crun.tasks.values():
            assert task.latency is not None
            latencies[task.task_id] = task.latency
        fast, rel, lat_all = [], [], []
        for job in jobs:
            assert job.task_id is not None
            task = crun.tasks[job.task_id]
            d = sink.at[job.id] - crun.completed[job.task_id]
            lat_all.append(d)
            if task.latency is not None and task.latency < config.fast_phase:
                fast.append(d)
                rel.append(d / config.poll_interval_min)
        info = crun.hits.get("info", [])
        api = [t for e in ("create", "info", "upload_url") for t in crun.hits.get(e, [])]
        job_time = sum(latencies.values())
        per_5s = len(info) / (job_time / (5.0 * s))
        burst = max_in_window(api, 1.0 * s)
    scaled = "; 0.1 s windows at 50/s" if quick else ""
    interval = config.poll_interval_min
    tag = "(x0.1 time)" if quick else "(real time)"
    # Only the wait for the next poll scales with the clock; the bot's own overhead does not, so
    # the 250 ms allowance stays 250 ms and figures are given in units of the interval.
    target_p50 = interval / 2 + 0.25
    p50 = pct(fast, 50)
    return [
        (
            f"poll latency p50 / p99 {tag}, tasks done in the 1st minute ({len(fast)} jobs)",
            f"{p50:.2f} s / {pct(fast, 99):.2f} s (= {pct(rel, 50):.2f} / "
            f"{pct(rel, 99):.2f} x interval {interval:g} s)",
            f"p50 <= interval/2 + 250 ms = {target_p50:.2f} s",
            "met" if p50 <= target_p50 else "MISSED",
        ),
        (
            f"poll latency p50 / p99, all {n} jobs (10-90 s mix)",
            f"{pct(lat_all, 50):.2f} s / {pct(lat_all, 99):.2f} s",
            "(interval grows to 15 s after 1 min)",
            "-",
        ),
        (
            "TaskInfo calls per job (10-90 s mix)",
            f"{len(info) / n:.2f} (mean job {job_time / n / s:.0f} s)",
            "-",
            "-",
        ),
        (
            "TaskInfo calls per 5 s of job time",
            f"{per_5s:.2f}",
            "<= 1",
            "met" if per_5s <= 1.0 else "MISSED",
        ),
        (
            "max crun requests in any 1 s window",
            f"{burst} (limit {base.api_rate_limit:g}/s{scaled})",
            f"<= {base.api_rate_limit:g}",
            "met" if burst <= base.api_rate_limit else "MISSED",
        ),
    ]


# --- 1. callback mode ----------------------------------------------------------------------------


class LateWake:
    def __init__(self) -> None:
        self.engine: JobEngine | None = None
        self.at: dict[str, float] = {}  # job id -> loop time of the (first) callback

    def __call__(self, job_id: str) -> bool:
        self.at.setdefault(job_id, asyncio.get_running_loop().time())
        return self.engine is not None and self.engine.wake(job_id)


async def run_callback(quick: bool, image: bytes, *, burst: bool) -> list[Row]:
    """Callback mode at the default rate limit (5/s).

    steady: a busy bot: a request every second (3,600 images an hour), each task 2-30 s, so
            about one completion, one create and one woken TaskInfo per second: the limiter has
            room, and the figure is the bot's own delay.
    burst:  stress: 100 requests at once (20 s of creates at the full rate) while completions
            arrive at about 1.5/s. Woken polls jump the queue, but the 5/s window is the limit.
    """
    rng = random.Random(11)
    if burst:
        n = 20 if quick else 100
        first, spread, gap = 2.0, (20 if quick else 100) / 1.5, 0.0
    else:
        n = 20 if quick else 120
        first, spread, gap = 2.0, 28.0, 1.0

    def latency_fn(inp: dict[str, Any]) -> float:
        return first + rng.uniform(0.0, spread)

    sink = TimedSink()
    async with TimedCrun(latency_fn=latency_fn, image_bytes=image, balance=1e12) as crun:
        waker = LateWake()
        db_holder: dict[str, JobRepository] = {}

        async def lookup(job_id: str) -> str | None:
            return await db_holder["jobs"].callback_token(job_id)

        server = CallbackServer(make_app(lookup, waker), "127.0.0.1", 0)
        port = await server.start()
        try:
            config = dataclasses.replace(
                EngineConfig(),
                callback_base_url=f"http://127.0.0.1:{port}",
                max_concurrent_jobs=n,
                drain_timeout=1.0,
            )
            async with engine_setup(crun.base_url, crun.api_key, config, sink) as engine:
                db_holder["jobs"] = engine.jobs
                waker.engine = engine
                await engine.start()
                ids = await submit_all(engine, n, gap=gap)
                await wait_all(engine, ids, timeout=spread + 120)
                jobs = [await engine.jobs.require(j) for j in ids]
        finally:
            await server.stop()
        lat, to_wake, to_info, to_sink = [], [], [], []
        for job in jobs:
            assert job.task_id is not None
            done = crun.completed[job.task_id]
            lat.append(sink.at[job.id] - done)
            to_wake.append(waker.at[job.id] - done)
            to_info.append(crun.info_at[job.task_id] - waker.at[job.id])
            to_sink.append(sink.at[job.id] - crun.info_at[job.task_id])
        info = len(crun.hits.get("info", []))
        api = [t for e in ("create", "info", "upload_url") for t in crun.hits.get(e, [])]
        window = max_in_window(api, 1.0)
    p99 = pct(lat, 99)
    label = f"{n} requests at once, ~1.5 done/s (stress)" if burst else f"{n} jobs, 1 request/s"
    return [
        (
            f"callback latency p50 / p99, {label}, 2K PNG {len(image) / 1e6:.1f} MB",
            f"{ms(pct(lat, 50))} / {ms(p99)} (max {ms(max(lat))})",
            "-" if burst else "p99 <= 250 ms",
            "-" if burst else ("met" if p99 <= 0.25 else "MISSED"),
        ),
        (
            "  of which p50/p99: callback arrives, TaskInfo sent, delivered",
            " / ".join(f"{ms(pct(x, 50))}/{ms(pct(x, 99))}" for x in (to_wake, to_info, to_sink)),
            "-",
            "-",
        ),
        (
            "  TaskInfo calls per job; most crun requests in any 1 s",
            f"{info / n:.2f}; {window}",
            "-; <= 5",
            "met" if window <= EngineConfig().api_rate_limit else "MISSED",
        ),
    ]


# --- 3+4. capacity and CPU, fake crun in a subprocess --------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def fake_process(latency: float) -> Any:
    port = free_port()
    key = "ak_" + "b" * 32
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_engine",
        "--serve-fake",
        str(port),
        key,
        str(latency),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("fake crun did not start")
        yield f"http://127.0.0.1:{port}", key
    finally:
        proc.terminate()
        await proc.wait()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run_capacity(quick: bool, n: int, late_x: float) -> list[Row]:
    hold = 10.0 if quick else 60.0
    config = dataclasses.replace(
        EngineConfig(), max_concurrent_jobs=n, api_rate_limit=100_000.0, drain_timeout=1.0
    )
    sink = TimedSink()
    rss_before = rss_mb()
    ticker = Ticker()
    async with (
        fake_process(latency=1e6) as (url, key),
        engine_setup(url, key, config, sink) as engine,
    ):
        await engine.start()
        t0 = time.perf_counter()
        for i in range(n):  # one burst: the fair queue takes it in O(log members) per job
            await engine.submit(REQUEST, user_id=i, guild_id=None, target=TARGET)
        t_submit = time.perf_counter() - t0
        deadline = time.monotonic() + 600
        while len(engine.poll_due) < n:  # every job has its task id and a poll scheduled
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(engine.poll_due)} of {n} jobs reached crun")
            await asyncio.sleep(0.1)
        t_all = time.perf_counter() - t0
        client = engine.client
        assert isinstance(client, TimedClient)
        client.lateness.clear()
        ticker.start()
        cpu0 = time.process_time()
        await asyncio.sleep(hold)
        cpu = time.process_time() - cpu0
        await ticker.stop()
        late = list(client.lateness)
    peak = rss_mb()
    lag99 = pct(ticker.lags, 99)
    over = sum(1 for x in late if x > late_x)
    return [
        (
            f"capacity: {n} jobs submitted / all at crun",
            f"{t_submit:.1f} s / {t_all:.1f} s",
            "-",
            "-",
        ),
        (
            "capacity: peak RSS (process, incl. earlier runs)",
            f"{peak:.0f} MB (at start {rss_before:.0f} MB)",
            "<= 300 MB",
            "met" if peak <= 300 else "MISSED",
        ),
        (
            f"capacity: loop lag p50 / p99 / max over {hold:.0f} s",
            f"{ms(pct(ticker.lags, 50))} / {ms(lag99)} / {ms(max(ticker.lags))}",
            "p99 <= 50 ms",
            "met" if lag99 <= 0.05 else "MISSED",
        ),
        (
            "capacity: TaskInfo sent, per s / needed per s",
            f"{len(late) / hold:.0f} / {n / (config.poll_interval_min * 1.05):.0f} "
            f"(bot CPU {cpu / hold * 100:.0f}% of a core)",
            "-",
            "-",
        ),
        (
            "capacity: TaskInfo later than due, p50 / p99 / max",
            f"{pct(late, 50):.2f} s / {pct(late, 99):.2f} s / {max(late, default=0):.2f} s",
            f"none > {late_x:g} s",
            "met" if over == 0 and late else f"MISSED ({over} polls)",
        ),
    ]


async def run_cpu(quick: bool) -> list[Row]:
    n = 200 if quick else 1000
    s = 0.1
    base = EngineConfig()
    config = dataclasses.replace(
        base,
        poll_interval_min=base.poll_interval_min * s,
        poll_interval_max=base.poll_interval_max * s,
        fast_phase=base.fast_phase * s,
        max_concurrent_jobs=100,
        api_rate_limit=10_000.0,
        drain_timeout=1.0,
    )
    sink = TimedSink()
    # latency 2.5 s = 25 s at real speed: about 5 polls per job
    async with (
        fake_process(latency=2.5) as (url, key),
        engine_setup(url, key, config, sink) as engine,
    ):
        await engine.start()
        client = engine.client
        assert isinstance(client, TimedClient)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        ids = await submit_all(engine, n)
        await wait_all(engine, ids, timeout=300)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - t0
        polls = len(client.lateness)
    per_job = cpu / n
    return [
        (
            f"bot CPU per job ({n} jobs, {polls / n:.1f} polls each, no re-encoding)",
            f"{per_job * 1000:.1f} ms ({wall:.0f} s wall)",
            "<= 10 ms",
            "met" if per_job <= 0.010 else "MISSED",
        )
    ]


async def serve_fake(port: int, key: str, latency: float) -> None:
    async with FakeCrun(
        api_key=key, port=port, task_latency=latency, image_size=(64, 64), balance=1e12
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


# --- main ----------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    head: Row = ("measure", "figure", "target", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)


async def run(quick: bool, only: set[str], n_capacity: int, late_x: float) -> None:
    rows: list[Row] = []
    # Capacity first: ru_maxrss is a high-water mark for the whole process.
    if "capacity" in only:
        with timed("capacity"):
            rows += await run_capacity(quick, n_capacity, late_x)
    if "cpu" in only:
        with timed("cpu"):
            rows += await run_cpu(quick)
    image = await asyncio.to_thread(realistic_2k_png) if only & {"poll", "callback"} else b""
    if "callback" in only:
        with timed("callback"):
            rows += await run_callback(quick, image, burst=False)
            rows += await run_callback(quick, image, burst=True)
    if "poll" in only:
        with timed("poll"):
            rows += await run_poll(quick, image)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print_table(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="about a minute: time scaled by 0.1")
    p.add_argument("--only", default="poll,callback,capacity,cpu")
    p.add_argument("--capacity-jobs", type=int, help="default 5000 (--quick: 2000)")
    p.add_argument("--late", type=float, default=1.0, help="X: a poll this late (s) is late")
    p.add_argument(
        "--serve-fake", nargs=3, metavar=("PORT", "KEY", "LATENCY"), help=argparse.SUPPRESS
    )
    a = p.parse_args()
    if a.serve_fake:
        port, key, latency = a.serve_fake
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_fake(int(port), key, float(latency)))
        return
    n_capacity = a.capacity_jobs or (2000 if a.quick else 5000)
    asyncio.run(run(a.quick, set(a.only.split(",")), n_capacity, a.late))


if __name__ == "__main__":
    main()
