"""The moderation log: one line per event, and how many lines a server gets per minute.

Pure: the lines are plain text (Discord markdown, escaped here with the standard library) and the
rate limit is a decision on a clock the caller passes in. Who posts them is ``bot.services.modlog``.

The rate limit: a server's mod log gets at most ``LINES_PER_WINDOW`` lines in a window of
``WINDOW_SECONDS`` that opens with its first event; the rest of the window's events are counted
and summarised in one line when the window ends ("…and 12 more blocked prompts in the last
minute"). A spammer's hundred blocked prompts cost the channel eleven lines a minute at most.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.config import BlockRule

__all__ = [
    "LINES_PER_WINDOW",
    "WINDOW_SECONDS",
    "EventKind",
    "ModEvent",
    "ModLogLimiter",
    "Verdict",
    "escape",
    "line",
    "summary_line",
]

LINES_PER_WINDOW = 10
WINDOW_SECONDS = 60.0
PROMPT_CHARS = 300  # of a prompt, before escaping (which at most doubles it)
RULE_CHARS = 120
REASON_CHARS = 200

# Discord markdown, mentions (<@id>, @everyone), links and emoji: a backslash shows each literally.
_SPECIAL = re.compile(r"([\\*_~`|>#\-\[\]()<@:])")
_INVISIBLE = frozenset({"Cc", "Cf"})  # control and formatting characters (RTL overrides, ZWSP)


class EventKind(enum.Enum):
    """What happened; the value is how the summary counts it (singular, plural)."""

    BLOCKED_PROMPT = ("blocked prompt", "blocked prompts")
    CONTENT_FILTER = ("job stopped by the content filter", "jobs stopped by the content filter")
    RESULT_DELETED = ("deleted result", "deleted results")
    MEMBER_BLOCKED = ("block", "blocks")
    MEMBER_UNBLOCKED = ("unblock", "unblocks")

    def counted(self, n: int) -> str:
        return f"{n} {self.value[0] if n == 1 else self.value[1]}"


@dataclass(frozen=True, slots=True)
class ModEvent:
    """One event. ``actor_id`` is who did it: the member whose prompt was refused, the member
    who deleted a result, the admin who blocked someone; ``subject_id`` whom it was done to."""

    kind: EventKind
    actor_id: int
    channel_id: int | None  # where
    subject_id: int | None = None
    rule: BlockRule | None = None  # which rule refused a prompt
    prompt: str | None = None
    job_id: str | None = None
    reason: str | None = None  # an admin's reason for a block


def escape(text: str, limit: int) -> str:
    """``text`` on one line, clipped to ``limit`` characters, every markdown, mention and link
    character escaped: it cannot ping, restyle the line or close a spoiler early."""
    flat = " ".join(text.split())
    flat = "".join(ch for ch in flat if unicodedata.category(ch) not in _INVISIBLE)
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"  # clipped before escaping: no half escape at the end
    return _SPECIAL.sub(r"\\\1", flat)


def _spoiler(prompt: str) -> str:
    return f"||{escape(prompt, PROMPT_CHARS) or '(empty)'}||"


def _where(channel_id: int | None) -> str:
    return f"<#{channel_id}>" if channel_id else "a DM"


def line(event: ModEvent) -> str:
    """The event as one mod-log line: who, where, the rule, the prompt in a spoiler."""
    who = f"<@{event.actor_id}>"
    whom = f"<@{event.subject_id}>"
    job = f"job `{escape(event.job_id or '?', 40)}`"
    kind = event.kind
    if kind is EventKind.BLOCKED_PROMPT:
        parts = ["**Blocked prompt**", f"{who} in {_where(event.channel_id)}"]
        rule = event.rule
        parts.append(
            f"blocked {rule.kind}: {escape(rule.text, RULE_CHARS)}" if rule else "a blocked word"
        )
    elif kind is EventKind.CONTENT_FILTER:
        parts = ["**Content filter**", f"{who} in {_where(event.channel_id)}"]
        parts.append(f"crun's content filter refused {job} (its prompt or images)")
    elif kind is EventKind.RESULT_DELETED:
        parts = ["**Result deleted**", f"{who} deleted {whom}'s result ({job})"]
        parts.append(f"in {_where(event.channel_id)}")
    else:
        done = "blocked" if kind is EventKind.MEMBER_BLOCKED else "unblocked"
        parts = [f"**Member {done}**", f"{who} {done} {whom} on this server"]
        if event.reason:
            parts.append(f"reason: {escape(event.reason, REASON_CHARS)}")
        parts.append(f"command used in {_where(event.channel_id)}")
    if event.prompt is not None:
        parts.append(_spoiler(event.prompt))
    return " · ".join(parts)


def summary_line(held: Mapping[EventKind, int]) -> str:
    """One line for the events a window held back."""
    total = sum(held.values())
    counts = [kind.counted(n) for kind, n in held.items() if n]
    if len(counts) == 1:
        return f"…and {total} more {counts[0].split(' ', 1)[1]} in the last minute."
    return f"…and {total} more events in the last minute: {', '.join(counts)}."


# --- the rate limit -------------------------------------------------------------------------


class Verdict(enum.Enum):
    POST = "post"  # within the window's budget
    HOLD = "hold"  # over it: counted for the summary
    HOLD_FIRST = "hold-first"  # the first one held back: the summary is due when the window ends


@dataclass(slots=True)
class _Window:
    ends: float
    posted: int = 0
    held: Counter[EventKind] = field(default_factory=Counter)


class ModLogLimiter:
    """Per server, at most ``limit`` lines per ``window`` seconds; the rest summarised once."""

    def __init__(self, limit: int = LINES_PER_WINDOW, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._windows: dict[int, _Window] = {}
        self._ended: dict[int, Counter[EventKind]] = {}  # held back, window over, not yet posted

    def admit(self, guild_id: int, kind: EventKind, now: float) -> Verdict:
        current = self._windows.get(guild_id)
        if current is None or now >= current.ends:
            if current is not None and current.held:
                self._ended[guild_id] = current.held
            current = self._windows[guild_id] = _Window(ends=now + self.window)
        if current.posted < self.limit:
            current.posted += 1
            return Verdict.POST
        current.held[kind] += 1
        return Verdict.HOLD_FIRST if current.held.total() == 1 else Verdict.HOLD

    def ends(self, guild_id: int) -> float | None:
        """When the server's current window ends (None: no window open)."""
        current = self._windows.get(guild_id)
        return None if current is None else current.ends

    def due(self, now: float) -> list[tuple[int, Counter[EventKind]]]:
        """(server, held-back counts) of every window that is over; each is returned once.
        Windows that are over and held nothing back are forgotten."""
        found = list(self._ended.items())
        self._ended.clear()
        for guild_id, current in list(self._windows.items()):
            if now >= current.ends:
                del self._windows[guild_id]
                if current.held:
                    found.append((guild_id, current.held))
        return found
