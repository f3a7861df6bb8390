"""The pure rules of /settings: what a preference fills in, for which mode, and what caps it."""

from __future__ import annotations

import pytest

from bot.domain.config import GuildConfig
from bot.domain.models import GenerationRequest, Mode, Resolution
from bot.domain.preferences import (
    MAX_SUFFIX_CHARS,
    Preferences,
    check_suffix,
    choose,
    given,
    personalise,
    toggle,
)
from bot.domain.validation import append_to_prompt
from bot.errors import InvalidInput

ALL = Preferences(
    resolution=Resolution.R4K,
    aspect_ratio="16:9",
    count=3,
    thinking=True,
    watermark=True,
    suffix="soft light",
    private=True,
)
OPEN = GuildConfig()


def test_everything_the_command_did_not_say_comes_from_the_preferences() -> None:
    out = personalise(GenerationRequest(prompt="a fox"), ALL, (), OPEN)
    assert out.request == GenerationRequest(
        prompt="a fox, soft light",
        resolution=Resolution.R4K,
        aspect_ratio="16:9",
        n=3,
        thinking=True,
        watermark=True,
    )
    assert out.notes == ()
    assert out.private is True


def test_what_the_command_said_wins() -> None:
    request = GenerationRequest(
        prompt="a fox", resolution=Resolution.R1K, aspect_ratio="1:1", n=1, thinking=False
    )
    told = given(resolution="1K", aspect_ratio="1:1", n=1, thinking=False, watermark=False)
    out = personalise(request, ALL, told, OPEN)
    assert out.request == GenerationRequest(
        prompt="a fox, soft light",
        resolution=Resolution.R1K,
        aspect_ratio="1:1",
        n=1,
        thinking=False,
        watermark=False,
    )
    assert given(resolution=None, n=None) == frozenset()


def test_only_what_a_mode_takes_is_filled_in() -> None:
    edit = personalise(GenerationRequest(prompt="make it night", mode=Mode.EDIT), ALL, (), OPEN)
    assert edit.request.resolution is Resolution.R2K  # edits top out at 2K: lowered silently
    assert edit.request.aspect_ratio is None and edit.request.thinking is None
    assert edit.request.n == 3 and edit.notes == ()
    image_set = GenerationRequest(prompt="a comic", mode=Mode.IMAGE_SET, n=4)
    out = personalise(image_set, ALL, given(n=4), OPEN)
    assert out.request.n == 4


def test_the_servers_maximum_caps_a_preference_and_says_so() -> None:
    capped = GuildConfig(max_resolution=Resolution.R2K)
    out = personalise(GenerationRequest(prompt="a fox"), ALL, (), capped)
    assert out.request.resolution is Resolution.R2K
    assert [n.english() for n in out.notes] == [
        "Your preferred 4K is above this server's limit; made at 2K."
    ]
    low = GuildConfig(max_resolution=Resolution.R1K)
    edit = personalise(GenerationRequest(prompt="x", mode=Mode.EDIT), ALL, (), low)
    assert edit.request.resolution is Resolution.R1K
    assert [n.english() for n in edit.notes] == [
        "Your preferred 4K is above this server's limit; made at 1K."
    ]


def test_the_suffix_is_checked_like_a_prompt_and_counted() -> None:
    assert check_suffix("  soft light \n") == "soft light"
    assert check_suffix("   ") is None  # empty clears it
    with pytest.raises(InvalidInput, match="the limit is 500"):
        check_suffix("x" * (MAX_SUFFIX_CHARS + 1))
    assert append_to_prompt("a fox", "soft light") == "a fox, soft light"
    assert append_to_prompt("a fox!  ", "soft light") == "a fox! soft light"
    with pytest.raises(InvalidInput, match="With your prompt suffix from /settings"):
        personalise(GenerationRequest(prompt="x" * 4995), ALL, (), OPEN)


def test_menu_values_are_client_data() -> None:
    assert choose(Preferences(), "aspect_ratio", "9:16").aspect_ratio == "9:16"
    for name, value in (("count", "5"), ("resolution", "8K"), ("aspect_ratio", "2:1"), ("x", "1")):
        with pytest.raises(InvalidInput):
            choose(Preferences(), name, value)
    assert toggle(Preferences(), "thinking").thinking is True  # off by default: now on
    assert toggle(Preferences(thinking=True), "thinking").thinking is False
    with pytest.raises(InvalidInput):
        toggle(Preferences(), "suffix")


def test_stored_preferences_round_trip_and_forgive_bad_values() -> None:
    assert Preferences.from_json(ALL.to_json()) == ALL
    assert Preferences.from_json('{"count": true, "aspect_ratio": "2:1"}') == Preferences()
    assert Preferences.from_json("[]") == Preferences()
    assert Preferences().empty and not ALL.empty


def test_private_results_follow_the_preference_unless_the_command_said() -> None:
    request = GenerationRequest(prompt="a fox")
    assert personalise(request, ALL, (), OPEN).private is True
    # The command gave the option (true or false): the flow uses its value, not the preference.
    assert personalise(request, ALL, given(private=False), OPEN).private is False
    assert personalise(request, Preferences(private=False), (), OPEN).private is False
    assert personalise(request, Preferences(), (), OPEN).private is False
    assert toggle(Preferences(), "private").private is True  # off by default: now on
    assert Preferences.from_json('{"private": "yes"}') == Preferences()
