"""The moderation log: one line per event, and how many lines a server gets per minute.

Pure: the lines are ``Text`` values (Discord markdown; what members typed is escaped here with the
standard library and never translated), rendered in the server's language where they are sent
(``bot.ui.modlog``), and the rate limit is a decision on a clock the caller passes in. Who posts
them is ``bot.services.modlog``.

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
from bot.domain.text import Text, listed, t, tn

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
    """What happened (its wording is ``_counted`` and ``_more_of``)."""

    BLOCKED_PROMPT = "blocked prompt"
    CONTENT_FILTER = "content filter"
    RESULT_DELETED = "result deleted"
    MEMBER_BLOCKED = "member blocked"
    MEMBER_UNBLOCKED = "member unblocked"


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


def _spoiler(prompt: str | None) -> Text | str:
    """What goes between the ``||`` of a line's spoiler: the prompt, escaped."""
    return escape(prompt or "", PROMPT_CHARS) or t("(empty)")


def _where(channel_id: int | None) -> Text | str:
    # Always follows "in": a translation of "a DM" takes the form that fits there.
    return f"<#{channel_id}>" if channel_id else t("a DM")


def line(event: ModEvent) -> Text:
    """The event as one mod-log line: who, where, the rule, the prompt in a spoiler. A whole
    line is one text (translators order its parts); the rule, reason and prompt stay as typed."""
    who, where = f"<@{event.actor_id}>", _where(event.channel_id)
    whom = f"<@{event.subject_id}>"
    job = escape(event.job_id or "?", 40)
    kind = event.kind
    if kind is EventKind.BLOCKED_PROMPT:
        return _blocked_prompt(who, where, event.rule, _spoiler(event.prompt))
    if kind is EventKind.CONTENT_FILTER:
        return t(
            "**Content filter** · {who} in {where} · crun's content filter refused job `{job}` "
            "(its prompt or images) · ||{prompt}||",
            who=who,
            where=where,
            job=job,
            prompt=_spoiler(event.prompt),
        )
    if kind is EventKind.RESULT_DELETED:
        return t(
            "**Result deleted** · {who} deleted {whom}'s result (job `{job}`) · in {where} · "
            "||{prompt}||",
            who=who,
            whom=whom,
            job=job,
            where=where,
            prompt=_spoiler(event.prompt),
        )
    return _member_line(event, who, whom, where)


def _member_line(event: ModEvent, who: str, whom: str, where: Text | str) -> Text:
    """An admin blocked or unblocked a member."""
    if event.kind is EventKind.MEMBER_UNBLOCKED:
        return t(
            "**Member unblocked** · {who} unblocked {whom} on this server · "
            "command used in {where}",
            who=who,
            whom=whom,
            where=where,
        )
    if event.reason:
        return t(
            "**Member blocked** · {who} blocked {whom} on this server · reason: {reason} · "
            "command used in {where}",
            who=who,
            whom=whom,
            where=where,
            reason=escape(event.reason, REASON_CHARS),
        )
    return t(
        "**Member blocked** · {who} blocked {whom} on this server · command used in {where}",
        who=who,
        whom=whom,
        where=where,
    )


def _blocked_prompt(
    who: str, where: Text | str, rule: BlockRule | None, prompt: Text | str
) -> Text:
    if rule is None:
        return t(
            "**Blocked prompt** · {who} in {where} · a blocked word · ||{prompt}||",
            who=who,
            where=where,
            prompt=prompt,
        )
    shown = escape(rule.text, RULE_CHARS)
    if rule.kind == "word":
        return t(
            "**Blocked prompt** · {who} in {where} · blocked word: {rule} · ||{prompt}||",
            who=who,
            where=where,
            rule=shown,
            prompt=prompt,
        )
    return t(
        "**Blocked prompt** · {who} in {where} · blocked pattern: {rule} · ||{prompt}||",
        who=who,
        where=where,
        rule=shown,
        prompt=prompt,
    )


def _counted(kind: EventKind, n: int) -> Text:
    """``n`` events of ``kind``, for the list in a summary ("3 blocked prompts")."""
    if kind is EventKind.BLOCKED_PROMPT:
        return tn("{count} blocked prompt", "{count} blocked prompts", count=n)
    if kind is EventKind.CONTENT_FILTER:
        return tn(
            "{count} job stopped by the content filter",
            "{count} jobs stopped by the content filter",
            count=n,
        )
    if kind is EventKind.RESULT_DELETED:
        return tn("{count} deleted result", "{count} deleted results", count=n)
    if kind is EventKind.MEMBER_BLOCKED:
        return tn("{count} block", "{count} blocks", count=n)
    return tn("{count} unblock", "{count} unblocks", count=n)


def _more_of(kind: EventKind, n: int) -> Text:
    """The summary of a window that held back only events of ``kind``."""
    if kind is EventKind.BLOCKED_PROMPT:
        return tn(
            "…and {count} more blocked prompt in the last minute.",
            "…and {count} more blocked prompts in the last minute.",
            count=n,
        )
    if kind is EventKind.CONTENT_FILTER:
        return tn(
            "…and {count} more job stopped by the content filter in the last minute.",
            "…and {count} more jobs stopped by the content filter in the last minute.",
            count=n,
        )
    if kind is EventKind.RESULT_DELETED:
        return tn(
            "…and {count} more deleted result in the last minute.",
            "…and {count} more deleted results in the last minute.",
            count=n,
        )
    if kind is EventKind.MEMBER_BLOCKED:
        return tn(
            "…and {count} more block in the last minute.",
            "…and {count} more blocks in the last minute.",
            count=n,
        )
    return tn(
        "…and {count} more unblock in the last minute.",
        "…and {count} more unblocks in the last minute.",
        count=n,
    )


def summary_line(held: Mapping[EventKind, int]) -> Text:
    """One line for the events a window held back."""
    total = sum(held.values())
    kinds = [(kind, n) for kind, n in held.items() if n]
    if len(kinds) == 1:
        return _more_of(kinds[0][0], total)
    return tn(
        "…and {count} more event in the last minute: {counts}.",
        "…and {count} more events in the last minute: {counts}.",
        count=total,
        counts=listed([_counted(kind, n) for kind, n in kinds]),
    )


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
