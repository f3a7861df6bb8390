"""Per-server settings and the rules they impose on a request, checked before anything is spent.

Pure: no discord, aiohttp or aiosqlite. The store keeps a ``GuildConfig`` as JSON per guild (guild
0 holds the bot-wide settings); the Discord flow calls ``apply_rules`` on every request.

Blocked words are matched whole-word and case-insensitively on a normalised copy of the prompt, so
that the usual tricks (zero-width characters, look-alike letters, accents, "b a d", "b@d", "baaad")
do not get around them. Blocked patterns are admin-supplied regular expressions; Python's ``re``
backtracks and cannot be interrupted, so a pattern is only accepted when a worst-case estimate of
its matching cost on the longest possible prompt stays small (see ``check_pattern``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.domain.models import GenerationRequest, Mode, Resolution
from bot.domain.validation import DEFAULT_RESOLUTION, MAX_PROMPT_CHARS
from bot.errors import InvalidInput

log = logging.getLogger(__name__)

__all__ = [
    "BOT_WIDE",
    "MAX_BLOCKED_PATTERNS",
    "MAX_BLOCKED_WORDS",
    "MAX_PATTERN_CHARS",
    "MAX_WORD_CHARS",
    "GuildConfig",
    "add_blocked_patterns",
    "add_blocked_words",
    "apply_rules",
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
MAX_WORD_CHARS = 64
MAX_BLOCKED_PATTERNS = 30
MAX_PATTERN_CHARS = 200
MAX_CHANNELS_NAMED = 5  # channel mentions in a refusal; the rest are summarised

_RANK = {Resolution.R1K: 1, Resolution.R2K: 2, Resolution.R4K: 3}
# Rule R2 of wan-api.md 2.3: only plain text-to-image goes up to 4K.
_MODE_MAX = {
    Mode.TEXT_TO_IMAGE: Resolution.R4K,
    Mode.EDIT: Resolution.R2K,
    Mode.IMAGE_SET: Resolution.R2K,
}

BLOCKED_MESSAGE = (
    "Your prompt contains a word this server doesn't allow. Rephrase it and try again; "
    "a server admin can tell you more."
)


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

        default_res = d.get("default_resolution")
        alerts = d.get("alerts_channel_id")
        if alerts is not None and not _is_int(alerts):
            raise ValueError("alerts_channel_id is not an id")
        return GuildConfig(
            allowed_channels=ids("allowed_channels"),
            default_resolution=Resolution(default_res) if default_res else None,
            max_resolution=Resolution(d.get("max_resolution") or default.max_resolution),
            spoiler=bool(flag("spoiler", False)),
            blocked_words=texts("blocked_words"),
            blocked_patterns=texts("blocked_patterns"),
            dms_allowed=flag("dms_allowed", None),
            alerts_channel_id=alerts,
        )

    @staticmethod
    def from_json(text: str) -> GuildConfig:
        return GuildConfig.from_dict(json.loads(text))

    def validate(self) -> None:
        """Raise ``InvalidInput`` if a setting could not be enforced as written."""
        if len(self.allowed_channels) > MAX_ALLOWED_CHANNELS:
            raise InvalidInput(
                f"At most {MAX_ALLOWED_CHANNELS} channels can be enabled. Remove some first, or "
                "clear the list to allow every channel."
            )
        if len(self.blocked_words) > MAX_BLOCKED_WORDS:
            raise InvalidInput(
                f"A server can block at most {MAX_BLOCKED_WORDS} words. Remove some first."
            )
        for word in self.blocked_words:
            check_word(word)
        if len(self.blocked_patterns) > MAX_BLOCKED_PATTERNS:
            raise InvalidInput(
                f"A server can have at most {MAX_BLOCKED_PATTERNS} blocked patterns. "
                "Remove some first (several words fit in one pattern: `cat|dog`)."
            )
        for pattern in self.blocked_patterns:
            check_pattern(pattern)


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
    if prompt_blocked(config, request.prompt):
        raise InvalidInput(BLOCKED_MESSAGE, detail="prompt matched a blocked word or pattern")
    mode = Mode(request.mode)
    if request.resolution is not None:
        if _RANK[request.resolution] > _RANK[config.max_resolution]:
            raise InvalidInput(
                f"This server allows at most {config.max_resolution}. Choose "
                f"{_human_or([r.value for r in _up_to(config.max_resolution)])} and try again."
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
    named = [f"<#{c}>" for c in allowed[:MAX_CHANNELS_NAMED]]
    rest = len(allowed) - len(named)
    if rest:
        named.append(f"{rest} other channel{'s' if rest > 1 else ''}")
    raise InvalidInput(f"Image generation isn't enabled in this channel. Try {_human_or(named)}.")


def _human_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


def prompt_blocked(config: GuildConfig, prompt: str) -> bool:
    """True when the prompt contains a blocked word or matches a blocked pattern."""
    if not config.blocked_words and not config.blocked_patterns:
        return False
    variants = _variants(prompt)
    if config.blocked_words:
        words = _words_regex(config.blocked_words)
        if words is not None and any(words.search(v) for v in variants):
            return True
    if config.blocked_patterns:
        # Patterns see the prompt as typed and its cleaned form (no invisible characters,
        # look-alikes mapped), not the leetspeak and spacing variants, to keep the cost bounded.
        texts = (unicodedata.normalize("NFC", prompt), normalise_text(prompt))
        for pattern in config.blocked_patterns:
            compiled = _compiled_pattern(pattern)
            if compiled is not None and any(compiled.search(t) for t in texts):
                return True
    return False


# --- normalisation --------------------------------------------------------------------------

# Letters that look like Latin ones (after casefolding): Cyrillic and Greek.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "і": "i", "ї": "i", "ј": "j", "к": "k",
        "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s",
        "ԁ": "d", "ӏ": "l", "ɑ": "a", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k",
        "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    }
)  # fmt: skip

# Leetspeak: what each character may stand for. A blocked word's letter matches any of these.
_LEET: dict[str, str] = {
    "a": "4@",
    "b": "8",
    "e": "3",
    "g": "9",
    "i": "1!|",
    "l": "1|",
    "o": "0",
    "s": "5$",
    "t": "7+",
    "z": "2",
}
_LEET_SYMBOLS = "@$!|+"
_LETTERISH = r"[^\W_]|[@$!|+]"  # a letter, a digit or a leetspeak symbol
# Three or more single characters separated by spacing or punctuation: "b a d", "b.a.d", "b-a-d".
_SPACED = re.compile(
    rf"(?<![^\W_])(?:{_LETTERISH})(?:[\s.\-*'·•/\\,~]{{1,3}}(?:{_LETTERISH})(?![^\W_])){{2,}}"
)
_SPACING = re.compile(r"[\s.\-*'·•/\\,~]+")
_RUN3 = re.compile(r"(.)\1{2,}")  # "baaad"


def normalise_text(text: str) -> str:
    """The form prompts and blocked words are compared in: compatibility characters folded
    (fullwidth, ligatures), case folded, accents and invisible characters removed, look-alike
    letters mapped to Latin, underscores as spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Mn", "Me", "Cf", "Cc") or ch in "\n\t"
    )
    text = unicodedata.normalize("NFKC", text).casefold().translate(_CONFUSABLES)
    return text.replace("_", " ")


