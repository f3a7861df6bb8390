"""Request rules (wan-api.md 2.3): both sides of every limit, and the messages members see."""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import operator
import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.models import (
    GenerationRequest,
    ImageRef,
    ImageSource,
    Mode,
    PaletteColor,
    Resolution,
)
from bot.domain.validation import (
    ASPECT_RATIOS,
    DEFAULT_RESOLUTION,
    MAX_INPUT_IMAGES,
    MAX_N,
    MAX_N_SET,
    MAX_PROMPT_CHARS,
    SEED_MAX,
    effective_resolution,
    normalise_prompt,
    validate_request,
)
from bot.errors import InvalidInput
from bot.wan.contract import Contract, FieldNames

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\x00\x07\t\n\r "


def image(i: int) -> ImageRef:
    return ImageRef(ImageSource.URL, f"https://example.test/in/{i}.png", f"in{i}.png")


def images(count: int) -> tuple[ImageRef, ...]:
    return tuple(image(i) for i in range(count))


def t2i(**kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt=kw.pop("prompt", "a red fox in snow"), **kw)


def edit(count: int = 1, **kw: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt=kw.pop("prompt", "make it night"), mode=Mode.EDIT, images=images(count), **kw
    )


def image_set(count: int = 0, **kw: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt=kw.pop("prompt", "a four-panel comic"),
        mode=Mode.IMAGE_SET,
        images=images(count),
        **kw,
    )


def palette(count: int, total_cents: int = 10_000) -> tuple[PaletteColor, ...]:
    """``count`` colours whose shares add up to ``total_cents`` hundredths of a percent."""
    share, rest = divmod(total_cents, count)
    cents = [share + (1 if i < rest else 0) for i in range(count)]
    return tuple(
        PaletteColor(f"#{(0x102030 * (i + 1)) % 0xFFFFFF:06X}", f"{c / 100:.2f}%")
        for i, c in enumerate(cents)
    )


def rejected(req: GenerationRequest) -> str:
    with pytest.raises(InvalidInput) as info:
        validate_request(req)
    return info.value.user_message


# --- prompt (R1 and the 5000 character limit) ------------------------------------------------


def test_prompt_at_the_limit_is_accepted() -> None:
    validate_request(t2i(prompt="x" * MAX_PROMPT_CHARS))


def test_prompt_over_the_limit_names_length_and_limit() -> None:
    message = rejected(t2i(prompt="x" * (MAX_PROMPT_CHARS + 1)))
    assert "5,001" in message
    assert "5,000" in message
    assert "Shorten" in message


def test_prompt_length_is_counted_after_normalising() -> None:
    # Padding that is stripped before sending does not count against the limit.
    validate_request(t2i(prompt=INVISIBLE + "x" * MAX_PROMPT_CHARS + INVISIBLE))


@pytest.mark.parametrize("prompt", ["", "   ", "\u200b", "\ufeff\u2060", INVISIBLE, "\x00\x1f"])
def test_empty_or_invisible_prompt_is_rejected(prompt: str) -> None:
    message = rejected(t2i(prompt=prompt))
    assert "empty" in message
    assert "Describe" in message


def test_edits_need_a_prompt_too() -> None:
    assert "empty" in rejected(edit(prompt="\u200b \u200d"))


def test_normalise_prompt_strips_edges_only() -> None:
    assert normalise_prompt(INVISIBLE + "a \u200b  b\n" + INVISIBLE) == "a \u200b  b"
    assert normalise_prompt("plain") == "plain"
    assert normalise_prompt(INVISIBLE) == ""


# --- mode vs images ---------------------------------------------------------------------------


def test_text_to_image_with_images_points_to_edit() -> None:
    message = rejected(GenerationRequest(prompt="x", images=images(1)))
    assert "edit" in message


def test_edit_needs_an_image() -> None:
    message = rejected(edit(0))
    assert "at least one" in message
    assert str(MAX_INPUT_IMAGES) in message


