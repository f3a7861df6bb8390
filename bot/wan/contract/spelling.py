"""Values in the live schema's own spelling: ``2K``, ``2k``, ``2048*2048`` or ``2048``; booleans
that are really ``"enabled"``/``"disabled"``; limits (enum, ranges, item counts) kept.

A value the schema cannot take raises ``InvalidInput`` with a message for the member; the
request is then refused before anything is stored or spent.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from typing import Any

from bot.domain.text import Text, t
from bot.errors import InvalidInput
from bot.wan.types import FieldSpec

__all__ = [
    "SizeSpelling",
    "SizeStyle",
    "bool_like",
    "size_spelling",
    "spell_bool",
    "spell_enum",
    "spell_number",
    "spell_size",
]

_PRESET = re.compile(r"^\s*(\d+)\s*([kK])\s*$")
_PIXELS = re.compile(r"^\s*(\d+)\s*([*xX×])\s*(\d+)\s*$")
_SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}
_UPPER = ("1K", "2K", "4K")
_PIXEL_HINT = re.compile(r"\\\*|\d\s*\*\s*\d|\bW\s*\*\s*H\b|width|height|pixel|\d\s*x\s*\d", re.I)
_TRUE = ("true", "enabled", "enable", "on", "yes", "1")
_FALSE = ("false", "disabled", "disable", "off", "no", "0")


class SizeStyle(enum.Enum):
    PRESET = "preset"  # "2K" / "2k": a pixel budget, the model picks the shape
    PIXELS = "pixels"  # "2048*2048": width and height, computed from preset and aspect ratio
    SIDE = "side"  # 2048: a number of pixels per side


@dataclass(frozen=True)
class SizeSpelling:
    style: SizeStyle
    presets: tuple[str, ...] = _UPPER  # in the schema's own case
    separator: str = "*"
    sizes: tuple[tuple[int, int, str], ...] = ()  # the enum's pixel sizes, when it lists them
    pixels_too: bool = False  # presets, but W*H is taken as well (upstream's ``size``)

    @property
    def folds_aspect(self) -> bool:
        """An aspect ratio can travel inside the size (as W*H) when there is no ratio field."""
        return self.style is SizeStyle.PIXELS or self.pixels_too

    def as_pixels(self) -> SizeSpelling:
        return SizeSpelling(SizeStyle.PIXELS, separator=self.separator, sizes=self.sizes)

    def describe(self) -> str:
        if self.style is SizeStyle.PIXELS:
            shown = ", ".join(s for _, _, s in self.sizes[:4]) if self.sizes else ""
            return f"pixel sizes W{self.separator}H" + (f" ({shown}...)" if shown else "")
        if self.style is SizeStyle.SIDE:
            return "pixels per side"
        return "presets " + "/".join(self.presets)


def size_spelling(spec: FieldSpec | None) -> SizeSpelling:
    """How the schema spells a resolution; presets win when it takes both."""
    if spec is None:
        return SizeSpelling(SizeStyle.PRESET)
    texts = [v for v in spec.enum if isinstance(v, str)]
    presets = tuple(v for v in texts if _PRESET.match(v))
    sizes = tuple((int(m[1]), int(m[3]), v) for v in texts if (m := _PIXELS.match(v)))
    separator = next((m[2] for v in texts if (m := _PIXELS.match(v))), "*")
    if presets:
        return SizeSpelling(
            SizeStyle.PRESET,
            presets=presets,
            separator=separator,
            sizes=sizes,
            pixels_too=bool(sizes),
        )
    if sizes:
        return SizeSpelling(SizeStyle.PIXELS, separator=separator, sizes=sizes)
    if spec.type in ("integer", "number") or any(isinstance(v, int) for v in spec.enum):
        return SizeSpelling(SizeStyle.SIDE)
    # No enum: the pattern and description tell (e.g. ``^([124]K|\d+\*\d+)$``, "W*H pixels").
    hints = f"{spec.pattern or ''} {spec.description}"
    k_presets = re.findall(r"(?:\d|\])\s*([kK])\b", hints)
    pixels = bool(_PIXEL_HINT.search(hints))
    separator = "x" if re.search(r"\d\s*x\s*\d|\]x|\)x", hints) else "*"
    if k_presets:
        lower = all(k == "k" for k in k_presets)
        return SizeSpelling(
            SizeStyle.PRESET,
            presets=("1k", "2k", "4k") if lower else _UPPER,
            separator=separator,
            pixels_too=pixels,
        )
    if pixels:
        return SizeSpelling(SizeStyle.PIXELS, separator=separator)
    return SizeSpelling(SizeStyle.PRESET)


def spell_size(
    spelling: SizeSpelling,
    spec: FieldSpec | None,
    preset: str,
    aspect: str | None,
    *,
    explicit: bool,
) -> Any:
    """``preset`` ("1K"/"2K"/"4K") and an aspect ratio ("16:9" or None) in the schema's spelling."""
    if spelling.style is SizeStyle.PRESET:
        return _preset(spelling.presets, preset, explicit=explicit)
    if spelling.style is SizeStyle.SIDE:
        side = _SIDES[preset]
        return spell_number(spec, side, t("resolution"), explicit=explicit) if spec else side
    width, height = _pixels(_SIDES[preset], aspect)
    if spelling.sizes:
        best = min(spelling.sizes, key=lambda s: _distance((s[0], s[1]), (width, height)))
        return best[2]
    return f"{width}{spelling.separator}{height}"


