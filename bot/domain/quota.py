"""Costs, limits and quota windows: pure rules, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.models import GenerationRequest, Mode
from bot.domain.text import Text, t, tn
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
) -> Text | None:
    """Why this request may not take ``cost`` credits now, or None when it may. Pure: the store
    applies the answer inside the transaction that reads ``standing`` and holds the credits."""
    if standing.blocked:
        return t(
            "You can't use the image bot here. If you think that's a mistake, ask a server admin."
        )
    last = standing.last_request_at
    if policy.cooldown_seconds > 0 and last is not None and now - last < policy.cooldown_seconds:
        ready = when(last + policy.cooldown_seconds)
        return t("Please wait a moment: you can start your next image {when}.", when=ready)
    return (
        queue_full(standing, guild_id=guild_id, policy=policy)
        or _over_limit(standing.usage, cost)
        or _over_cap(standing.spent_today, cost, policy, now)
    )


def queue_full(standing: Standing, *, guild_id: int, policy: QuotaPolicy) -> Text | None:
    """Why the line cannot take this request, or None. Running limits never refuse: a request
    over them waits its turn; only the lengths of the line do, each with its own message."""
    if standing.user_waiting >= policy.user_queue_limit:
        return tn(
            "You already have {count} image waiting in line, the most one member may have. "
            "Wait for it to start, then try again; nothing was charged.",
            "You already have {count} images waiting in line, the most one member may have. "
            "Wait for one of them to start, then try again; nothing was charged.",
            count=standing.user_waiting,
        )
    if guild_id and standing.guild_waiting >= policy.guild_queue_limit:
        return t(
            "This server already has {count} images waiting in line, the most one server may "
            "have. Try again once the line has moved; nothing was charged.",
            count=standing.guild_waiting,
        )
    if standing.total_waiting >= policy.queue_limit:
        return t(
            "The bot already has {count} images waiting in line, as many as it takes at once. "
            "Try again in a few minutes; nothing was charged.",
            count=standing.total_waiting,
        )
    return None


def _over_limit(usage: Usage, cost: float) -> Text | None:
    daily, monthly = usage.daily_left, usage.monthly_left
    if daily is not None and usage.daily_limit is not None and cost > daily + 1e-9:
        return t(
            "This needs {cost} credits but you have {left} of your {limit} daily credits left. "
            "Your daily quota resets {when}; a server admin can grant you more. Fewer or "
            "smaller images cost less.",
            cost=float(cost),
            left=float(daily),
            limit=float(usage.daily_limit),
            when=when(usage.day_resets_at),
        )
    if monthly is not None and usage.monthly_limit is not None and cost > monthly + 1e-9:
        return t(
            "This needs {cost} credits but you have {left} of your {limit} monthly credits "
            "left. Your monthly quota resets {when}; a server admin can grant you more. Fewer "
            "or smaller images cost less.",
            cost=float(cost),
            left=float(monthly),
            limit=float(usage.monthly_limit),
            when=when(usage.month_resets_at),
        )
    return None


def _over_cap(spent_today: float, cost: float, policy: QuotaPolicy, now: float) -> Text | None:
    cap = policy.global_daily_cap
    if cap is None or spent_today + cost <= cap + 1e-9:
        return None
    return t(
        "The bot has reached today's spending limit set by its owner. It resets {when}.",
        when=when(day_window(now)[1]),
    )
