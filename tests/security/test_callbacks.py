"""The crun callback receiver under attack: forged tokens, huge bodies, lies and floods.

Through the real receiver (bot/wan/callbacks.py) wired to a real engine, the fake crun and a real
SQLite file, exactly as bot/runtime.py wires them. A refused callback must cause no TaskInfo call
and no change to the job; an accepted one is only a wake-up call.

Already proven elsewhere (not repeated here): a wrong token and an unknown job id get 404, a
200 kB body with Content-Length gets 413, and a lying "success" leaves no foreign URL in the job
(tests/integration/test_engine.py::test_callback_with_a_wrong_token_is_refused and
::test_lying_callback_is_not_trusted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

import bot.wan.callbacks as callbacks_module
from bot.domain.models import GenerationRequest, Job, JobStatus, Target
from bot.jobs.engine import JobEngine
from bot.jobs.scheduler import Action
from bot.wan.callbacks import MAX_BODY, CallbackServer, make_app
from tests.conftest import Harness
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)

T2I = GenerationRequest(prompt="a lighthouse on a basalt cliff at dusk", n=1)
TEST = Target("test", {})


@dataclass
class Waker:
    """The ``wake`` the receiver calls: records every call, then forwards to the engine."""

    engine: JobEngine | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, job_id: str) -> bool:
        self.calls.append(job_id)
        return self.engine.wake(job_id) if self.engine else False


@dataclass
class World:
    h: Harness
    engine: JobEngine
    waker: Waker
    port: int
    jobs: list[Job]
    tokens: list[str]
    task_ids: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/crun/callback"

    def url(self, job: int = 0, token: str | None = None, *, raw_query: str | None = None) -> str:
        query = raw_query if raw_query is not None else f"t={quote(token or '', safe='')}"
        return f"{self.base}/{self.jobs[job].id}?{query}"

    async def snapshot(self) -> list[Job]:
        return [await self.h.jobs.require(j.id) for j in self.jobs]


@pytest.fixture
async def world(harness: Harness) -> AsyncIterator[World]:
    """Two pending jobs (crun in manual mode) tracked with callbacks on and fallback polling
    every 30 s, so within a test a TaskInfo call can only come from an accepted callback."""
    harness.crun.task_latency = None
    harness.crun.callbacks_enabled = False  # only the test sends callbacks
    waker = Waker()
    server = CallbackServer(make_app(harness.jobs.callback_token, waker), "127.0.0.1", 0)
    port = await server.start()
    try:
        engine = await harness.engine(
            callback_base_url=f"http://127.0.0.1:{port}",
            callback_poll_interval=30.0,
            poll_interval_max=30.0,
            api_rate_limit=5.0,  # the production default
        )
        waker.engine = engine
        jobs = [await engine.submit(T2I, user_id=u, guild_id=None, target=TEST) for u in (1, 2)]
        await wait_until(lambda: len(harness.crun.tasks) == 2, what="both tasks")

        async def pending() -> bool:
            statuses = [(await harness.jobs.require(j.id)).status for j in jobs]
            return statuses == [JobStatus.PENDING] * len(jobs)

        await wait_until(pending, what="both jobs pending")
        tokens = [await harness.jobs.callback_token(j.id) or "" for j in jobs]
        assert all(len(t) >= 16 for t in tokens), "callback tokens must be long and random"
        task_ids = [(await harness.jobs.require(j.id)).task_id or "" for j in jobs]
        yield World(harness, engine, waker, port, jobs, tokens, task_ids)
    finally:
        await server.stop()


async def post(url: str, **kw: Any) -> int:
    async with aiohttp.ClientSession() as s, s.post(url, **kw) as r:
        await r.read()
        return r.status


# --- who may knock ------------------------------------------------------------------------------


async def test_forged_tokens_are_refused_without_any_effect(world: World) -> None:
    """Every variant a forger might try: refused alike (404, the answer for an unknown job), no
    wake-up, no TaskInfo, no change to either job. Then the right token, as the control."""
    right, other = world.tokens
    wrong_same_length = secrets.token_urlsafe(64)[: len(right)]
    variants: dict[str, str] = {
        "missing": "",
        "empty": "t=",
        "wrong, same length": f"t={quote(wrong_same_length, safe='')}",
        "the other job's token": f"t={quote(other, safe='')}",
        "upper-cased": f"t={quote(right.upper(), safe='')}",
        "lower-cased": f"t={quote(right.lower(), safe='')}",
        "swapped case": f"t={quote(right.swapcase(), safe='')}",
        "leading space": f"t={quote(' ' + right, safe='')}",
        "trailing space": f"t={quote(right + ' ', safe='')}",
        "trailing newline": f"t={quote(right + chr(10), safe='')}",
        "trailing NUL": f"t={quote(right + chr(0), safe='')}",
        "one char short": f"t={quote(right[:-1], safe='')}",
        "one char long": f"t={quote(right + 'A', safe='')}",
        "doubled": f"t={quote(right * 2, safe='')}",
        "prefix only": f"t={quote(right[:8], safe='')}",
        "other name": f"token={quote(right, safe='')}",
        "wrong first of two": f"t=nope&t={quote(right, safe='')}",
        "non-ascii": "t=%C3%A9" + quote(right[1:], safe=""),
    }
    if right.swapcase() == right:  # a token without letters would make the case variants moot
        pytest.fail("callback token has no letters; case variants would prove nothing")
    before = await world.snapshot()
    answers = {
        name: await post(world.url(raw_query=q), json={"status": "success"})
        for name, q in variants.items()
    }
    # The right token on the wrong job, and the right token in a header or body only.
    answers["right token, other job"] = await post(world.url(1, right), json={})
    answers["token in header only"] = await post(world.url(raw_query=""), headers={"t": right})
    answers["token in body only"] = await post(world.url(raw_query=""), json={"t": right})
    answers["job id upper-cased"] = await post(
        f"{world.base}/{world.jobs[0].id.upper()}?t={quote(right, safe='')}", json={}
    )

    assert answers == dict.fromkeys(answers, 404), answers
    assert world.waker.calls == []
    assert world.h.crun.calls["info"] == 0
    assert await world.snapshot() == before

    # Control: the right token is accepted, wakes the engine, and costs one TaskInfo.
    assert await post(world.url(0, right), json={}) == 200
    assert world.waker.calls == [world.jobs[0].id]
    await wait_until(lambda: world.h.crun.calls["info"] == 1, what="the woken TaskInfo")


async def test_other_methods_and_odd_paths_are_refused(world: World) -> None:
    right = world.tokens[0]
    job = world.jobs[0].id
    async with aiohttp.ClientSession() as s:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            async with s.request(method, world.url(0, right)) as r:
                assert r.status == 405, method
        for path in (
            f"/crun/callback/{job}/extra",
            f"/crun/callback/{job}%2F..%2F{world.jobs[1].id}",
            "/crun/callback/" + "a" * 5000,
            "/crun/callback/%00",
            f"/crun/callback/{job}'%20OR%20'1'='1",
        ):
            async with s.post(f"http://127.0.0.1:{world.port}{path}?t={right}", json={}) as r:
                assert r.status in (404, 414, 400), (path, r.status)
    assert world.waker.calls == []
    assert world.h.crun.calls["info"] == 0


async def test_tokens_are_compared_in_constant_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every decision goes through compare_digest, also for unknown job ids (so timing tells
    nothing about which ids exist), and it is what makes the decision."""
    seen: list[tuple[bytes | str, bytes | str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setattr(secrets, "compare_digest", spy)
    if hasattr(callbacks_module, "compare_digest"):
        monkeypatch.setattr(callbacks_module, "compare_digest", spy)

    right = world.tokens[0]
    cases = [
        (world.url(0, right), 200),
        (world.url(0, "wrong"), 404),
        (world.url(0, right.upper()), 404),
        (f"{world.base}/nosuchjob?t={right}", 404),
        (f"{world.base}/{'z' * 80}?t={right}", 404),  # too long to look up
    ]
    for url, expected in cases:
        mark = len(seen)
        assert await post(url, json={}) == expected, url
        compared = seen[mark:]
        assert len(compared) == 1, (url, compared)
        given = compared[0][0]
        given_text = given.decode() if isinstance(given, bytes) else given
        assert given_text in url or quote(given_text, safe="") in url

    # The spy decides: if compare_digest says no, even the right token is refused.
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: False)
    monkeypatch.setattr(secrets, "compare_digest", lambda a, b: False)
    if hasattr(callbacks_module, "compare_digest"):
        monkeypatch.setattr(callbacks_module, "compare_digest", lambda a, b: False)
    assert await post(world.url(0, right), json={}) == 404
    assert world.waker.calls == [world.jobs[0].id]  # only the first, accepted case


# --- body size --------------------------------------------------------------------------------


async def raw_post(
    port: int, path: str, headers: dict[str, str], chunks: list[bytes], *, chunked: bool
) -> tuple[int, int]:
    """POST by hand and send only ``chunks``, never finishing the body. Returns (status, bytes
    the server had been sent when it answered). A server that buffers the whole body before
    answering would wait forever here (the test's timeout fails it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        for chunk in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
        await writer.drain()
        async with asyncio.timeout(5):
            status_line = await reader.readline()
        return int(status_line.split()[1]), sent
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_huge_body_is_refused_with_413_before_it_all_arrives(
    world: World, chunked: bool
) -> None:
    right = world.tokens[0]
    path = f"/crun/callback/{world.jobs[0].id}?t={right}"
    headers = {"Content-Type": "application/json"}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(1024 * 1024 * 1024)  # claims 1 GiB
    chunks = [b"x" * 16384] * (MAX_BODY // 16384 + 2)  # a little over the cap, then silence
    status, sent = await raw_post(world.port, path, headers, chunks, chunked=chunked)
    assert status == 413
    assert sent < 2 * MAX_BODY
    assert world.waker.calls == []
    assert world.h.crun.calls["info"] == 0


async def test_a_huge_body_with_a_wrong_token_is_not_read_at_all(world: World) -> None:
    path = f"/crun/callback/{world.jobs[0].id}?t=wrong"
    headers = {"Content-Length": str(1024 * 1024 * 1024)}
    status, _ = await raw_post(world.port, path, headers, [b"{"], chunked=False)
    assert status == 404
    assert world.waker.calls == []


async def test_a_body_just_under_the_cap_is_accepted(world: World) -> None:
    """The control for the 413s above: the cap is not simply "refuse every body"."""
    body = b'{"pad": "' + b"x" * (MAX_BODY - 64) + b'"}'
    assert len(body) < MAX_BODY
    assert await post(world.url(0, world.tokens[0]), data=body) == 200
    assert world.waker.calls == [world.jobs[0].id]


# --- the body is never trusted ------------------------------------------------------------------


@pytest.fixture
async def evil_cdn() -> AsyncIterator[tuple[str, list[str]]]:
    """A server the lies point at; it records every hit (there must be none)."""
    hits: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"\x89PNG\r\n\x1a\n evil", content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


def _info_reaches(world: World, n: int) -> Callable[[], bool]:
    return lambda: world.h.crun.calls["info"] >= n


async def test_lies_with_a_valid_token_only_trigger_a_taskinfo_read(
    world: World, evil_cdn: tuple[str, list[str]]
) -> None:
    evil, hits = evil_cdn
    tid = world.task_ids[0]
    lies: list[dict[str, Any] | bytes] = [
        {"task_id": tid, "status": "success", "result": {"media_urls": [f"{evil}/a.png"]}},
        {"task_id": tid, "status": "failed", "result": {"code": 501, "message": "lol no"}},
        {"task_id": world.task_ids[1], "status": "success", "result": {"media_urls": [evil]}},
        {"status": "success", "credits": -1000, "result": {"media_urls": [f"{evil}/b.png"]}},
        b"not json at all \xff\xfe",
    ]
    for n, lie in enumerate(lies, 1):
        kw: dict[str, Any] = {"data": lie} if isinstance(lie, bytes) else {"json": lie}
        assert await post(world.url(0, world.tokens[0]), **kw) == 200
        await wait_until(_info_reaches(world, n), what=f"TaskInfo #{n}")
        job = await world.h.jobs.require(world.jobs[0].id)
        assert job.status is JobStatus.PENDING, (lie, job.status)
        assert job.result_urls == ()
    assert world.h.sink.delivered == {}
    # The other job, named in a lie, was not touched.
    assert (await world.h.jobs.require(world.jobs[1].id)).status is JobStatus.PENDING

    # The truth arrives: only crun's own URLs are fetched and delivered.
    world.h.crun.finish(tid)
    assert await post(world.url(0, world.tokens[0]), json={"status": "whatever"}) == 200
    done = await world.engine.wait_finished(world.jobs[0].id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert all(u.startswith(world.h.crun.base_url) for u in done.result_urls)
    outcome = world.h.sink.delivered[world.jobs[0].id]
    assert all(img.source_url.startswith(world.h.crun.base_url) for img in outcome.images)
    assert hits == []
    assert done.credits == 5.0  # crun's figure, not the lie's


# --- floods -------------------------------------------------------------------------------------


def quiet(world: World) -> bool:
    """No poll of job 0 running or due within the next 5 s."""
    e = world.engine
    jid = world.jobs[0].id
    soon = e.clock() + 5
    due = e._scheduler.due(Action.POLL, jid)
    return not e._scheduler.running(Action.POLL, jid) and (due is None or due > soon)


async def test_a_flood_of_valid_callbacks_costs_a_bounded_number_of_taskinfo_calls(
    world: World,
) -> None:
    """200 valid callbacks for one job at once (a replaying attacker, or crun retrying): each is
    answered, and TaskInfo calls stay within the engine's request budget (5/s), not 200."""
    url = world.url(0, world.tokens[0])
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession() as s:

        async def one() -> int:
            async with s.post(url, json={"status": "success"}) as r:
                return r.status

        statuses = await asyncio.gather(*(one() for _ in range(200)))
    elapsed = loop.time() - started
    assert statuses == [200] * 200
    # Let the woken polls run out (the next routine poll is 30 s away), then count.
    await wait_until(lambda: quiet(world), what="woken polls to drain")
    info = world.h.crun.calls["info"]
    bound = int(5 * (elapsed + 1.05)) + 1
    assert 1 <= info <= bound, (info, elapsed)
    assert info <= 20, info
    # No state change from the flood itself: the task is still pending at crun.
    assert (await world.h.jobs.require(world.jobs[0].id)).status is JobStatus.PENDING
    assert world.h.crun.calls["create"] == 2


async def test_a_flood_of_forged_callbacks_costs_nothing(world: World) -> None:
    url = world.url(0, "forged")
    async with aiohttp.ClientSession() as s:

        async def one() -> int:
            async with s.post(url, json={"status": "success"}) as r:
                return r.status

        statuses = await asyncio.gather(*(one() for _ in range(200)))
    assert statuses == [404] * 200
    assert world.waker.calls == []
    assert world.h.crun.calls["info"] == 0


async def test_a_callback_during_an_in_flight_poll_is_not_lost(world: World) -> None:
    """crun's read for a poll already on the wire may predate the move the callback reports, so
    a callback must be followed by a TaskInfo that *starts* after it (the race: the task
    finishes just after crun answered that poll, and its callback arrives before the answer)."""
    url = world.url(0, world.tokens[0])
    world.h.crun.slow("info", 0.4)  # the first woken poll takes a while
    assert await post(url, json={}) == 200
    await wait_until(lambda: world.h.crun.calls["info"] == 1, what="the first poll in flight")
    assert world.engine._scheduler.running(Action.POLL, world.jobs[0].id)
    assert await post(url, json={}) == 200  # while that poll is still out
    await wait_until(lambda: world.h.crun.calls["info"] >= 2, timeout=2, what="a fresh poll")
