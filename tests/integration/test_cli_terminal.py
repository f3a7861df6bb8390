"""The command line as a newcomer meets it (issue 17): an unreachable crun named in seconds, a
refused plain-http result named with the setting that allows it, saved jobs listed and cancelled
instead of billed silently, `check` for CLI-only users, help texts and distinct exit codes.

Every test runs the real `wanbot` process against the fake crun; nothing touches the network.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.crun_server import FakeCrun
from tests.helpers import wait_until
from tests.integration.test_cli import Result, wanbot
from tests.processes import ROOT, cli_env, start

pytestmark = pytest.mark.process  # runs the real `wanbot` process


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once."""
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def no_raw_api_error(r: Result) -> None:
    for text in ("Traceback", "http 0", "code None"):
        assert text not in r.out + r.err, text


# --- item 4: an unreachable WAN_API_BASE -------------------------------------------------------


async def test_unreachable_api_base_is_named_within_seconds(crun: FakeCrun, tmp_path: Path) -> None:
    port = closed_port()
    env = cli_env(crun, tmp_path, WAN_API_BASE=f"http://127.0.0.1:{port}")
    began = time.monotonic()
    r = await wanbot(env, tmp_path, "generate", "a red fox", wait=60)
    took = time.monotonic() - began
    assert r.code == 1
    assert took < 20, took  # was 627 s of silent retries
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in r.err
    assert "GET /api/v1/client/account/balance" in r.err  # which request
    assert "trying again" in r.err  # told at once, before the retries
    assert "WAN_API_BASE" in r.err
    assert "nothing was queued" in r.err
    no_raw_api_error(r)
    jobs = await wanbot(env, tmp_path, "jobs")
    assert "no unfinished jobs" in jobs.out  # nothing left behind to be billed later


async def test_check_names_the_unreachable_host_and_cause(crun: FakeCrun, tmp_path: Path) -> None:
    port = closed_port()
    env = cli_env(crun, tmp_path, WAN_API_BASE=f"http://127.0.0.1:{port}")
    r = await wanbot(env, tmp_path, "check", wait=60)
    assert r.code == 1
    assert "[FAIL] crun API: crun balance (GET /api/v1/client/account/balance)" in r.out
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in r.out
    no_raw_api_error(r)


# --- item 6: check for CLI-only users ----------------------------------------------------------


async def test_check_for_run_requires_the_discord_token(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path)
    plain = await wanbot(env, tmp_path, "check")
    assert plain.code == 0, plain.out
    assert "[note] DISCORD_TOKEN" in plain.out
    for_run = await wanbot(env, tmp_path, "check", "--for", "run")
    assert for_run.code == 1
    assert "[FAIL] DISCORD_TOKEN: missing (needed by `wanbot run`)" in for_run.out
    with_token = await wanbot({**env, "DISCORD_TOKEN": "x"}, tmp_path, "check", "--for", "run")
    assert with_token.code == 0, with_token.out


# --- item 5: plain http results ----------------------------------------------------------------


async def test_plain_http_results_fail_at_once_naming_the_setting(
    crun: FakeCrun, tmp_path: Path
) -> None:
    env = cli_env(crun, tmp_path, ALLOW_HTTP_RESULTS="false")
    began = time.monotonic()
    r = await wanbot(env, tmp_path, "generate", "a red fox", "--out", "imgs", wait=60)
    assert r.code == 1
    assert time.monotonic() - began < 15  # was five retries, then "try again later"
    assert "scheme 'http' not allowed" in r.err
    assert "ALLOW_HTTP_RESULTS=true" in r.err
    assert "local testing only" in r.err
    assert "try again later" not in r.err.lower()
    assert crun.calls["media"] == 0  # refused without a request
    assert r.out == ""
    no_raw_api_error(r)


