"""Log formats, the job context on log lines, and the redaction of secrets."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain.models import GenerationRequest, Target
from bot.logging_setup import (
    MASK,
    Redactor,
    make_handler,
    quiet_irrelevant_discord_warnings,
    setup_logging,
)
from bot.observability.context import bind_job, current_job, job_context
from tests.conftest import Harness

API_KEY = "ak_" + "K" * 16 + "7" * 16
DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.fake-token-value-for-tests_0123456789"
OTHER_KEY = "ak_" + "0123456789abcdef" * 2  # key-shaped, not configured anywhere
_KEY_SHAPE_IN_TEXT = re.compile(r"ak_[A-Za-z0-9]{32}")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """setup_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
        logging.captureWarnings(False)


def capture(fmt: str = "json", *, name: str = "wanbot.test") -> tuple[logging.Logger, io.StringIO]:
    """A logger of our own with a wanbot handler (no root changes): for formatter tests."""
    stream = io.StringIO()
    logger = logging.getLogger(name)
    logger.handlers[:] = [make_handler(fmt, secrets=[API_KEY, DISCORD_TOKEN], stream=stream)]  # type: ignore[arg-type]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- redaction -----------------------------------------------------------------------------------


def test_redactor_masks_known_secrets_and_key_shapes() -> None:
    redact = Redactor([API_KEY, DISCORD_TOKEN, None, ""])
    text = f"key={API_KEY} token {DISCORD_TOKEN} other {OTHER_KEY}!"
    assert redact(text) == f"key={MASK} token {MASK} other {MASK}!"
    # Not key-shaped: too short, or "ak_" in the middle of a word.
    assert redact("ak_short and break_" + "x" * 32) == "ak_short and break_" + "x" * 32


def test_redactor_ignores_tiny_secrets() -> None:
    """A placeholder like "x" must not turn every x in the log into ***."""
    assert Redactor(["x", "  "])("x marks the spot") == "x marks the spot"


def test_no_secret_in_message_args_traceback_or_stack() -> None:
    logger, stream = capture("text")
    logger.info("calling with %s and %r", API_KEY, {"token": DISCORD_TOKEN})
    try:
        raise RuntimeError(f"crun said no to {OTHER_KEY}")
    except RuntimeError:
        logger.exception("request failed for key %s", API_KEY)
    logger.warning("where am I (%s)", DISCORD_TOKEN, stack_info=True)
    out = stream.getvalue()
    assert "RuntimeError" in out  # the traceback is there...
    assert "Stack (most recent call last)" in out
    for secret in (API_KEY, DISCORD_TOKEN, OTHER_KEY):
        assert secret not in out  # ...without the secrets
    assert out.count(MASK) >= 5


def test_redaction_reaches_other_handlers_too(root_logger: logging.Logger) -> None:
    """The record itself is masked, so a second handler (here: a plain one) sees no secret."""
    stream = io.StringIO()
    setup_logging("DEBUG", "text", secrets=[API_KEY], stream=stream)
    plain = io.StringIO()
    child = logging.getLogger("bot.some.module")  # propagates to the root handler
    other = logging.StreamHandler(plain)
    root_logger.addHandler(other)
    try:
        child.info("key is %s", API_KEY)
    finally:
        root_logger.removeHandler(other)
    assert "key is ***" in stream.getvalue()
    assert API_KEY not in plain.getvalue()


def test_bad_format_arguments_do_not_raise_or_leak() -> None:
    logger, stream = capture("text")
    logger.info("two placeholders %s %s", API_KEY)  # noqa: PLE1206 - one argument short, on purpose
    out = stream.getvalue()
    assert "unformattable" in out
    assert API_KEY not in out


# --- formats -------------------------------------------------------------------------------------


def test_json_lines_have_the_fields_and_stay_one_line() -> None:
    logger, stream = capture("json")
    logger.info("first\nsecond line")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("boom")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"ts", "level", "logger", "message"}
    assert first["message"] == "first\nsecond line"
    assert first["level"] == "INFO"
    assert first["logger"] == "wanbot.test"
    assert str(first["ts"]).endswith("Z")
    assert second["level"] == "ERROR"
    assert "ZeroDivisionError" in str(second["exc"])


def test_job_context_adds_job_and_guild() -> None:
    logger, stream = capture("json")
    logger.info("outside")
    with job_context("k7v3m2q9ta", 1234):
        logger.info("inside")
        with job_context("other", None):
            logger.info("nested, no guild")
        logger.info("inside again")
    logger.info("outside again")
    docs = json_lines(stream)
    assert [(d.get("job_id"), d.get("guild_id")) for d in docs] == [
        (None, None),
        ("k7v3m2q9ta", 1234),
        ("other", None),
        ("k7v3m2q9ta", 1234),
        (None, None),
    ]
    assert "guild_id" not in docs[2]  # a DM or CLI job has no guild: the key is left out


