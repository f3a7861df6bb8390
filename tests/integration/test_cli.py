"""The `wanbot` command line, run as a real subprocess against the fake crun server."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot.store.database import migrations
from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import DiscordFake
from tests.helpers import wait_until
from tests.processes import cli_env, start

pytestmark = pytest.mark.process  # runs the real `wanbot` process


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err


async def wanbot(env: dict[str, str], cwd: Path, *args: str, wait: float = 60) -> Result:
    proc = await start(env, cwd, *args)
    out, err = await asyncio.wait_for(proc.communicate(), wait)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def assert_no_traceback_or_key(r: Result, key: str) -> None:
    assert "Traceback" not in r.err
    assert key not in r.out
    assert key not in r.err


async def test_generate_writes_real_pngs(crun: FakeCrun, tmp_path: Path) -> None:
    crun.image_size = (320, 200)
    env = cli_env(crun, tmp_path)
    r = await wanbot(env, tmp_path, "generate", "a red fox in snow", "--n", "2", "--out", "imgs")
    assert r.code == 0, r.err
    paths = [Path(line) for line in r.out.splitlines()]
    assert len(paths) == 2
    for n, p in enumerate(paths, start=1):
        assert p.parent == tmp_path / "imgs"
        assert p.name.endswith(f"-{n}.png")  # regression: was "-1..png"
        with Image.open(p) as im:
            assert im.format == "PNG"
            assert im.size == (320, 200)
    assert crun.calls["create"] == 1
    assert crun.requests_for("create")[0]["input"]["prompt"] == "a red fox in snow"
    assert_no_traceback_or_key(r, crun.api_key)


async def test_generate_into_a_path_that_is_a_file_says_so_at_once(
    crun: FakeCrun, tmp_path: Path
) -> None:
    """The images were made but cannot be written: say where and why (was "wanbot: None" after
    minutes of silent retries), and never print a path that was not written."""
    (tmp_path / "imgs").write_text("not a folder")
    env = cli_env(crun, tmp_path)
    r = await wanbot(env, tmp_path, "generate", "a red fox", "--out", "imgs", wait=30)
    assert r.code != 0
    assert r.out == ""
    assert "the images were made but could not be saved" in r.err
    assert str(tmp_path / "imgs") in r.err
    assert "None" not in r.err
    assert_no_traceback_or_key(r, crun.api_key)


async def test_generate_edit_uploads_the_local_image(crun: FakeCrun, tmp_path: Path) -> None:
    src = tmp_path / "cat.png"
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (10, 200, 10)).save(buf, "PNG")
    src.write_bytes(buf.getvalue())
    env = cli_env(crun, tmp_path)
    r = await wanbot(
        env, tmp_path, "generate", "make the cat blue", "--image", str(src), "--resolution", "1K"
    )
    assert r.code == 0, r.err
    assert list(crun.uploads.values()) == [src.read_bytes()]
    sent = crun.requests_for("create")[0]["input"]
    assert sent["resolution"] == "1K"
    assert len(sent["img_urls"]) == 1


async def test_generate_refuses_invalid_input_before_spending(
    crun: FakeCrun, tmp_path: Path
) -> None:
    env = cli_env(crun, tmp_path)
    r = await wanbot(env, tmp_path, "generate", "too many", "--n", "5")
    assert r.code == 64  # a usage error: the flags break the model's rules
    assert "4" in r.err
    assert crun.calls["create"] == 0
    assert_no_traceback_or_key(r, crun.api_key)


async def test_generate_out_of_credits_says_so(crun: FakeCrun, tmp_path: Path) -> None:
    crun.balance = 0
    env = cli_env(crun, tmp_path)
    r = await wanbot(env, tmp_path, "generate", "anything")
    assert r.code == 1
    assert "credits have run out" in r.err
    assert_no_traceback_or_key(r, crun.api_key)


async def test_missing_key_names_the_variable(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path)
    del env["WAN_API_KEY"]
    r = await wanbot(env, tmp_path, "generate", "anything")
    assert r.code == 2
    assert "WAN_API_KEY" in r.err
    assert "Traceback" not in r.err


async def test_malformed_setting_names_the_variable(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path, POLL_INTERVAL_MIN="soon", WAN_API_BASE="ftp://x")
    r = await wanbot(env, tmp_path, "check")
    assert r.code == 2
    assert "POLL_INTERVAL_MIN" in r.err
    assert "WAN_API_BASE" in r.err
    assert "Traceback" not in r.err


async def test_dotenv_file_is_read(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path)
    key = env.pop("WAN_API_KEY")
    (tmp_path / ".env").write_text(f"WAN_API_KEY={key}\n", encoding="utf-8")
    r = await wanbot(env, tmp_path, "check")
    assert "[ok] API key" in r.out


async def test_check_reports_each_part(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path)
    r = await wanbot(env, tmp_path, "check")
    assert f"[ok] database: schema version {len(migrations())}" in r.out
    assert "[ok] API key: accepted; balance 1000 credits" in r.out
    assert "[ok] live schema" in r.out
    assert "[note] DISCORD_TOKEN" in r.out  # not set here: the command line does not need it
    assert r.code == 0
    assert_no_traceback_or_key(r, crun.api_key)


async def test_check_with_a_wrong_key(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path, WAN_API_KEY="ak_" + "0" * 32, DISCORD_TOKEN="x")
    r = await wanbot(env, tmp_path, "check")
    assert r.code == 1
    assert "[FAIL] API key: the API key was rejected (401)" in r.out
    assert "ak_" + "0" * 32 not in r.out + r.err


async def test_check_shows_a_live_schema_mismatch(crun: FakeCrun, tmp_path: Path) -> None:
    """A known other spelling is adopted and shown; it fails nothing (issue 18: only problems
    that stop a whole mode fail the check, see tests/integration/test_cli_probe.py)."""
    crun.schema_fields = [f if f != "img_urls" else "input_urls" for f in crun.schema_fields]
    env = cli_env(crun, tmp_path, DISCORD_TOKEN="x")
    r = await wanbot(env, tmp_path, "check")
    assert "[note] schema: images: expected 'img_urls', live schema has 'input_urls'" in r.out
    assert r.code == 0


async def test_check_fails_on_a_schema_without_an_image_field(
    crun: FakeCrun, tmp_path: Path
) -> None:
    crun.schema_fields = [f for f in crun.schema_fields if f != "img_urls"]
    env = cli_env(crun, tmp_path, DISCORD_TOKEN="x")
    r = await wanbot(env, tmp_path, "check")
    assert "[FAIL] live schema" in r.out
    assert "[FAIL] schema: images: expected 'img_urls', live schema has no such field" in r.out
    assert "fix: make WAN_FIELD_MAP name" in r.out
    assert r.code == 1


async def test_migrate_creates_the_database(crun: FakeCrun, tmp_path: Path) -> None:
    env = cli_env(crun, tmp_path)
    r = await wanbot(env, tmp_path, "migrate")
    assert r.code == 0
    names = ", ".join(name for _, name, _ in migrations())
    assert f"schema version {len(migrations())} ({names})" in r.out
    again = await wanbot(env, tmp_path, "migrate")
    assert "nothing to do" in again.out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_interrupted_generate_is_finished_by_run(crun: FakeCrun, tmp_path: Path) -> None:
    """Ctrl-C leaves the job in the store; `wanbot run` resumes it and writes the files."""
    crun.task_latency = None  # the task waits until we finish it
    env = cli_env(crun, tmp_path, LOG_LEVEL="INFO")
    gen = await start(env, tmp_path, "generate", "a quiet harbour", "--out", "later")
    await wait_until(lambda: len(crun.tasks) == 1, timeout=30, what="the task to be created")
    gen.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(gen.communicate(), 30)
    assert gen.returncode == 130
    assert b"is saved" in err
    task_id = next(iter(crun.tasks))
    crun.finish(task_id)

    async with DiscordFake() as fake:
        fake.add_guild("Wan Lab")
        env["DISCORD_TOKEN"] = fake.token
        run = await start(env, tmp_path, "run", discord=fake)
        out_dir = tmp_path / "later"
        await wait_until(
            lambda: any(out_dir.glob("*.png")), timeout=30, what="the resumed job's file"
        )
        await wait_until(lambda: fake.command_syncs == 1, timeout=30, what="command sync")
        run.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(run.communicate(), 30)
    assert run.returncode == 0, err.decode()
    assert crun.calls["create"] == 1  # resumed, never resubmitted
    assert len(list(out_dir.glob("*.png"))) == 1
    assert crun.api_key.encode() not in err
    assert fake.token.encode() not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_generate_with_callbacks_finishes_before_the_first_poll(
    crun: FakeCrun, tmp_path: Path
) -> None:
    """With CALLBACK_PUBLIC_URL set, the callback wakes the job; polling alone would take 30 s."""
    port = _free_port()
    env = cli_env(
        crun,
        tmp_path,
        CALLBACK_PUBLIC_URL=f"http://127.0.0.1:{port}",
        CALLBACK_LISTEN=f"127.0.0.1:{port}",
        POLL_INTERVAL_MIN="30",
        POLL_INTERVAL_MAX="30",
    )
    crun.task_latency = 0.3
    r = await wanbot(env, tmp_path, "generate", "a kite over dunes", "--timeout", "15")
    assert r.code == 0, r.err
    assert [a.status for a in crun.callback_log] == [200]
    assert crun.calls["info"] == 1
    callback_url = crun.requests_for("create")[0]["callback_url"]
    assert callback_url.startswith(f"http://127.0.0.1:{port}/crun/callback/")
    assert "?t=" in callback_url


async def test_run_with_a_rejected_discord_token_says_so(crun: FakeCrun, tmp_path: Path) -> None:
    async with DiscordFake() as fake:
        env = cli_env(crun, tmp_path, DISCORD_TOKEN="not-the-token", LOG_LEVEL="INFO")
        proc = await start(env, tmp_path, "run", discord=fake)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"Discord rejected DISCORD_TOKEN" in err
    assert b"Traceback" not in err
    assert b"not-the-token" not in err
