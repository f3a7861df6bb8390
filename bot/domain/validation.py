"""Request rules for Wan 2.7 Image Pro, checked before anything is spent.

The model (or crun) would answer most of these with a 422 after a round trip, or worse, silently
adjust the request. Checking them here lets us tell the member what to change, in one sentence.
Rule numbers refer to shared wan-api.md section 2.3.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from bot.domain.models import GenerationRequest, ImageRef, Mode, PaletteColor, Resolution, Style
from bot.errors import InvalidInput

__all__ = [
    "ASPECT_RATIOS",
    "DEFAULT_RESOLUTION",
    "MAX_INPUT_IMAGES",
    "MAX_N",
    "MAX_N_SET",
    "MAX_PALETTE_COLORS",
    "MAX_PROMPT_CHARS",
    "MIN_PALETTE_COLORS",
    "SEED_MAX",
    "append_to_prompt",
    "effective_resolution",
    "full_prompt",
    "normalise_prompt",
    "renders_nothing",
    "upscale_refusal",
    "validate_request",
]

MAX_PROMPT_CHARS = 5000  # upstream silently truncates beyond this
MAX_INPUT_IMAGES = 9
MAX_N = 4
MAX_N_SET = 12
SEED_MAX = 2147483647
MIN_PALETTE_COLORS = 3
MAX_PALETTE_COLORS = 10
ASPECT_RATIOS = ("1:1", "16:9", "4:3", "21:9", "3:4", "9:16", "8:1", "1:8")
DEFAULT_RESOLUTION = Resolution.R2K

_MAX_EDIT_RESOLUTION = Resolution.R2K
_PALETTE_TOTAL = Decimal("100.00")
# ASCII digits only: \d would also accept other scripts' digits, which upstream would not.
_HEX_RE = re.compile(r"#[0-9A-Fa-f]{6}")
_RATIO_RE = re.compile(r"([0-9]{1,3}\.[0-9]{2})%")

# Characters that render as nothing. A prompt made only of these looks empty to the member and is
# empty to the model, so they are stripped from the edges along with whitespace.
_INVISIBLE = frozenset(
    "\u00ad\u180e"
    "\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069"
    "\ufeff"
)


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): they render as
# nothing. Some of them attach to the character before (U+FE0F makes a heart an emoji, tag
# characters make a flag), so they are not stripped from the edges; but a prompt made only of
# them (a lone Hangul filler is the classic "blank" Discord trick) is still empty.
_IGNORABLE_RANGES = (
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


def _is_blank(ch: str) -> bool:
    return ch.isspace() or ch in _INVISIBLE or unicodedata.category(ch) == "Cc"


def _renders_nothing(ch: str) -> bool:
    cp = ord(ch)
    return _is_blank(ch) or any(lo <= cp <= hi for lo, hi in _IGNORABLE_RANGES)


def normalise_prompt(text: str) -> str:
    """Strip whitespace and invisible characters from both ends; the inside is left alone."""
    start, end = 0, len(text)
    while start < end and _is_blank(text[start]):
        start += 1
    while end > start and _is_blank(text[end - 1]):
        end -= 1
    return text[start:end]


def renders_nothing(text: str) -> bool:
    """True when ``text`` would look empty to a member and be empty to the model."""
    return all(_renders_nothing(ch) for ch in text)


def append_to_prompt(prompt: str, tail: str) -> str:
    """``tail`` (a style's text, a member's suffix) after the prompt: a comma between them unless
    the prompt already ends a clause."""
    head = normalise_prompt(prompt)
    joiner = " " if head.endswith((".", ",", ";", ":", "!", "?")) else ", "
    return f"{head}{joiner}{tail}"


def full_prompt(req: GenerationRequest) -> str:
    """The prompt crun gets: the member's, then the text of the server style they picked."""
    if req.style is None:
        return normalise_prompt(req.prompt)
    return append_to_prompt(req.prompt, req.style.text)


def effective_resolution(req: GenerationRequest) -> Resolution:
    """The resolution that will be sent: the member's choice or the model default (2K)."""
    return req.resolution or DEFAULT_RESOLUTION


def upscale_refusal(req: GenerationRequest) -> str | None:
    """Why a result cannot be re-rendered at 4K, or None when it can. The one place the rule
    lives: the Upscale button is shown, and the upscale is made, by this answer."""
    if req.mode is not Mode.TEXT_TO_IMAGE:
        return (
            "Upscale to 4K works only for /imagine results: the model renders edits and "
            "image sets at 2K at most."
        )
    if req.resolution is Resolution.R4K:
        return "This image is already 4K."
    return None


