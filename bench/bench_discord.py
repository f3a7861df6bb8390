"""Delivery latency end to end: crun marks the task done -> the result message reaches Discord.

    python -m bench.bench_discord [--quick] [--only poll,callback]

The whole product runs: ``WanBot`` (discord.py, the cogs, the engine, the Discord sink) logged
into the in-project fake Discord, members sending ``/imagine`` through the gateway, the fake crun
serving a realistic 2K PNG (7.4 MB). Latency runs from the moment the fake crun marks a task done
(monotonic clock, a hook in ``TimedCrun``) to the moment the fake Discord has received the whole
result message with its file (``RecordedRequest.at``, taken after the multipart body is read).

poll      default schedule (5 s for the first minute, then up to 15 s), API_RATE_LIMIT 5/s; a
          request every 2 s, tasks taking 10-50 s: about 15 jobs at crun, 3.5 requests/s, inside
          the rate limit (at one request a second, 30 jobs polled every 5 s plus the creates
          need 7/s, and polls queue for the limiter). Target: p50 <= half the interval + 250 ms.
callback  the callback receiver on 127.0.0.1; a request every second, tasks taking 2-30 s.
          Target: p99 <= 250 ms.

``--quick`` runs 15 requests per mode instead of 40 (poll) and 60 (callback). Prints one table;
not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import discord

from bench.bench_engine import Row, TimedCrun, ms, pct, print_table, realistic_2k_png
from bot.app import WanBot
from bot.settings import Settings
from tests.fakes.discord_fake import DiscordFake, FakeMember

INTERVAL = 5.0  # Settings.poll_interval_min default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(mode: str, n: int, image: bytes) -> list[Row]:
    rng = random.Random(5)
    first, spread, gap = (10.0, 40.0, 2.0) if mode == "poll" else (2.0, 28.0, 1.0)

    def latency_fn(inp: dict[str, Any]) -> float:
        return first + rng.uniform(0.0, spread)

    async with (
        TimedCrun(latency_fn=latency_fn, image_bytes=image, balance=1e12) as crun,
        DiscordFake() as fake,
    ):
        guild = fake.add_guild("Bench")
        channel = fake.add_channel(guild, "art")
        members: list[FakeMember] = [
            fake.add_member(guild, username=f"member{i}") for i in range(10)
        ]
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            values: dict[str, Any] = {
                "discord_token": fake.token,
                "wan_api_key": crun.api_key,
                "wan_api_base": crun.base_url,
                "database_url": f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
                "allow_http_results": True,  # the fake crun serves results over http
                "max_concurrent_jobs": 100,
                "guild_concurrent_jobs": 100,
                "user_concurrent_jobs": 100,
            }
            if mode == "callback":
                values["callback_public_url"] = f"http://127.0.0.1:{port}"
                values["callback_listen"] = f"127.0.0.1:{port}"
            settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
            async with fake.running(WanBot(settings), ready_timeout=30):
                start = time.monotonic()
                for i in range(n):
                    await asyncio.sleep(max(0.0, start + i * gap - time.monotonic()))
                    await fake.slash(
                        members[i % len(members)],
                        guild,
                        channel,
                        "imagine",
                        {"prompt": f"bench picture {i:03d}", "resolution": "2K"},
                    )
                arrived = await _wait_results(fake, n, timeout=first + spread + 180)
    done_at = {
        task.input["prompt"]: crun.completed[task_id]
        for task_id, task in crun.tasks.items()
        if task_id in crun.completed
    }
    # TimedCrun stamps with the loop clock; asyncio's default loop clock is time.monotonic.
    lat = sorted(arrived[p] - done_at[p] for p in arrived if p in done_at)
    lost = n - len(lat)
    if mode == "poll":
        target, limit = f"p50 <= {ms(INTERVAL / 2 + 0.25)}", INTERVAL / 2 + 0.25
        verdict = pct(lat, 50) <= limit
        figure = f"{ms(pct(lat, 50))} / {ms(pct(lat, 99))}"
    else:
        target, limit = "p99 <= 250 ms", 0.25
        verdict = pct(lat, 99) <= limit
        figure = f"{ms(pct(lat, 50))} / {ms(pct(lat, 99))} (max {ms(max(lat))})"
    rate = "1/s" if gap == 1.0 else f"1 per {gap:.0f} s"
    label = f"{mode} latency p50 / p99 to the Discord message, {n} x /imagine at {rate}, 2K PNG"
    return [
        (
            f"{label} {len(image) / 1e6:.1f} MB",
            figure + (f"; {lost} not delivered" if lost else ""),
            target,
            "met" if verdict and not lost else "MISSED",
        )
    ]


async def _wait_results(fake: DiscordFake, n: int, timeout: float) -> dict[str, float]:  # noqa: ASYNC109
    """prompt -> when the result message (one with a file) had fully arrived at the fake."""
    deadline = time.monotonic() + timeout
    arrived: dict[str, float] = {}
    while time.monotonic() < deadline:
        for rec in fake.requests:
            if rec.method != "POST" or not rec.files:
                continue
            text = json.dumps(rec.json)
            at = text.find("bench picture ")
            if at >= 0:
                arrived.setdefault(text[at : at + len("bench picture 000")], rec.at)
        if len(arrived) >= n:
            break
        await asyncio.sleep(0.5)
    return arrived


async def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="15 requests per mode")
    p.add_argument("--only", default="poll,callback")
    args = p.parse_args(argv)
    image = realistic_2k_png()
    rows: list[Row] = []
    for mode in args.only.split(","):
        t0 = time.monotonic()
        n = 15 if args.quick else {"poll": 40, "callback": 60}[mode]
        rows += await run(mode, n, image)
        print(f"[{mode}: {time.monotonic() - t0:.0f} s]", file=sys.stderr, flush=True)
    print(f"discord.py {discord.__version__}")
    print_table(rows)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
