"""Per-server settings and the rules they impose on a request, checked before anything is spent.

Pure: no discord, aiohttp or aiosqlite. The store keeps a ``GuildConfig`` as JSON per guild (guild
0 holds the bot-wide settings); the Discord flow calls ``apply_rules`` on every request. How a
prompt is matched against the blocked lists lives in ``bot.domain.wordfilter`` (words) and
``bot.domain.patterns`` (regular expressions); this module keeps the lists and their limits.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.domain.models import GenerationRequest, Mode, Resolution
from bot.domain.patterns import (
    MAX_PATTERN_CHARS,
    REPEAT_CAP,
    check_pattern,
    check_total_cost,
    patterns_blocked,
)
from bot.domain.text import Text, either, t, tn
from bot.domain.validation import DEFAULT_RESOLUTION
from bot.domain.wordfilter import (
    MAX_WORD_CHARS,
    check_word,
    normalise_text,
    split_words,
    word_key,
    words_blocked,
)
from bot.errors import InvalidInput

__all__ = [
    "BLOCKED_MESSAGE",
    "BLOCKED_TEXT",
    "BOT_WIDE",
    "MAX_BLOCKED_PATTERNS",
    "MAX_BLOCKED_WORDS",
    "MAX_PATTERN_CHARS",
    "MAX_WORD_CHARS",
    "REPEAT_CAP",
    "BlockRule",
    "GuildConfig",
    "PromptBlocked",
    "add_blocked_patterns",
    "add_blocked_words",
    "apply_rules",
    "blocking_rule",
    "check_pattern",
    "check_word",
    "clamp_resolution",
    "dms_allowed",
    "normalise_text",
    "prompt_blocked",
    "remove_blocked_patterns",
    "remove_blocked_words",
    "require_channel",
    "split_words",
]

BOT_WIDE = 0  # the guild id that holds bot-wide settings

MAX_ALLOWED_CHANNELS = 50
MAX_BLOCKED_WORDS = 200
MAX_BLOCKED_PATTERNS = 30
MAX_CHANNELS_NAMED = 5  # channel mentions in a refusal; the rest are summarised

_RANK = {Resolution.R1K: 1, Resolution.R2K: 2, Resolution.R4K: 3}
# Rule R2 of wan-api.md 2.3: only plain text-to-image goes up to 4K.
_MODE_MAX = {
    Mode.TEXT_TO_IMAGE: Resolution.R4K,
    Mode.EDIT: Resolution.R2K,
    Mode.IMAGE_SET: Resolution.R2K,
}

BLOCKED_TEXT = t(
    "Your prompt contains a word this server doesn't allow. Rephrase it and try again; "
    "a server admin can tell you more."
)
BLOCKED_MESSAGE = BLOCKED_TEXT.english()  # the English, as docs/troubleshooting.md quotes it


# --- the settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GuildConfig:
    """One server's settings. The defaults are what a server that never ran a command gets."""

    allowed_channels: tuple[int, ...] = ()  # empty: every channel
    default_resolution: Resolution | None = None  # None: the model default
    max_resolution: Resolution = Resolution.R4K
    spoiler: bool = False  # post every result as a spoiler
    blocked_words: tuple[str, ...] = ()
    blocked_patterns: tuple[str, ...] = ()
    dms_allowed: bool | None = None  # guild 0 only; None: the ALLOW_DMS setting decides
    alerts_channel_id: int | None = None
    modlog_channel_id: int | None = None  # None: no moderation log
    # The Discord locale results and other channel posts are written in (``"de"``); None: the
    # server's own Discord language.
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_channels": list(self.allowed_channels),
            "default_resolution": self.default_resolution.value
            if self.default_resolution
            else None,
            "max_resolution": self.max_resolution.value,
            "spoiler": self.spoiler,
            "blocked_words": list(self.blocked_words),
            "blocked_patterns": list(self.blocked_patterns),
            "dms_allowed": self.dms_allowed,
            "alerts_channel_id": self.alerts_channel_id,
            "modlog_channel_id": self.modlog_channel_id,
            "language": self.language,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> GuildConfig:
        """Read a stored document. Missing keys take their default; unknown keys are ignored
        (a newer wanbot may have written them); a wrongly typed value raises ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError("guild config is not a JSON object")
        default = GuildConfig()

        def ids(key: str) -> tuple[int, ...]:
            value = d.get(key, [])
            if not isinstance(value, list) or not all(_is_int(v) for v in value):
                raise ValueError(f"{key} is not a list of ids")
            return tuple(value)

        def texts(key: str) -> tuple[str, ...]:
            value = d.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} is not a list of text")
            return tuple(value)

        def flag(key: str, fallback: bool | None) -> bool | None:
            value = d.get(key, fallback)
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{key} is not true/false")
            return value

        def channel(key: str) -> int | None:
            value = d.get(key)
            if value is not None and not _is_int(value):
                raise ValueError(f"{key} is not an id")
            return value

        def text(key: str) -> str | None:
            value = d.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key} is not text")
            return value

        default_res = d.get("default_resolution")
        return GuildConfig(
            allowed_channels=ids("allowed_channels"),
            default_resolution=Resolution(default_res) if default_res else None,
            max_resolution=Resolution(d.get("max_resolution") or default.max_resolution),
            spoiler=bool(flag("spoiler", False)),
            blocked_words=texts("blocked_words"),
            blocked_patterns=texts("blocked_patterns"),
            dms_allowed=flag("dms_allowed", None),
            alerts_channel_id=channel("alerts_channel_id"),
            modlog_channel_id=channel("modlog_channel_id"),
            language=text("language"),
        )

    @staticmethod
    def from_json(text: str) -> GuildConfig:
        return GuildConfig.from_dict(json.loads(text))

    def validate(self) -> None:
        """Raise ``InvalidInput`` if a setting could not be enforced as written."""
        if len(self.allowed_channels) > MAX_ALLOWED_CHANNELS:
            raise InvalidInput(
                t(
                    "At most {limit} channels can be enabled. Remove some first, or clear the "
                    "list to allow every channel.",
                    limit=MAX_ALLOWED_CHANNELS,
                )
            )
        if len(self.blocked_words) > MAX_BLOCKED_WORDS:
            raise InvalidInput(
                t(
                    "A server can block at most {limit} words. Remove some first.",
                    limit=MAX_BLOCKED_WORDS,
                )
            )
        for word in self.blocked_words:
            check_word(word)
        if len(self.blocked_patterns) > MAX_BLOCKED_PATTERNS:
            raise InvalidInput(
                t(
                    "A server can have at most {limit} blocked patterns. Remove some first "
                    "(several words fit in one pattern: `cat|dog`).",
                    limit=MAX_BLOCKED_PATTERNS,
                )
            )
        check_total_cost(self.blocked_patterns)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def dms_allowed(bot_wide: GuildConfig, default: bool) -> bool:
    """The DM switch: the bot owner's choice when made, else the ALLOW_DMS setting."""
    return default if bot_wide.dms_allowed is None else bot_wide.dms_allowed


