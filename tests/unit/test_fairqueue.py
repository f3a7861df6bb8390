"""The fair queue on its own: servers take turns, then members; running limits skip a member or
server without costing its turn; places; the line after a restart."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.jobs.fairqueue import FairQueue


@dataclass
class Full:
    """A gate: these members and servers are at their running limits."""

    users: set[int] = field(default_factory=set)
    guilds: set[int] = field(default_factory=set)

    def user_full(self, user_id: int) -> bool:
        return user_id in self.users

    def guild_full(self, guild: int) -> bool:
        return guild in self.guilds


def drain(q: FairQueue) -> list[str]:
    return list(iter(q.pop, None))


def test_servers_take_turns_so_a_big_server_cannot_starve_a_small_one() -> None:
    q = FairQueue()
    for member in range(10):  # a big server: ten members, two requests each
        q.put(f"big{member}a", member, guild_id=1)
        q.put(f"big{member}b", member, guild_id=1)
    q.put("small0", 100, guild_id=2)  # a small server asks after all of them
    q.put("small1", 100, guild_id=2)
    assert q.position("small0") == 2
    assert drain(q)[:4] == ["big0a", "small0", "big1a", "small1"]


def test_members_take_turns_within_a_server() -> None:
    q = FairQueue()
    for i in range(12):
        q.put(f"flood{i}", 1, guild_id=7)
    q.put("one", 2, guild_id=7)
    q.put("other", 3, guild_id=7)
    assert q.order()[:4] == ["flood0", "one", "other", "flood1"]
    assert q.position("one") == 2


def test_dms_and_the_terminal_share_one_pseudo_server() -> None:
    q = FairQueue()
    q.put("dm-a", 1)  # guild None
    q.put("dm-b", 2)
    q.put("cli", 0)
    q.put("server", 3, guild_id=9)
    # Three direct jobs are one server's worth: the real server's job goes second.
    assert q.order() == ["dm-a", "server", "dm-b", "cli"]


def test_a_member_at_the_running_limit_is_skipped_without_losing_the_turn() -> None:
    q = FairQueue()
    q.put("a1", 1, guild_id=5)
    q.put("a2", 1, guild_id=5)
    q.put("b1", 2, guild_id=5)
    q.put("b2", 2, guild_id=5)
    q.put("c1", 3, guild_id=5)
    assert q.pop() == "a1"
    assert q.pop(Full(users={2})) == "c1"  # b is at its limit: c goes
    assert q.pop(Full(users={2})) == "a2"
    assert q.pop() == "b1"  # b has room again and is served first: its turn was kept
    assert q.pop() == "b2"
    assert q.pop(Full(users={1, 2, 3})) is None


def test_a_server_at_the_running_limit_is_skipped_without_losing_the_turn() -> None:
    q = FairQueue()
    for i in range(3):
        q.put(f"x{i}", 10 + i, guild_id=1)
        q.put(f"y{i}", 20 + i, guild_id=2)
        q.put(f"z{i}", 30 + i, guild_id=3)
    assert q.pop() == "x0"
    assert q.pop(Full(guilds={2})) == "z0"
    assert q.pop(Full(guilds={2})) == "x1"
    assert q.pop() == "y0"  # server 2 has room: it goes first, having waited longest
    assert q.pop(Full(guilds={1, 2, 3})) is None
    assert len(q) == 5


def test_a_newcomer_is_not_stuck_behind_a_flood() -> None:
    q = FairQueue()
    for i in range(12):
        q.put(f"a{i}", 1, guild_id=4)
    assert q.pop() == "a0"
    q.put("late", 2, guild_id=4)
    assert q.position("late") == 1
    assert q.pop() == "late"


def test_removing_a_job_moves_those_behind_it_up() -> None:
    q = FairQueue()
    for job, user in (("a", 1), ("b", 2), ("c", 3)):
        q.put(job, user, guild_id=1)
    assert q.remove("b")
    assert not q.remove("b")
    assert q.position("c") == 2
    assert q.order() == ["a", "c"]


def test_changes_are_reported() -> None:
    seen: list[int] = []
    q = FairQueue(on_change=lambda: seen.append(len(q)))
    q.put("a", 1)
    q.put("a", 1)  # already waiting: no change
    q.put("b", 2)
    q.pop()
    q.remove("b")
    assert seen == [1, 2, 1, 0]


def test_the_line_comes_back_in_its_order_after_a_restart() -> None:
    """The engine resumes jobs in creation order: those at crun mark their member and server
    as served, those waiting are queued again. The line is the one before the restart."""
    created = [  # (job, member, server) in creation order
        ("a1", 1, 1), ("a2", 1, 1), ("a3", 1, 1), ("b1", 2, 1), ("b2", 2, 1),
        ("c1", 3, 2), ("d1", 4, 1), ("c2", 3, 2),
    ]  # fmt: skip
    before = FairQueue()
    for job, member, server in created:
        before.put(job, member, server)
    at_crun = {before.pop(), before.pop()}  # one slot each for servers 1 and 2
    line = before.order()

    after = FairQueue()
    for job, member, server in created:
        if job in at_crun:
            after.served(member, server)
        else:
            after.put(job, member, server)
    assert after.order() == line
    assert drain(after) == line


def test_places_of_thousands_of_jobs_agree_with_the_order() -> None:
    # How fast this is, is measured by bench/busy_servers.py, not asserted here.
    q = FairQueue()
    for i in range(3000):  # 30 servers of 20 members, five jobs each
        server = i % 30
        q.put(f"j{i}", server * 100 + (i // 30) % 20, guild_id=server)
    places = [q.position(f"j{i}") or 0 for i in range(3000)]
    assert sorted(places) == list(range(1, 3001))
    order = q.order()
    assert [q.position(j) for j in order] == list(range(1, 3001))


def test_a_long_running_queue_forgets_members_and_servers_it_no_longer_needs() -> None:
    q = FairQueue()
    q.put("stays", 0, guild_id=0)
    for i in range(20_000):  # 20,000 members of 5,000 servers, each served once
        q.put(f"j{i}", 1 + i, guild_id=1 + i % 5000)
        assert q.pop() is not None
    assert len(q) <= 1
    assert len(q._members) < 1000  # idle servers' histories are dropped in bulk
    assert len(q._guilds._served) < 1000


class ReferenceLine:
    """The rule written as plainly as possible: the server least recently served (never-served
    servers first, in arrival order) that has a member with room; in it, the member least
    recently served likewise. Histories are kept forever."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[int, int], list[str]] = {}
        self.last: dict[object, int] = {}
        self.arrival: dict[object, int] = {}
        self.tick = 0

    def _next(self) -> int:
        self.tick += 1
        return self.tick

    def _servers(self) -> set[int]:
        return {g for g, _ in self.jobs}

    def put(self, job: str, user: int, guild: int) -> None:
        if any(job in q for q in self.jobs.values()):
            return
        if guild not in self._servers():
            self.arrival[guild] = self._next()
        if (guild, user) not in self.jobs:
            self.arrival[(guild, user)] = self._next()
            self.jobs[(guild, user)] = []
        self.jobs[(guild, user)].append(job)

    def remove(self, job: str) -> None:
        for key, q in list(self.jobs.items()):
            if job in q:
                q.remove(job)
                if not q:
                    del self.jobs[key]

    def _rank(self, key: object) -> tuple[int, int]:
        return (self.last.get(key, -1), self.arrival[key])

    def served(self, user: int, guild: int) -> None:
        tick = self._next()
        self.last[guild] = self.last[(guild, user)] = tick

    def pop(self, gate: Full | None = None) -> str | None:
        gate = gate or Full()
        for g in sorted(self._servers(), key=self._rank):
            if g in gate.guilds:
                continue
            members = sorted((k for k in self.jobs if k[0] == g), key=self._rank)
            for key in members:
                if key[1] in gate.users:
                    continue
                job = self.jobs[key].pop(0)
                if not self.jobs[key]:
                    del self.jobs[key]
                self.served(key[1], g)
                return job
        return None


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 30), st.integers(0, 5), st.integers(0, 3)),
        st.tuples(
            st.just("pop"), st.just(0), st.sets(st.integers(0, 5)), st.sets(st.integers(0, 3))
        ),
        st.tuples(st.just("remove"), st.integers(0, 30), st.just(0), st.just(0)),
        st.tuples(st.just("served"), st.just(0), st.integers(0, 5), st.integers(0, 3)),
    ),
    max_size=80,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_ops)
def test_the_queue_follows_the_reference_rule(ops: list[tuple[str, int, object, object]]) -> None:
    q, ref = FairQueue(), ReferenceLine()
    for op, job, a, b in ops:
        if op == "put":
            assert isinstance(a, int) and isinstance(b, int)
            q.put(f"j{job}", a, b)
            ref.put(f"j{job}", a, b)
        elif op == "remove":
            q.remove(f"j{job}")
            ref.remove(f"j{job}")
        elif op == "served":
            assert isinstance(a, int) and isinstance(b, int)
            q.served(a, b)
            ref.served(a, b)
        else:
            assert isinstance(a, set) and isinstance(b, set)
            gate = Full(users=a, guilds=b)
            assert q.pop(gate) == ref.pop(gate)
        # The line agrees with what popping would do, and each place with the line.
        order = q.order()
        assert len(order) == len(q)
        assert [q.position(j) for j in order] == list(range(1, len(order) + 1))
        dry = copy.deepcopy(ref)
        assert order == [dry.pop() for _ in range(len(order))]