@pytest.mark.parametrize("count", [1, MAX_INPUT_IMAGES])
def test_edit_accepts_one_to_nine_images(count: int) -> None:
    validate_request(edit(count))


@pytest.mark.parametrize("make", [edit, image_set])
def test_ten_images_are_too_many(make: Any) -> None:
    message = rejected(make(MAX_INPUT_IMAGES + 1))
    assert "10 images" in message
    assert "limit is 9" in message


@pytest.mark.parametrize("count", [0, 1, MAX_INPUT_IMAGES])
def test_image_set_accepts_zero_to_nine_images(count: int) -> None:
    validate_request(image_set(count))


# --- R2: 4K -----------------------------------------------------------------------------------


def test_4k_text_to_image_is_accepted() -> None:
    validate_request(t2i(resolution=Resolution.R4K))


@pytest.mark.parametrize(
    "req", [edit(1, resolution=Resolution.R4K), image_set(0, resolution=Resolution.R4K)]
)
def test_4k_edit_or_set_is_rejected_naming_2k(req: GenerationRequest) -> None:
    message = rejected(req)
    assert "4K" in message
    assert "2K" in message


@pytest.mark.parametrize("res", [Resolution.R1K, Resolution.R2K, None])
def test_edits_and_sets_up_to_2k_are_accepted(res: Resolution | None) -> None:
    validate_request(edit(2, resolution=res))
    validate_request(image_set(2, resolution=res))


def test_effective_resolution_defaults_to_2k() -> None:
    assert DEFAULT_RESOLUTION is Resolution.R2K
    assert effective_resolution(t2i()) is Resolution.R2K
    assert effective_resolution(t2i(resolution=Resolution.R1K)) is Resolution.R1K


# --- R3: thinking -----------------------------------------------------------------------------


@pytest.mark.parametrize("thinking", [True, False, None])
def test_thinking_any_value_for_text_to_image(thinking: bool | None) -> None:
    validate_request(t2i(thinking=thinking))


@pytest.mark.parametrize("req", [edit(1, thinking=True), image_set(0, thinking=True)])
def test_thinking_on_for_edit_or_set_is_explained(req: GenerationRequest) -> None:
    message = rejected(req)
    assert "Thinking mode only works for text-to-image" in message
    assert "Turn it off" in message


def test_thinking_off_is_fine_everywhere() -> None:
    validate_request(edit(1, thinking=False))
    validate_request(image_set(0, thinking=False))


# --- R4: n ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, MAX_N])
def test_n_within_one_to_four(n: int) -> None:
    validate_request(t2i(n=n))
    validate_request(edit(1, n=n))


@pytest.mark.parametrize("n", [0, MAX_N + 1])
def test_n_outside_one_to_four(n: int) -> None:
    for req in (t2i(n=n), edit(1, n=n)):
        message = rejected(req)
        assert f"{n} images" in message
        assert "1 to 4" in message


@pytest.mark.parametrize("n", [1, MAX_N_SET])
def test_image_set_n_within_one_to_twelve(n: int) -> None:
    validate_request(image_set(0, n=n))


@pytest.mark.parametrize("n", [0, MAX_N_SET + 1])
def test_image_set_n_outside_one_to_twelve(n: int) -> None:
    message = rejected(image_set(0, n=n))
    assert "1 to 12" in message
    assert str(n) in message


# --- R5: color palette ------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 10])
def test_palette_of_three_to_ten_is_accepted(count: int) -> None:
    validate_request(t2i(color_palette=palette(count)))
    validate_request(edit(1, color_palette=palette(count)))


@pytest.mark.parametrize("count", [2, 11])
def test_palette_size_outside_three_to_ten(count: int) -> None:
    message = rejected(t2i(color_palette=palette(count)))
    assert f"{count} colors" in message
    assert "3 to 10" in message


def test_palette_sum_must_be_exactly_100() -> None:
    validate_request(t2i(color_palette=palette(3, 10_000)))
    message = rejected(t2i(color_palette=palette(3, 9_999)))
    assert "99.99%" in message
    assert "100.00%" in message
    assert "100.01%" in rejected(t2i(color_palette=palette(3, 10_001)))


