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
    user_concurrent: int = 2
    guild_concurrent: int = 10
    cooldown_seconds: float = 0.0


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
