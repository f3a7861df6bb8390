"""A member's own defaults (/settings), and how they shape a request. Pure: no I/O.

One set per Discord user, the same in every server. A preference fills in only what the command
did not say: an option given in the command wins. The server's rules still apply afterwards
(``config.apply_rules``); a preferred resolution above the server's maximum is lowered here and
the member is told, instead of being refused for a choice they did not make in this command.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.config import GuildConfig, clamp_resolution
from bot.domain.models import GenerationRequest, Mode, Resolution
from bot.domain.text import Text, t
from bot.domain.validation import (
    ASPECT_RATIOS,
    MAX_N,
    MAX_PROMPT_CHARS,
    append_to_prompt,
    normalise_prompt,
    validate_request,
)
from bot.errors import InvalidInput

#: The longest prompt suffix (it is added to every prompt, so it stays short).
MAX_SUFFIX_CHARS: Final = 500

#: Option names a command reports as given (``GenerationRequest`` field names, and ``private``:
#: where the result goes, which is not part of the request).
OPTIONS: Final = ("resolution", "aspect_ratio", "n", "thinking", "watermark", "private")

_RANK = {Resolution.R1K: 1, Resolution.R2K: 2, Resolution.R4K: 3}


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a member chose in /settings; None: not chosen (the bot default applies)."""

    resolution: Resolution | None = None
    aspect_ratio: str | None = None
    count: int | None = None
    thinking: bool | None = None
    watermark: bool | None = None
    suffix: str | None = None
    private: bool | None = None  # results by direct message

    @property
    def empty(self) -> bool:
        return self == Preferences()

    def to_json(self) -> str:
        doc = {
            "resolution": self.resolution.value if self.resolution else None,
            "aspect_ratio": self.aspect_ratio,
            "count": self.count,
            "thinking": self.thinking,
            "watermark": self.watermark,
            "suffix": self.suffix,
            "private": self.private,
        }
        return json.dumps(doc, sort_keys=True, ensure_ascii=False)

    @staticmethod
    def from_json(text: str) -> Preferences:
        """Read a stored document; a value that is no longer valid is dropped, not fatal (a
        member's defaults must never stop them from making images)."""
        d: Any = json.loads(text)
        if not isinstance(d, dict):
            return Preferences()
        res = d.get("resolution")
        ratio = d.get("aspect_ratio")
        count = d.get("count")
        suffix = d.get("suffix")
        return Preferences(
            resolution=Resolution(res) if res in {r.value for r in Resolution} else None,
            aspect_ratio=ratio if ratio in ASPECT_RATIOS else None,
            count=count if type(count) is int and 1 <= count <= MAX_N else None,
            thinking=_flag(d.get("thinking")),
            watermark=_flag(d.get("watermark")),
            suffix=suffix if isinstance(suffix, str) and suffix else None,
            private=_flag(d.get("private")),
        )


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def given(**options: object) -> frozenset[str]:
    """The options a command was given (those not None), by ``GenerationRequest`` field name."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}")
    return frozenset(name for name, value in options.items() if value is not None)


def check_suffix(text: str) -> str | None:
    """The suffix as it will be stored (None: cleared), or ``InvalidInput`` saying what to fix.
    Checked like a prompt (``validation``), and short enough to leave room for one."""
    tidy = normalise_prompt(text)
    if not tidy:
        return None
    if len(tidy) > MAX_SUFFIX_CHARS:
        raise InvalidInput(
            t(
                "Your prompt suffix is {count} characters; the limit is {limit}. "
                "Shorten it and try again.",
                count=len(tidy),
                limit=MAX_SUFFIX_CHARS,
            )
        )
    try:
        validate_request(GenerationRequest(prompt=tidy))
    except InvalidInput as exc:
        # The prompt rule's own text (a Text is rendered in the member's language too).
        raise InvalidInput(t("Prompt suffix: {error}", error=exc.text)) from None
    return tidy


@dataclass(frozen=True, slots=True)
class Personalised:
    """A request with the member's preferences filled in, and what to tell them about it."""

    request: GenerationRequest
    notes: tuple[Text, ...] = ()
    private: bool = False  # the member's "Private results", when the command did not say


