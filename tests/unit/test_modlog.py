"""The mod log's lines and rate limit (bot/domain/modlog.py), which rule refused a prompt
(bot/domain/config.py), and the service that posts them (bot/services/modlog.py) on a real
SQLite store with a recording ``send`` and a clock the test moves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.config import BlockRule, GuildConfig, PromptBlocked, apply_rules, blocking_rule
from bot.domain.models import GenerationRequest, Job, JobStatus, Target
from bot.domain.modlog import (
    LINES_PER_WINDOW,
    EventKind,
    ModEvent,
    ModLogLimiter,
    Verdict,
    escape,
    line,
    summary_line,
)
from bot.domain.text import Text
from bot.services.modlog import ModLogService
from bot.store.database import Database
from bot.store.guild_config import GuildConfigRepository

GUILD, OTHER_GUILD = 10, 20
ART, MODLOG = 100, 200
ALICE, MOD = 1, 2


# --- which rule -----------------------------------------------------------------------------


def test_the_blocking_rule_names_the_first_word_then_the_first_pattern() -> None:
    config = GuildConfig(blocked_words=("gore", "bad word"), blocked_patterns=(r"\bkill\b",))
    assert blocking_rule(config, "a calm lake") is None
    assert blocking_rule(config, "a BAD   word and gore") == BlockRule("word", "gore")
    assert blocking_rule(config, "b a d word") == BlockRule("word", "bad word")
    assert blocking_rule(config, "kill it") == BlockRule("pattern", r"\bkill\b")


def test_a_blocked_prompt_is_refused_with_its_rule_but_the_member_sees_no_rule() -> None:
    config = GuildConfig(blocked_words=("gore",))
    with pytest.raises(PromptBlocked) as refused:
        apply_rules(config, channel_id=ART, request=GenerationRequest(prompt="g0re everywhere"))
    assert refused.value.rule == BlockRule("word", "gore")
    assert "gore" not in refused.value.user_message


def test_the_modlog_channel_survives_a_json_round_trip_and_rejects_wrong_types() -> None:
    config = GuildConfig(modlog_channel_id=MODLOG)
    assert GuildConfig.from_json(config.to_json()) == config
    assert GuildConfig.from_json("{}").modlog_channel_id is None
    with pytest.raises(ValueError, match="modlog_channel_id"):
        GuildConfig.from_dict({"modlog_channel_id": "200"})


# --- the lines ------------------------------------------------------------------------------


def test_each_event_is_one_line_with_who_where_the_rule_and_the_prompt_in_a_spoiler() -> None:
    rule = BlockRule("word", "gore")
    blocked = ModEvent(EventKind.BLOCKED_PROMPT, ALICE, ART, rule=rule, prompt="some gore")
    assert line(blocked).english() == (
        "**Blocked prompt** · <@1> in <#100> · blocked word: gore · ||some gore||"
    )
    filtered = ModEvent(EventKind.CONTENT_FILTER, ALICE, ART, prompt="a fox", job_id="j1")
    assert line(filtered).english() == (
        "**Content filter** · <@1> in <#100> · crun's content filter refused job `j1` "
        "(its prompt or images) · ||a fox||"
    )
    deleted = ModEvent(
        EventKind.RESULT_DELETED, MOD, ART, subject_id=ALICE, prompt="a fox", job_id="j1"
    )
    assert line(deleted).english() == (
        "**Result deleted** · <@2> deleted <@1>'s result (job `j1`) · in <#100> · ||a fox||"
    )
    block = ModEvent(EventKind.MEMBER_BLOCKED, MOD, ART, subject_id=ALICE, reason="spam")
    assert line(block).english() == (
        "**Member blocked** · <@2> blocked <@1> on this server · reason: spam · "
        "command used in <#100>"
    )
    unblock = ModEvent(EventKind.MEMBER_UNBLOCKED, MOD, ART, subject_id=ALICE)
    assert line(unblock).english() == (
        "**Member unblocked** · <@2> unblocked <@1> on this server · command used in <#100>"
    )


def test_a_hostile_prompt_cannot_ping_restyle_link_or_leave_its_spoiler() -> None:
    hostile = "a||b|| @everyone <@3> <@&4> **x** `y` [z](https://e.x)\n# h\u202e \\"
    text = line(ModEvent(EventKind.BLOCKED_PROMPT, ALICE, ART, prompt=hostile)).english()
    spoiler = text.split(" · ")[-1]
    assert spoiler.startswith("||") and spoiler.endswith("||")
    inner = spoiler[2:-2]
    # Every markdown, mention and link character is escaped; nothing is left to close "||".
    assert not re.search(r"(?<!\\)[|*`<@\[\]():#]", inner.replace("\\\\", ""))
    assert "\n" not in text and "\u202e" not in text
    assert r"\@everyone \<\@3\> \<\@&4\>" in inner  # shown as typed, pinging no one


def test_long_prompts_and_reasons_are_clipped_before_escaping() -> None:
    prompt = "|" * 5000
    text = line(ModEvent(EventKind.BLOCKED_PROMPT, ALICE, ART, prompt=prompt)).english()
    assert len(text) < 1000
    assert text.endswith("…||")
    assert escape("a" * 10, 5) == "aaaa…"


def test_the_summary_counts_what_was_held_back() -> None:
    assert summary_line({EventKind.BLOCKED_PROMPT: 12}).english() == (
        "…and 12 more blocked prompts in the last minute."
    )
    assert summary_line({EventKind.BLOCKED_PROMPT: 1}).english() == (
        "…and 1 more blocked prompt in the last minute."
    )
    mixed = summary_line({EventKind.BLOCKED_PROMPT: 3, EventKind.RESULT_DELETED: 1})
    assert mixed.english() == (
        "…and 4 more events in the last minute: 3 blocked prompts, 1 deleted result."
    )


# --- the rate limit -------------------------------------------------------------------------


def test_a_burst_gets_the_budget_then_is_held_and_summarised_once() -> None:
    limiter = ModLogLimiter(limit=3, window=60)
    verdicts = [limiter.admit(GUILD, EventKind.BLOCKED_PROMPT, 0.0 + i) for i in range(6)]
    assert verdicts == [Verdict.POST] * 3 + [Verdict.HOLD_FIRST, Verdict.HOLD, Verdict.HOLD]
    assert limiter.admit(OTHER_GUILD, EventKind.BLOCKED_PROMPT, 5.0) is Verdict.POST
    assert limiter.due(59.9) == []
    assert limiter.due(60.0) == [(GUILD, {EventKind.BLOCKED_PROMPT: 3})]
    assert limiter.due(61.0) == []  # once
    assert limiter.admit(GUILD, EventKind.BLOCKED_PROMPT, 61.0) is Verdict.POST  # a new window


def test_a_window_ended_by_a_new_event_is_still_summarised() -> None:
    limiter = ModLogLimiter(limit=1, window=60)
    limiter.admit(GUILD, EventKind.MEMBER_BLOCKED, 0.0)
    limiter.admit(GUILD, EventKind.MEMBER_BLOCKED, 1.0)
    assert limiter.admit(GUILD, EventKind.BLOCKED_PROMPT, 70.0) is Verdict.POST
    assert limiter.due(70.0) == [(GUILD, {EventKind.MEMBER_BLOCKED: 1})]


# --- the service ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def configs(tmp_path: Path) -> AsyncIterator[GuildConfigRepository]:
    db = await Database.open(tmp_path / "modlog.sqlite3")
    try:
        yield GuildConfigRepository(db)
    finally:
        await db.close()


async def service(
    configs: GuildConfigRepository, sent: list[tuple[int, int, str]], clock: Clock
) -> ModLogService:
    async def send(guild_id: int, channel_id: int, text: Text, _language: str | None) -> None:
        sent.append((guild_id, channel_id, text.english()))

    return ModLogService(configs, send, clock=clock)


def a_job(user_id: int = ALICE) -> Job:
    return Job(
        id="job1",
        user_id=user_id,
        guild_id=GUILD,
        request=GenerationRequest(prompt="a fox"),
        target=Target("discord", {"channel_id": ART}),
        status=JobStatus.FAILED,
        created_at=0.0,
    )


async def test_nothing_is_posted_without_a_modlog_channel(configs: GuildConfigRepository) -> None:
    sent: list[tuple[int, int, str]] = []
    modlog = await service(configs, sent, Clock())
    modlog.blocked_prompt(GUILD, ALICE, ART, BlockRule("word", "gore"), "gore")
    modlog.content_filtered(a_job())
    modlog.blocked_prompt(None, ALICE, ART, BlockRule("word", "gore"), "gore")  # a DM
    await modlog.idle()
    assert sent == []
    await modlog.close()


async def test_the_service_posts_a_burst_within_the_limit_and_one_summary(
    configs: GuildConfigRepository,
) -> None:
    await configs.set(GUILD, GuildConfig(modlog_channel_id=MODLOG))
    sent: list[tuple[int, int, str]] = []
    clock = Clock()
    modlog = await service(configs, sent, clock)
    for i in range(LINES_PER_WINDOW + 7):
        modlog.blocked_prompt(GUILD, ALICE, ART, BlockRule("word", "gore"), f"gore {i}")
        await modlog.idle()
    assert len(sent) == LINES_PER_WINDOW
    assert {(g, c) for g, c, _ in sent} == {(GUILD, MODLOG)}
    assert await modlog.flush() == 0  # the window is still open
    clock.now += 60
    assert await modlog.flush() == 1
    assert sent[-1][2] == "…and 7 more blocked prompts in the last minute."
    assert await modlog.flush() == 0
    modlog.result_deleted(MOD, a_job(), ART)  # a new window: posted at once
    modlog.result_deleted(ALICE, a_job(), ART)  # the requester's own: not logged
    await modlog.idle()
    assert len(sent) == LINES_PER_WINDOW + 2
    assert sent[-1][2].startswith("**Result deleted** · <@2> deleted <@1>'s result")
    await modlog.close()


async def test_a_failing_send_is_logged_and_never_raised(
    configs: GuildConfigRepository, caplog: pytest.LogCaptureFixture
) -> None:
    await configs.set(GUILD, GuildConfig(modlog_channel_id=MODLOG))

    async def send(_guild_id: int, _channel_id: int, _text: Text, _lang: str | None) -> None:
        raise RuntimeError("discord is down")

    modlog = ModLogService(configs, send, clock=Clock())
    modlog.member_blocked(GUILD, MOD, ALICE, ART, None)
    await modlog.idle()
    assert "mod-log line to channel 200 failed" in caplog.text
    await modlog.close()