async def test_the_fake_crun_banner_says_how_to_run_the_cli(tmp_path: Path) -> None:
    """The banner's command line, as printed, generates an image against the fake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAN_", "DISCORD_"))}
    fake = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.fakes.crun_server", "--port", "0", "--latency", "0.1"),
        *("--size", "64"),
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert fake.stdout is not None
        banner = []
        while not (banner and banner[-1].startswith("  WAN_API_BASE=")):
            line = await asyncio.wait_for(fake.stdout.readline(), 30)
            assert line, f"the banner ended early: {banner}"
            banner.append(line.decode())
        assert "ALLOW_HTTP_RESULTS=true" in "".join(banner)
        assert "local testing only" in "".join(banner)
        words = shlex.split(banner[-1])
        settings = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
        command = [w for w in words if w not in {f"{k}={v}" for k, v in settings.items()}]
        assert command[0] == ".venv/bin/wanbot"
        run_env = {**env, **settings, "PYTHONPATH": str(ROOT), "POLL_INTERVAL_MIN": "0.2"}
        r = await wanbot(run_env, tmp_path, *command[1:], wait=60)
    finally:
        fake.send_signal(signal.SIGINT)
        await asyncio.wait_for(fake.wait(), 30)
    assert r.code == 0, r.err
    (png,) = r.out.splitlines()
    assert Path(png).parent == tmp_path / "out"
    assert png.endswith("-1.png")


# --- item 4: saved jobs are listed and cancelled, never billed silently -----------------------


async def _interrupt(env: dict[str, str], cwd: Path, crun: FakeCrun, prompt: str) -> str:
    """`wanbot generate` Ctrl-C'd once crun was asked to create its task; returns stderr."""
    before = crun.calls["create"]
    gen = await start(env, cwd, "generate", prompt, "--out", "later")
    await wait_until(lambda: crun.calls["create"] > before, timeout=30, what="CreateTask")
    await asyncio.sleep(0.3)  # let the refusal be stored
    gen.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(gen.communicate(), 30)
    assert gen.returncode == 130, err.decode()
    return err.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_a_job_never_sent_is_listed_left_alone_and_cancelled(
    crun: FakeCrun, tmp_path: Path
) -> None:
    env = cli_env(crun, tmp_path)
    crun.fail("create", 429, times=50, retry_after=120)  # refused: the job waits in the queue
    err = await _interrupt(env, tmp_path, crun, "a quiet harbour at night")
    (job_id,) = [w for w in err.split() if len(w) == 10 and w.isalnum() and w.islower()][:1]
    assert "was not sent to crun" in err
    assert f"`wanbot jobs cancel {job_id}`" in err

    listed = await wanbot(env, tmp_path, "jobs")
    assert listed.code == 0
    (row,) = [line for line in listed.out.splitlines() if line.startswith(job_id)]
    assert "queued, not sent" in row
    assert "a quiet harbour at night" in row
    assert str(tmp_path / "later") in row

    crun.clear_faults()
    creates = crun.calls["create"]
    other = await wanbot(env, tmp_path, "generate", "a lighthouse", "--out", "now")
    assert other.code == 0, other.err
    assert f"{job_id} (queued, not sent)" in other.err  # announced ...
    assert crun.calls["create"] == creates + 1  # ... and never sent with it
    assert "a quiet harbour at night" not in str(crun.requests_for("create")[-1])

    cancelled = await wanbot(env, tmp_path, "jobs", "cancel", job_id)
    assert cancelled.code == 0, cancelled.err
    assert f"job {job_id} cancelled" in cancelled.out
    assert "no unfinished jobs" in (await wanbot(env, tmp_path, "jobs")).out
    again = await wanbot(env, tmp_path, "jobs", "cancel", job_id)
    assert again.code == 1
    assert "already ended" in again.err
    missing = await wanbot(env, tmp_path, "jobs", "cancel", "nosuchjob2")
    assert missing.code == 1
    assert "there is no job nosuchjob2" in missing.err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_a_job_at_crun_cannot_be_cancelled_and_resume_fetches_it(
    crun: FakeCrun, tmp_path: Path
) -> None:
    crun.task_latency = None  # the task waits until we finish it
    env = cli_env(crun, tmp_path)
    err = await _interrupt(env, tmp_path, crun, "a kite over dunes")
    (task_id,) = crun.tasks
    assert "already at crun" in err
    assert "cannot be cancelled" in err
    listed = await wanbot(env, tmp_path, "jobs")
    (job_id,) = [line.split()[0] for line in listed.out.splitlines() if ", at crun" in line]

    refused = await wanbot(env, tmp_path, "jobs", "cancel", job_id)
    assert refused.code == 1
    assert "cannot be cancelled: it is already at crun" in refused.err
    none = await wanbot(env, tmp_path, "jobs", "cancel", "--all")
    assert "nothing to cancel" in none.out

    crun.finish(task_id)
    resumed = await wanbot(env, tmp_path, "jobs", "resume")
    assert resumed.code == 0, resumed.err
    (png,) = resumed.out.splitlines()
    assert Path(png).parent == tmp_path / "later"
    assert crun.calls["create"] == 1  # fetched, never resubmitted


async def test_timeout_says_how_to_cancel_and_exits_1(crun: FakeCrun, tmp_path: Path) -> None:
    crun.fail("create", 429, times=50, retry_after=120)
    env = cli_env(crun, tmp_path)
    r = await wanbot(env, tmp_path, "generate", "slow", "--timeout", "1", wait=60)
    assert r.code == 1
    assert "timed out after 1 s" in r.err
    assert "`wanbot jobs cancel " in r.err
    everything = await wanbot(env, tmp_path, "jobs", "cancel", "--all")
    assert everything.code == 0
    assert "cancelled: it was never sent to crun" in everything.out


# --- item 8: help and exit codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "required: COMMAND"),
        (("generate",), "required: prompt"),
        (("generate", "x", "--n", "many"), "invalid int value"),
        (("generate", "x", "--set", "--n", "1"), "An image set has 2 to 12 images"),
        (("generate", "x", "--set", "--n", "13"), "An image set has 2 to 12 images"),
        (("generate", "x", "--aspect-ratio", "5:4"), "Aspect ratio '5:4' is not supported"),
        (("jobs", "cancel"), "takes a job id or --all"),
        (("nonsense",), "invalid choice"),
    ],
)
async def test_usage_errors_exit_64_with_a_friendly_message(
    crun: FakeCrun, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    r = await wanbot(cli_env(crun, tmp_path), tmp_path, *args)
    assert r.code == 64, r.err
    assert says in r.err
    assert "Traceback" not in r.err
    assert crun.calls["create"] == 0


async def test_every_command_and_generate_option_has_help(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path)
    top = await wanbot(env, tmp_path, "--help")
    assert top.code == 0
    assert "64 usage error" in top.out
    for command, words in {
        "run": "Discord bot",
        "check": "--for",
        "migrate": "upgrade the database",
        "jobs": "unfinished jobs",
    }.items():
        r = await wanbot(env, tmp_path, command, "--help")
        assert r.code == 0, command
        assert words in r.out, command
        assert command in top.out
    gen = await wanbot(env, tmp_path, "generate", "--help")
    for words in ("what to draw", "4K only", "2-12 with --set", "1:1, 16:9", "0-2147483647"):
        assert words in gen.out, words
    assert "thinking mode" in gen.out
    assert "watermark" in gen.out
