"""Busy servers: a burst of /imagine from many members of many servers, through the whole bot.

    python -m bench.busy_servers [--members 100] [--servers 10] [--flood 12] [--task 2]
                                 [--rate 50] [--user-queue-limit 12]

``WanBot`` (discord.py, the cogs, the engine, the Discord sink) logged into the in-project fake
Discord; the fake crun with callbacks on 127.0.0.1, every task taking ``--task`` seconds.
``--members`` members spread over ``--servers`` servers each send one /imagine, and one more
member of the first server sends ``--flood`` at once (first of all, the worst case for the
others); all requests go out within one second. MAX_CONCURRENT_JOBS 20, GUILD_CONCURRENT_JOBS 10
and USER_CONCURRENT_JOBS 2 (the defaults) limit what runs; USER_QUEUE_LIMIT is raised to 12 so
the flood is accepted (at the default 5 its last five would be refused, by design).
API_RATE_LIMIT is 50/s so that crun's concurrency, not the request budget, is what the queue
shares out (at the default 5/s each image costs ~3 requests: about 1.7 images/s in all).

Prints figures, not a verdict: acknowledgement times, refusals, deliveries, time to image,
fairness across servers (mean wait for a slot per server, max/min) and where the flooding
member's jobs fell in the order crun received them. About 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import WanBot
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

SPREAD = 1.0  # every request goes out within this many seconds
FLOOD = "flood"


@dataclass
class Ask:
    prompt: str
    server: int
    member: str
    handle: InteractionHandle | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def plan(
    fake: DiscordFake, members: int, servers: int, flood: int
) -> tuple[list[Ask], dict[int, tuple[FakeGuild, FakeChannel]], dict[str, FakeMember]]:
    places = {}
    people: dict[str, FakeMember] = {}
    for s in range(servers):
        guild = fake.add_guild(f"Server {s}")
        places[s] = (guild, fake.add_channel(guild, "art"))
    asks = []
    people[FLOOD] = fake.add_member(places[0][0], username=FLOOD)
    asks += [Ask(f"busy s00 {FLOOD} #{k:02d}", 0, FLOOD) for k in range(flood)]
    for m in range(members):
        s = m % servers
        name = f"m{m:03d}"
        people[name] = fake.add_member(places[s][0], username=name)
        asks.append(Ask(f"busy s{s:02d} {name} #00", s, name))
    return asks, places, people


async def send_all(
    fake: DiscordFake,
    asks: list[Ask],
    places: dict[int, tuple[FakeGuild, FakeChannel]],
    people: dict[str, FakeMember],
) -> None:
    start = time.monotonic()
    gap = SPREAD / len(asks)
    for i, ask in enumerate(asks):
        await asyncio.sleep(max(0.0, start + i * gap - time.monotonic()))
        guild, channel = places[ask.server]
        ask.handle = await fake.slash(
            people[ask.member], guild, channel, "imagine", {"prompt": ask.prompt, "count": 1}
        )


def arrivals(fake: DiscordFake) -> dict[str, list[float]]:
    """prompt -> when each result message carrying it reached the fake Discord."""
    seen: dict[str, list[float]] = defaultdict(list)
    for rec in fake.requests:
        if rec.method != "POST" or not rec.files:
            continue
        text = json.dumps(rec.json)
        at = text.find("busy s")
        if at >= 0:
            end = text.find("#", at) + 3
            seen[text[at:end]].append(rec.at)
    return seen


async def wait_results(
    fake: DiscordFake,
    channels: list[FakeChannel],
    n: int,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Until ``n`` messages with files were posted (or the time is up: the report says so)."""

    def posted() -> bool:
        return sum(1 for c in channels for m in fake.messages[c.id] if m.attachments) >= n

    try:
        await fake.wait_for(posted, timeout, f"{n} results")
    except TimeoutError as exc:
        print(f"stopped waiting: {exc}", file=sys.stderr)


def refused(handle: InteractionHandle) -> bool:
    private = [f for f in handle.followups if f.ephemeral]
    return bool(private) or bool(handle.original is not None and handle.original.ephemeral)


def status_edits(fake: DiscordFake) -> Counter[str]:
    """Edits per status message (PATCHes of interaction messages)."""
    return Counter(
        rec.path for rec in fake.requests if rec.method == "PATCH" and "/messages/" in rec.path
    )


