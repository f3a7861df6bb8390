"""A token bucket for all crun requests, which slows down when crun says 429."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class RateLimiter:
    """At most ``rate`` requests per second, evenly spaced: no bursts at all.

    On a 429 the limiter pauses everyone until ``Retry-After`` (or a backoff) and halves its rate;
    every success afterwards wins a little of it back.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] | None = None,
        min_rate: float = 0.2,
    ) -> None:
        self.max_rate = rate
        self.rate = rate
        self.min_rate = min(min_rate, rate)
        self._capacity = 1.0  # no bursts: crun's limits are undocumented, so stay smooth
        self._tokens = self._capacity
        self._clock = clock or asyncio.get_running_loop().time
        self._updated = self._clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.penalties = 0

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        # One waiter at a time keeps the order fair and the bucket arithmetic simple.
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    def penalize(self, retry_after: float | None) -> None:
        """crun said 429: pause and halve the rate."""
        self.penalties += 1
        now = self._clock()
        pause = retry_after if retry_after is not None else min(30.0, 2.0**self.penalties)
        self._paused_until = max(self._paused_until, now + pause)
        self.rate = max(self.min_rate, self.rate / 2)
        self._tokens = 0.0
        self._updated = now

    def reward(self) -> None:
        """A request went through: recover 10% of the lost rate."""
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + (self.max_rate - self.rate) * 0.1 + 0.01)
        if self.rate >= self.max_rate:
            self.penalties = 0
