"""Per-server settings and the rules they impose on a request, checked before anything is spent.

Pure: no discord, aiohttp or aiosqlite. The store keeps a ``GuildConfig`` as JSON per guild (guild
0 holds the bot-wide settings); the Discord flow calls ``apply_rules`` on every request.

Blocked words are matched whole-word and case-insensitively on a normalised copy of the prompt, so
that the usual tricks (zero-width characters, look-alike letters, accents, "b a d", "b@d", "baaad")
do not get around them. Blocked patterns are admin-supplied regular expressions. Python's ``re``
backtracks, holds the GIL and cannot be interrupted, so a pattern is only accepted when its worst
case on the longest prompt stays small: open-ended repeats are capped, constructs that can explode
are refused (see ``check_pattern``).
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
from bot.domain.validation import DEFAULT_RESOLUTION
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

TOO_MANY_REPEATS = (
    "Together, this server's blocked patterns have too many open-ended repeats (`.*`, `\\w+`) "
    "to check every prompt quickly. Remove one, or use small bounded repeats like `.{0,20}`."
)
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
        if _patterns_cost(self.blocked_patterns) > MAX_TOTAL_PATTERN_COST:
            raise InvalidInput(TOO_MANY_REPEATS)


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
    if config.blocked_words:
        keys = _word_keys(config.blocked_words)
        if any(key in form for form in _variants(prompt) for key in keys):
            return True
    if config.blocked_patterns:
        # Patterns see the cleaned prompt (no invisible characters, look-alikes mapped) and, when
        # it differs by more than case, the prompt as typed; not the leetspeak and spacing
        # variants, to keep the cost bounded.
        cleaned = normalise_text(prompt)
        typed = unicodedata.normalize("NFC", prompt)
        texts = (cleaned,) if typed.casefold() == cleaned else (cleaned, typed)
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

# Leetspeak and look-alikes, folded into one letter on both sides (prompt and blocked word).
# "l" and "i" share one form because "1" and "|" stand for either.
_LEET = str.maketrans("4@8391!|l05$7+2", "aabegiiiiossttz")
_MIN_LEET_TOKEN = 3  # "4k", "3d", "2x" stay as written: prompts are full of them
# A token: letters and digits, with leetspeak symbols inside ("sh!t") or at the edges ("@ss"),
# or a run of the symbols that stand for letters ("@$$").
_TOKEN = re.compile(r"[@$]*[^\W_]+(?:[@$!|+]+[^\W_]+)*[@$]*|[@$]{3,}")
_RUN3 = re.compile(r"(\S)\1{2,}")  # "baaad"
# Accents and other combining marks, zero-width and formatting characters, control characters.
_DROPPED = frozenset({"Mn", "Me", "Cf", "Cc"})


def normalise_text(text: str) -> str:
    """The form prompts and blocked words are compared in: compatibility characters folded
    (fullwidth, ligatures), case folded, accents and invisible characters removed, look-alike
    letters mapped to Latin, underscores as spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if ch in "\n\r\t" or unicodedata.category(ch) not in _DROPPED)
    text = unicodedata.normalize("NFKC", text).casefold().translate(_CONFUSABLES)
    return text.replace("_", " ")


def _tokens(text: str) -> list[str]:
    return [
        t.translate(_LEET) if len(t) >= _MIN_LEET_TOKEN else t
        for t in _TOKEN.findall(normalise_text(text))
    ]


def _variants(prompt: str) -> list[str]:
    """The prompt's words in canonical form, space-separated and padded, plus versions with
    spaced-out letters joined ("b a d") and long runs of one letter shortened to one and to two
    ("baaad" -> "bad", "asssss" -> "ass")."""
    tokens = _tokens(prompt)
    forms = [f" {' '.join(tokens)} "]
    joined: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        if len(run) >= _MIN_LEET_TOKEN:
            joined.append("".join(run).translate(_LEET))
        else:
            joined.extend(run)
        run = []
        if token:
            joined.append(token)
    if joined != tokens:
        forms.append(f" {' '.join(joined)} ")
    for form in list(forms):
        if _RUN3.search(form):
            forms.append(_RUN3.sub(r"\1", form))
            forms.append(_RUN3.sub(r"\1\1", form))
    return forms


