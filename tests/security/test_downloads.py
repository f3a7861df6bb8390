"""Result downloads the bot must refuse, end to end: /imagine through the fake Discord, crun
reports URLs that are plain http, too big, or not images. The member gets a friendly message,
nothing from the bad URL is posted, and the credits are refunded.

The fetcher's rules themselves are unit-tested in tests/unit/test_media.py (http refused,
Content-Length over the cap refused without reading, a chunked stream cut at the cap, internal
hosts refused). This file proves they hold on the real delivery path.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bot.app import WanBot
from bot.domain.models import DeliveryState, Job, JobStatus
from tests.fakes.discord_fake import FakeMessage, InteractionHandle
from tests.helpers import png, raw_png, wait_until
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(90)

CAP = 200_000  # DOWNLOAD_MAX_BYTES for these tests
CHUNK = 16384
IMAGE = png(64, 48, (10, 120, 200))  # a real PNG the CDN serves


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas (a decompression bomb's calling card)."""
    return raw_png(width, height, zlib.compress(b"\0" * 64))


@dataclass
class EvilCdn:
    base: str = ""
    hits: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture
async def cdn() -> AsyncIterator[EvilCdn]:
    state = EvilCdn()

    async def declared_huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.content_length = 50 * 1024 * 1024
        await resp.prepare(request)
        await state.release.wait()  # a client that waits for the body hangs here
        return resp

    async def endless(request: web.Request) -> web.StreamResponse:
        # No Content-Length: a chunked stream that only stops when the client hangs up.
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError, RuntimeError):
            for _ in range(50 * 1024 * 1024 // CHUNK):
                await resp.write(b"\x89PNG" + b"\0" * (CHUNK - 4))
        return resp

    async def lying_length(request: web.Request) -> web.StreamResponse:
        # Declares a small body (under the cap), then sends more: only what was declared
        # may be read, and that is no image.
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.content_length = 1000
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write((b"<html>" + b"x" * 2000)[:1000])
            await resp.write(IMAGE + b"\0" * 5000)  # past the declared length
        return resp

    bodies: dict[str, tuple[bytes, str]] = {
        "page.html": (b"<html><body>hello</body></html>", "text/html"),
        "html-as.png": (b"<html><script>alert(1)</script></html>" * 20, "image/png"),
        "script.svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
        "exe.png": (b"MZ\x90\x00" + b"\0" * 4000, "image/png"),
        "bomb.png": (png_claiming(100_000, 100_000), "image/png"),
        "empty.png": (b"", "image/png"),
        "real-png-as.html": (IMAGE, "text/html"),  # the control: bytes decide, not the label
    }

    async def fixed(request: web.Request) -> web.Response:
        body, ctype = bodies[request.match_info["name"]]
        return web.Response(body=body, headers={"Content-Type": ctype})

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        state.hits.append(request.path)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/declared-huge.png", declared_huge)
    app.router.add_get("/endless.png", endless)
    app.router.add_get("/lying-length.png", lying_length)
    app.router.add_get("/{name}", fixed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


@dataclass
class Ran:
    job: Job
    handle: InteractionHandle
    ledger: str | None


async def job_of_task(bot: WanBot, task_id: str) -> Job | None:
    """The job crun's ``task_id`` belongs to. None for a while after crun made the task: crun
    stores it before it answers CreateTask, and the bot records the id only once it read that."""
    row = await bot.runtime.jobs.db.fetchone("SELECT id FROM jobs WHERE task_id = ?", (task_id,))
    return None if row is None else await bot.runtime.jobs.require(str(row[0]))


async def run_job(wan: WanWorld, bot: WanBot, urls: list[str] | None) -> Ran:
    """/imagine; crun finishes the task with ``urls`` (None: crun's own); wait for the end."""
    known = set(wan.crun.tasks)
    handle = await wan.imagine("a harbour at dawn")
    await wait_until(lambda: bool(set(wan.crun.tasks) - known), timeout=10, what="the crun task")
    (task_id,) = set(wan.crun.tasks) - known
    wan.crun.finish(task_id)
    if urls is not None:
        wan.crun.tasks[task_id].media_urls = list(urls)  # same loop turn: no poll sees crun's

    async def settled() -> bool:
        job = await job_of_task(bot, task_id)
        return job is not None and job.delivery_state in (DeliveryState.DONE, DeliveryState.GAVE_UP)

    await wait_until(settled, timeout=20, what="the job to be delivered or reported")
    await wan.fake.wait_bot_idle()
    job = await job_of_task(bot, task_id)
    assert job is not None
    assert bot.runtime.quotas is not None
    ledger = await bot.runtime.quotas.ledger_state(job.id)
    return Ran(job, handle, ledger[0] if ledger else None)


def bot_messages(wan: WanWorld) -> list[FakeMessage]:
    return [m for m in wan.fake.messages[wan.channel.id] if wan.from_bot(m)]


def shown_text(wan: WanWorld, ran: Ran) -> str:
    """Everything the member can read about the job: status message and channel messages."""
    parts: list[str] = []
    messages = [ran.handle.original, *ran.handle.followups, *bot_messages(wan)]
    for m in messages:
        if m is None:
            continue
        parts.append(m.content or "")
        for e in m.embeds:
            parts += [e.get("title", ""), e.get("description", "")]
            parts += [f.get("value", "") for f in e.get("fields", [])]
    return "\n".join(parts)


def assert_refused_politely(wan: WanWorld, ran: Ran, bad_urls: list[str]) -> None:
    assert ran.job.status is JobStatus.SUCCEEDED  # crun made it ...
    assert ran.job.delivery_state is DeliveryState.DONE  # ... and the member was told
    assert ran.ledger == "refunded"  # ... and is not charged for images they never got
    original = ran.handle.original
    assert original is not None
    assert original.embeds, "the status message shows the failure"
    embed = original.embeds[0]
    assert embed["title"] == "Could not make this image"
    assert "could not be downloaded" in embed["description"]
    assert "try again" in embed["description"].lower()
    assert ran.job.id in embed["description"]  # a reference for the admins
    text = shown_text(wan, ran)
    for bad in bad_urls:
        assert bad not in text
    for word in ("Traceback", "MediaError", "Exception", "127.0.0.1", "http://"):
        assert word not in text, word
    # Nothing from the bad URL is posted: no attachment about this job anywhere.
    for m in bot_messages(wan):
        assert not (m.attachments and ran.job.id in str(m.embeds)), m


# --- https only ----------------------------------------------------------------------------------


async def test_plain_http_results_are_refused_by_default(wan: WanWorld, cdn: EvilCdn) -> None:
    """The default settings (ALLOW_HTTP_RESULTS off): crun's own http:// URL and a foreign one
    are refused without a single request to either server."""
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot(allow_http_results=False)) as client:
        assert isinstance(client, WanBot)
        for urls in (None, [cdn.url("real-png-as.html")]):
            ran = await run_job(wan, client, urls)
            assert_refused_politely(wan, ran, urls or list(ran.job.result_urls))
    assert wan.crun.calls["media"] == 0
    assert cdn.hits == []
    assert not any(m.attachments for m in bot_messages(wan))


# --- too big, or not an image ------------------------------------------------------------------

BAD = [
    "declared-huge.png",  # Content-Length over the cap
    "endless.png",  # no Content-Length, streams past the cap
    "lying-length.png",  # Content-Length under the cap, the rest never read
    "page.html",  # text/html, HTML bytes
    "html-as.png",  # labelled image/png, HTML bytes
    "script.svg",  # SVG with a script
    "exe.png",  # a Windows executable labelled image/png
    "bomb.png",  # a PNG header claiming 100000 x 100000
    "empty.png",  # zero bytes
]


async def test_oversized_and_non_image_results_are_refused(wan: WanWorld, cdn: EvilCdn) -> None:
    wan.crun.task_latency = None
    settings = {"allow_http_results": True, "download_max_bytes": CAP}
    async with wan.fake.running(wan.bot(**settings)) as client:
        assert isinstance(client, WanBot)
        for name in BAD:
            ran = await run_job(wan, client, [cdn.url(name)])
            assert_refused_politely(wan, ran, [cdn.url(name)])
            assert f"/{name}" in cdn.hits, name  # it really was tried
        # The control: the same path delivers a real PNG, whatever its label says.
        good = await run_job(wan, client, [cdn.url("real-png-as.html")])
    assert good.job.delivery_state is DeliveryState.DONE
    posted = [m for m in bot_messages(wan) if m.attachments]
    assert len(posted) == 1
    (attachment,) = posted[0].attachments
    assert attachment.data == IMAGE
    assert attachment.filename.endswith(".png")
    assert attachment.content_type == "image/png"
    assert good.ledger == "settled"


# Regression: the job stayed settled, so the member paid for images they never got.
async def test_credits_are_refunded_when_results_cannot_be_downloaded(
    wan: WanWorld, cdn: EvilCdn
) -> None:
    wan.crun.task_latency = None
    settings = {"allow_http_results": True, "download_max_bytes": CAP}
    async with wan.fake.running(wan.bot(**settings)) as client:
        assert isinstance(client, WanBot)
        ran = await run_job(wan, client, [cdn.url("html-as.png")])
        assert client.runtime.quotas is not None
        usage = await client.runtime.quotas.usage(wan.guild.id, wan.alice.id)
    assert_refused_politely(wan, ran, [cdn.url("html-as.png")])
    assert usage.daily_used == 0, usage
