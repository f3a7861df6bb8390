"""Request rules for Wan 2.7 Image Pro, checked before anything is spent.

The model (or crun) would answer most of these with a 422 after a round trip, or worse, silently
adjust the request. Checking them here lets us tell the member what to change, in one sentence.
Rule numbers refer to shared wan-api.md section 2.3.
"""

from __future__ import annotations

import re
from decimal import Decimal

from bot.domain.models import GenerationRequest, ImageRef, Mode, PaletteColor, Resolution, Style
from bot.domain.prompts import append_to_prompt, normalise_prompt, renders_nothing
from bot.domain.text import Text, t
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


def full_prompt(req: GenerationRequest) -> str:
    """The prompt crun gets: the member's, then the text of the server style they picked."""
    if req.style is None:
        return normalise_prompt(req.prompt)
    return append_to_prompt(req.prompt, req.style.text)


def effective_resolution(req: GenerationRequest) -> Resolution:
    """The resolution that will be sent: the member's choice or the model default (2K)."""
    return req.resolution or DEFAULT_RESOLUTION


def upscale_refusal(req: GenerationRequest) -> Text | None:
    """Why a result cannot be re-rendered at 4K, or None when it can. The one place the rule
    lives: the Upscale button is shown, and the upscale is made, by this answer."""
    if req.mode is not Mode.TEXT_TO_IMAGE:
        return t(
            "Upscale to 4K works only for /imagine results: the model renders edits and "
            "image sets at 2K at most."
        )
    if req.resolution is Resolution.R4K:
        return t("This image is already 4K.")
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
    Mode.TEXT_TO_IMAGE: t("text-to-image"),
    Mode.EDIT: t("edits"),
    Mode.IMAGE_SET: t("image sets"),
}


def _malformed(what: str) -> InvalidInput:
    return InvalidInput(
        t("This request could not be read. Please start it again from the command."),
        detail=f"malformed GenerationRequest: {what}",
    )


