"""One scheduler for every job's next step: a heap of due times, each entry a typed action.

Scheduling an action again for the same job supersedes the earlier entry (only the latest one
runs), and an action that comes due while its previous run for that job is still going is looked
at again shortly rather than run twice at once.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import random
from collections.abc import Callable, Coroutine
from typing import Any

from bot.jobs.background import TaskGroup


class Action(enum.Enum):
    SUBMIT = "submit"  # a refused submit's wait is over: back into the submit queue
    POLL = "poll"
    DELIVER = "deliver"


# Starts an action that came due: returns the step to run as a task, or None when it is done.
Starter = Callable[[Action, str], Coroutine[Any, Any, None] | None]

_BUSY_RECHECK = 0.5  # seconds until an action that was still running is looked at again


class Scheduler:
    def __init__(self, clock: Callable[[], float], work: TaskGroup) -> None:
        self._clock = clock
        self._work = work
        self._heap: list[tuple[float, int, Action, str]] = []
        self._scheduled: dict[tuple[Action, str], int] = {}  # sequence number of the live entry
        self._running: set[tuple[Action, str]] = set()
        self._seq = 0
        self._wake = asyncio.Event()

    def schedule(self, action: Action, job_id: str, due: float) -> None:
        self._seq += 1
        key = (action, job_id)
        self._scheduled[key] = self._seq
        heapq.heappush(self._heap, (due, self._seq, action, job_id))
        self._wake.set()

    def due(self, action: Action, job_id: str) -> float | None:
        """When the action is next due for the job; None when it is not scheduled."""
        seq = self._scheduled.get((action, job_id))
        return next((due for due, s, _, _ in self._heap if s == seq), None)

    def running(self, action: Action, job_id: str) -> bool:
        return (action, job_id) in self._running

    @property
    def idle(self) -> bool:
        """No step is running."""
        return not self._running

    @property
    def pending(self) -> int:
        """Actions scheduled and not yet started."""
        return len(self._scheduled)

    async def run(self, start: Starter) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                _, seq, action, job_id = heapq.heappop(self._heap)
                key = (action, job_id)
                if self._scheduled.get(key) != seq:
                    continue  # superseded by a later schedule of the same action
                del self._scheduled[key]
                self._dispatch(action, job_id, start)
            # A timer handle, not wait_for: this loop turns once per due poll, and wait_for
            # would create a task each time.
            timer = (
                asyncio.get_running_loop().call_later(self._heap[0][0] - now, self._wake.set)
                if self._heap
                else None
            )
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    def _dispatch(self, action: Action, job_id: str, start: Starter) -> None:
        key = (action, job_id)
        if key in self._running:
            # Still working on the previous run of this action: look again shortly.
            self.schedule(action, job_id, self._clock() + _BUSY_RECHECK)
            return
        step = start(action, job_id)
        if step is None:
            return
        self._running.add(key)
        task = self._work.spawn(step, name=f"{action.value}:{job_id}")
        task.add_done_callback(lambda _t: self._running.discard(key))


class Backoff:
    """Delays between retries: exponential in the attempt, capped, with jitter."""

    def __init__(self, *, base: float, cap: float, rng: random.Random) -> None:
        self._base = base
        self._cap = cap
        self._rng = rng

    def __call__(self, attempt: int) -> float:
        cap = min(self._cap, self._base * 2.0**attempt)
        return cap * (0.5 + self._rng.random() / 2)