def _variants(prompt: str) -> list[str]:
    """The cleaned prompt, plus versions with spaced-out letters joined and long runs of one
    letter shortened (to one and to two: "baaad" -> "bad", "asssss" -> "ass")."""
    base = normalise_text(prompt)
    forms = [base]
    joined = _SPACED.sub(lambda m: _SPACING.sub("", m.group(0)), base)
    if joined != base:
        forms.append(joined)
    for form in list(forms):
        if _RUN3.search(form):
            forms.append(_RUN3.sub(r"\1", form))
            forms.append(_RUN3.sub(r"\1\1", form))
    return forms


def _is_unspaced_script(ch: str) -> bool:
    """Scripts written without spaces between words: a blocked word there matches anywhere."""
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER"))


def _word_regex(word: str) -> str | None:
    key = normalise_text(word)
    parts = [p for p in _SPACING.split(key) if p]
    if not parts:
        return None
    body = r"[\W_]+".join("".join(_char_class(ch) for ch in part) for part in parts)
    start = "" if _is_unspaced_script(parts[0][0]) else r"(?<![^\W_])"
    end = "" if _is_unspaced_script(parts[-1][-1]) else r"(?![^\W_])"
    return f"{start}{body}{end}"


def _char_class(ch: str) -> str:
    """The character and everything leetspeak lets stand in for it (both directions)."""
    same = {ch}
    for letter, stand_ins in _LEET.items():
        if ch == letter:
            same.update(stand_ins)
        elif ch in stand_ins:
            same.add(letter)
            same.update(stand_ins)
    if len(same) == 1:
        return re.escape(ch)
    return "[" + "".join(re.escape(c) for c in sorted(same)) + "]"