# --- enforcement ----------------------------------------------------------------------------


def apply_rules(
    config: GuildConfig,
    *,
    channel_id: int | None,
    request: GenerationRequest,
    parent_channel_id: int | None = None,
) -> GenerationRequest:
    """The request as this server allows it, or ``InvalidInput`` saying what to change.

    ``parent_channel_id`` is the channel a thread lives in: a thread of an enabled channel is
    enabled too. A request without a resolution gets the server's default, never above the
    server's maximum nor above what the mode supports.
    """
    require_channel(config, channel_id, parent_channel_id)
    rule = blocking_rule(config, request.prompt)
    if rule is not None:
        raise PromptBlocked(rule)
    mode = Mode(request.mode)
    if request.resolution is not None:
        if _RANK[request.resolution] > _RANK[config.max_resolution]:
            raise InvalidInput(
                t(
                    "This server allows at most {maximum}. Choose {choices} and try again.",
                    maximum=config.max_resolution.value,
                    choices=either([r.value for r in _up_to(config.max_resolution)]),
                )
            )
        return request
    wanted = config.default_resolution or DEFAULT_RESOLUTION
    chosen = clamp_resolution(wanted, config.max_resolution, _MODE_MAX[mode])
    if config.default_resolution is None and chosen is DEFAULT_RESOLUTION:
        return request  # nothing configured: the contract sends the model default
    return dataclasses.replace(request, resolution=chosen)