def settings_for(fake: DiscordFake, crun: FakeCrun, tmp: str, a: argparse.Namespace) -> Settings:
    port = free_port()
    values: dict[str, Any] = {
        "discord_token": fake.token,
        "wan_api_key": crun.api_key,
        "wan_api_base": crun.base_url,
        "database_url": f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
        "allow_http_results": True,  # the fake crun serves results over http
        "api_rate_limit": a.rate,
        "user_queue_limit": a.user_queue_limit,
        "callback_public_url": f"http://127.0.0.1:{port}",
        "callback_listen": f"127.0.0.1:{port}",
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def run(a: argparse.Namespace) -> list[tuple[str, str]]:
    image = png(512, 512)
    async with (
        FakeCrun(task_latency=a.task, image_bytes=image, balance=1e12) as crun,
        DiscordFake() as fake,
    ):
        asks, places, people = plan(fake, a.members, a.servers, a.flood)
        with tempfile.TemporaryDirectory() as tmp:
            bot = WanBot(settings_for(fake, crun, tmp, a))
            async with fake.running(bot, ready_timeout=30):
                await send_all(fake, asks, places, people)
                channels = [channel for _, channel in places.values()]
                await wait_results(fake, channels, len(asks), timeout=60 + len(asks) * a.task)
                await fake.wait_bot_idle()
        return report(asks, crun, fake, a)


def report(
    asks: list[Ask], crun: FakeCrun, fake: DiscordFake, a: argparse.Namespace
) -> list[tuple[str, str]]:
    got = arrivals(fake)
    started = {t.input["prompt"]: t.created for t in crun.tasks.values()}  # loop = monotonic
    service = [body["input"]["prompt"] for body in crun.requests_for("create")]
    acks, to_image, waits = [], [], defaultdict(list)
    for ask in asks:
        assert ask.handle is not None
        if ask.handle.response is not None:
            acks.append(ask.handle.response.at - ask.handle.created_at)
        if ask.prompt in got:
            to_image.append(got[ask.prompt][0] - ask.handle.created_at)
        if ask.prompt in started and ask.member != FLOOD:
            waits[ask.server].append(started[ask.prompt] - ask.handle.created_at)
    means = {s: statistics.mean(w) for s, w in waits.items()}
    edits = status_edits(fake)
    flood_places = [i for i, p in enumerate(service, 1) if f" {FLOOD} " in p]
    no = [x.prompt for x in asks if x.handle is not None and refused(x.handle)]
    twice = sum(1 for times in got.values() if len(times) > 1)
    n = len(asks)
    return [
        ("requests", f"{n} ({a.members} members of {a.servers} servers, +1 member x {a.flood})"),
        ("acknowledged (deferred) p50 / max", f"{pct(acks, 50):.3f} s / {max(acks):.3f} s"),
        ("all acknowledged under 3 s", "yes" if len(acks) == n and max(acks) < 3 else "NO"),
        ("refused", f"{len(no)}" + (f" (e.g. {no[0]})" if no else "")),
        ("delivered / delivered twice", f"{len(got)} of {n} / {twice}"),
        (
            "time to image p50 / p95 / max",
            f"{pct(to_image, 50):.1f} s / {pct(to_image, 95):.1f} s / {max(to_image):.1f} s",
        ),
        (
            "mean wait for a slot per server (single requests)",
            ", ".join(f"{means[s]:.1f}" for s in sorted(means)) + " s",
        ),
        (
            "fairness: max / min of those means",
            f"{max(means.values()) / max(min(means.values()), 1e-9):.2f}",
        ),
        ("flooding member's jobs: places in crun's order", ", ".join(map(str, flood_places))),
        (
            "status edits per message: mean / max",
            f"{statistics.mean(edits.values()):.1f} / {max(edits.values())}" if edits else "-",
        ),
        ("crun requests in all (estimate, create, info)", str(sum(crun.calls.values()))),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--servers", type=int, default=10)
    p.add_argument("--flood", type=int, default=12, help="requests of the one flooding member")
    p.add_argument("--task", type=float, default=2.0, help="seconds each crun task takes")
    p.add_argument("--rate", type=float, default=50.0, help="API_RATE_LIMIT (requests/s)")
    p.add_argument("--user-queue-limit", type=int, default=12, help="USER_QUEUE_LIMIT")
    a = p.parse_args()
    t0 = time.perf_counter()
    rows = asyncio.run(run(a))
    width = max(len(name) for name, _ in rows)
    print(f"machine: {sys.platform}, Python {sys.version.split()[0]}")
    for name, figure in rows:
        print(f"{name.ljust(width)}  {figure}", flush=True)
    print(f"[{time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
