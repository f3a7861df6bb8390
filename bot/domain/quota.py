"""Costs, limits and quota windows: pure rules, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.models import GenerationRequest, Mode
from bot.domain.validation import effective_resolution


@dataclass(frozen=True, slots=True)
class CostTable:
    """Credits per image, weighted. crun's price for this model is undocumented, so owners can
    tune it; the API's estimate endpoint wins when it answers."""

    per_image: float = 1.0
    weight_1k: float = 0.5
    weight_2k: float = 1.0
    weight_4k: float = 2.0
    weight_thinking: float = 1.5

    def cost(self, request: GenerationRequest) -> float:
        weight = {"1K": self.weight_1k, "2K": self.weight_2k, "4K": self.weight_4k}[
            effective_resolution(request).value
        ]
        if request.thinking and request.mode is Mode.TEXT_TO_IMAGE:
            weight *= self.weight_thinking
        return round(self.per_image * request.n * weight, 4)


@dataclass(frozen=True, slots=True)
class Limits:
    """Credits per window; None means unlimited."""

    daily: float | None = None
    monthly: float | None = None


def _more(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return max(a, b)


def most_generous(options: Iterable[Limits]) -> Limits | None:
    """The best of several role limits, field by field (unlimited beats any number)."""
    best: Limits | None = None
    for limits in options:
        if best is None:
            best = limits
        else:
            best = Limits(_more(best.daily, limits.daily), _more(best.monthly, limits.monthly))
    return best


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """Bot-wide rules from settings; servers refine limits in the store."""

    default_limits: Limits = Limits()
    global_daily_cap: float | None = None
    # What may *run* at crun at once: the fair queue holds the rest back (bot.jobs.fairqueue);
    # requests over these are accepted and wait, they are never refused for it.
    user_concurrent: int = 2
    guild_concurrent: int = 10
    cooldown_seconds: float = 0.0
    # What may *wait* (accepted, not yet sent to crun): past these a request is refused.
    user_queue_limit: int = 5
    guild_queue_limit: int = 200
    queue_limit: int = 2000


def day_window(now: float) -> tuple[float, float]:
    """The UTC day containing ``now`` as (start, end) unix seconds."""
    t = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    start = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def month_window(now: float) -> tuple[float, float]:
    """The UTC calendar month containing ``now``."""
    t = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + dt.timedelta(days=32)).replace(day=1)
    return start.timestamp(), nxt.timestamp()


@dataclass(frozen=True, slots=True)
class Usage:
    """A member's standing, for /quota and for denial messages."""

    daily_used: float
    monthly_used: float
    limits: Limits
    daily_granted: float
    monthly_granted: float
    day_resets_at: float
    month_resets_at: float
    running: int

    @property
    def daily_limit(self) -> float | None:
        return None if self.limits.daily is None else self.limits.daily + self.daily_granted

    @property
    def monthly_limit(self) -> float | None:
        if self.limits.monthly is None:
            return None
        return self.limits.monthly + self.monthly_granted

    @property
    def daily_left(self) -> float | None:
        limit = self.daily_limit
        return None if limit is None else max(0.0, limit - self.daily_used)

    @property
    def monthly_left(self) -> float | None:
        limit = self.monthly_limit
        return None if limit is None else max(0.0, limit - self.monthly_used)


def fmt_credits(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class Standing:
    """Everything the quota rules look at for one request, read in the reserving transaction."""

    usage: Usage
    guild_running: int
    blocked: bool
    last_request_at: float | None
    spent_today: float = 0.0  # bot-wide, only read when there is a global daily cap
    # Jobs accepted but not yet sent to crun: the member's (everywhere), the server's, the bot's.
    user_waiting: int = 0
    guild_waiting: int = 0
    total_waiting: int = 0


def when(unix: float) -> str:
    """A moment in a member's message: Discord shows it relative and in their own time zone."""
    return f"<t:{int(unix)}:R>"


def refusal(
    standing: Standing, *, guild_id: int, cost: float, policy: QuotaPolicy, now: float
) -> str | None:
    """Why this request may not take ``cost`` credits now, or None when it may. Pure: the store
    applies the answer inside the transaction that reads ``standing`` and holds the credits."""
    if standing.blocked:
        return (
            "You can't use the image bot here. If you think that's a mistake, ask a server admin."
        )
    last = standing.last_request_at
    if policy.cooldown_seconds > 0 and last is not None and now - last < policy.cooldown_seconds:
        ready = when(last + policy.cooldown_seconds)
        return f"Please wait a moment: you can start your next image {ready}."
    return (
        queue_full(standing, guild_id=guild_id, policy=policy)
        or _over_limit(standing.usage, cost)
        or _over_cap(standing.spent_today, cost, policy, now)
    )


def queue_full(standing: Standing, *, guild_id: int, policy: QuotaPolicy) -> str | None:
    """Why the line cannot take this request, or None. Running limits never refuse: a request
    over them waits its turn; only the lengths of the line do, each with its own message."""
    if standing.user_waiting >= policy.user_queue_limit:
        n = standing.user_waiting
        return (
            f"You already have {n} image{'s' if n != 1 else ''} waiting in line, the most one "
            "member may have. Wait for one of them to start, then try again; nothing was charged."
        )
    if guild_id and standing.guild_waiting >= policy.guild_queue_limit:
        return (
            f"This server already has {standing.guild_waiting:,} images waiting in line, the "
            "most one server may have. Try again once the line has moved; nothing was charged."
        )
    if standing.total_waiting >= policy.queue_limit:
        return (
            f"The bot already has {standing.total_waiting:,} images waiting in line, as many as "
            "it takes at once. Try again in a few minutes; nothing was charged."
        )
    return None


def _over_limit(usage: Usage, cost: float) -> str | None:
    for left, limit, window, resets in (
        (usage.daily_left, usage.daily_limit, "daily", usage.day_resets_at),
        (usage.monthly_left, usage.monthly_limit, "monthly", usage.month_resets_at),
    ):
        if left is not None and limit is not None and cost > left + 1e-9:
            return (
                f"This needs {fmt_credits(cost)} credits but you have {fmt_credits(left)} of your "
                f"{fmt_credits(limit)} {window} credits left. Your {window} quota resets "
                f"{when(resets)}; a server admin can grant you more. Fewer or smaller images "
                "cost less."
            )
    return None


def _over_cap(spent_today: float, cost: float, policy: QuotaPolicy, now: float) -> str | None:
    cap = policy.global_daily_cap
    if cap is None or spent_today + cost <= cap + 1e-9:
        return None
    return (
        "The bot has reached today's spending limit set by its owner. "
        f"It resets {when(day_window(now)[1])}."
    )