def _is_unspaced_script(ch: str) -> bool:
    """Scripts written without spaces between words: a blocked word there matches anywhere."""
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER"))


def _word_key(word: str) -> str | None:
    """What ``word`` looks like in ``_variants``: canonical, padded to match whole words only
    (except in scripts without spaces)."""
    key = _RUN3.sub(r"\1\1", " ".join(_tokens(word)))
    if not key:
        return None
    if any(_is_unspaced_script(ch) for ch in key):
        return key
    return f" {key} "


@functools.lru_cache(maxsize=256)
def _word_keys(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in (_word_key(w) for w in words) if k)


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
    if _word_key(tidy) is None:
        raise InvalidInput(
            "A blocked word needs at least one letter or digit. Separate several words with commas."
        )
    return tidy


def add_blocked_words(config: GuildConfig, words: Iterable[str]) -> GuildConfig:
    """Add words (duplicates, also in another spelling of the same word, are skipped)."""
    current = list(config.blocked_words)
    keys = {_word_key(w) for w in current}
    for word in words:
        tidy = check_word(word)
        if _word_key(tidy) not in keys:
            keys.add(_word_key(tidy))
            current.append(tidy)
    if len(current) > MAX_BLOCKED_WORDS:
        raise InvalidInput(
            f"A server can block at most {MAX_BLOCKED_WORDS} words; this would make "
            f"{len(current)}. Remove some first."
        )
    return dataclasses.replace(config, blocked_words=tuple(current))


def remove_blocked_words(config: GuildConfig, words: Iterable[str]) -> GuildConfig:
    drop = {_word_key(w) for w in words}
    kept = tuple(w for w in config.blocked_words if _word_key(w) not in drop)
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
    patterns = (*config.blocked_patterns, pattern)
    if _patterns_cost(patterns) > MAX_TOTAL_PATTERN_COST:
        raise InvalidInput(TOO_MANY_REPEATS)
    return dataclasses.replace(config, blocked_patterns=patterns)


def remove_blocked_patterns(config: GuildConfig, pattern: str) -> GuildConfig:
    kept = tuple(p for p in config.blocked_patterns if p != pattern)
    return dataclasses.replace(config, blocked_patterns=kept)


# --- blocked patterns: validation -----------------------------------------------------------

# The stdlib's own regex parser and compiler, so the checks see exactly what ``re`` runs. They are
# private modules (since 3.11); imported by name so a rename fails at import, and a unit test
# covers them.
_parser: Any = importlib.import_module("re._parser")
_compiler: Any = importlib.import_module("re._compiler")
_c: Any = importlib.import_module("re._constants")

#: ``*``, ``+`` and ``{n,}`` in a blocked pattern match at most this many characters, and explicit
#: repeat counts may not exceed it. Without a bound, ``\w+x`` alone backtracks ~L^2 steps on a
#: crafted prompt of L = 5000 characters (~0.2 s with the event loop blocked: ``re`` holds the
#: GIL, so a thread does not help).
REPEAT_CAP = 100
#: Worst-case ways a pattern can match at one position (a rough bound on its backtracking):
#: one capped ``.*`` is ~100, ``.*`` twice would be ~10,000. Per pattern and for all of a server's
#: patterns together; at the total, a crafted 5,000-character prompt costs ~0.1 s per pass
#: (measured: ``\w*\s?\w{0,3}x``, cost 808, takes 0.05 s on 5,000 "a").
MAX_PATTERN_COST = 1_000
MAX_TOTAL_PATTERN_COST = 2_000

_REPEATS = frozenset({_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT})
_GROUPREFS = frozenset({_c.GROUPREF, _c.GROUPREF_IGNORE, _c.GROUPREF_EXISTS})


class _Refused(Exception):
    """Internal: the pattern is refused for the reason given."""


@dataclass(frozen=True, slots=True)
class _Checked:
    regex: re.Pattern[str]  # compiled with repeats capped at REPEAT_CAP
    cost: int