def test_palette_sum_uses_exact_decimals() -> None:
    shares = ("64.07%", "31.24%", "4.69%")
    # These add up to 100.00 exactly, but as binary floats they do not, on every Python version:
    # neither summed left to right nor correctly rounded (math.fsum; since 3.12 sum() is
    # compensated, so the old shares 16.75/52.01/31.24 summed to 100.0 there). A float-based
    # check, naive or compensated, would reject them.
    floats = [float(r[:-1]) for r in shares]
    assert math.fsum(floats) != 100.0
    assert functools.reduce(operator.add, floats) != 100.0
    validate_request(t2i(color_palette=tuple(PaletteColor("#aabbcc", r) for r in shares)))


@pytest.mark.parametrize("hex_", ["#12345", "123456", "#GGGGGG", "#1234567", " #123456", "#١٢٣٤٥٦"])
def test_palette_hex_must_be_rrggbb(hex_: str) -> None:
    colors = (PaletteColor(hex_, "40.00%"), *palette(2, 6_000))
    message = rejected(t2i(color_palette=colors))
    assert "color 1" in message
    assert "#1A2B3C" in message


@pytest.mark.parametrize(
    "ratio", ["40%", "40.0%", "40.000%", "40.00", "0.00%", "-40.00%", "40,00%", "1000.00%"]
)
def test_palette_ratio_needs_two_decimals_and_a_positive_value(ratio: str) -> None:
    colors = (PaletteColor("#123456", ratio), *palette(2, 6_000))
    message = rejected(t2i(color_palette=colors))
    assert "color 1" in message
    assert "25.00%" in message


def test_palette_not_with_image_sets() -> None:
    message = rejected(image_set(0, color_palette=palette(3)))
    assert "image sets" in message
    assert "palette" in message


# --- R7: aspect ratio -------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_every_listed_aspect_ratio_is_accepted_for_text_to_image(ratio: str) -> None:
    validate_request(t2i(aspect_ratio=ratio))


def test_unknown_aspect_ratio_lists_the_choices() -> None:
    message = rejected(t2i(aspect_ratio="5:4"))
    assert "'5:4'" in message
    assert "16:9" in message
    assert "1:8" in message


@pytest.mark.parametrize("req", [edit(1, aspect_ratio="16:9"), image_set(0, aspect_ratio="16:9")])
def test_aspect_ratio_only_for_text_to_image(req: GenerationRequest) -> None:
    message = rejected(req)
    assert "only applies to text-to-image" in message


def test_huge_values_are_not_echoed_in_full() -> None:
    message = rejected(t2i(aspect_ratio="9" * 10_000))
    assert len(message) < 300


# --- seed -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, SEED_MAX, None])
def test_seed_in_range(seed: int | None) -> None:
    validate_request(t2i(seed=seed))


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1])
def test_seed_out_of_range_names_the_range(seed: int) -> None:
    message = rejected(t2i(seed=seed))
    assert "0 to 2,147,483,647" in message


# --- malformed requests (e.g. from stored JSON) -----------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("prompt", None),
        ("mode", "sideways"),
        ("n", "2"),
        ("n", True),
        ("seed", "7"),
        ("seed", 1.5),
        ("thinking", "yes"),
        ("watermark", None),
        ("resolution", "8K"),
        ("aspect_ratio", 16),
        ("images", ("https://example.test/a.png",)),
        ("color_palette", (PaletteColor(0x123456, "100.00%"),)),  # type: ignore[arg-type]
    ],
)
def test_wrongly_typed_fields_are_invalid_input(field: str, value: Any) -> None:
    req = GenerationRequest(**{"prompt": "x", field: value})
    message = rejected(req)
    assert "could not be read" in message


# --- properties -------------------------------------------------------------------------------

