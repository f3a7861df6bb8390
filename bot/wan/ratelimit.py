"""One limiter for all crun requests: a strict sliding window, smooth spacing, priority lanes.

crun's limits are undocumented, so the bot promises only what it can keep: never more than
``rate`` requests in any one-second window *as crun sees them*. A request takes its place in the
window when it is really sent, not when it is allowed to go: a granted request that is still
waiting (for a connection, for the event loop) holds its slot until it is sent, so a late request
can never share a second with the ones granted after it. A small margin covers the jitter between
our send and crun's receipt. Routine work (submits, uploads, scheduled polls) is also evenly
spaced, so it never bursts. A poll woken by a callback is *urgent*: the result is ready and a
member is waiting, so it jumps the line, skips the spacing (never the window), and may use
``reserve`` slots per window that routine work leaves free for it.

Several processes on one PostgreSQL database share one budget (``shared``, see
``shared_budget``): after its local grant, each request also takes the next slot of a schedule
kept in the database, spaced so that all processes together send at most ``rate`` per window, and
waits for it. That schedule dates *grants*, not sends: a request held up between its grant and
its send (by its event loop, a connection) can move closer to the next process's, which the
``margin`` in the spacing absorbs for short delays. The local rules above still hold within each
process, and urgent requests jump only their own process's line. A 429 in any process halves
the shared rate for all; it recovers with time. Without a shared budget (SQLite: one process) or
while the database does not answer, the limiter is this process's alone.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bot.wan.shared_budget import BudgetStore, SharedBudget


@dataclass(eq=False)
class _Waiter:
    urgent: bool
    turn: asyncio.Event = field(default_factory=asyncio.Event)


class Slot:
    """A granted request. It counts as "in the window from now on" until :meth:`sent` dates it."""

    def __init__(self, on_sent: Callable[[], float]) -> None:
        self._on_sent = on_sent
        self.sent_at: float | None = None
        # When the shared budget granted it, on the database's clock; None without one.
        self.shared_at: float | None = None

    def sent(self) -> None:
        """The request went out now. Idempotent: only the first call counts."""
        if self.sent_at is None:
            self.sent_at = self._on_sent()


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class RateLimiter:
    """At most ``rate`` requests in any window of ``1 s + margin``; routine ones evenly spaced.

    On a 429 the limiter pauses everyone until ``Retry-After`` (or a backoff) and halves its rate;
    every success afterwards wins a little of it back.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] | None = None,
        min_rate: float = 0.2,
        reserve: int = 0,
        margin: float = 0.05,
        shared: SharedBudget | None = None,
    ) -> None:
        self.max_rate = rate
        self.rate = rate
        self.min_rate = min(min_rate, rate)
        self.reserve = reserve
        self.margin = margin
        self._clock = clock or _loop_time  # read at call time: may be built outside a loop
        self._sent: list[float] = []  # send times still in the window, sorted
        self._pending = 0  # granted, not sent yet: each holds a slot from "now" on
        self._last = -math.inf
        self._paused_until = 0.0
        self._urgent: deque[_Waiter] = deque()
        self._routine: deque[_Waiter] = deque()
        self.penalties = 0
        self.shared = shared

    def sharing(self, store: BudgetStore) -> RateLimiter:
        """The same limiter, fresh, also keeping to ``store``'s budget shared by all processes."""
        return RateLimiter(
            self.max_rate,
            clock=self._clock,
            min_rate=self.min_rate,
            reserve=self.reserve,
            margin=self.margin,
            shared=SharedBudget(store),
        )

    # --- the rule (pure, so it can be tested with a fake clock) ---------------------------------

    @property
    def window(self) -> float:
        # Below 1/s the window stretches so that "one request" is still spread over 1/rate.
        return max(1.0, 1.0 / self.rate) + self.margin

    @property
    def limit(self) -> int:
        return max(1, math.floor(self.rate))

    def delay(self, now: float, *, urgent: bool = False) -> float:
        """Seconds until a request of this kind may go out (0 now; ``inf``: when one is sent)."""
        window = self.window
        del self._sent[: bisect.bisect_right(self._sent, now - window)]
        limit = self.limit
        if not urgent:
            limit -= min(self.reserve, limit - 1)
        at = max(now, self._paused_until)
        held = len(self._sent) + self._pending
        if held >= limit:
            # Sent requests leave the window oldest first; unsent ones only after they are sent.
            leaving = held - limit
            if leaving >= len(self._sent):
                return math.inf
            at = max(at, self._sent[leaving] + window)
        if not urgent:
            at = max(at, self._last + 1.0 / self.rate)
        return at - now

    def record(self, now: float) -> None:
        """A request granted and sent at ``now``."""
        self._last = now
        bisect.insort(self._sent, now)

    def grant(self, now: float) -> Slot:
        """Bookkeeping for a request allowed at ``now``; its slot is dated when it is sent."""
        self._last = now
        self._pending += 1
        return Slot(self._sent_one)

    def _sent_one(self) -> float:
        now = self._clock()
        self._pending -= 1
        bisect.insort(self._sent, now)
        self._kick()  # a waiter may have been waiting for this send to date its slot
        return now

    # --- waiting --------------------------------------------------------------------------------

    def _head(self) -> _Waiter | None:
        if self._urgent:
            return self._urgent[0]
        return self._routine[0] if self._routine else None

    def _kick(self) -> None:
        head = self._head()
        if head is not None:
            head.turn.set()

    async def acquire(self, *, urgent: bool = False) -> Slot:
        """Wait for a slot. Urgent callers go before every routine caller, in arrival order.

        The caller must call ``sent()`` on the slot when the request goes out (or fails to);
        :meth:`slot` does that for you.
        """
        granted = await self._acquire_local(urgent)
        if self.shared is None:
            return granted
        try:
            await self._wait_shared(granted)
        except BaseException:
            granted.sent()  # cancelled while waiting: give the slot back, dated now
            raise
        return granted

    async def _wait_shared(self, granted: Slot) -> None:
        """Take the next slot of the budget all processes share and wait for its time."""
        assert self.shared is not None
        grant = await self.shared.take(max_rate=self.max_rate, margin=self.margin)
        if grant is None:  # unreachable: this process's limiter alone decides
            return
        granted.shared_at = grant.at
        self.rate = min(self.max_rate, max(self.min_rate, grant.rate))
        if grant.wait > 0:
            await asyncio.sleep(grant.wait)

    async def _acquire_local(self, urgent: bool) -> Slot:
        me = _Waiter(urgent)
        lane = self._urgent if urgent else self._routine
        lane.append(me)
        try:
            while True:
                me.turn.clear()
                if self._head() is not me:
                    await me.turn.wait()  # kicked when we reach the front
                    continue
                now = self._clock()
                wait = self.delay(now, urgent=urgent)
                if wait <= 0:
                    return self.grant(now)
                # If an urgent caller overtakes us meanwhile, we find out when this wait ends.
                # (asyncio.timeout, not wait_for: wait_for can swallow a cancellation on 3.11.)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if math.isinf(wait) else wait):
                        await me.turn.wait()
        finally:
            if me in lane:
                lane.remove(me)
            self._kick()

    @contextlib.asynccontextmanager
    async def slot(self, *, urgent: bool = False) -> AsyncIterator[Slot]:
        """A slot for one request; dated when the body calls ``sent()``, else when it ends."""
        granted = await self.acquire(urgent=urgent)
        try:
            yield granted
        finally:
            granted.sent()

    # --- feedback from crun ---------------------------------------------------------------------

    def penalize(self, retry_after: float | None) -> None:
        """crun said 429: pause and halve the rate."""
        self.penalties += 1
        now = self._clock()
        pause = retry_after if retry_after is not None else min(30.0, 2.0**self.penalties)
        self._paused_until = max(self._paused_until, now + pause)
        self.rate = max(self.min_rate, self.rate / 2)
        self._last = max(self._last, now)
        if self.shared is not None:
            self.shared.slow(max_rate=self.max_rate, min_rate=self.min_rate, pause=pause)
        self._kick()

    def reward(self) -> None:
        """A request went through: recover 10% of the lost rate (the shared rate recovers with
        time, and each shared grant brings this one in line with it)."""
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + (self.max_rate - self.rate) * 0.1 + 0.01)
        if self.rate >= self.max_rate:
            self.penalties = 0
