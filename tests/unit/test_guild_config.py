"""Per-server rules (bot/domain/config.py), their store and the BOT_OWNER_IDS setting."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.config import (
    MAX_BLOCKED_PATTERNS,
    MAX_BLOCKED_WORDS,
    GuildConfig,
    add_blocked_patterns,
    add_blocked_words,
    apply_rules,
    dms_allowed,
    prompt_blocked,
    remove_blocked_patterns,
    remove_blocked_words,
)
from bot.domain.models import GenerationRequest, ImageRef, ImageSource, Mode, Resolution
from bot.domain.patterns import (
    MAX_PATTERN_CHARS,
    MAX_PATTERN_COST,
    MAX_TOTAL_PATTERN_COST,
    REPEAT_CAP,
    check_pattern,
    pattern_cost,
)
from bot.domain.validation import MAX_PROMPT_CHARS, validate_request
from bot.domain.wordfilter import split_words
from bot.errors import ConfigError, InvalidInput
from bot.settings import load_settings
from bot.store.database import Database
from bot.store.guild_config import GuildConfigRepository

ART, BOTS, ELSEWHERE = 111, 222, 333
IMG = (ImageRef(ImageSource.URL, "https://example.com/a.png"),)


def req(prompt: str = "a lighthouse", **kw: object) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, **kw)  # type: ignore[arg-type]


def blocked(*words: str) -> GuildConfig:
    return add_blocked_words(GuildConfig(), words)


# --- channels ---------------------------------------------------------------------------------


def test_no_channel_list_means_everywhere() -> None:
    assert apply_rules(GuildConfig(), channel_id=ELSEWHERE, request=req()) == req()


def test_listed_channel_passes_and_others_are_pointed_to_the_list() -> None:
    config = GuildConfig(allowed_channels=(ART, BOTS))
    assert apply_rules(config, channel_id=ART, request=req()) == req()
    with pytest.raises(InvalidInput) as err:
        apply_rules(config, channel_id=ELSEWHERE, request=req())
    assert err.value.user_message == (
        f"Image generation isn't enabled in this channel. Try <#{ART}> or <#{BOTS}>."
    )


def test_thread_of_a_listed_channel_is_allowed() -> None:
    config = GuildConfig(allowed_channels=(ART,))
    assert apply_rules(config, channel_id=999, parent_channel_id=ART, request=req()) == req()
    with pytest.raises(InvalidInput):
        apply_rules(config, channel_id=999, parent_channel_id=ELSEWHERE, request=req())


def test_long_channel_lists_are_summarised() -> None:
    config = GuildConfig(allowed_channels=tuple(range(1, 9)))
    with pytest.raises(InvalidInput) as err:
        apply_rules(config, channel_id=ELSEWHERE, request=req())
    text = err.value.user_message
    assert "<#5>" in text
    assert "<#6>" not in text
    assert text.endswith("or 3 other channels.")


# --- resolution -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maximum", "asked", "ok"),
    [
        (Resolution.R2K, Resolution.R1K, True),
        (Resolution.R2K, Resolution.R2K, True),
        (Resolution.R2K, Resolution.R4K, False),
        (Resolution.R1K, Resolution.R2K, False),
        (Resolution.R4K, Resolution.R4K, True),
    ],
)
def test_max_resolution_both_sides(maximum: Resolution, asked: Resolution, ok: bool) -> None:
    config = GuildConfig(max_resolution=maximum)
    request = req(resolution=asked)
    if ok:
        assert apply_rules(config, channel_id=ART, request=request) == request
        return
    with pytest.raises(InvalidInput) as err:
        apply_rules(config, channel_id=ART, request=request)
    assert err.value.user_message.startswith(f"This server allows at most {maximum}.")


def test_max_resolution_message_lists_what_is_left() -> None:
    with pytest.raises(InvalidInput) as err:
        apply_rules(
            GuildConfig(max_resolution=Resolution.R2K),
            channel_id=ART,
            request=req(resolution=Resolution.R4K),
        )
    assert err.value.user_message == "This server allows at most 2K. Choose 1K or 2K and try again."


def test_default_resolution_fills_only_missing_ones() -> None:
    config = GuildConfig(default_resolution=Resolution.R1K)
    assert apply_rules(config, channel_id=ART, request=req()).resolution is Resolution.R1K
    chosen = req(resolution=Resolution.R2K)
    assert apply_rules(config, channel_id=ART, request=chosen) == chosen


def test_default_never_exceeds_the_maximum_or_the_mode() -> None:
    config = GuildConfig(default_resolution=Resolution.R4K, max_resolution=Resolution.R2K)
    assert apply_rules(config, channel_id=ART, request=req()).resolution is Resolution.R2K
    # 4K is text-to-image only: an edit gets 2K and stays valid.
    edit = req(mode=Mode.EDIT, images=IMG)
    filled = apply_rules(GuildConfig(default_resolution=Resolution.R4K), channel_id=1, request=edit)
    assert filled.resolution is Resolution.R2K
    validate_request(filled)


def test_no_default_and_a_low_maximum_sends_the_maximum() -> None:
    # The model default (2K) is above a 1K maximum: the request must not silently get 2K.
    out = apply_rules(GuildConfig(max_resolution=Resolution.R1K), channel_id=ART, request=req())
    assert out.resolution is Resolution.R1K
    # Nothing configured: the request is left for the contract's default.
    assert apply_rules(GuildConfig(), channel_id=ART, request=req()).resolution is None


# --- blocked words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "a Gore scene",
        "GORE",
        "gore!",
        "so much gore.",
        "g\u200bore",  # zero-width space
        "g\u00adore\u2060",  # soft hyphen, word joiner
        "gоre",  # Cyrillic o
        "ｇｏｒｅ",  # fullwidth
        "göre",  # accent
        "g0re",  # leetspeak
        "g o r e",
        "g.o.r.e",
        "goooore",
        "the_gore_scene",
    ],
)
def test_blocked_word_found_through_disguises(prompt: str) -> None:
    assert prompt_blocked(blocked("gore"), prompt)


@pytest.mark.parametrize("prompt", ["gorey", "a gorilla", "algorithm", "gor e", "g or"])
def test_blocked_word_is_whole_word_only(prompt: str) -> None:
    assert not prompt_blocked(blocked("gore"), prompt)


def test_leetspeak_symbols_and_phrases() -> None:
    assert prompt_blocked(blocked("ass"), "what an @$$")
    assert prompt_blocked(blocked("ass"), "a55 hat")
    assert not prompt_blocked(blocked("ass"), "a glass of water, class, assassin")
    config = blocked("bad word")
    assert prompt_blocked(config, "a BAD   word here")
    assert prompt_blocked(config, "bad-word")
    assert not prompt_blocked(config, "bad words")
    assert not prompt_blocked(config, "badword")


def test_short_tokens_keep_their_digits() -> None:
    # "4k", "3d" are everyday prompt words, not leetspeak for "ak", "ed".
    config = blocked("ak", "ed")
    assert not prompt_blocked(config, "a 4k 3d render")
    assert prompt_blocked(config, "an ak")


def test_blocked_words_in_scripts_without_spaces_match_inside_text() -> None:
    assert prompt_blocked(blocked("血"), "画一个血腥的场景")
    assert not prompt_blocked(blocked("血"), "画一个场景")


def test_refusal_does_not_echo_the_word() -> None:
    config = blocked("zebracorn")
    with pytest.raises(InvalidInput) as err:
        apply_rules(config, channel_id=ART, request=req("a zebracorn"))
    assert "zebracorn" not in err.value.user_message
    assert "zebracorn" not in err.value.detail
    assert "doesn't allow" in err.value.user_message


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])),
    st.integers(min_value=0, max_value=5),
)
def test_invisible_characters_anywhere_never_hide_a_word(junk: list[str], seed: int) -> None:
    word = list("forbidden")
    for i, ch in enumerate(junk):
        word.insert((seed + i * 3) % (len(word) + 1), ch)
    assert prompt_blocked(blocked("forbidden"), f"a {''.join(word)} thing")


def test_editing_the_word_list() -> None:
    config = add_blocked_words(GuildConfig(), ["Gore", "gore", "g0re", "blood"])
    assert config.blocked_words == ("Gore", "blood")  # same word in another spelling skipped
    assert remove_blocked_words(config, ["GORE"]).blocked_words == ("blood",)
    assert split_words("a, b  c,\n d ,,") == ["a", "b c", "d"]
    with pytest.raises(InvalidInput):
        add_blocked_words(GuildConfig(), ["!!!"])
    with pytest.raises(InvalidInput):
        add_blocked_words(GuildConfig(), ["x" * 65])
    abc = "abcdefghjkmnopqrstuvwxy"  # no i/l: they are one letter to the matcher
    distinct = [f"q{abc[i // len(abc)]}{abc[i % len(abc)]}z" for i in range(MAX_BLOCKED_WORDS)]
    full = add_blocked_words(GuildConfig(), distinct)
    assert len(full.blocked_words) == MAX_BLOCKED_WORDS
    with pytest.raises(InvalidInput):
        add_blocked_words(full, ["one more"])


def test_word_matching_is_fast_on_the_longest_prompt() -> None:
    config = add_blocked_words(GuildConfig(), [f"word{i}x" for i in range(MAX_BLOCKED_WORDS)])
    prompt = ("a b c " * 2000)[:MAX_PROMPT_CHARS]
    start = time.perf_counter()
    assert not prompt_blocked(config, prompt)
    assert time.perf_counter() - start < 1.0  # ~5 ms here; generous for slow CI


# --- blocked patterns -------------------------------------------------------------------------


def test_pattern_matches_case_insensitively_and_through_invisible_characters() -> None:
    config = add_blocked_patterns(GuildConfig(), r"\bkill\s+(him|her)\b")
    assert prompt_blocked(config, "KILL   him")
    assert prompt_blocked(config, "ki\u200bll her")
    assert not prompt_blocked(config, "skill him")


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(unclosed", "not a valid regular expression"),
        ("a{2,1}", "not a valid regular expression"),
        ("", "empty"),
        ("x" * (MAX_PATTERN_CHARS + 1), "limit is 200"),
        ("(a+)+b", "repeats something that repeats"),
        ("(a*)*", "repeats something that repeats"),
        ("(?:a?b?)+c", "repeats something that repeats"),
        ("(cat|dog)+", "repeats a choice"),
        (r"(a)\1", "refers back"),
        ("(?P<x>a)(?P=x)", "refers back"),
        ("(a)?(?(1)b|c)", "refers back"),
        ("a{101}", "above 100"),
        (".*a.*b", "too many open-ended repeats"),
        (r"\w+\s*\w+", "too many open-ended repeats"),
    ],
)
def test_bad_or_slow_patterns_are_refused_with_a_reason(pattern: str, why: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_pattern(pattern)
    assert why in err.value.user_message


@pytest.mark.parametrize(
    ("pattern", "hit", "miss"),
    [
        (r"\bkill\s+(yourself|urself)\b", "KILL   urself", "skill yourself"),
        ("foo.*bar", "foo and bar", "bar and foo"),
        ("ca+t", "caaat", "ct"),
        ("a.{0,20}b.{0,20}c", "a then b then c", "c b a"),
        (r"(?:very )?bad", "very bad", "good"),
    ],
)
def test_reasonable_patterns_are_accepted(pattern: str, hit: str, miss: str) -> None:
    assert pattern_cost(pattern) <= MAX_PATTERN_COST
    compiled = check_pattern(pattern)
    assert compiled.search(hit)
    assert not compiled.search(miss)


def test_open_ended_repeats_are_capped() -> None:
    compiled = check_pattern("a.*b")
    assert compiled.search("a" + "x" * REPEAT_CAP + "b")
    assert not compiled.search("a" + "x" * (REPEAT_CAP + 1) + "b")


def test_a_crafted_prompt_cannot_stall_the_bot() -> None:
    # The worst patterns that pass, all at once, on the longest hostile prompts.
    patterns = [r"\w*\s?\w{0,3}x", r"[a-z]+y", r".*z", r"\s+q", r"(?:\w+)?k"]
    config = GuildConfig()
    for p in patterns:
        config = add_blocked_patterns(config, p)
    for hostile in ("a" * MAX_PROMPT_CHARS, " " * MAX_PROMPT_CHARS, "aé" * (MAX_PROMPT_CHARS // 2)):
        start = time.perf_counter()
        assert not prompt_blocked(config, hostile)
        assert time.perf_counter() - start < 2.0  # ~0.1 s here; uncapped, ".*z" alone is 25M steps


def test_the_total_cost_of_a_servers_patterns_is_bounded() -> None:
    config = GuildConfig()
    added = 0
    with pytest.raises(InvalidInput) as err:
        for i in range(MAX_BLOCKED_PATTERNS):
            config = add_blocked_patterns(config, rf"w{i}\w*\s?z")
            added += 1
    assert "Together" in err.value.user_message
    assert 0 < added * pattern_cost(r"w0\w*\s?z") <= MAX_TOTAL_PATTERN_COST


def test_pattern_list_limits_and_removal() -> None:
    config = GuildConfig()
    for i in range(MAX_BLOCKED_PATTERNS):
        config = add_blocked_patterns(config, f"word{i}")
    with pytest.raises(InvalidInput):
        add_blocked_patterns(config, "one-more")
    assert add_blocked_patterns(config, "word3") is config  # already there
    assert "word3" not in remove_blocked_patterns(config, "word3").blocked_patterns


def test_a_stored_pattern_that_is_no_longer_accepted_is_skipped() -> None:
    config = GuildConfig(blocked_patterns=("(a+)+b", "dragon"))
    assert prompt_blocked(config, "a dragon")
    assert not prompt_blocked(config, "aaab")
    with pytest.raises(InvalidInput):
        config.validate()


def test_pattern_checks_compile_and_cost_simple_patterns() -> None:
    # The checks read patterns with their own reader and compile them with the public ``re``:
    # the basics must still compile case-insensitively and cost what the reader says.
    compiled = check_pattern(r"a+b")
    assert isinstance(compiled, re.Pattern)
    assert compiled.flags & re.IGNORECASE
    assert pattern_cost("ab") == 1
    assert pattern_cost("a?b") == 2
    assert pattern_cost("a*b") == REPEAT_CAP + 1


# --- DMs, JSON ----------------------------------------------------------------------------------


def test_bot_wide_dm_switch_overrides_the_setting_only_when_set() -> None:
    assert dms_allowed(GuildConfig(), True) is True
    assert dms_allowed(GuildConfig(), False) is False
    assert dms_allowed(GuildConfig(dms_allowed=False), True) is False
    assert dms_allowed(GuildConfig(dms_allowed=True), False) is True


def test_json_round_trip() -> None:
    config = GuildConfig(
        allowed_channels=(ART, BOTS),
        default_resolution=Resolution.R1K,
        max_resolution=Resolution.R2K,
        spoiler=True,
        blocked_words=("gore", "bad word", "血"),
        blocked_patterns=(r"\bkill\b",),
        dms_allowed=False,
        alerts_channel_id=BOTS,
    )
    assert GuildConfig.from_json(config.to_json()) == config
    assert GuildConfig.from_json(GuildConfig().to_json()) == GuildConfig()


def test_json_tolerates_missing_and_unknown_keys_but_not_wrong_types() -> None:
    assert GuildConfig.from_json('{"spoiler": true, "future": 1}') == GuildConfig(spoiler=True)
    for bad in (
        {"allowed_channels": ["1"]},
        {"spoiler": "yes"},
        {"max_resolution": "8K"},
        {"alerts_channel_id": True},
    ):
        with pytest.raises(ValueError):
            GuildConfig.from_dict(bad)


# --- the store ----------------------------------------------------------------------------------


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[GuildConfigRepository]:
    db = await Database.open(tmp_path / "wanbot.sqlite3")
    yield GuildConfigRepository(db, clock=lambda: 1234.0)
    await db.close()


async def test_store_defaults_set_update_and_isolation(repo: GuildConfigRepository) -> None:
    assert await repo.get(1) == GuildConfig()
    await repo.set(1, GuildConfig(spoiler=True))
    updated = await repo.update(1, max_resolution=Resolution.R2K)
    assert updated == GuildConfig(spoiler=True, max_resolution=Resolution.R2K)
    assert await repo.get(1) == updated
    assert await repo.get(2) == GuildConfig()
    row = await repo.db.fetchone("SELECT updated_at FROM guild_config WHERE guild_id = 1")
    assert row is not None
    assert row[0] == 1234.0


async def test_store_refuses_invalid_settings_and_keeps_the_old_ones(
    repo: GuildConfigRepository,
) -> None:
    await repo.set(1, GuildConfig(blocked_words=("gore",)))
    with pytest.raises(InvalidInput):
        await repo.update(1, blocked_patterns=("(a+)+",))
    with pytest.raises(InvalidInput):
        await repo.set(1, GuildConfig(blocked_patterns=("(",)))
    assert await repo.get(1) == GuildConfig(blocked_words=("gore",))


async def test_concurrent_edits_do_not_lose_each_other(repo: GuildConfigRepository) -> None:
    words = [f"word{i}" for i in range(40)]

    def adding(word: str) -> Callable[[GuildConfig], GuildConfig]:
        return lambda c: add_blocked_words(c, [word])

    await asyncio.gather(*(repo.modify(7, adding(w)) for w in words))
    assert sorted((await repo.get(7)).blocked_words) == sorted(words)


async def test_unreadable_stored_settings_fall_back_to_defaults(
    repo: GuildConfigRepository, caplog: pytest.LogCaptureFixture
) -> None:
    await repo.db.execute(
        "INSERT INTO guild_config (guild_id, config_json, updated_at) VALUES (5, ?, 0)",
        (json.dumps({"spoiler": "maybe"}),),
    )
    assert await repo.get(5) == GuildConfig()
    assert "unreadable" in caplog.text


# --- settings -------------------------------------------------------------------------------------


def test_bot_owner_ids_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_OWNER_IDS", " 12, 34 ,")
    assert load_settings(_env_file=None).bot_owner_ids == [12, 34]
    monkeypatch.setenv("BOT_OWNER_IDS", "")
    assert load_settings(_env_file=None).bot_owner_ids == []
    monkeypatch.setenv("BOT_OWNER_IDS", "12,alice")
    with pytest.raises(ConfigError, match="BOT_OWNER_IDS"):
        load_settings(_env_file=None)
