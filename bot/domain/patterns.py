"""Blocked patterns: admin-supplied regular expressions, accepted only when they stay fast.

Python's ``re`` backtracks, holds the GIL and cannot be interrupted, so a pattern is only
accepted when its worst case on the longest prompt stays small. ``re.compile`` judges the syntax;
``bot.domain.regex_shape`` then reads how the pattern is built (public APIs only) and the rules
here refuse what can explode (references back to a group, repeats of something that repeats or
chooses), bound the ways a pattern can match at one position, and cap every open-ended repeat
by rewriting it (``*`` becomes ``{0,100}``) before the pattern is compiled for use.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.regex_shape import BackRef, Choice, Repeat, Seq, Unsupported, children, parse
from bot.domain.text import Text, t
from bot.domain.wordfilter import normalise_text
from bot.errors import InvalidInput

log = logging.getLogger(__name__)

__all__ = [
    "MAX_PATTERN_CHARS",
    "MAX_PATTERN_COST",
    "MAX_TOTAL_PATTERN_COST",
    "REPEAT_CAP",
    "TOO_MANY_REPEATS",
    "check_pattern",
    "check_total_cost",
    "pattern_cost",
    "patterns_blocked",
]

MAX_PATTERN_CHARS = 200
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

TOO_MANY_REPEATS = t(
    "Together, this server's blocked patterns have too many open-ended repeats (`.*`, `\\w+`) "
    "to check every prompt quickly. Remove one, or use small bounded repeats like `.{{0,20}}`."
)
_FLAGS = re.IGNORECASE


class _Refused(Exception):
    """Internal: the pattern is refused for ``reason`` (a clause of the sentence that says so)."""

    def __init__(self, reason: Text) -> None:
        super().__init__(reason.english())
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Checked:
    regex: re.Pattern[str]  # compiled with repeats capped at REPEAT_CAP
    cost: int


def check_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an admin's pattern (case-insensitive, open-ended repeats capped at
    ``REPEAT_CAP`` characters), or raise ``InvalidInput`` saying what to change.

    Refused: syntax errors, more than ``MAX_PATTERN_CHARS`` characters, backreferences and
    conditional groups, repeat counts above ``REPEAT_CAP``, repetition of something that itself
    repeats or has alternatives (``(a+)+``, ``(cat|dog)*``: exponential time), patterns whose
    worst case exceeds ``MAX_PATTERN_COST`` (``.*x.*y``), and verbose mode (``(?x)``).
    """
    return _check(pattern).regex


def pattern_cost(pattern: str) -> int:
    return _check(pattern).cost


def check_total_cost(patterns: Iterable[str]) -> None:
    """``InvalidInput`` when a server's patterns are each fine but too slow all together."""
    if sum(_check(p).cost for p in patterns) > MAX_TOTAL_PATTERN_COST:
        raise InvalidInput(TOO_MANY_REPEATS)


def patterns_blocked(patterns: tuple[str, ...], prompt: str) -> bool:
    """True when the prompt matches one of ``patterns``.

    Patterns see the cleaned prompt (no invisible characters, look-alikes mapped) and, when it
    differs by more than case, the prompt as typed; not the word filter's leetspeak and spacing
    variants, to keep the cost bounded.
    """
    if not patterns:
        return False
    cleaned = normalise_text(prompt)
    typed = unicodedata.normalize("NFC", prompt)
    texts = (cleaned,) if typed.casefold() == cleaned else (cleaned, typed)
    for pattern in patterns:
        compiled = _stored_pattern(pattern)
        if compiled is not None and any(compiled.search(t) for t in texts):
            return True
    return False


@functools.lru_cache(maxsize=1024)
def _stored_pattern(pattern: str) -> re.Pattern[str] | None:
    """A stored pattern, checked again (the rules may have tightened since it was stored)."""
    try:
        return check_pattern(pattern)
    except InvalidInput as exc:
        log.warning("ignoring a stored blocked pattern that is no longer accepted: %s", exc)
        return None


# --- the checks -----------------------------------------------------------------------------


