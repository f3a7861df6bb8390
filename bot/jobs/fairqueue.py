"""The submit queue: round-robin across users, so one user's twelve jobs do not block everyone."""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import deque


class FairQueue:
    """Serves next the user who has waited longest since they were last served.

    A newcomer has never been served, so they go straight to the front of the rotation. Users with
    queued jobs are kept sorted by (last served, arrival); the served user moves to the end, so
    ``pop`` is a bisect plus a C-level list shift. A user's first queued job learns its place in
    line from a bisect too (the common case: members rarely queue several jobs); a later job's
    place is counted from the queue lengths, O(users), without replaying the rotation.
    """

    def __init__(self) -> None:
        self._by_user: dict[int, deque[str]] = {}
        self._owner: dict[str, int] = {}
        self._last_served: dict[int, int] = {}
        self._arrival: dict[int, int] = {}
        # (rank, user) of every user with queued jobs, sorted: the rotation
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
            bisect.insort(self._rotation, (self._rank(user_id), user_id))
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
            entry = (self._rank(user), user)
            del self._rotation[bisect.bisect_left(self._rotation, entry)]
        return True

    def pop(self) -> str | None:
        if not self._rotation:
            self._ready.clear()
            return None
        _, user = self._rotation.pop(0)
        q = self._by_user[user]
        job_id = q.popleft()
        del self._owner[job_id]
        self._last_served[user] = next(self._tick)
        if q:
            self._rotation.append((self._rank(user), user))  # the newest service: the last rank
        else:
            del self._by_user[user]
        if not self._by_user:
            self._ready.clear()
        return job_id

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def _users_in_turn(self) -> list[int]:
        return [user for _, user in self._rotation]

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
        if k == 0:  # served once every user ahead in the rotation has been served once
            return bisect.bisect_left(self._rotation, (mine, user)) + 1
        last, arrival = self._last_served, self._arrival  # locals: this loop runs per user
        ahead = 0
        for other, q in self._by_user.items():
            # Users ahead in the rotation are served k+1 times before our k-th job; others k.
            before = (last.get(other, -1), arrival[other]) < mine
            ahead += min(len(q), k + 1 if before else k)
        return ahead + 1
