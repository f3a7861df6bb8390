"""Model-based properties of request validation (bot/domain/validation.py).

``oracle`` below is written from the crun contract (shared wan-api.md §2.2, §2.3, §5) and from
Unicode's own definition of characters that render as nothing, not from validation.py. Hypothesis
throws arbitrary requests at both, prompts drawn from nasty text (zero-width and bidi controls,
NUL and other control characters, combining marks, emoji sequences, 10,000 characters), and
checks that:

- validation accepts exactly the requests the oracle calls valid;
- every refusal is an ``InvalidInput`` whose message is short enough for Discord, friendly (no
  traceback, no Python class repr, no "Error:" internals), says what to do, and names a field
  the oracle agrees is wrong;
- nothing else ever escapes, whatever the field types;
- normalising a prompt is idempotent and only ever removes blank characters at the edges.

tests/unit/test_validation.py holds the example-based tests of each rule's two sides.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain.models import (
    GenerationRequest,
    ImageRef,
    ImageSource,
    Mode,
    PaletteColor,
    Resolution,
)
from bot.domain.validation import normalise_prompt, validate_request
from bot.errors import InvalidInput

PROPS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every run: no flaky CI, reproducible failures
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)

# --- the contract, written out independently ------------------------------------------------

PROMPT_LIMIT = 5000  # §2.2 / §5: "≤ 5000 characters"
IMAGE_LIMIT = 9  # §5: "0–9 per request"
N_LIMIT, N_SET_LIMIT = 4, 12  # §5: "1–4 normal, 1–12 image set"
SEED_LIMIT = 2**31 - 1  # §5: "0–2147483647"
PALETTE_SIZES = range(3, 11)  # §2.2: "3–10 entries"
ASPECTS = frozenset({"1:1", "16:9", "4:3", "21:9", "3:4", "9:16", "8:1", "1:8"})  # §2.2 (kie)
DISCORD_MESSAGE_LIMIT = 2000

# Unicode 15 DerivedCoreProperties.txt, Default_Ignorable_Code_Point: code points that render
# as nothing when a font has no glyph for them. A prompt made only of these (and whitespace and
# control characters) is empty to the member who typed it and to the model.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# The ignorables that never attach to a neighbour (zero-width spaces and joiners, bidi marks,
# embeddings, overrides and isolates, BOM, soft hyphen): stripping them from the ends of a prompt
# changes nothing the member or the model can see. Variation selectors, tag characters (flag
# sequences) and the combining grapheme joiner belong to the character before them, so they are
# not stripped (U+2764 U+FE0F must stay a red heart emoji).
EDGE_STRIPPABLE = frozenset(
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)


def renders_nothing(ch: str) -> bool:
    cp = ord(ch)
    return (
        ch.isspace()
        or unicodedata.category(ch) == "Cc"
        or any(lo <= cp <= hi for lo, hi in DEFAULT_IGNORABLE)
    )


def edge_blank(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) == "Cc" or ch in EDGE_STRIPPABLE


def oracle_strip(text: str) -> str:
    start, end = 0, len(text)
    while start < end and edge_blank(text[start]):
        start += 1
    while end > start and edge_blank(text[end - 1]):
        end -= 1
    return text[start:end]


HEX = re.compile(r"#[0-9a-fA-F]{6}", re.ASCII)
RATIO = re.compile(r"([0-9]{1,3})\.([0-9]{2})%", re.ASCII)


def ratio_cents(ratio: str) -> int | None:
    """'25.00%' -> 2500; None when it is not a two-decimal percentage."""
    m = RATIO.fullmatch(ratio)
    return int(m.group(1)) * 100 + int(m.group(2)) if m else None


def palette_ok(mode: Mode, palette: tuple[PaletteColor, ...]) -> bool:
    """§2.2 color_palette: 3-10 '#RRGGBB' entries, 'NN.NN%' shares totalling exactly 100.00%;
    not with image-set mode."""
    if not palette:
        return True
    if mode is Mode.IMAGE_SET or len(palette) not in PALETTE_SIZES:
        return False
    cents = [ratio_cents(c.ratio) for c in palette]
    return (
        all(HEX.fullmatch(c.hex) for c in palette)
        and all(c is not None and 0 < c <= 10_000 for c in cents)
        and sum(c or 0 for c in cents) == 10_000
    )


def oracle(req: GenerationRequest) -> set[str]:
    """The fields of a well-typed request that break the contract; empty means valid."""
    wrong: set[str] = set()
    plain = req.mode is Mode.TEXT_TO_IMAGE
    sent = oracle_strip(req.prompt)
    # R1: exactly one non-empty text item; §5: at most 5000 characters are used.
    if all(renders_nothing(ch) for ch in sent) or len(sent) > PROMPT_LIMIT:
        wrong.add("prompt")
    images = len(req.images)
    allowed_images = {
        Mode.TEXT_TO_IMAGE: range(1),  # the bot's modes: text-to-image means no inputs
        Mode.EDIT: range(1, IMAGE_LIMIT + 1),
        Mode.IMAGE_SET: range(IMAGE_LIMIT + 1),
    }[req.mode]
    if images not in allowed_images:
        wrong.add("images")
    plain = plain and not images  # what the model sees: no inputs, no image set
    # R2: 4K only for text-to-image without inputs or image set; the default is 2K.
    if req.resolution is Resolution.R4K and not plain:
        wrong.add("resolution")
    # R3: thinking only for plain text-to-image; asking for it elsewhere is refused, not dropped.
    if req.thinking is True and not plain:
        wrong.add("thinking")
    if not 1 <= req.n <= (N_SET_LIMIT if req.mode is Mode.IMAGE_SET else N_LIMIT):
        wrong.add("n")
    if not palette_ok(req.mode, req.color_palette):
        wrong.add("palette")
    if req.aspect_ratio is not None and (not plain or req.aspect_ratio not in ASPECTS):
        wrong.add("aspect_ratio")
    if req.seed is not None and not 0 <= req.seed <= SEED_LIMIT:
        wrong.add("seed")
    return wrong


# --- what a refusal must look like ------------------------------------------------------------

# Which field a message is about, as a member reads it. First match wins.
ABOUT = (
    ("prompt", re.compile(r"\byour prompt\b", re.I)),
    ("thinking", re.compile(r"\bthinking mode\b", re.I)),
    ("resolution", re.compile(r"\b4K\b")),
    ("palette", re.compile(r"\bpalette\b", re.I)),
    ("aspect_ratio", re.compile(r"\baspect ratio\b", re.I)),
    ("seed", re.compile(r"\bseed\b", re.I)),
    ("n", re.compile(r"\basked for\b", re.I)),
    ("images", re.compile(r"\bimages?\b", re.I)),
)
ADVICE = re.compile(
    r"\b(try again|choose|remove|add|shorten|describe|write|turn it off|use|attach|adjust|"
    r"leave it empty|make)\b",
    re.I,
)
INTERNALS = re.compile(
    r"Traceback|\bFile \"|Error:|Exception|<(class|enum|function|bound method|module) |"
    r" object at 0x|GenerationRequest|PaletteColor\(|ImageRef\(|\b(Mode|Resolution)\.[A-Z]"
)


def echoes(req: GenerationRequest) -> list[str]:
    """How the member's own values may be quoted in a message (repr, maybe clipped)."""
    values = [req.aspect_ratio or ""]
    values += [c.hex for c in req.color_palette] + [c.ratio for c in req.color_palette]
    out: list[str] = []
    for v in values:
        out += [repr(v), repr(v[:23] + "…")]
    return sorted((e for e in out if len(e) > 2), key=len, reverse=True)


