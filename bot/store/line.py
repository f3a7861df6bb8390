"""The waiting line shared by every process on one database.

A queued job waits in the jobs table itself. Whose turn it is comes from ``line_marks``: when
each server (``user_id = -1``) and each member of a server was last served. A claim reads the
line, the marks and what runs at crun right now, lets the engine's fair-queue rules pick one job
(``choose``), and moves that job to ``submitting`` under the claiming process's lease, all in one
write transaction: every process sees one order, and no two take the same job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.models import Job
from bot.store.job_rows import record_event, row_to_job
from bot.store.protocol import Db, SyncConnection

GUILD_TURN = -1  # line_marks.user_id of a server's own turn
AT_CRUN = "('submitting', 'pending', 'running')"
_MARKS_FLOOR = 256  # marks kept before the first clean-up


@dataclass(frozen=True, slots=True)
class LineSnapshot:
    """The line as the database holds it at one moment."""

    waiting: list[tuple[str, int, int | None]]  # (job, member, server) oldest first
    owners: dict[str, str | None] = field(default_factory=dict)  # waiting job -> its instance
    guild_marks: dict[int, int] = field(default_factory=dict)  # server -> last served
    member_marks: dict[tuple[int, int], int] = field(default_factory=dict)
    users_at_crun: Counter[int] = field(default_factory=Counter)
    guilds_at_crun: Counter[int] = field(default_factory=Counter)  # 0: DMs and the terminal

    @property
    def at_crun(self) -> int:
        return sum(self.users_at_crun.values())


Choose = Callable[[LineSnapshot], str | None]


def _statements(kinds: Sequence[str]) -> tuple[str, str, str]:
    marks = ",".join("?" for _ in kinds)
    waiting = (
        "SELECT id, user_id, guild_id, owner FROM jobs WHERE status = 'queued'"  # noqa: S608 - placeholders only
        f" AND target_kind IN ({marks}) AND (not_before IS NULL OR not_before <= ?)"
        " ORDER BY created_at, id"
    )
    marks_sql = "SELECT guild_id, user_id, seq FROM line_marks"
    running = (
        "SELECT user_id, COALESCE(guild_id, 0) AS g, COUNT(*) AS n FROM jobs"  # noqa: S608 - constant
        f" WHERE delivery_state IN ('none', 'started') AND status IN {AT_CRUN}"
        " GROUP BY user_id, COALESCE(guild_id, 0)"
    )
    return waiting, marks_sql, running


def _snapshot(waiting: Iterable[Any], marks: Iterable[Any], running: Iterable[Any]) -> LineSnapshot:
    rows = list(waiting)
    snap = LineSnapshot(
        waiting=[(str(r[0]), int(r[1]), None if r[2] is None else int(r[2])) for r in rows],
        owners={str(r[0]): r[3] for r in rows},
    )
    for g, user, seq in marks:
        if int(user) == GUILD_TURN:
            snap.guild_marks[int(g)] = int(seq)
        else:
            snap.member_marks[(int(g), int(user))] = int(seq)
    for user, g, n in running:
        snap.users_at_crun[int(user)] += int(n)
        snap.guilds_at_crun[int(g)] += int(n)
    return snap


class LineRepository:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def snapshot(self, kinds: Sequence[str], now: float) -> LineSnapshot:
        """The line as it stands (for showing places; a claim reads it again, locked)."""
        waiting, marks, running = _statements(kinds)
        return _snapshot(
            await self.db.fetchall(waiting, (*kinds, now)),
            await self.db.fetchall(marks),
            await self.db.fetchall(running),
        )

    async def claim(
        self, choose: Choose, *, owner: str, kinds: Sequence[str], now: float, lease_until: float
    ) -> Job | None:
        """The job ``choose`` picks, moved to ``submitting`` and held by ``owner``; None when
        nobody waiting may start now."""
        if not kinds:
            return None
        waiting, marks, running = _statements(kinds)

        def take(conn: SyncConnection) -> Job | None:
            snap = _snapshot(
                conn.execute(waiting, (*kinds, now)).fetchall(),
                conn.execute(marks).fetchall(),
                conn.execute(running).fetchall(),
            )
            job_id = choose(snap)
            if job_id is None:
                return None
            row = conn.execute(
                "SELECT user_id, guild_id FROM jobs WHERE id = ? AND status = 'queued'"  # noqa: S608
                + self.db.skip_locked,
                (job_id,),
            ).fetchone()
            if row is None:  # being taken over by another process this very moment
                return None
            conn.execute(
                "UPDATE jobs SET status = 'submitting', owner = ?, lease_until = ? WHERE id = ?",
                (owner, lease_until, job_id),
            )
            record_event(conn, job_id, now, "submitting", owner)
            _served(conn, snap, int(row[0]), int(row[1] or 0))
            return row_to_job(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

        return await self.db.run_transaction(take)


def _served(conn: SyncConnection, snap: LineSnapshot, user: int, g: int) -> None:
    """The server's and the member's turns pass: both marks become the newest."""
    marks = [*snap.guild_marks.values(), *snap.member_marks.values()]
    seq = max(marks, default=0) + 1
    for who in (GUILD_TURN, user):
        conn.execute(
            "INSERT INTO line_marks (guild_id, user_id, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET seq = excluded.seq",
            (g, who, seq),
        )
    if len(marks) > max(_MARKS_FLOOR, 4 * len(snap.waiting)):
        # Marks older than every waiting key's can only put a key where a new one goes anyway.
        keys = {(g_ or 0, u) for _, u, g_ in snap.waiting}
        waiting_marks = [snap.member_marks[k] for k in keys if k in snap.member_marks]
        waiting_marks += [snap.guild_marks[k[0]] for k in keys if k[0] in snap.guild_marks]
        floor = min(waiting_marks, default=seq)
        conn.execute("DELETE FROM line_marks WHERE seq < ?", (floor,))