def _shown(text: str, limit: int = 24) -> str:
    """Quote a member's value in a message without letting a huge one flood the reply."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _number(value: int) -> int | Text:
    """A member's number (formatted for the reader), or a summary when it is absurdly long
    (Python refuses to print ints over 4,300 digits, and nobody wants to read one)."""
    if value >= 10**30:
        return t("more than 10³⁰")
    if value <= -(10**30):
        return t("less than -10³⁰")
    return value


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
            t(
                "Your prompt is empty. Describe the image you want (or the change to make) and "
                "try again."
            )
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            t(
                "Your prompt is {length} characters; the limit is {limit}. "
                "Shorten it and try again.",
                length=len(text),
                limit=MAX_PROMPT_CHARS,
            )
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
            t(
                "Your prompt plus the style {style} is {length} characters; the limit is "
                "{limit}. Shorten your prompt by {over} characters or pick another style.",
                style=_shown(style.name, 40),
                length=total,
                limit=MAX_PROMPT_CHARS,
                over=total - MAX_PROMPT_CHARS,
            )
        )


def _check_images(mode: Mode, count: int) -> None:
    if mode is Mode.TEXT_TO_IMAGE and count:
        raise InvalidInput(
            t(
                "Text-to-image does not take input images. Use edit to work from your images "
                "(up to {limit}), or remove the images.",
                limit=MAX_INPUT_IMAGES,
            )
        )
    if count > MAX_INPUT_IMAGES:
        raise InvalidInput(
            t(
                "You attached {count} images; the limit is {limit}. Remove some and try again.",
                count=count,
                limit=MAX_INPUT_IMAGES,
            )
        )
    if mode is Mode.EDIT and count == 0:
        raise InvalidInput(
            t(
                "Editing needs at least one input image. Attach 1 to {limit} images, "
                "or use text-to-image to start from a prompt alone.",
                limit=MAX_INPUT_IMAGES,
            )
        )


def _check_resolution(mode: Mode, resolution: Resolution) -> None:
    """R2: 4K only for plain text-to-image; edits and image sets top out at 2K."""
    if resolution is Resolution.R4K and mode is not Mode.TEXT_TO_IMAGE:
        raise InvalidInput(
            t(
                "4K is only available for text-to-image; the maximum for edits and image sets "
                "is {resolution}. Choose 1K or 2K and try again.",
                resolution=_MAX_EDIT_RESOLUTION.value,
            )
        )


def _check_thinking(mode: Mode, thinking: bool | None) -> None:
    """R3: thinking only works for plain text-to-image; say so instead of dropping it silently."""
    if thinking and mode is not Mode.TEXT_TO_IMAGE:
        raise InvalidInput(
            t(
                "Thinking mode only works for text-to-image, not for {mode}. "
                "Turn it off and try again.",
                mode=_MODE_NAMES[mode],
            )
        )


def _check_n(mode: Mode, n: int) -> None:
    """R4: 1-4 images per request, 1-12 in an image set."""
    if mode is Mode.IMAGE_SET:
        if not 1 <= n <= MAX_N_SET:
            raise InvalidInput(
                t(
                    "An image set has 1 to {limit} images; you asked for {asked}. "
                    "Choose a number from 1 to {limit}.",
                    limit=MAX_N_SET,
                    asked=_number(n),
                )
            )
    elif not 1 <= n <= MAX_N:
        raise InvalidInput(
            t(
                "You asked for {asked} images; the limit for {mode} is {limit} per request. "
                "Choose a number from 1 to {limit} (an image set can have up to {set_limit}).",
                asked=_number(n),
                mode=_MODE_NAMES[mode],
                limit=MAX_N,
                set_limit=MAX_N_SET,
            )
        )


def _check_palette(mode: Mode, palette: tuple[PaletteColor, ...]) -> None:
    """R5: 3-10 '#RRGGBB' colors whose 'NN.NN%' ratios add up to exactly 100.00%."""
    if not palette:
        return
    if mode is Mode.IMAGE_SET:
        raise InvalidInput(
            t(
                "A color palette cannot be used with image sets. Remove the palette or make "
                "single images instead."
            )
        )
    count = len(palette)
    if not MIN_PALETTE_COLORS <= count <= MAX_PALETTE_COLORS:
        raise InvalidInput(
            t(
                "Your color palette has {count} colors; it needs {low} to {high}. "
                "Add or remove colors and try again.",
                count=count,
                low=MIN_PALETTE_COLORS,
                high=MAX_PALETTE_COLORS,
            )
        )
    total = Decimal(0)
    for pos, color in enumerate(palette, start=1):
        if not _HEX_RE.fullmatch(color.hex):
            raise InvalidInput(
                t(
                    "Palette color {position} ({value}) is not a hex color. Write it like #1A2B3C.",
                    position=pos,
                    value=_shown(color.hex),
                )
            )
        match = _RATIO_RE.fullmatch(color.ratio)
        ratio = Decimal(match.group(1)) if match else None
        if ratio is None or not Decimal(0) < ratio <= _PALETTE_TOTAL:
            raise InvalidInput(
                t(
                    "Palette color {position} has share {value}. Write each share as a "
                    "percentage with two decimals between 0.01% and 100.00%, like 25.00%.",
                    position=pos,
                    value=_shown(color.ratio),
                )
            )
        total += ratio
    if total != _PALETTE_TOTAL:
        raise InvalidInput(
            t(
                "Your color palette shares add up to {total}%; they must add up to exactly "
                "100.00%. Adjust them and try again.",
                total=str(total),  # the member's own notation, as they wrote it
            )
        )


def _check_aspect_ratio(mode: Mode, aspect_ratio: str | None) -> None:
    """R7: aspect ratio only for text-to-image; with inputs the output follows the last image."""
    if aspect_ratio is None:
        return
    if mode is not Mode.TEXT_TO_IMAGE:
        if mode is Mode.EDIT:
            raise InvalidInput(
                t(
                    "Aspect ratio only applies to text-to-image, not to edits (the result "
                    "follows the shape of your last input image). Remove it and try again."
                )
            )
        raise InvalidInput(
            t(
                "Aspect ratio only applies to text-to-image, not to {mode}. "
                "Remove it and try again.",
                mode=_MODE_NAMES[mode],
            )
        )
    if aspect_ratio not in ASPECT_RATIOS:
        raise InvalidInput(
            t(
                "Aspect ratio {value} is not supported. Choose one of {choices}.",
                value=_shown(aspect_ratio),
                choices=", ".join(ASPECT_RATIOS),
            )
        )


def _check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise InvalidInput(
            t(
                "The seed ({seed}) is out of range. Use a whole number from 0 to {limit}, "
                "or leave it empty for a random one.",
                seed=_number(seed),
                limit=SEED_MAX,
            )
        )