def check_message(message: str, req: GenerationRequest) -> str:
    """Assert the refusal is fit to show a member; return the field it is about."""
    assert message.strip(), "empty message"
    assert len(message) <= DISCORD_MESSAGE_LIMIT, f"{len(message)} characters"
    own_words = message
    for quoted in echoes(req):
        own_words = own_words.replace(quoted, "'…'")
    assert not INTERNALS.search(own_words), own_words
    assert ADVICE.search(own_words), f"says nothing about what to do: {own_words}"
    for field, pattern in ABOUT:
        if pattern.search(own_words):
            return field
    raise AssertionError(f"names no field: {message}")


# --- strategies -------------------------------------------------------------------------------

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
CONTROLS = "\x00\x01\x07\x08\x1b\x7f\x85\x9f"
SPACES = " \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2007\u200a\u2028\u2029\u202f\u205f\u3000"
COMBINING = "\u0300\u0301\u0336\u0345\u0489\u20dd\u20e3"
# Characters Discord members use as "blank" that are NOT default-ignorable: they render as a
# visible (if empty-looking) glyph, so a prompt of them is not empty by the contract.
LOOKS_BLANK = "\u2800\u3000\u2063"
# Ignorable characters that attach to the previous character (kept at the edges by design).
ATTACHING_IGNORABLE = "\u034f\u061c\u115f\u1160\u17b4\u180b\u3164\ufe0f\uffa0\U000e0041\U000e007f"
WORDS = ["a", "fox", "猫", "قطة", "חתול", "🦊", "👩‍💻", "❤️", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "Z̴̡a̷l̸g̵o", "x"]