def check_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an admin's pattern (case-insensitive, open-ended repeats capped at
    ``REPEAT_CAP`` characters), or raise ``InvalidInput`` saying what to change.

    Refused: syntax errors, more than ``MAX_PATTERN_CHARS`` characters, backreferences and
    conditional groups, repeat counts above ``REPEAT_CAP``, repetition of something that itself
    repeats or has alternatives (``(a+)+``, ``(cat|dog)*``: exponential time), and patterns whose
    worst case exceeds ``MAX_PATTERN_COST`` (``.*x.*y``).
    """
    return _check(pattern).regex


def pattern_cost(pattern: str) -> int:
    return _check(pattern).cost


def _check(pattern: str) -> _Checked:
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput("The pattern is empty. Write a regular expression, e.g. `ca+t`.")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidInput(
            f"That pattern has {len(pattern)} characters; the limit is {MAX_PATTERN_CHARS}. "
            "Split it into several patterns."
        )
    flags = re.IGNORECASE
    try:
        re.compile(pattern, flags)  # the public API's verdict and error message come first
        tree = _parser.parse(pattern, flags)
    except re.error as exc:
        where = f" (at character {exc.pos + 1})" if exc.pos is not None else ""
        raise InvalidInput(f"That is not a valid regular expression: {exc.msg}{where}.") from None
    except (OverflowError, RecursionError):
        raise InvalidInput("That regular expression is too large. Simplify it.") from None
    try:
        _cap_repeats(tree)
        cost = _cost(tree)
    except _Refused as exc:
        raise InvalidInput(f"That pattern could make the bot slow: {exc}.") from None
    if cost > MAX_PATTERN_COST:
        raise InvalidInput(
            "That pattern could make the bot slow on long prompts: it combines too many "
            "open-ended repeats. Use one `.*` or `\\w+` per pattern, or small bounded repeats "
            "like `.{0,20}`."
        )
    return _Checked(_compiler.compile(tree, flags), cost)


def _children(op: Any, av: Any) -> list[Any]:
    if op in _REPEATS:
        return [av[2]]
    if op is _c.BRANCH:
        return list(av[1])
    if op is _c.SUBPATTERN:
        return [av[-1]]
    if op is _c.ATOMIC_GROUP:
        return [av]
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    return []


def _contains(subpattern: Any, ops: frozenset[Any]) -> bool:
    return any(
        op in ops or any(_contains(child, ops) for child in _children(op, av))
        for op, av in subpattern
    )


def _cap_repeats(subpattern: Any) -> None:
    """Refuse what can explode; cap open-ended repeats at REPEAT_CAP (in place)."""
    for index, (op, av) in enumerate(subpattern.data):
        if op in _GROUPREFS:
            raise _Refused("it refers back to a group (`\\1`, `(?P=name)`, `(?(1)...)`)")
        if op in _REPEATS:
            low, high, body = av
            if high == _c.MAXREPEAT:
                high = max(low, REPEAT_CAP)
            if high > REPEAT_CAP:
                raise _Refused(f"repeat counts above {REPEAT_CAP} are not allowed")
            if high > 1 and _contains(body, _REPEATS):
                raise _Refused("it repeats something that repeats itself, like `(a+)+`")
            if high > 1 and _contains(body, frozenset({_c.BRANCH})):
                raise _Refused(
                    "it repeats a choice, like `(cat|dog)+`; list the words once, or use a "
                    "character class like `[ab]+`"
                )
            subpattern.data[index] = (op, (low, high, body))
        for child in _children(op, av):
            _cap_repeats(child)


def _cost(subpattern: Any) -> int:
    """An upper bound on the ways ``subpattern`` can match at one position."""
    total = 1
    for op, av in subpattern:
        if op in _REPEATS:
            low, high, body = av
            # Bodies of repeats above 1 hold no repeats or choices (see _cap_repeats).
            factor = high - low + 1 if high > 1 else _cost(body) + 1
        elif op is _c.BRANCH:
            factor = sum(_cost(alt) for alt in av[1])
        else:
            factor = max((_cost(child) for child in _children(op, av)), default=1)
        total = min(total * factor, MAX_TOTAL_PATTERN_COST * 10)  # keep the numbers small
    return total


def _patterns_cost(patterns: Iterable[str]) -> int:
    return sum(_check(p).cost for p in patterns)


@functools.lru_cache(maxsize=1024)
def _compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    """A stored pattern, checked again (the rules may have tightened since it was stored)."""
    try:
        return check_pattern(pattern)
    except InvalidInput as exc:
        log.warning("ignoring a stored blocked pattern that is no longer accepted: %s", exc)
        return None