@functools.lru_cache(maxsize=256)
def _words_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = [p for p in (_word_regex(w) for w in words) if p]
    if not parts:
        return None
    # Longest first: alternation takes the first alternative that matches.
    parts.sort(key=len, reverse=True)
    return re.compile("|".join(f"(?:{p})" for p in parts))


# --- editing the lists ----------------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """Words and phrases from an admin's input: separated by commas or new lines."""
    return [" ".join(w.split()) for w in re.split(r"[,\n]", text) if w.strip()]


def check_word(word: str) -> str:
    """The word as stored (spacing tidied), or ``InvalidInput``."""
    tidy = " ".join(word.split())
    if len(tidy) > MAX_WORD_CHARS:
        raise InvalidInput(
            f"A blocked word or phrase can have at most {MAX_WORD_CHARS} characters. "
            "Use a blocked pattern for longer rules."
        )
    if not any(ch.isalnum() for ch in normalise_text(tidy)):
        raise InvalidInput(
            "A blocked word needs at least one letter or digit. Separate several words with "
            "commas."
        )
    return tidy


def add_blocked_words(config: GuildConfig, words: Iterable[str]) -> GuildConfig:
    """Add words (duplicates, also in another spelling of the same word, are skipped)."""
    current = list(config.blocked_words)
    keys = {normalise_text(w) for w in current}
    for word in words:
        tidy = check_word(word)
        if normalise_text(tidy) not in keys:
            keys.add(normalise_text(tidy))
            current.append(tidy)
    if len(current) > MAX_BLOCKED_WORDS:
        raise InvalidInput(
            f"A server can block at most {MAX_BLOCKED_WORDS} words; this would make "
            f"{len(current)}. Remove some first."
        )
    return dataclasses.replace(config, blocked_words=tuple(current))


def remove_blocked_words(config: GuildConfig, words: Iterable[str]) -> GuildConfig:
    drop = {normalise_text(" ".join(w.split())) for w in words}
    kept = tuple(w for w in config.blocked_words if normalise_text(w) not in drop)
    return dataclasses.replace(config, blocked_words=kept)


def add_blocked_patterns(config: GuildConfig, pattern: str) -> GuildConfig:
    check_pattern(pattern)
    if pattern in config.blocked_patterns:
        return config
    if len(config.blocked_patterns) >= MAX_BLOCKED_PATTERNS:
        raise InvalidInput(
            f"A server can have at most {MAX_BLOCKED_PATTERNS} blocked patterns. Remove one "
            "first (several words fit in one pattern: `cat|dog`)."
        )
    return dataclasses.replace(config, blocked_patterns=(*config.blocked_patterns, pattern))


def remove_blocked_patterns(config: GuildConfig, pattern: str) -> GuildConfig:
    kept = tuple(p for p in config.blocked_patterns if p != pattern)
    return dataclasses.replace(config, blocked_patterns=kept)


# --- blocked patterns: validation -----------------------------------------------------------

# The stdlib's own regex parser, so the cost estimate sees exactly what ``re`` compiles. It is a
# private module (re._parser since 3.11); imported by name so a rename fails loudly at start-up.
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

#: Worst-case backtracking steps per character position. One unbounded repeat is L+1 (L = the
#: longest prompt), so ``foo.*bar`` passes; two unbounded repeats that can trade characters
#: (``\w+\s*\w+``) are ~L^2 per position and are refused.
MAX_PATTERN_COST = 8 * (MAX_PROMPT_CHARS + 1)
_UNBOUNDED = _c.MAXREPEAT


