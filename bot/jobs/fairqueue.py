"""The submit queue: fair across servers, then across the members of each server.

Servers take turns (DMs and the terminal count as one pseudo-server, key 0), and within a server
its members take turns, so one big server cannot starve a small one and one member's twelve
requests do not hold up the next member. A member or server at its running limit is skipped
without losing its turn: it is served first once it has room again.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

DIRECT = 0  # the pseudo-server of DMs and terminal jobs

_PRUNE_FLOOR = 256  # forgotten histories kept before the first clean-up


class Gate(Protocol):
    """Who may start another job at crun now (JobRecords counts what runs)."""

    def user_full(self, user_id: int) -> bool: ...

    def guild_full(self, guild: int) -> bool: ...


class _Open:
    def user_full(self, user_id: int) -> bool:
        return False

    def guild_full(self, guild: int) -> bool:
        return False


OPEN: Gate = _Open()


def guild_key(guild_id: int | None) -> int:
    return guild_id or DIRECT


class Rotation:
    """Whose turn it is: keys with waiting jobs, the least recently served first; keys never
    served come first, in the order they arrived.

    Kept sorted by (last served, arrival), so the served key moves to the end (a bisect plus a
    C-level list shift) and a key's place is a bisect. A key keeps its last-served mark while it
    has nothing waiting, so coming back does not make it new again (a member who asks again the
    moment a job starts cannot jump ahead of one still waiting). Once there are many such marks,
    those older than every waiting key's are forgotten: they could only put a key ahead of the
    keys already waiting, and a new key goes there too.
    """

    def __init__(self) -> None:
        self._sorted: list[tuple[int, int, int]] = []  # (last served, arrival, key)
        self._rank: dict[int, tuple[int, int]] = {}  # keys in the rotation
        self._served: dict[int, int] = {}  # last-served marks, also of keys not in it
        self._prune_at = _PRUNE_FLOOR

    def __len__(self) -> int:
        return len(self._rank)

    def __contains__(self, key: object) -> bool:
        return key in self._rank

    def __iter__(self) -> Iterator[int]:
        return (key for _, _, key in self._sorted)

    def join(self, key: int, tick: int) -> None:
        rank = (self._served.get(key, -1), tick)
        self._rank[key] = rank
        bisect.insort(self._sorted, (*rank, key))

    def leave(self, key: int) -> None:
        rank = self._rank.pop(key)
        del self._sorted[bisect.bisect_left(self._sorted, (*rank, key))]
        if len(self._served) > self._prune_at:
            self._prune()

    def serve(self, key: int, tick: int) -> None:
        """``key`` was just served: it goes to the end of the rotation (if it is in it)."""
        self._served[key] = tick
        rank = self._rank.get(key)
        if rank is not None:
            del self._sorted[bisect.bisect_left(self._sorted, (*rank, key))]
            self._rank[key] = (tick, rank[1])
            bisect.insort(self._sorted, (tick, rank[1], key))

    def remember(self, key: int, tick: int) -> None:
        """``key`` was last served at ``tick`` (restoring a line kept elsewhere)."""
        self._served[key] = tick

    def index(self, key: int) -> int:
        """0-based place of ``key`` in the rotation."""
        return bisect.bisect_left(self._sorted, (*self._rank[key], key))

    def before(self, a: int, b: int) -> bool:
        return (*self._rank[a], a) < (*self._rank[b], b)

    def _prune(self) -> None:
        served_in = [rank[0] for rank in self._rank.values() if rank[0] >= 0]
        floor = min(served_in, default=None)
        for key, tick in list(self._served.items()):
            if key not in self._rank and (floor is None or tick < floor):
                del self._served[key]
        self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._served))


class FairQueue:
    """Jobs waiting for a slot at crun. ``on_change`` is called whenever the line changes."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._on_change = on_change or (lambda: None)
        self._clear()

    def _clear(self, first_tick: int = 0) -> None:
        self._jobs: dict[tuple[int, int], deque[str]] = {}  # (server, member) -> their jobs
        self._where: dict[str, tuple[int, int]] = {}
        self._per_guild: dict[int, int] = {}  # jobs waiting per server
        self._guilds = Rotation()
        self._members: dict[int, Rotation] = {}  # per server, kept a while when idle
        self._prune_members_at = _PRUNE_FLOOR
        self._tick = itertools.count(first_tick)
        self._restored: tuple[object, ...] | None = None

    def restore(
        self,
        waiting: Sequence[tuple[str, int, int | None]],
        guild_marks: Mapping[int, int],
        member_marks: Mapping[tuple[int, int], int],
    ) -> None:
        """Become the line kept in the database (bot/store/line.py): ``waiting`` (job, member,
        server) oldest first, and when each server and member was last served (larger is more
        recent). Unchanged since the last restore: nothing happens (and nobody is told)."""
        state = (
            tuple(waiting),
            tuple(sorted(guild_marks.items())),
            tuple(sorted(member_marks.items())),
        )
        if state == self._restored:
            return
        marks = [*guild_marks.values(), *member_marks.values()]
        self._clear(first_tick=max(marks, default=-1) + 1)  # arrivals count after every mark
        self._restored = state
        for g, tick in guild_marks.items():
            self._guilds.remember(g, tick)
        for (g, user), tick in member_marks.items():
            self._members.setdefault(g, Rotation()).remember(user, tick)
        for job_id, user_id, guild_id in waiting:
            self._add(job_id, user_id, guild_id)
        self._on_change()

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where

    def user_of(self, job_id: str) -> int | None:
        where = self._where.get(job_id)
        return None if where is None else where[1]

    def key_of(self, job_id: str) -> tuple[int, int] | None:
        """(server key, member) of a waiting job."""
        return self._where.get(job_id)

    def put(self, job_id: str, user_id: int, guild_id: int | None = None) -> None:
        if job_id in self._where:
            return
        self._add(job_id, user_id, guild_id)
        self._on_change()

    def _add(self, job_id: str, user_id: int, guild_id: int | None) -> None:
        self._restored = None  # changed here: the next restore is news
        g = guild_key(guild_id)
        key = (g, user_id)
        if g not in self._guilds:
            self._guilds.join(g, next(self._tick))
        members = self._members.setdefault(g, Rotation())
        if user_id not in members:
            members.join(user_id, next(self._tick))
        self._jobs.setdefault(key, deque()).append(job_id)
        self._where[job_id] = key
        self._per_guild[g] = self._per_guild.get(g, 0) + 1

    def remove(self, job_id: str) -> bool:
        key = self._where.get(job_id)
        if key is None:
            return False
        self._jobs[key].remove(job_id)
        self._forget(job_id, key)
        self._on_change()
        return True

    def pop(self, gate: Gate = OPEN) -> str | None:
        """The next job to start: the first server in turn with room, its first member in turn
        with room. Those skipped keep their turn. None when nobody waiting may start now."""
        for g in self._guilds:
            if gate.guild_full(g):
                continue
            for user in self._members[g]:
                if not gate.user_full(user):
                    return self._take(g, user)
        return None

    def served(self, user_id: int, guild_id: int | None) -> None:
        """A job of theirs went to crun elsewhere (resumed after a restart): their turn passes."""
        self._restored = None
        g = guild_key(guild_id)
        tick = next(self._tick)
        self._guilds.serve(g, tick)
        self._members.setdefault(g, Rotation()).serve(user_id, tick)

    def _take(self, g: int, user: int) -> str:
        job_id = self._jobs[(g, user)].popleft()
        tick = next(self._tick)
        self._guilds.serve(g, tick)
        self._members[g].serve(user, tick)
        self._forget(job_id, (g, user))
        self._on_change()
        return job_id

    def _forget(self, job_id: str, key: tuple[int, int]) -> None:
        self._restored = None
        del self._where[job_id]
        g, user = key
        if not self._jobs[key]:
            del self._jobs[key]
            self._members[g].leave(user)
        self._per_guild[g] -= 1
        if not self._per_guild[g]:
            del self._per_guild[g]
            self._guilds.leave(g)
            if len(self._members) > self._prune_members_at:
                # Idle servers' member histories: forgotten in bulk, so a long-running bot does
                # not keep one per server it ever served (and a busy one keeps its own).
                for idle in [h for h in self._members if h not in self._per_guild]:
                    del self._members[idle]
                self._prune_members_at = max(_PRUNE_FLOOR, 2 * len(self._members))

    # --- the line as members see it ---------------------------------------------------------

    def _server_line(self, g: int) -> list[str]:
        """A server's jobs in the order it would be served: round k takes every member's k-th."""
        return _rounds([list(self._jobs[(g, user)]) for user in self._members[g]])

    def order(self) -> list[str]:
        """Every waiting job in the order it would be served if no running limit held anyone
        back: servers in turn, each serving its next job in its own order. O(jobs)."""
        return _rounds([self._server_line(g) for g in self._guilds])

    def position(self, job_id: str) -> int | None:
        """1-based place in ``order()``, or None when not waiting. Counted from queue lengths
        (O(members of its server + servers)) without building the line; a bisect for the
        common case of a member's first job in a server's first turn."""
        key = self._where.get(job_id)
        if key is None:
            return None
        g, user = key
        members = self._members[g]
        k = self._jobs[key].index(job_id)
        if k == 0:
            turn = members.index(user)  # served once every member ahead was served once
        else:
            turn = sum(
                min(len(self._jobs[(g, other)]), k + 1 if members.before(other, user) else k)
                for other in members
            )
        if turn == 0:
            return self._guilds.index(g) + 1
        guilds = self._guilds
        return 1 + sum(
            min(n, turn + 1 if guilds.before(h, g) else turn) for h, n in self._per_guild.items()
        )


def _rounds(lines: list[list[str]]) -> list[str]:
    """Round-robin over ``lines`` (in their turn order): round k takes every line's k-th item."""
    out: list[str] = []
    k = 0
    active = lines
    while active:
        out.extend(line[k] for line in active)
        k += 1
        active = [line for line in active if len(line) > k]
    return out