def clamp_resolution(wanted: Resolution, *limits: Resolution) -> Resolution:
    """``wanted``, lowered to the smallest of ``limits``."""
    return min((wanted, *limits), key=_RANK.__getitem__)


def _up_to(limit: Resolution) -> list[Resolution]:
    return [r for r in Resolution if _RANK[r] <= _RANK[limit]]


def require_channel(config: GuildConfig, channel_id: int | None, parent_id: int | None) -> None:
    """Refuse a channel the server did not enable, naming the ones it did."""
    allowed = config.allowed_channels
    if not allowed or channel_id in allowed or (parent_id is not None and parent_id in allowed):
        return
    named: list[Text | str] = [f"<#{c}>" for c in allowed[:MAX_CHANNELS_NAMED]]
    rest = len(allowed) - len(named)
    if rest:
        named.append(tn("{count} other channel", "{count} other channels", count=rest))
    raise InvalidInput(
        t(
            "Image generation isn't enabled in this channel. Try {channels}.",
            channels=either(named),
        )
    )


def prompt_blocked(config: GuildConfig, prompt: str) -> bool:
    """True when the prompt contains a blocked word or matches a blocked pattern."""
    return words_blocked(config.blocked_words, prompt) or patterns_blocked(
        config.blocked_patterns, prompt
    )


@dataclass(frozen=True, slots=True)
class BlockRule:
    """The blocked word or pattern a prompt matched (for the mod log, never for the member)."""

    kind: str  # "word" or "pattern"
    text: str


class PromptBlocked(InvalidInput):
    """The prompt matched ``rule``; the member is told only that a word is not allowed."""

    def __init__(self, rule: BlockRule) -> None:
        super().__init__(BLOCKED_TEXT, detail="prompt matched a blocked word or pattern")
        self.rule = rule


def blocking_rule(config: GuildConfig, prompt: str) -> BlockRule | None:
    """The first blocked word, else the first blocked pattern, the prompt matches; None when it
    passes. Passing prompts are checked once against all rules; only a blocked one is looked at
    rule by rule to name the match."""
    if not prompt_blocked(config, prompt):
        return None
    words = (BlockRule("word", w) for w in config.blocked_words if words_blocked((w,), prompt))
    patterns = (
        BlockRule("pattern", p) for p in config.blocked_patterns if patterns_blocked((p,), prompt)
    )
    return next(itertools.chain(words, patterns), None)


# --- editing the lists ----------------------------------------------------------------------


def add_blocked_words(config: GuildConfig, words: Iterable[str]) -> GuildConfig:
    """Add words (duplicates, also in another spelling of the same word, are skipped)."""
    current = list(config.blocked_words)
    keys = {word_key(w) for w in current}
    for word in words:
        tidy = check_word(word)
        if word_key(tidy) not in keys:
            keys.add(word_key(tidy))
            current.append(tidy)
    if len(current) > MAX_BLOCKED_WORDS:
        raise InvalidInput(
            t(
                "A server can block at most {limit} words; this would make {count}. "
                "Remove some first.",
                limit=MAX_BLOCKED_WORDS,
                count=len(current),
            )
        )
    return dataclasses.replace(config, blocked_words=tuple(current))


def remove_blocked_words(config: GuildConfig, words: Iterable[str]) -> GuildConfig:
    drop = {word_key(w) for w in words}
    kept = tuple(w for w in config.blocked_words if word_key(w) not in drop)
    return dataclasses.replace(config, blocked_words=kept)


def add_blocked_patterns(config: GuildConfig, pattern: str) -> GuildConfig:
    check_pattern(pattern)
    if pattern in config.blocked_patterns:
        return config
    if len(config.blocked_patterns) >= MAX_BLOCKED_PATTERNS:
        raise InvalidInput(
            t(
                "A server can have at most {limit} blocked patterns. Remove one first "
                "(several words fit in one pattern: `cat|dog`).",
                limit=MAX_BLOCKED_PATTERNS,
            )
        )
    patterns = (*config.blocked_patterns, pattern)
    check_total_cost(patterns)
    return dataclasses.replace(config, blocked_patterns=patterns)


def remove_blocked_patterns(config: GuildConfig, pattern: str) -> GuildConfig:
    kept = tuple(p for p in config.blocked_patterns if p != pattern)
    return dataclasses.replace(config, blocked_patterns=kept)
