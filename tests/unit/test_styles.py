"""Server styles in the domain: the stored request keeps its style (and old rows still load), the
style's text joins the prompt, and names and texts follow one set of rules."""

from __future__ import annotations

import json

import pytest

from bot.domain.models import GenerationRequest, Style
from bot.domain.styles import MAX_STYLE_CHARS, make_style, style_name
from bot.domain.validation import MAX_PROMPT_CHARS, full_prompt, validate_request
from bot.errors import InvalidInput

NOIR = Style("noir", "black and white film noir")


def test_a_styled_request_round_trips_and_an_unstyled_one_is_stored_as_before() -> None:
    styled = GenerationRequest(prompt="a detective", seed=4, style=NOIR)
    assert GenerationRequest.from_json(styled.to_json()) == styled
    plain = GenerationRequest(prompt="a detective")
    assert "style" not in json.loads(plain.to_json())  # rows without a style are unchanged
    old_row = json.dumps({"prompt": "a detective", "mode": "text-to-image", "n": 1})
    assert GenerationRequest.from_json(old_row).style is None


def test_the_style_text_follows_the_prompt() -> None:
    assert full_prompt(GenerationRequest(prompt="  a fox \n", style=NOIR)) == (
        "a fox, black and white film noir"
    )
    assert full_prompt(GenerationRequest(prompt="A fox!", style=NOIR)) == (
        "A fox! black and white film noir"
    )
    assert full_prompt(GenerationRequest(prompt=" a fox ")) == "a fox"


def test_a_prompt_that_only_fits_without_its_style_is_refused_naming_the_limit() -> None:
    fits = GenerationRequest(prompt="a" * MAX_PROMPT_CHARS)
    validate_request(fits)
    with pytest.raises(InvalidInput) as refused:
        validate_request(GenerationRequest(prompt="a" * MAX_PROMPT_CHARS, style=NOIR))
    message = refused.value.user_message
    assert f"the limit is {MAX_PROMPT_CHARS:,}" in message
    assert "style 'noir'" in message
    assert "Shorten your prompt by 27 characters" in message


def test_a_malformed_stored_style_is_refused_not_crashed_on() -> None:
    row = json.dumps({"prompt": "a fox", "style": {"name": 5, "text": None}})
    with pytest.raises(InvalidInput) as refused:
        validate_request(GenerationRequest.from_json(row))
    assert "could not be read" in refused.value.user_message
    assert "style" in refused.value.detail


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("Watercolor", "watercolor"), ("  Film   Noir ", "film noir"), ("16-bit_art", "16-bit_art")],
)
def test_style_names_are_compared_trimmed_and_in_lower_case(typed: str, stored: str) -> None:
    assert style_name(typed) == stored


@pytest.mark.parametrize("bad", ["", "   ", "-noir", "noir!", "a" * 33, "<@123>", "`x`"])
def test_style_names_outside_the_rule_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="A style name is 1 to 32 letters or digits"):
        style_name(bad)


def test_style_texts_are_checked_like_prompts() -> None:
    assert make_style("Noir", "  film noir\n") == Style("noir", "film noir")
    with pytest.raises(InvalidInput, match="The style text is empty"):
        make_style("blank", "\u200b\u3164 ")
    with pytest.raises(InvalidInput, match=f"the limit is {MAX_STYLE_CHARS:,}"):
        make_style("long", "x" * (MAX_STYLE_CHARS + 1))