def _preset(allowed: tuple[str, ...], preset: str, *, explicit: bool) -> str:
    by_upper = {v.strip().upper(): v for v in allowed}
    if preset in by_upper:
        return by_upper[preset]
    if explicit:
        choices = ", ".join(sorted(by_upper, key=_preset_side))
        raise InvalidInput(
            t(
                "{value} is not available right now. Choose {choices}.",
                value=preset,
                choices=choices,
            ),
            detail=f"live schema resolution presets: {allowed}",
        )
    # Not chosen by the member: the nearest budget the schema takes, smaller first.
    wanted = _preset_side(preset)
    below = [p for p in by_upper if _preset_side(p) <= wanted]
    pick = max(below, key=_preset_side) if below else min(by_upper, key=_preset_side)
    return by_upper[pick]


def _preset_side(text: str) -> int:
    m = _PRESET.match(text)
    return int(m.group(1)) if m else 0


def _pixels(side: int, aspect: str | None) -> tuple[int, int]:
    """The preset's pixel budget (side*side) shaped to the aspect ratio, in multiples of 16."""
    a, b = (int(x) for x in aspect.split(":")) if aspect else (1, 1)
    width = side * math.sqrt(a / b)
    height = side * math.sqrt(b / a)
    return _round16(width), _round16(height)


def _round16(value: float) -> int:
    return max(16, round(value / 16) * 16)


def _distance(size: tuple[int, int], target: tuple[int, int]) -> float:
    shape = abs(math.log(size[0] / size[1]) - math.log(target[0] / target[1]))
    area = abs(math.log(size[0] * size[1]) - math.log(target[0] * target[1]))
    return 4 * shape + area


def bool_like(spec: FieldSpec) -> bool:
    """A field that takes a yes/no in some spelling."""
    if spec.type == "boolean":
        return True
    values = {str(v).strip().lower() for v in spec.enum}
    return bool(values) and values <= set(_TRUE + _FALSE)


def spell_bool(spec: FieldSpec | None, value: bool, label: Text) -> Any:
    if spec is None or (spec.type in (None, "boolean") and not spec.enum):
        return value
    if spec.enum:
        words = _TRUE if value else _FALSE
        for word in words:
            for option in spec.enum:
                if str(option).strip().lower() == word:
                    return option
        if value:
            message = t("{feature} cannot be turned on right now.", feature=label)
        else:
            message = t("{feature} cannot be turned off right now.", feature=label)
        raise InvalidInput(
            message, detail=f"no {value} spelling in enum {spec.enum} of {spec.dotted}"
        )
    if spec.type in ("integer", "number"):
        return int(value)
    if spec.type == "string":
        return "true" if value else "false"
    return value


def spell_number(spec: FieldSpec | None, value: int, label: Text, *, explicit: bool = True) -> Any:
    """An integer within the schema's range (and enum); ``explicit=False`` clamps instead."""
    if spec is None:
        return value
    if spec.enum:
        numbers = [v for v in spec.enum if isinstance(v, int | float) and not isinstance(v, bool)]
        if value in numbers or not numbers:
            return value
        if explicit:
            shown = ", ".join(f"{v:g}" for v in numbers)
            raise InvalidInput(
                t(
                    "{label} {value} is not available right now. Choose {choices}.",
                    label=label,
                    value=str(value),  # a string: written as the member typed it
                    choices=shown,
                )
            )
        return min(numbers, key=lambda v: abs(v - value))
    low, high = spec.minimum, spec.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        if not explicit:
            return int(min(max(value, low if low is not None else value), high or value))
        raise InvalidInput(
            t(
                "{label} must be between {low} and {high} right now; {value} is outside that.",
                label=label,
                low=_whole(low),
                high=_whole(high),
                value=str(value),
            ),
            detail=f"live schema range of {spec.dotted}: {low}..{high}",
        )
    if spec.type == "string":
        return str(value)
    return value


def spell_enum(spec: FieldSpec | None, value: str, label: Text) -> str:
    """A text value as the enum spells it (case and separators aside), or refused."""
    if spec is None or not spec.enum:
        return value
    key = _enum_key(value)
    for option in spec.enum:
        if isinstance(option, str) and _enum_key(option) == key:
            return option
    shown = ", ".join(str(v) for v in spec.enum)
    raise InvalidInput(
        t(
            "{label} {value} is not available right now. Choose one of: {choices}.",
            label=label,
            value=value,
            choices=shown,
        ),
        detail=f"{value!r} not in enum of {spec.dotted}",
    )


def _enum_key(text: str) -> str:
    return re.sub(r"[\s_x/-]", ":", text.strip().lower())


def _whole(value: float | None) -> Text | str:
    return t("any") if value is None else f"{value:g}"
