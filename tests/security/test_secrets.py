"""The crun API key and the Discord bot token never leave the bot's memory.

The real bot runs against both fakes with every logger at DEBUG: a good job, a job crun fails,
a 401 on CreateTask, 401s while polling and on the balance probe. Then every log record (raw,
before any redaction filter, and as the production handler writes it), every REST payload and
file the fake Discord received, every body the fake crun received, /metrics and /healthz are
searched for the secrets and for recognisable pieces of them.

tests/unit/test_logging.py proves the redaction filter on the engine alone
(::test_no_secret_in_any_log_line_of_a_real_job_and_a_failing_one); this is the whole bot.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from bot.app import WanBot
from bot.logging_setup import make_handler
from tests.fakes.discord_fake import DiscordFake
from tests.helpers import wait_until
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(90)

TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe." + secrets.token_urlsafe(27)


@pytest.fixture
async def discord_fake() -> AsyncIterator[DiscordFake]:
    """The e2e world, with a bot token that looks like a real one (and is unique)."""
    async with DiscordFake(token=TOKEN) as fake:
        yield fake


class Records(logging.Handler):
    """Keeps every raw record (no filters) as text: message, exception and stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.count = 0
        self.debug_loggers: set[str] = set()
        self._fmt = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if record.levelno == logging.DEBUG:
            self.debug_loggers.add(record.name)
        try:
            text = record.getMessage()
        except Exception:  # a bad format must still be searched
            text = f"{record.msg!r} {record.args!r}"
        parts = [record.name, text]
        if record.exc_info:
            parts.append(self._fmt.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        self.texts.append("\n".join(parts))


@pytest.fixture
def everything_at_debug() -> Iterator[tuple[Records, io.StringIO]]:
    """Every logger at DEBUG; a raw recorder and the production handler on the root."""
    raw = Records()
    out = io.StringIO()
    root = logging.getLogger()
    saved = {name: lg.level for name, lg in _loggers()}
    saved_root = root.level
    production = make_handler("text", secrets=[TOKEN], stream=out)
    root.addHandler(raw)
    root.addHandler(production)
    root.setLevel(logging.DEBUG)
    for _, lg in _loggers():
        lg.setLevel(logging.DEBUG)
    try:
        yield raw, out
    finally:
        root.removeHandler(raw)
        root.removeHandler(production)
        root.setLevel(saved_root)
        for name, lg in _loggers():
            lg.setLevel(saved.get(name, logging.NOTSET))


def _loggers() -> list[tuple[str, logging.Logger]]:
    return [
        (name, lg)
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    ]


def pieces(secret: str) -> list[str]:
    """The secret and pieces of it that would still give it away (16-character windows)."""
    return [secret] + [secret[i : i + 16] for i in range(0, len(secret) - 15, 8)]


def find_leaks(where: str, text: str, secret_list: list[str]) -> list[str]:
    return [f"{where}: {p!r}" for s in secret_list for p in pieces(s) if p in text][:3]


async def http_get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_no_secret_anywhere_through_success_failures_and_401s(
    wan: WanWorld, everything_at_debug: tuple[Records, io.StringIO]
) -> None:
    raw, out = everything_at_debug
    key = wan.crun.api_key
    secret_list = [key, TOKEN]
    wan.crun.outcome = lambda inp: (
        ("failed", "DataInspectionFailed") if "fail" in inp["prompt"] else None
    )
    surfaces: dict[str, str] = {}

    async with wan.fake.running(wan.bot(health_listen="127.0.0.1:0")) as client:
        assert isinstance(client, WanBot)
        server = client.runtime.callback_server
        assert server is not None
        base = f"http://127.0.0.1:{server.ports[0]}"
        ctx = client.runtime

        async def finished(n: int) -> bool:
            counts = await ctx.jobs.count_by_status()
            return sum(v for k, v in counts.items() if k != "queued") >= n and all(
                k in ("succeeded", "failed", "uncertain", "expired") for k in counts
            )

        # 1. a good job, 2. a job crun fails
        good = await wan.imagine("a heron at dawn")
        bad = await wan.imagine("please fail")
        await wait_until(lambda: finished(2), timeout=20, what="two jobs to end")
        # 3. crun rejects the key on CreateTask
        wan.crun.fail("create", 401, times=1, message="invalid or missing API key")
        rejected = await wan.imagine("a third picture")
        await wait_until(lambda: finished(3), timeout=20, what="the 401 job to end")
        # 4. crun rejects the key while polling (then takes it again)
        wan.crun.task_latency = None
        await wan.imagine("a fourth picture")
        await wait_until(lambda: len(wan.crun.tasks) == 3, timeout=10, what="the 4th task")
        polls = wan.crun.calls["info"]
        wan.crun.fail("info", 401, times=2)
        await wait_until(
            lambda: wan.crun.calls["info"] >= polls + 3,
            timeout=20,
            what="two 401 polls and one more",
        )
        wan.crun.finish(next(t for t in wan.crun.tasks if not wan.crun.tasks[t].terminal))
        await wait_until(lambda: finished(4), timeout=30, what="the 4th job to end")
        await wan.fake.wait_bot_idle()
        # 5. /healthz with a good key, then with crun refusing it; /metrics
        client.runtime.health.api_fresh_for = 0
        client.runtime.health.probe_cache_for = 0
        surfaces["/healthz ok"] = (await http_get(base + "/healthz"))[1]
        wan.crun.fail("balance", 401, times=5)
        status, text = await http_get(base + "/healthz")
        assert status == 503 and "401" in text  # the 401 really happened
        surfaces["/healthz 401"] = text
        surfaces["/metrics"] = (await http_get(base + "/metrics"))[1]

    # The paths really ran: a result, a failure message, the 401 message.
    assert any(m.attachments for m in wan.fake.messages[wan.channel.id])
    for handle, words in ((bad, "content filter"), (rejected, "API key")):
        assert handle.original is not None
        assert words in json.dumps([handle.original.content, handle.original.embeds]), words
    assert good.original is not None
    # DEBUG really was on: discord.py's HTTP and gateway and the bot's own downloads logged at it.
    assert raw.count > 100, raw.count
    assert {"discord.http", "discord.gateway", "bot.media.fetch"} <= raw.debug_loggers

    for i, text in enumerate(raw.texts):
        surfaces[f"log record {i}"] = text
    surfaces["production log output"] = out.getvalue()
    for r in wan.fake.requests:
        payload = json.dumps(r.json, default=str) + json.dumps(r.query)
        payload += "".join(f.filename + f.data.decode("latin-1") for f in r.files)
        payload += json.dumps({k: v for k, v in r.headers.items() if k.lower() != "authorization"})
        surfaces[f"discord {r.method} {r.path}"] = r.path + payload
    for endpoint, body in wan.crun.requests:
        surfaces[f"crun {endpoint} body"] = json.dumps(body, default=str)
    for endpoint, headers in wan.crun.headers_log:
        surfaces[f"crun {endpoint} headers"] = json.dumps(
            {k: v for k, v in headers.items() if k.lower() != "x-api-key"}
        )

    leaks = [
        leak for where, text in surfaces.items() for leak in find_leaks(where, text, secret_list)
    ]
    assert leaks == [], leaks[:10]
    # The searches could find something: the key did travel, in the header crun checks.
    assert any(h.get("x-api-key") == key for _, h in wan.crun.headers_log)


async def test_a_failure_reason_echoing_the_key_is_not_shown_to_the_member(
    wan: WanWorld,
) -> None:
    """crun's failure reason is shown to the member (clipped); one that echoes the key must
    not carry it into a Discord message."""
    key = wan.crun.api_key
    wan.crun.outcome = lambda inp: ("failed", f"upstream rejected request from key {key}")
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine("a moth")
        await handle.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "Could not" in m.embeds[0].get("title", ""),
            timeout=15,
        )
        await wan.fake.wait_bot_idle()
    sent = json.dumps([r.json for r in wan.fake.requests], default=str)
    assert "upstream rejected request" in sent  # the reason itself is shown ...
    assert find_leaks("discord", sent, [key]) == []  # ... but never the key