NAMES = FieldNames()
HEX_RE = re.compile(r"#[0-9A-Fa-f]{6}")
RATIO_RE = re.compile(r"[0-9]{1,3}\.[0-9]{2}%")

edges = st.text(alphabet=INVISIBLE, max_size=3)
prompts = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda pre, size, post: pre + "p" * size + post,
        edges,
        st.sampled_from([1, MAX_PROMPT_CHARS - 1, MAX_PROMPT_CHARS, MAX_PROMPT_CHARS + 1]),
        edges,
    ),
)
image_refs = st.builds(
    ImageRef,
    st.sampled_from(ImageSource),
    st.text(min_size=1, max_size=20).map(lambda s: f"https://example.test/{s}"),
)
hexes = st.integers(0, 0xFFFFFF).map(lambda v: f"#{v:06x}") | st.text(max_size=8)


@st.composite
def valid_palettes(
    draw: st.DrawFn, min_size: int = 3, max_size: int = 10
) -> tuple[PaletteColor, ...]:
    count = draw(st.integers(min_size, max_size))
    cuts = sorted(
        draw(st.lists(st.integers(1, 9_999), min_size=count - 1, max_size=count - 1, unique=True))
    )
    bounds = [0, *cuts, 10_000]
    cents = [b - a for a, b in itertools.pairwise(bounds)]
    colors = draw(st.lists(st.integers(0, 0xFFFFFF), min_size=count, max_size=count))
    return tuple(
        PaletteColor(f"#{v:06X}", f"{c // 100}.{c % 100:02d}%")
        for v, c in zip(colors, cents, strict=True)
    )


palettes = st.one_of(
    st.just(()),
    valid_palettes(),
    valid_palettes(min_size=2, max_size=11),
    st.lists(
        st.builds(PaletteColor, hexes, st.sampled_from(["25.00%", "0.00%", "33.3%", "50.00%"])),
        max_size=11,
    ).map(tuple),
)

WILD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "prompt": prompts,
    "mode": st.sampled_from(Mode),
    "images": st.lists(image_refs, max_size=MAX_INPUT_IMAGES + 2).map(tuple),
    "resolution": st.none() | st.sampled_from(Resolution),
    "aspect_ratio": st.none() | st.sampled_from((*ASPECT_RATIOS, "5:4", "")),
    "n": st.integers(-1, MAX_N_SET + 2),
    "thinking": st.none() | st.booleans(),
    "seed": st.none() | st.integers(-2, 5) | st.integers(SEED_MAX - 2, SEED_MAX + 2),
    "watermark": st.booleans(),
    "color_palette": palettes,
}
requests = st.builds(GenerationRequest, **WILD_FIELDS)


@st.composite
def valid_requests(draw: st.DrawFn) -> GenerationRequest:
    mode = draw(st.sampled_from(Mode))
    plain = mode is Mode.TEXT_TO_IMAGE
    low = 1 if mode is Mode.EDIT else 0
    high = 0 if plain else MAX_INPUT_IMAGES
    return GenerationRequest(
        prompt=draw(edges)
        + draw(
            st.text(min_size=1, max_size=40).filter(normalise_prompt)
            | st.sampled_from(["x" * MAX_PROMPT_CHARS, "\u200bx\u200by"])
        )
        + draw(edges),
        mode=mode,
        images=tuple(draw(st.lists(image_refs, min_size=low, max_size=high))),
        resolution=draw(
            st.none()
            | st.sampled_from(list(Resolution) if plain else [Resolution.R1K, Resolution.R2K])
        ),
        aspect_ratio=draw(st.none() | st.sampled_from(ASPECT_RATIOS)) if plain else None,
        n=draw(st.integers(1, MAX_N_SET if mode is Mode.IMAGE_SET else MAX_N)),
        thinking=draw(st.none() | st.booleans()) if plain else draw(st.sampled_from([None, False])),
        seed=draw(st.none() | st.integers(0, SEED_MAX)),
        watermark=draw(st.booleans()),
        color_palette=() if mode is Mode.IMAGE_SET else draw(st.just(()) | valid_palettes()),
    )