def personalise(
    request: GenerationRequest,
    prefs: Preferences,
    given_options: Iterable[str],
    config: GuildConfig,
) -> Personalised:
    """Fill in what the command did not say from ``prefs``; options that do not apply to the
    request's mode (aspect ratio and thinking outside text-to-image, count for image sets) are
    left out. A preferred resolution above the server's maximum is lowered, with a note; above
    what the mode allows (4K for edits and image sets) it is lowered silently (/settings says
    so). ``private`` is the preference only when the command did not give the option."""
    told = frozenset(given_options)
    mode = Mode(request.mode)
    changes: dict[str, Any] = {}
    notes: list[Text] = []
    if prefs.resolution is not None and "resolution" not in told:
        changes["resolution"], note = _resolution(prefs.resolution, mode, config)
        notes.extend(note)
    if mode is Mode.TEXT_TO_IMAGE:
        if prefs.aspect_ratio is not None and "aspect_ratio" not in told:
            changes["aspect_ratio"] = prefs.aspect_ratio
        if prefs.thinking is not None and "thinking" not in told:
            changes["thinking"] = prefs.thinking
    if mode is not Mode.IMAGE_SET and prefs.count is not None and "n" not in told:
        changes["n"] = prefs.count
    if prefs.watermark is not None and "watermark" not in told:
        changes["watermark"] = prefs.watermark
    if prefs.suffix:
        changes["prompt"] = _prompt_with(request.prompt, prefs.suffix)
    private = prefs.private is True and "private" not in told
    return Personalised(dataclasses.replace(request, **changes), tuple(notes), private)


def _resolution(
    wanted: Resolution, mode: Mode, config: GuildConfig
) -> tuple[Resolution, list[Text]]:
    mode_max = Resolution.R4K if mode is Mode.TEXT_TO_IMAGE else Resolution.R2K
    fits_mode = clamp_resolution(wanted, mode_max)
    chosen = clamp_resolution(fits_mode, config.max_resolution)
    if _RANK[chosen] < _RANK[fits_mode]:
        note = t(
            "Your preferred {wanted} is above this server's limit; made at {chosen}.",
            wanted=str(wanted),
            chosen=str(chosen),
        )
        return chosen, [note]
    return chosen, []


def _prompt_with(prompt: str, suffix: str) -> str:
    combined = append_to_prompt(prompt, suffix)
    if len(combined) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            t(
                "With your prompt suffix from /settings your prompt is {count} characters; the "
                "limit is {limit}. Shorten the prompt, or the suffix in /settings, and try again.",
                count=len(combined),
                limit=MAX_PROMPT_CHARS,
            )
        )
    return combined


# --- choices from the /settings panel -----------------------------------------------------------

#: What applies when a member chose nothing (the model's defaults, shown in /settings).
DEFAULTS: Final = Preferences(
    resolution=Resolution.R2K,
    aspect_ratio="1:1",
    count=1,
    thinking=False,
    watermark=False,
    private=False,
)
CHOICES: Final = ("resolution", "aspect_ratio", "count")
TOGGLES: Final = ("thinking", "watermark", "private")


def choose(prefs: Preferences, name: str, value: str) -> Preferences:
    """``prefs`` with one menu choice applied. Menu values are client data: anything a menu
    does not offer is refused."""
    if name == "resolution" and value in {r.value for r in Resolution}:
        return dataclasses.replace(prefs, resolution=Resolution(value))
    if name == "aspect_ratio" and value in ASPECT_RATIOS:
        return dataclasses.replace(prefs, aspect_ratio=value)
    if name == "count" and value in {str(n) for n in range(1, MAX_N + 1)}:
        return dataclasses.replace(prefs, count=int(value))
    raise InvalidInput(t("That choice is not on the menu. Open /settings again and pick one."))


def toggle(prefs: Preferences, name: str) -> Preferences:
    """``prefs`` with thinking, watermark or private results switched from what is in effect
    now."""
    if name not in TOGGLES:
        raise InvalidInput(t("That button is not on the panel. Open /settings again."))
    now = getattr(prefs, name)
    in_effect = getattr(DEFAULTS, name) if now is None else now
    change: dict[str, Any] = {name: not in_effect}
    return dataclasses.replace(prefs, **change)
