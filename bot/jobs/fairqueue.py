"""The submit queue: round-robin across users, so one user's twelve jobs do not block everyone."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque


class FairQueue:
    """Serves next the user who has waited longest since they were last served.

    A newcomer has never been served, so they go straight to the front of the rotation. Users are
    kept in a heap by (last served, arrival), so ``pop`` is O(log users); a job's place in line is
    counted from the queue lengths, O(users), without replaying the rotation.
    """

    def __init__(self) -> None:
        self._by_user: dict[int, deque[str]] = {}
        self._owner: dict[str, int] = {}
        self._last_served: dict[int, int] = {}
        self._arrival: dict[int, int] = {}
        # (rank, user); entries whose user left or was served since are stale and skipped
        self._rotation: list[tuple[tuple[int, int], int]] = []
        self._tick = itertools.count()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._owner)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._owner

    def _rank(self, user: int) -> tuple[int, int]:
        return (self._last_served.get(user, -1), self._arrival[user])

    def put(self, job_id: str, user_id: int) -> None:
        if job_id in self._owner:
            return
        if user_id not in self._by_user:
            self._by_user[user_id] = deque()
            self._arrival[user_id] = next(self._tick)
            heapq.heappush(self._rotation, (self._rank(user_id), user_id))
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
            del self._by_user[user]  # its heap entry goes stale and is skipped
        return True

    def _live(self, rank: tuple[int, int], user: int) -> bool:
        return user in self._by_user and self._rank(user) == rank

    def pop(self) -> str | None:
        while self._rotation and not self._live(*self._rotation[0]):
            heapq.heappop(self._rotation)
        if not self._rotation:
            self._ready.clear()
            return None
        _, user = heapq.heappop(self._rotation)
        q = self._by_user[user]
        job_id = q.popleft()
        del self._owner[job_id]
        self._last_served[user] = next(self._tick)
        if q:
            heapq.heappush(self._rotation, (self._rank(user), user))
        else:
            del self._by_user[user]
        if not self._by_user:
            self._ready.clear()
        return job_id

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def _users_in_turn(self) -> list[int]:
        return sorted(self._by_user, key=self._rank)

    def order(self) -> list[str]:
        """Job ids in the order they would be served: round k serves every user's k-th job."""
        users = self._users_in_turn()
        depth = max((len(self._by_user[u]) for u in users), default=0)
        return [
            self._by_user[u][k] for k in range(depth) for u in users if k < len(self._by_user[u])
        ]

    def position(self, job_id: str) -> int | None:
        """1-based place in line, or None when not queued."""
        user = self._owner.get(job_id)
        if user is None:
            return None
        k = self._by_user[user].index(job_id)
        mine = self._rank(user)
        ahead = 0
        for other, q in self._by_user.items():
            # Users ahead in the rotation are served k+1 times before our k-th job; others k.
            ahead += min(len(q), k + 1 if self._rank(other) < mine else k)
        return ahead + 1