blank_chars = st.sampled_from(ZERO_WIDTH + BIDI + CONTROLS + SPACES + "\u00ad\u180e")
nasty_chars = st.one_of(
    blank_chars,
    st.sampled_from(COMBINING + LOOKS_BLANK + "<>@#*_~`|[]()\\:"),
    st.characters(blacklist_categories=("Cs",)),  # any code point that is valid text
)


prompts = st.one_of(
    st.text(nasty_chars, max_size=40),
    st.text(blank_chars, max_size=12),
    st.text(st.sampled_from(ATTACHING_IGNORABLE + " \u200b"), max_size=6),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
    # Long ones, around the limit: padding + a run of one character + padding.
    st.builds(
        lambda pre, ch, size, post: pre + ch * size + post,
        st.text(blank_chars, max_size=4),
        st.sampled_from(["x", "猫", "\u200b", " ", "\u0301", "🦊", "\u2800"]),
        st.sampled_from([1, PROMPT_LIMIT - 1, PROMPT_LIMIT, PROMPT_LIMIT + 1, 10_000]),
        st.text(blank_chars, max_size=4),
    ),
)

image_refs = st.builds(
    ImageRef,
    st.sampled_from(ImageSource),
    st.sampled_from(
        ["https://cdn.example.test/a.png", "/tmp/b.jpg", "https://x.test/\u202egnp.exe"]
    ),
    st.text(nasty_chars, max_size=12),
)
hexes = st.one_of(
    st.integers(0, 0xFFFFFF).map(lambda v: f"#{v:06X}"),
    st.sampled_from(["#12345", "#1234567", "123456", "#GGGGGG", "#١٢٣٤٥٦", " #123456", "#abcdef"]),
    st.text(nasty_chars, max_size=30),
)
ratios = st.one_of(
    st.integers(0, 10_050).map(lambda c: f"{c // 100}.{c % 100:02d}%"),
    st.sampled_from(["25%", "25.0%", "25.000%", "025.00%", "0100.00%", "-1.00%", "٢٥.٠٠%"]),
    st.text(nasty_chars, max_size=30),
)


good_hexes = st.integers(0, 0xFFFFFF).map(lambda v: f"#{v:06x}") | st.integers(0, 0xFFFFFF).map(
    lambda v: f"#{v:06X}"
)