# Values on or just past a limit, to swap into otherwise valid requests.
EDGE_VALUES: dict[str, list[Any]] = {
    "prompt": ["", "\u200b", "x" * MAX_PROMPT_CHARS, "x" * (MAX_PROMPT_CHARS + 1), INVISIBLE + "x"],
    "mode": list(Mode),
    "images": [images(0), images(1), images(MAX_INPUT_IMAGES), images(MAX_INPUT_IMAGES + 1)],
    "resolution": [Resolution.R4K, Resolution.R2K, None],
    "aspect_ratio": ["16:9", "5:4", None],
    "n": [0, 1, MAX_N, MAX_N + 1, MAX_N_SET, MAX_N_SET + 1],
    "thinking": [True, False, None],
    "seed": [-1, 0, SEED_MAX, SEED_MAX + 1, None],
    "watermark": [True, False],
    "color_palette": [(), palette(3), palette(10), palette(2), palette(11), palette(3, 9_999)],
}
EDGE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    name: st.sampled_from(values) for name, values in EDGE_VALUES.items()
}
EDGE_FIELDS["prompt"] |= prompts
EDGE_FIELDS["color_palette"] |= palettes
BASES = [
    t2i(),
    t2i(
        resolution=Resolution.R4K,
        thinking=True,
        aspect_ratio="1:1",
        seed=0,
        n=MAX_N,
        color_palette=palette(3),
    ),
    edit(1),
    edit(MAX_INPUT_IMAGES, n=MAX_N, resolution=Resolution.R2K, color_palette=palette(10)),
    image_set(0, n=MAX_N_SET),
    image_set(3, resolution=Resolution.R1K),
]


def test_every_edge_and_pair_of_edges_is_either_refused_or_rule_abiding() -> None:
    """Deterministic companion to the property test below: every single and pairwise edge."""
    edges = [(name, value) for name, values in EDGE_VALUES.items() for value in values]
    changes = [[e] for e in edges] + [
        [a, b] for a, b in itertools.combinations(edges, 2) if a[0] != b[0]
    ]
    outcomes = {"accepted": 0, "refused": 0}
    contract = Contract()
    for base in BASES:
        validate_request(base)
        for change in changes:
            req = replace(base, **dict(change))
            try:
                validate_request(req)
            except InvalidInput:
                outcomes["refused"] += 1
                continue
            outcomes["accepted"] += 1
            assert_respects_every_rule(contract.build_input(req, urls_for(req)), req)
    assert outcomes["accepted"] > 1000
    assert outcomes["refused"] > 1000


@st.composite
def near_valid_requests(draw: st.DrawFn) -> GenerationRequest:
    """A valid request with one or two fields moved to a limit: both sides of each rule."""
    req = draw(valid_requests())
    names = draw(
        st.lists(st.sampled_from(sorted(EDGE_FIELDS)), min_size=1, max_size=2, unique=True)
    )
    for name in names:
        req = replace(req, **{name: draw(EDGE_FIELDS[name])})
    return req


def urls_for(req: GenerationRequest) -> list[str]:
    return [f"https://files.example.test/{i}.png" for i in range(len(req.images))]