def validate_request(req: GenerationRequest) -> None:
    """Raise ``InvalidInput`` with a friendly, actionable message if ``req`` breaks a rule.

    Only ``InvalidInput`` ever escapes, also for requests with wrongly typed fields (they can come
    from stored JSON), so callers can rely on a single ``except``.
    """
    _check_types(req)
    mode = Mode(req.mode)
    _check_prompt(req.prompt)
    _check_style(req)
    _check_images(mode, len(req.images))
    _check_resolution(mode, effective_resolution(req))
    _check_thinking(mode, req.thinking)
    _check_n(mode, req.n)
    _check_palette(mode, req.color_palette)
    _check_aspect_ratio(mode, req.aspect_ratio)
    _check_seed(req.seed)


# --- individual rules ---------------------------------------------------------------------------

_MODE_NAMES = {
    Mode.TEXT_TO_IMAGE: "text-to-image",
    Mode.EDIT: "edits",
    Mode.IMAGE_SET: "image sets",
}


def _malformed(what: str) -> InvalidInput:
    return InvalidInput(
        "This request could not be read. Please start it again from the command.",
        detail=f"malformed GenerationRequest: {what}",
    )


def _shown(text: str, limit: int = 24) -> str:
    """Quote a member's value in a message without letting a huge one flood the reply."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _number(value: int) -> str:
    """A member's number with thousands separators, or a summary when it is absurdly long (Python
    refuses to print ints over 4,300 digits, and nobody wants to read one)."""
    if value >= 10**30:
        return "more than 10³⁰"
    if value <= -(10**30):
        return "less than -10³⁰"
    return f"{value:,}"


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as a seed or image count is a bug, not a choice.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(req: GenerationRequest) -> None:
    """Reject wrongly typed fields (e.g. from hand-edited JSON) before any rule looks at them."""
    if not isinstance(req, GenerationRequest):
        raise _malformed(f"expected GenerationRequest, got {type(req).__name__}")
    if not isinstance(req.prompt, str):
        raise _malformed("prompt is not text")
    try:
        Mode(req.mode)
    except (ValueError, TypeError):
        raise _malformed(f"unknown mode {req.mode!r}") from None
    if not isinstance(req.images, tuple | list) or not all(
        isinstance(i, ImageRef) for i in req.images
    ):
        raise _malformed("images is not a list of image references")
    if req.resolution is not None and not isinstance(req.resolution, Resolution):
        raise _malformed(f"unknown resolution {req.resolution!r}")
    if req.aspect_ratio is not None and not isinstance(req.aspect_ratio, str):
        raise _malformed("aspect_ratio is not text")
    if not _is_int(req.n):
        raise _malformed("n is not a whole number")
    if req.thinking is not None and not isinstance(req.thinking, bool):
        raise _malformed("thinking is not true/false")
    if req.seed is not None and not _is_int(req.seed):
        raise _malformed("seed is not a whole number")
    if not isinstance(req.watermark, bool):
        raise _malformed("watermark is not true/false")
    if not isinstance(req.color_palette, tuple | list) or not all(
        isinstance(c, PaletteColor) and isinstance(c.hex, str) and isinstance(c.ratio, str)
        for c in req.color_palette
    ):
        raise _malformed("color_palette is not a list of colors")


def _check_prompt(prompt: str) -> None:
    """R1: upstream needs exactly one non-empty text item, for edits too."""
    text = normalise_prompt(prompt)
    if renders_nothing(text):
        raise InvalidInput(
            "Your prompt is empty. Describe the image you want (or the change to make) and try "
            "again."
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"Your prompt is {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}. "
            "Shorten it and try again."
        )


def _check_style(req: GenerationRequest) -> None:
    """A server style's text is added to the prompt: together they must fit the prompt limit."""
    style = req.style
    if style is None:
        return
    if not (
        isinstance(style, Style) and isinstance(style.name, str) and isinstance(style.text, str)
    ):
        raise _malformed("style is not a name and a text")
    total = len(full_prompt(req))
    if total > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"Your prompt plus the style {_shown(style.name, 40)} is {total:,} characters; "
            f"the limit is {MAX_PROMPT_CHARS:,}. Shorten your prompt by "
            f"{total - MAX_PROMPT_CHARS:,} characters or pick another style."
        )


