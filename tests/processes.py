"""The real ``wanbot`` process in tests: its environment against the fakes, starting it, and
reading its output while it runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import DiscordFake

ROOT = Path(__file__).resolve().parents[1]


def cli_env(crun: FakeCrun, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAN_", "DISCORD_"))}
    env.update(
        WAN_API_KEY=crun.api_key,
        WAN_API_BASE=crun.base_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'wanbot.sqlite3'}",
        ALLOW_HTTP_RESULTS="true",
        POLL_INTERVAL_MIN="0.05",
        POLL_INTERVAL_MAX="0.1",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),  # so `-m tests.fakes.run_wanbot` resolves from any cwd
    )
    env.update(extra)
    return env


async def start(
    env: dict[str, str], cwd: Path, *args: str, discord: DiscordFake | None = None
) -> asyncio.subprocess.Process:
    """``wanbot ARGS`` as a subprocess; with ``discord``, its discord.py talks to that fake."""
    entry = ["-m", "bot"]
    if discord is not None:
        entry = ["-m", "tests.fakes.run_wanbot", discord.base_url, discord.gateway_url, "--"]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *entry,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


class Running:
    """``wanbot run`` in a subprocess, its output drained as it comes (DEBUG logs are large)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.err = bytearray()
        self.out = bytearray()
        assert proc.stderr is not None and proc.stdout is not None
        self._readers = [
            asyncio.ensure_future(_drain(proc.stderr, self.err)),
            asyncio.ensure_future(_drain(proc.stdout, self.out)),
        ]

    @property
    def lines(self) -> list[str]:
        return self.err.decode("utf-8", "replace").splitlines()

    def logs(self) -> list[dict[str, object]]:
        """Every stderr line, parsed: with LOG_FORMAT=json each one must be a JSON object."""
        return [json.loads(line) for line in self.lines]

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    async def stop(self, timeout: float = 30) -> int:  # noqa: ASYNC109 - a bounded wait
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(self.proc.wait(), *self._readers), timeout)
        assert self.proc.returncode is not None
        return self.proc.returncode


async def _drain(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(65536):
        into.extend(chunk)
