"""`wanbot run` at start-up, as a real process: an unreachable Discord and a quiet log."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import DiscordFake
from tests.helpers import wait_until
from tests.processes import Running, cli_env, start

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

# What discord.py warns about at start-up that does not apply to wanbot (no voice, no
# privileged intents): it must not reach the operator's log.
IRRELEVANT = ("PyNaCl", "davey", "voice will NOT be supported", "message content intent")


def _closed_port() -> int:
    """A local port nobody listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_against_an_unreachable_discord_says_so_in_one_line(
    crun: FakeCrun, tmp_path: Path
) -> None:
    port = _closed_port()
    env = cli_env(crun, tmp_path, DISCORD_TOKEN="a-token-for-nobody", LOG_LEVEL="INFO")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tests.fakes.run_wanbot", f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"),
        *("--", "run"),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, raw = await asyncio.wait_for(proc.communicate(), 60)
    err = raw.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("wanbot: ")]
    assert len(lines) == 1, err
    assert "cannot reach Discord" in lines[0]
    assert f"127.0.0.1:{port}" in lines[0]  # the cause...
    assert "firewall" in lines[0]  # ...and what to check
    assert "a-token-for-nobody" not in err
    for text in IRRELEVANT:
        assert text not in err


async def test_run_logs_no_voice_or_intent_warnings(crun: FakeCrun, tmp_path: Path) -> None:
    async with DiscordFake() as fake:
        fake.add_guild("Wan Lab")
        env = cli_env(crun, tmp_path, DISCORD_TOKEN=fake.token, LOG_LEVEL="DEBUG")
        run = Running(await start(env, tmp_path, "run", discord=fake))
        await wait_until(lambda: fake.command_syncs == 1, timeout=30, what="command sync")
        assert await run.stop() == 0
    assert run.logged("discord.client")  # discord.py's own lines do reach the log...
    for text in IRRELEVANT:
        assert not run.logged(text), text  # ...but not the warnings that do not apply