def _check(pattern: str) -> _Checked:
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput(t("The pattern is empty. Write a regular expression, e.g. `ca+t`."))
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidInput(
            t(
                "That pattern has {count} characters; the limit is {limit}. "
                "Split it into several patterns.",
                count=len(pattern),
                limit=MAX_PATTERN_CHARS,
            )
        )
    try:
        re.compile(pattern, _FLAGS)  # the public API's verdict and error message come first
        shape = parse(pattern)
        _refuse_explosive(shape)
        cost = _cost(shape)
        regex = re.compile(_capped(pattern, shape), _FLAGS)
    except re.error as exc:
        raise InvalidInput(_syntax_error(exc)) from None
    except (OverflowError, RecursionError):
        raise InvalidInput(t("That regular expression is too large. Simplify it.")) from None
    except Unsupported as exc:
        raise InvalidInput(
            t("The bot cannot check that pattern: {reason}.", reason=exc.reason)
        ) from None
    except _Refused as exc:
        raise InvalidInput(
            t("That pattern could make the bot slow: {reason}.", reason=exc.reason)
        ) from None
    if cost > MAX_PATTERN_COST:
        raise InvalidInput(
            t(
                "That pattern could make the bot slow on long prompts: it combines too many "
                "open-ended repeats. Use one `.*` or `\\w+` per pattern, or small bounded "
                "repeats like `.{{0,20}}`."
            )
        )
    return _Checked(regex, cost)


def _syntax_error(exc: re.error) -> Text:
    """Python's own description of the error (English, as ``re`` words it) in our sentence."""
    if exc.pos is None:
        return t("That is not a valid regular expression: {error}.", error=exc.msg)
    return t(
        "That is not a valid regular expression: {error} (at character {position}).",
        error=exc.msg,
        position=exc.pos + 1,
    )


def _high(repeat: Repeat) -> int:
    """The most times ``repeat`` may match once capped."""
    return repeat.high if repeat.high is not None else max(repeat.low, REPEAT_CAP)


def _refuse_explosive(seq: Seq) -> None:
    """Refuse what can explode, first problem (reading left to right, outside in) first."""
    for node in seq:
        if isinstance(node, BackRef):
            raise _Refused(t("it refers back to a group (`\\1`, `(?P=name)`, `(?(1)...)`)"))
        if isinstance(node, Repeat):
            high = _high(node)
            if high > REPEAT_CAP:
                raise _Refused(t("repeat counts above {limit} are not allowed", limit=REPEAT_CAP))
            if high > 1 and _contains((node.body,), Repeat):
                raise _Refused(t("it repeats something that repeats itself, like `(a+)+`"))
            if high > 1 and _contains((node.body,), Choice):
                raise _Refused(
                    t(
                        "it repeats a choice, like `(cat|dog)+`; list the words once, or use a "
                        "character class like `[ab]+`"
                    )
                )
        for child in children(node):
            _refuse_explosive(child)


def _contains(seq: Seq, kind: type[Repeat | Choice]) -> bool:
    return any(
        isinstance(node, kind) or any(_contains(child, kind) for child in children(node))
        for node in seq
    )


def _cost(seq: Seq) -> int:
    """An upper bound on the ways ``seq`` can match at one position."""
    total = 1
    for node in seq:
        if isinstance(node, Repeat):
            high = _high(node)
            # Bodies of repeats above 1 hold no repeats or choices (see _refuse_explosive).
            factor = high - node.low + 1 if high > 1 else _cost((node.body,)) + 1
        elif isinstance(node, Choice):
            factor = sum(_cost(option) for option in node.options)
        else:
            factor = max((_cost(child) for child in children(node)), default=1)
        total = min(total * factor, MAX_TOTAL_PATTERN_COST * 10)  # keep the numbers small
    return total


def _capped(pattern: str, shape: Seq) -> str:
    """``pattern`` with every open-ended repeat written with an upper bound of ``REPEAT_CAP``."""
    spans = sorted(_open_ended(shape), key=lambda r: r.start, reverse=True)
    for repeat in spans:
        bounds = f"{{{repeat.low},{_high(repeat)}}}"
        pattern = pattern[: repeat.start] + bounds + pattern[repeat.end :]
    return pattern


def _open_ended(seq: Seq) -> list[Repeat]:
    found: list[Repeat] = []
    for node in seq:
        if isinstance(node, Repeat) and node.high is None:
            found.append(node)
        for child in children(node):
            found.extend(_open_ended(child))
    return found