@st.composite
def exact_palettes(
    draw: st.DrawFn, sizes: range = range(1, 13), colors: st.SearchStrategy[str] = hexes
) -> tuple[PaletteColor, ...]:
    """Palettes whose shares add up to exactly 100.00% (most random ones never do)."""
    count = draw(st.sampled_from(sizes))
    cuts = sorted(draw(st.sets(st.integers(1, 9_999), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, 10_000]
    return tuple(
        PaletteColor(draw(colors), f"{(b - a) // 100}.{(b - a) % 100:02d}%")
        for a, b in itertools.pairwise(bounds)
    )


palettes = st.one_of(
    st.just(()),
    exact_palettes(),
    st.lists(st.builds(PaletteColor, hexes, ratios), max_size=12).map(tuple),
)

well_typed_requests = st.builds(
    GenerationRequest,
    prompt=prompts,
    mode=st.sampled_from(Mode),
    images=st.lists(image_refs, max_size=IMAGE_LIMIT + 3).map(tuple),
    resolution=st.none() | st.sampled_from(Resolution),
    aspect_ratio=st.none() | st.sampled_from([*sorted(ASPECTS), "5:4", "", "16:9 "]) | hexes,
    n=st.integers(-3, N_SET_LIMIT + 3) | st.integers(-(2**70), 2**70),
    thinking=st.none() | st.booleans(),
    seed=st.none() | st.integers(-5, 5) | st.integers(SEED_LIMIT - 3, 2**63),
    watermark=st.booleans(),
    color_palette=palettes,
)


@st.composite
def valid_requests(draw: st.DrawFn) -> GenerationRequest:
    """Built from the contract's allowed values only: all of these must be accepted."""
    mode = draw(st.sampled_from(Mode))
    plain = mode is Mode.TEXT_TO_IMAGE
    low = {Mode.TEXT_TO_IMAGE: 0, Mode.EDIT: 1, Mode.IMAGE_SET: 0}[mode]
    high = 0 if plain else IMAGE_LIMIT
    core = draw(
        st.text(nasty_chars, min_size=1, max_size=40).filter(
            lambda t: any(not renders_nothing(ch) for ch in t)
        )
        | st.sampled_from(["x" * PROMPT_LIMIT, "a\u200bb", "\u202eevil\u202c", "🏴󠁧󠁢󠁥󠁮󠁧󠁿❤️"])
    )
    if len(oracle_strip(core)) > PROMPT_LIMIT:
        core = core[:PROMPT_LIMIT]
    pad = st.text(blank_chars, max_size=4)
    return GenerationRequest(
        prompt=draw(pad) + core + draw(pad),
        mode=mode,
        images=tuple(draw(st.lists(image_refs, min_size=low, max_size=high))),
        resolution=draw(
            st.none() | st.sampled_from(list(Resolution) if plain else ["1K", "2K"]).map(Resolution)
        ),
        aspect_ratio=draw(st.none() | st.sampled_from(sorted(ASPECTS))) if plain else None,
        n=draw(st.integers(1, N_SET_LIMIT if mode is Mode.IMAGE_SET else N_LIMIT)),
        thinking=draw(st.none() | st.booleans()) if plain else draw(st.sampled_from([None, False])),
        seed=draw(st.none() | st.integers(0, SEED_LIMIT)),
        watermark=draw(st.booleans()),
        color_palette=()
        if mode is Mode.IMAGE_SET
        else draw(st.just(()) | exact_palettes(PALETTE_SIZES, good_hexes)),
    )


# --- the oracle itself must be right on known cases -----------------------------------------


@pytest.mark.parametrize(
    ("req", "wrong"),
    [
        (GenerationRequest(prompt="a fox"), set()),
        (GenerationRequest(prompt="\u200b\u200d\ufeff"), {"prompt"}),
        (GenerationRequest(prompt="\u3164"), {"prompt"}),
        (GenerationRequest(prompt="\u2800"), set()),
        (GenerationRequest(prompt=" " + "x" * PROMPT_LIMIT + "\u200b"), set()),
        (GenerationRequest(prompt="x" * (PROMPT_LIMIT + 1)), {"prompt"}),
        (GenerationRequest(prompt="x", mode=Mode.EDIT), {"images"}),
        (
            GenerationRequest(prompt="x", mode=Mode.IMAGE_SET, n=13, resolution=Resolution.R4K),
            {"n", "resolution"},
        ),
        (GenerationRequest(prompt="x", seed=2**31), {"seed"}),
        (
            GenerationRequest(
                prompt="x",
                color_palette=tuple(PaletteColor("#000000", r) for r in ("33.33%",) * 3),
            ),
            {"palette"},
        ),
    ],
)
def test_the_oracle_reads_the_contract(req: GenerationRequest, wrong: set[str]) -> None:
    assert oracle(req) == wrong


# --- properties -------------------------------------------------------------------------------


@PROPS
@given(req=well_typed_requests)
@example(req=GenerationRequest(prompt="x" * 10_000))
@example(req=GenerationRequest(prompt="\u200b" * 10_000))
@example(req=GenerationRequest(prompt="\u202e\u0000\u200b"))
@example(req=GenerationRequest(prompt="ok", aspect_ratio="<class 'int'>" * 500))
@example(
    req=GenerationRequest(prompt="ok", color_palette=(PaletteColor("Traceback" * 300, "1%"),) * 3)
)
@example(  # a word character that is not a hex digit
    req=GenerationRequest(
        prompt="ok",
        color_palette=(PaletteColor("#GGGGGG", "50.00%"),)
        + (PaletteColor("#000000", "25.00%"),) * 2,
    )
)
@example(  # one decimal is not the two the contract asks for
    req=GenerationRequest(
        prompt="ok",
        color_palette=(PaletteColor("#000000", "50.0%"),)
        + (PaletteColor("#000000", "25.00%"),) * 2,
    )
)
def test_validation_accepts_exactly_what_the_contract_allows(req: GenerationRequest) -> None:
    wrong = oracle(req)
    try:
        validate_request(req)
    except InvalidInput as exc:
        assert wrong, f"refused a valid request: {exc.user_message}"
        about = check_message(exc.user_message, req)
        assert about in wrong, f"message is about {about}, but {wrong} is wrong: {exc.user_message}"
    else:
        assert not wrong, f"accepted a request that breaks {wrong}"


@settings(PROPS, max_examples=200)
@given(req=valid_requests())
def test_every_valid_request_is_accepted(req: GenerationRequest) -> None:
    assert oracle(req) == set()
    validate_request(req)


@settings(PROPS, max_examples=200)
@given(req=valid_requests(), data=st.data())
def test_one_broken_field_is_refused_and_named(req: GenerationRequest, data: st.DataObject) -> None:
    """A valid request with exactly one field pushed over its limit: refused, and the message
    is about that field (not some other rule)."""
    plain = req.mode is Mode.TEXT_TO_IMAGE
    breakers: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "prompt": st.sampled_from(
            ["", "\u200b\u2060 \n", "y" * (PROMPT_LIMIT + 1), "y" * 10_000]
        ).map(lambda p: {"prompt": p}),
        "n": st.sampled_from([0, -1, N_SET_LIMIT + 1 if req.mode is Mode.IMAGE_SET else 5]).map(
            lambda n: {"n": n}
        ),
        "seed": st.sampled_from([-1, SEED_LIMIT + 1]).map(lambda s: {"seed": s}),
        "palette": st.sampled_from(
            [
                (PaletteColor("#000000", "50.00%"), PaletteColor("#FFFFFF", "50.00%")),
                tuple(PaletteColor("#000000", "33.33%") for _ in range(3)),
            ]
        ).map(lambda p: {"color_palette": p}),
    }
    if not plain:
        breakers["resolution"] = st.just({"resolution": Resolution.R4K})
        breakers["thinking"] = st.just({"thinking": True})
        breakers["aspect_ratio"] = st.just({"aspect_ratio": "1:1"})
    else:
        breakers["aspect_ratio"] = st.sampled_from(["5:4", "", "1:1 "]).map(
            lambda a: {"aspect_ratio": a}
        )
        # Only the images: 4K, thinking and aspect ratio would be wrong with inputs too.
        breakers["images"] = st.lists(image_refs, min_size=1, max_size=3).map(
            lambda i: {
                "images": tuple(i),
                "resolution": None,
                "thinking": None,
                "aspect_ratio": None,
            }
        )
    field = data.draw(st.sampled_from(sorted(breakers)))
    broken = replace(req, **data.draw(breakers[field]))
    assert oracle(broken) == {field}
    with pytest.raises(InvalidInput) as info:
        validate_request(broken)
    assert check_message(info.value.user_message, broken) == field


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(nasty_chars, max_size=10)
    | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
anything = json_like | st.sampled_from([*Mode, *Resolution, ImageSource.URL, object()])


@PROPS
@given(
    req=st.builds(
        GenerationRequest,
        prompt=anything | prompts,
        mode=anything | st.sampled_from(Mode),
        images=anything | st.lists(image_refs | anything, max_size=3).map(tuple),
        resolution=anything,
        aspect_ratio=anything,
        n=anything,
        thinking=anything,
        seed=anything,
        watermark=anything,
        color_palette=anything
        | palettes
        | st.lists(st.builds(PaletteColor, anything, anything), max_size=3).map(tuple),
    )
)
def test_only_invalid_input_ever_escapes(req: GenerationRequest) -> None:
    try:
        validate_request(req)
    except InvalidInput as exc:
        assert exc.user_message.strip()
        assert len(exc.user_message) <= DISCORD_MESSAGE_LIMIT


@PROPS
@given(text=st.text(nasty_chars, max_size=60) | prompts, pad=st.text(blank_chars, max_size=6))
def test_normalising_is_idempotent_and_only_trims_blank_edges(text: str, pad: str) -> None:
    once = normalise_prompt(text)
    assert normalise_prompt(once) == once
    assert once in text  # a contiguous piece: nothing inside is touched
    head, _, _ = text.partition(once) if once else (text, "", "")
    tail = text[len(head) + len(once) :]
    assert all(edge_blank(ch) for ch in head + tail), (head, tail)
    assert not once or (not edge_blank(once[0]) and not edge_blank(once[-1]))
    assert normalise_prompt(pad + text + pad) == once
    assert once == oracle_strip(text)


# --- regressions: bugs this suite found --------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "\u3164",  # HANGUL FILLER: the classic "invisible" Discord character
        "\u115f\u1160",
        "\uffa0",
        "\ufe0f\ufe0f",
        "\u034f",
        "\u061c",
        "\u180b",
        "\U000e0041\U000e007f",
        " \u3164 \u200b ",
    ],
    ids=lambda p: "+".join(f"U{ord(c):04X}" for c in p),
)
def test_ignorable_only_prompts_are_empty(prompt: str) -> None:
    assert oracle(GenerationRequest(prompt=prompt)) == {"prompt"}
    with pytest.raises(InvalidInput) as info:
        validate_request(GenerationRequest(prompt=prompt))
    assert "empty" in info.value.user_message


def test_ignorable_characters_that_attach_survive_at_the_edges() -> None:
    # The other half of the fix above: a red heart keeps its emoji presentation, an England
    # flag keeps its tag sequence. Refusing ignorable-only prompts must not strip these.
    for prompt in ["❤️", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "e\u0301"]:
        assert normalise_prompt(prompt) == prompt
        validate_request(GenerationRequest(prompt=prompt))


@pytest.mark.parametrize("field", ["n", "seed"])
@pytest.mark.parametrize("sign", [1, -1])
def test_absurdly_large_numbers_are_invalid_input(field: str, sign: int) -> None:
    req = GenerationRequest(prompt="x", **{field: sign * 10**5000})
    with pytest.raises(InvalidInput) as info:
        validate_request(req)
    assert len(info.value.user_message) <= DISCORD_MESSAGE_LIMIT


def test_large_but_printable_numbers_are_named_in_full() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_request(GenerationRequest(prompt="x", seed=2**63))
    assert "9,223,372,036,854,775,808" in info.value.user_message