def _check_images(mode: Mode, count: int) -> None:
    if mode is Mode.TEXT_TO_IMAGE and count:
        raise InvalidInput(
            "Text-to-image does not take input images. Use edit to work from your images "
            f"(up to {MAX_INPUT_IMAGES}), or remove the images."
        )
    if count > MAX_INPUT_IMAGES:
        raise InvalidInput(
            f"You attached {count} images; the limit is {MAX_INPUT_IMAGES}. "
            "Remove some and try again."
        )
    if mode is Mode.EDIT and count == 0:
        raise InvalidInput(
            f"Editing needs at least one input image. Attach 1 to {MAX_INPUT_IMAGES} images, "
            "or use text-to-image to start from a prompt alone."
        )


def _check_resolution(mode: Mode, resolution: Resolution) -> None:
    """R2: 4K only for plain text-to-image; edits and image sets top out at 2K."""
    if resolution is Resolution.R4K and mode is not Mode.TEXT_TO_IMAGE:
        raise InvalidInput(
            f"4K is only available for text-to-image; the maximum for edits and image sets is "
            f"{_MAX_EDIT_RESOLUTION}. Choose 1K or 2K and try again."
        )


def _check_thinking(mode: Mode, thinking: bool | None) -> None:
    """R3: thinking only works for plain text-to-image; say so instead of dropping it silently."""
    if thinking and mode is not Mode.TEXT_TO_IMAGE:
        raise InvalidInput(
            f"Thinking mode only works for text-to-image, not for {_MODE_NAMES[mode]}. "
            "Turn it off and try again."
        )


def _check_n(mode: Mode, n: int) -> None:
    """R4: 1-4 images per request, 1-12 in an image set."""
    if mode is Mode.IMAGE_SET:
        if not 1 <= n <= MAX_N_SET:
            raise InvalidInput(
                f"An image set has 1 to {MAX_N_SET} images; you asked for {_number(n)}. "
                f"Choose a number from 1 to {MAX_N_SET}."
            )
    elif not 1 <= n <= MAX_N:
        raise InvalidInput(
            f"You asked for {_number(n)} images; the limit for {_MODE_NAMES[mode]} is {MAX_N} "
            f"per request. Choose a number from 1 to {MAX_N} (an image set can have up to "
            f"{MAX_N_SET})."
        )


def _check_palette(mode: Mode, palette: tuple[PaletteColor, ...]) -> None:
    """R5: 3-10 '#RRGGBB' colors whose 'NN.NN%' ratios add up to exactly 100.00%."""
    if not palette:
        return
    if mode is Mode.IMAGE_SET:
        raise InvalidInput(
            "A color palette cannot be used with image sets. Remove the palette or make "
            "single images instead."
        )
    count = len(palette)
    if not MIN_PALETTE_COLORS <= count <= MAX_PALETTE_COLORS:
        raise InvalidInput(
            f"Your color palette has {count} colors; it needs {MIN_PALETTE_COLORS} to "
            f"{MAX_PALETTE_COLORS}. Add or remove colors and try again."
        )
    total = Decimal(0)
    for pos, color in enumerate(palette, start=1):
        if not _HEX_RE.fullmatch(color.hex):
            raise InvalidInput(
                f"Palette color {pos} ({_shown(color.hex)}) is not a hex color. "
                "Write it like #1A2B3C."
            )
        match = _RATIO_RE.fullmatch(color.ratio)
        ratio = Decimal(match.group(1)) if match else None
        if ratio is None or not Decimal(0) < ratio <= _PALETTE_TOTAL:
            raise InvalidInput(
                f"Palette color {pos} has share {_shown(color.ratio)}. Write each share as a "
                "percentage with two decimals between 0.01% and 100.00%, like 25.00%."
            )
        total += ratio
    if total != _PALETTE_TOTAL:
        raise InvalidInput(
            f"Your color palette shares add up to {total}%; they must add up to exactly "
            "100.00%. Adjust them and try again."
        )


def _check_aspect_ratio(mode: Mode, aspect_ratio: str | None) -> None:
    """R7: aspect ratio only for text-to-image; with inputs the output follows the last image."""
    if aspect_ratio is None:
        return
    if mode is not Mode.TEXT_TO_IMAGE:
        follows = (
            " (the result follows the shape of your last input image)" if mode is Mode.EDIT else ""
        )
        raise InvalidInput(
            f"Aspect ratio only applies to text-to-image, not to {_MODE_NAMES[mode]}{follows}. "
            "Remove it and try again."
        )
    if aspect_ratio not in ASPECT_RATIOS:
        raise InvalidInput(
            f"Aspect ratio {_shown(aspect_ratio)} is not supported. Choose one of "
            f"{', '.join(ASPECT_RATIOS)}."
        )


def _check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise InvalidInput(
            f"The seed ({_number(seed)}) is out of range. Use a whole number from 0 to "
            f"{SEED_MAX:,}, or leave it empty for a random one."
        )
