"""The crun budget every process shares, as one process's limiter uses it.

Several bot processes on one PostgreSQL database must keep to ``API_RATE_LIMIT`` *together*,
and a 429 seen by one must slow them all. The store keeps the budget (``bot.store.budget``: one
row, one atomic statement per slot, the database's clock so hosts agree); this module is the
limiter's side of it. It never lets the budget stop the bot: each round trip has a timeout, and
when the database does not answer the process falls back to its own limiter (the rate then holds
per process, not for all), says so once, and asks again after ``retry_in`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Grant(Protocol):
    """A slot the shared budget granted."""

    @property
    def at(self) -> float:
        """When the request may go, on the budget's clock (epoch seconds)."""
        ...

    @property
    def wait(self) -> float:
        """Seconds from the moment the budget answered until ``at``."""
        ...

    @property
    def rate(self) -> float:
        """The shared rate in force (below the configured one after a 429)."""
        ...


class BudgetStore(Protocol):
    """Where the shared budget lives (``bot.store.budget.CrunBudgetRepository``)."""

    async def take(self, *, max_rate: float, margin: float) -> Grant:
        """Take the next slot of the shared schedule."""
        ...

    async def slow(self, *, max_rate: float, min_rate: float, pause: float) -> float:
        """A 429: pause every process for ``pause`` s and halve the shared rate; the new rate."""
        ...


class SharedBudget:
    """A ``BudgetStore`` behind a timeout and a fallback: ``None`` means "use the local limiter"."""

    def __init__(
        self,
        store: BudgetStore,
        *,
        timeout: float = 2.0,
        retry_in: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.retry_in = retry_in
        self._clock = clock
        self._down_until: float | None = None  # set while the budget is unreachable
        self._reports: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> bool:
        return self._down_until is None

    async def take(self, *, max_rate: float, margin: float) -> Grant | None:
        """The next shared slot, or None when the budget cannot be reached (in time)."""
        if self._down_until is not None and self._clock() < self._down_until:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                grant = await self.store.take(max_rate=max_rate, margin=margin)
        except Exception as exc:  # any failure means the same: keep to the local limiter
            self._lost(exc)
            return None
        self._found()
        return grant

    def slow(self, *, max_rate: float, min_rate: float, pause: float) -> None:
        """Tell every process about a 429, in the background (the caller is not held up)."""
        if self._down_until is not None and self._clock() < self._down_until:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop, no request in flight: nothing to share
            return
        task = loop.create_task(self._slow(max_rate=max_rate, min_rate=min_rate, pause=pause))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _slow(self, *, max_rate: float, min_rate: float, pause: float) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                rate = await self.store.slow(max_rate=max_rate, min_rate=min_rate, pause=pause)
        except Exception as exc:
            self._lost(exc)
            return
        self._found()
        log.info("crun said 429: shared crun rate now %.2f/s, paused %.1fs", rate, pause)

    async def settle(self) -> None:
        """Wait for the 429 reports still on their way (tests; shutdown)."""
        while self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)

    def _lost(self, exc: Exception) -> None:
        if self._down_until is None:
            log.warning(
                "shared crun budget unreachable (%s: %s); this process keeps to API_RATE_LIMIT "
                "on its own (all processes together may exceed it) and retries every %gs",
                type(exc).__name__,
                exc,
                self.retry_in,
            )
        self._down_until = self._clock() + self.retry_in

    def _found(self) -> None:
        if self._down_until is not None:
            log.warning("shared crun budget reachable again; all processes share one rate")
        self._down_until = None