class _Refused(Exception):
    """Internal: the pattern is refused for the reason given."""


def check_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an admin's pattern, or raise ``InvalidInput`` saying what to change.

    Refused: syntax errors, more than ``MAX_PATTERN_CHARS`` characters, backreferences,
    repetition of something that itself repeats or has alternatives (``(a+)+``, ``(a|b)*``: these
    can take exponential time), and combinations whose worst case grows too fast with the prompt
    length (``.*.*``).
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput("The pattern is empty. Write a regular expression, e.g. `ca+t`.")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidInput(
            f"That pattern has {len(pattern)} characters; the limit is {MAX_PATTERN_CHARS}. "
            "Split it into several patterns."
        )
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
        tree = _parser.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise InvalidInput(f"That is not a valid regular expression: {exc.msg}{where}.") from None
    except (OverflowError, RecursionError, ValueError):
        raise InvalidInput("That regular expression is too large. Simplify it.") from None
    try:
        cost = _cost(tree)
    except _Refused as exc:
        raise InvalidInput(f"That pattern could make the bot very slow: {exc}.") from None
    if cost > MAX_PATTERN_COST:
        raise InvalidInput(
            "That pattern could make the bot very slow on long prompts: it has too many open-ended "
            "repeats. Use bounded ones like `.{0,30}` instead of `.*` or `\\w+`."
        )
    return compiled


def _cost(subpattern: Any) -> int:
    """An upper bound on the ways ``subpattern`` can match at one position (its backtracking)."""
    total = 1
    for op, av in subpattern:
        total *= _item_cost(op, av)
        if total > MAX_PATTERN_COST:
            return total  # refused anyway; stop before the numbers get huge
    return total


def _item_cost(op: Any, av: Any) -> int:
    limit = MAX_PROMPT_CHARS
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        low, high, body = av
        if high == _UNBOUNDED or high > limit:
            high = limit
        if high > 1:
            if _has(body, (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT)):
                raise _Refused("it repeats something that already repeats, like `(a+)+`")
            if _has(body, (_c.BRANCH,)):
                raise _Refused(
                    "it repeats alternatives, like `(a|b)+`; use a character class `[ab]+`"
                )
            if _c.GROUPREF_EXISTS in _ops(body):
                raise _Refused("it uses a conditional group")
        return (high - low + 1) * max(1, _cost(body)) if high > 1 else _cost(body) + 1
    if op is _c.BRANCH:
        return sum(_cost(alt) for alt in av[1])
    if op is _c.SUBPATTERN:
        return _cost(av[-1])
    if op is _c.ATOMIC_GROUP:
        return _cost(av)
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return _cost(av[1])
    if op in (_c.GROUPREF, _c.GROUPREF_IGNORE, _c.GROUPREF_EXISTS):
        raise _Refused("it refers back to a group (`\\1`, `(?P=name)`, `(?(1)...)`)")
    return 1


def _children(op: Any, av: Any) -> list[Any]:
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        return [av[2]]
    if op is _c.BRANCH:
        return list(av[1])
    if op is _c.SUBPATTERN:
        return [av[-1]]
    if op is _c.ATOMIC_GROUP:
        return [av]
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    if op is _c.GROUPREF_EXISTS:
        return [p for p in av[1:] if p is not None]
    return []


def _ops(subpattern: Any) -> set[Any]:
    found: set[Any] = set()
    for op, av in subpattern:
        found.add(op)
        for child in _children(op, av):
            found |= _ops(child)
    return found


def _has(subpattern: Any, ops: tuple[Any, ...]) -> bool:
    """True when ``subpattern`` contains one of ``ops`` that can match more than once (a plain
    ``?`` is harmless)."""
    for op, av in subpattern:
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT) and op in ops:
            if av[1] > 1:
                return True
        elif op in ops:
            return True
        if any(_has(child, ops) for child in _children(op, av)):
            return True
    return False


@functools.lru_cache(maxsize=1024)
def _compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    """A stored pattern, checked again (the rules may have tightened since it was stored)."""
    try:
        return check_pattern(pattern)
    except InvalidInput as exc:
        log.warning("ignoring a stored blocked pattern that is no longer accepted: %s", exc)
        return None