def test_text_format_tags_job_lines() -> None:
    logger, stream = capture("text")
    with job_context("abc123", 42):
        logger.info("hello %s", "there")
    logger.info("plain")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("wanbot.test: hello there [job=abc123 guild=42]")
    assert second.endswith("wanbot.test: plain")
    assert " INFO " in first


async def test_bound_job_stays_inside_its_task() -> None:
    import asyncio  # noqa: PLC0415

    async def step() -> str | None:
        bind_job("in-task", 7)
        ref = current_job()
        return ref.job_id if ref else None

    assert await asyncio.create_task(step()) == "in-task"
    assert current_job() is None  # the caller's context is untouched


def test_setup_logging_json_captures_warnings(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    setup_logging("INFO", "json", stream=stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful", UserWarning, stacklevel=1)
    logging.getLogger("bot.x").debug("below the level")
    docs = json_lines(stream)
    assert len(docs) == 1
    assert docs[0]["logger"] == "py.warnings"
    assert "careful" in str(docs[0]["message"])


def test_only_the_discord_warnings_that_do_not_apply_are_dropped() -> None:
    """Voice libraries and the message content intent: hidden; other discord.py warnings stay."""
    quiet_irrelevant_discord_warnings()
    quiet_irrelevant_discord_warnings()  # idempotent: one filter per logger
    client = logging.getLogger("discord.client")
    commands_bot = logging.getLogger("discord.ext.commands.bot")
    assert len(client.filters) == 1
    stream = io.StringIO()
    handler = make_handler("text", stream=stream)
    for logger in (client, commands_bot):
        logger.addHandler(handler)
    try:
        client.warning("PyNaCl is not installed, voice will NOT be supported")
        client.warning("davey is not installed, voice will NOT be supported")
        commands_bot.warning("Privileged message content intent is missing, commands may not work")
        client.warning("Application has an interaction endpoint URL set, this means ...")
    finally:
        for logger in (client, commands_bot):
            logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "interaction endpoint URL" in lines[0]


# --- the engine tags its lines -------------------------------------------------------------------


async def test_every_engine_line_about_a_job_carries_its_ids(
    harness: Harness, tmp_path: Path, root_logger: logging.Logger
) -> None:
    """A real job through the engine and the fake crun (one success, one upstream failure)."""
    stream = io.StringIO()
    setup_logging("DEBUG", "json", secrets=[harness.crun.api_key], stream=stream)
    harness.crun.outcome = lambda inp: ("failed", "no") if "fail" in inp["prompt"] else None
    engine = await harness.engine()
    target = Target("test", {})
    ok = await engine.submit(
        GenerationRequest(prompt="a heron"), user_id=1, guild_id=555, target=target
    )
    bad = await engine.submit(
        GenerationRequest(prompt="please fail"), user_id=2, guild_id=None, target=target
    )
    await engine.wait_finished(ok.id, 10)
    await engine.wait_finished(bad.id, 10)
    docs = json_lines(stream)
    for job, guild in ((ok, 555), (bad, None)):
        about = [d for d in docs if job.id in str(d["message"])]
        # queued, submitted, finished, delivered at least
        assert len(about) >= 4, [d["message"] for d in about]
        for d in about:
            assert d.get("job_id") == job.id, d
            assert d.get("guild_id") == guild, d


async def test_no_secret_in_any_log_line_of_a_real_job_and_a_failing_one(
    harness: Harness, root_logger: logging.Logger
) -> None:
    """Everything logged at DEBUG while two real jobs run: the API key, and a key-shaped string
    that crun echoes in a failure, never appear; the failure is still logged (masked)."""
    key = harness.crun.api_key
    stream = io.StringIO()
    setup_logging("DEBUG", "json", secrets=[key, DISCORD_TOKEN], stream=stream)
    harness.crun.outcome = lambda inp: (
        ("failed", f"rejected: key {key} / {OTHER_KEY} not allowed")
        if "fail" in inp["prompt"]
        else None
    )
    harness.crun.fail("info", 500, times=1, message=f"internal error for {OTHER_KEY}")
    engine = await harness.engine()
    target = Target("test", {})
    ok = await engine.submit(
        GenerationRequest(prompt="a heron"), user_id=1, guild_id=5, target=target
    )
    bad = await engine.submit(
        GenerationRequest(prompt="please fail"), user_id=2, guild_id=5, target=target
    )
    assert (await engine.wait_finished(ok.id, 10)).status.value == "succeeded"
    assert (await engine.wait_finished(bad.id, 10)).status.value == "failed"
    out = stream.getvalue()
    docs = json_lines(stream)  # every line is JSON
    assert any("task failed upstream" in str(d["message"]) for d in docs)
    assert any(MASK in str(d["message"]) for d in docs)
    assert key not in out
    assert OTHER_KEY not in out
    assert _KEY_SHAPE_IN_TEXT.search(out) is None