def assert_respects_every_rule(payload: dict[str, Any], req: GenerationRequest) -> None:
    assert set(payload) <= {getattr(NAMES, f) for f in NAMES.__dataclass_fields__}

    prompt = payload[NAMES.prompt]
    assert isinstance(prompt, str)
    assert prompt
    assert normalise_prompt(prompt) == prompt
    assert len(prompt) <= MAX_PROMPT_CHARS

    urls = payload.get(NAMES.images, [])
    assert len(urls) <= MAX_INPUT_IMAGES
    assert NAMES.images not in payload or urls  # never an empty list
    has_images = bool(urls)
    sequential = payload.get(NAMES.sequential, False)
    assert sequential in (True, False)
    assert NAMES.sequential not in payload or sequential is True
    if req.mode is Mode.EDIT:
        assert has_images
    if req.mode is Mode.TEXT_TO_IMAGE:
        assert not has_images

    resolution = payload[NAMES.resolution]
    assert resolution in {"1K", "2K", "4K"}
    if resolution == "4K":  # R2
        assert not has_images
        assert not sequential
    if NAMES.thinking in payload:  # R3
        assert isinstance(payload[NAMES.thinking], bool)
        assert not has_images
        assert not sequential
    n = payload[NAMES.n]  # R4
    assert type(n) is int
    assert 1 <= n <= (MAX_N_SET if sequential else MAX_N)
    if NAMES.palette in payload:  # R5
        entries = payload[NAMES.palette]
        assert not sequential
        assert 3 <= len(entries) <= 10
        assert all(HEX_RE.fullmatch(e["hex"]) and RATIO_RE.fullmatch(e["ratio"]) for e in entries)
        assert all(Decimal(e["ratio"][:-1]) > 0 for e in entries)
        assert sum(Decimal(e["ratio"][:-1]) for e in entries) == Decimal("100.00")
    if NAMES.aspect_ratio in payload:  # R7
        assert not has_images
        assert not sequential
        assert payload[NAMES.aspect_ratio] in ASPECT_RATIOS
    if NAMES.seed in payload:
        assert type(payload[NAMES.seed]) is int
        assert 0 <= payload[NAMES.seed] <= SEED_MAX
    assert type(payload[NAMES.watermark]) is bool

    # Nothing the member asked for is dropped silently.
    assert payload[NAMES.n] == req.n
    assert payload.get(NAMES.seed) == req.seed
    assert payload.get(NAMES.aspect_ratio) == req.aspect_ratio
    assert len(payload.get(NAMES.palette, [])) == len(req.color_palette)
    if req.thinking or (req.mode is Mode.TEXT_TO_IMAGE and req.thinking is not None):
        assert payload.get(NAMES.thinking) is req.thinking
    if req.resolution is not None:
        assert payload[NAMES.resolution] == req.resolution.value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=near_valid_requests())
def test_whatever_validation_accepts_builds_a_rule_abiding_input(req: GenerationRequest) -> None:
    try:
        validate_request(req)
    except InvalidInput:
        return
    assert_respects_every_rule(Contract().build_input(req, urls_for(req)), req)


@settings(max_examples=150, deadline=None)
@given(req=valid_requests())
def test_valid_requests_are_accepted_and_mapped_faithfully(req: GenerationRequest) -> None:
    validate_request(req)  # must not raise: validation is not stricter than the rules
    payload = Contract().build_input(req, urls_for(req))
    assert_respects_every_rule(payload, req)
    assert payload[NAMES.n] == req.n
    assert payload.get(NAMES.seed) == req.seed
    assert payload[NAMES.watermark] == req.watermark
    assert payload.get(NAMES.images, []) == urls_for(req)
    assert payload[NAMES.prompt] == normalise_prompt(req.prompt)
    assert payload[NAMES.resolution] == effective_resolution(req).value
    expected_palette = [{"hex": c.hex, "ratio": c.ratio} for c in req.color_palette]
    assert payload.get(NAMES.palette, []) == expected_palette


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.sampled_from([*Mode, *Resolution]),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), image_refs), max_size=3).map(tuple),
    st.lists(st.builds(PaletteColor, st.one_of(hexes, st.integers()), st.text(max_size=8))).map(
        tuple
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    req=requests
    | st.builds(
        GenerationRequest,
        prompt=anything | prompts,
        mode=anything,
        images=anything,
        resolution=anything,
        aspect_ratio=anything,
        n=anything,
        thinking=anything,
        seed=anything,
        watermark=anything,
        color_palette=anything | palettes,
    )
)
def test_validation_only_ever_raises_invalid_input(req: GenerationRequest) -> None:
    with contextlib.suppress(InvalidInput):
        validate_request(req)
