"""The submit queue: round-robin across users, so one user's twelve jobs do not block everyone."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque


class FairQueue:
    """Serves next the user who has waited longest since they were last served.

    A newcomer has never been served, so they go straight to the front of the rotation.
    """

    def __init__(self) -> None:
        self._by_user: dict[int, deque[str]] = {}
        self._owner: dict[str, int] = {}
        self._last_served: dict[int, int] = {}
        self._arrival: dict[int, int] = {}
        self._tick = itertools.count()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._owner)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._owner

    def put(self, job_id: str, user_id: int) -> None:
        if job_id in self._owner:
            return
        if user_id not in self._by_user:
            self._by_user[user_id] = deque()
            self._arrival[user_id] = next(self._tick)
        self._by_user[user_id].append(job_id)
        self._owner[job_id] = user_id
        self._ready.set()

    def remove(self, job_id: str) -> bool:
        user = self._owner.pop(job_id, None)
        if user is None:
            return False
        q = self._by_user[user]
        q.remove(job_id)
        if not q:
            del self._by_user[user]
        return True

    def _rank(self, user: int, last_served: dict[int, int]) -> tuple[int, int]:
        return (last_served.get(user, -1), self._arrival[user])

    def pop(self) -> str | None:
        if not self._by_user:
            self._ready.clear()
            return None
        user = min(self._by_user, key=lambda u: self._rank(u, self._last_served))
        q = self._by_user[user]
        job_id = q.popleft()
        del self._owner[job_id]
        if not q:
            del self._by_user[user]
        self._last_served[user] = next(self._tick)
        if not self._by_user:
            self._ready.clear()
        return job_id

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def order(self) -> list[str]:
        """Job ids in the order they would be served (a dry run of pop)."""
        queues = {u: list(q) for u, q in self._by_user.items()}
        last = dict(self._last_served)
        tick = -1  # relative ticks; only the order matters
        big = max(last.values(), default=0) + 1
        out: list[str] = []
        while queues:
            user = min(queues, key=lambda u: self._rank(u, last))
            out.append(queues[user].pop(0))
            if not queues[user]:
                del queues[user]
            tick += 1
            last[user] = big + tick
        return out

    def position(self, job_id: str) -> int | None:
        """1-based place in line, or None when not queued."""
        if job_id not in self._owner:
            return None
        return self.order().index(job_id) + 1
