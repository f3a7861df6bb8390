"""All SQL about credits: reservations, limits, grants, resets, blocks and usage reports.

A reservation runs inside the transaction that creates the job row (``BEGIN IMMEDIATE`` on
SQLite, the write lock on PostgreSQL), so the check and the insert are one step: two concurrent
commands can never both pass on the last credit, whichever process they reach. These functions
are plain DB-API code that ``run_transaction`` runs off the event loop (on SQLite's database
thread a whole reservation is one round trip). Settlement and refund happen in the transaction
that records the job's outcome (see ``JobRepository.finish``), so each job is settled or refunded
exactly once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.quota import (
    Limits,
    QuotaPolicy,
    Standing,
    Usage,
    day_window,
    month_window,
    most_generous,
    refusal,
)
from bot.errors import QuotaExceeded
from bot.store.job_rows import UNFINISHED
from bot.store.protocol import Db, SyncConnection

# Credits that count against a window: what a settled job cost, or what a running job holds.
_SPENT = "CASE state WHEN 'settled' THEN COALESCE(charged, reserved) WHEN 'reserved' THEN reserved ELSE 0 END"  # noqa: E501
# The UTC day a ledger row falls in. CAST truncates on SQLite but rounds on PostgreSQL: where it
# rounded up, step back one day (the same floor on both).
_DAY_NUMBER = "CAST(created_at / 86400 AS BIGINT)"
_DAY_START = f"({_DAY_NUMBER} - CASE WHEN {_DAY_NUMBER} * 86400 > created_at THEN 1 ELSE 0 END)"


def _later(a: str, b: str) -> str:
    """The later of two times: SQLite's scalar MAX(a, b), which PostgreSQL lacks (and
    PostgreSQL's GREATEST, which SQLite lacks)."""
    return f"CASE WHEN {a} > {b} THEN {a} ELSE {b} END"


@dataclass(frozen=True, slots=True)
class Charge:
    """What a job will hold against its requester's quota."""

    cost: float
    role_ids: tuple[int, ...] = ()


def _one(conn: SyncConnection, sql: str, params: Sequence[object]) -> float:
    row = conn.execute(sql, params).fetchone()
    return float(row[0] or 0) if row else 0.0


def _role_or_default_limits(
    conn: SyncConnection, guild_id: int, role_ids: Sequence[int], policy: QuotaPolicy
) -> Limits:
    """For members without their own override: the most generous role, else the server
    default, else the bot's defaults."""
    marks = ",".join("?" for _ in role_ids) or "NULL"
    sql = (
        "SELECT scope, daily, monthly FROM quota_limits WHERE guild_id = ?"  # noqa: S608 - placeholders only
        f" AND (scope = 'guild' OR (scope = 'role' AND subject_id IN ({marks})))"
    )
    rows = conn.execute(sql, (guild_id, *role_ids)).fetchall()
    roles = most_generous(Limits(r[1], r[2]) for r in rows if r[0] == "role")
    if roles is not None:
        return roles
    server = [Limits(r[1], r[2]) for r in rows if r[0] == "guild"]
    return server[0] if server else policy.default_limits


# One statement for everything a reservation needs to know about a member.
_STANDING = f"""
WITH r AS (SELECT COALESCE(
    (SELECT reset_at FROM quota_resets WHERE guild_id = :g AND user_id = :u), 0) AS reset_at)
SELECT
    (SELECT SUM({_SPENT}) FROM ledger WHERE guild_id = :g AND user_id = :u
        AND created_at >= {_later(":day", "(SELECT reset_at FROM r)")}),
    (SELECT SUM({_SPENT}) FROM ledger WHERE guild_id = :g AND user_id = :u
        AND created_at >= {_later(":month", "(SELECT reset_at FROM r)")}),
    (SELECT SUM(credits) FROM quota_grants WHERE guild_id = :g AND user_id = :u
        AND period = 'day' AND window_start = :day),
    (SELECT SUM(credits) FROM quota_grants WHERE guild_id = :g AND user_id = :u
        AND period = 'month' AND window_start = :month),
    (SELECT COUNT(*) FROM ledger WHERE user_id = :u AND state = 'reserved'),
    (SELECT COUNT(*) FROM ledger WHERE guild_id = :g AND state = 'reserved'),
    (SELECT COUNT(*) FROM blocked_users WHERE guild_id = :g AND user_id = :u),
    (SELECT MAX(created_at) FROM ledger WHERE guild_id = :g AND user_id = :u),
    (SELECT COUNT(*) FROM quota_limits WHERE guild_id = :g AND scope = 'user' AND subject_id = :u),
    (SELECT daily FROM quota_limits WHERE guild_id = :g AND scope = 'user' AND subject_id = :u),
    (SELECT monthly FROM quota_limits WHERE guild_id = :g AND scope = 'user' AND subject_id = :u)
"""  # noqa: S608 - only constants are interpolated

# The queue limits count jobs accepted but not yet sent to crun. A member's and a server's are
# their reserved jobs (counted above: every job from Discord holds credits) less those already at
# crun, which are few (the running limits bound them): one short scan, however long the line.
# CROSS JOIN keeps that order (jobs at crun first, then their ledger rows).
_AT_CRUN = f"""
SELECT COALESCE(SUM(CASE WHEN l.user_id = :u THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN l.guild_id = :g THEN 1 ELSE 0 END), 0)
FROM jobs CROSS JOIN ledger l
WHERE {UNFINISHED} AND status IN ('submitting', 'pending', 'running')
    AND create_sent_at IS NOT NULL AND l.job_id = jobs.id AND l.state = 'reserved'
"""  # noqa: S608 - only constants are interpolated
# The bot's line, terminal jobs included, from the index alone; only "is it full?" matters, so
# the count stops at the limit. A queued job was never sent: requeue and restart clear it.
_TOTAL_WAITING = f"""
SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE {UNFINISHED} AND status = 'queued'
    LIMIT :limit) AS waiting)
    + (SELECT COUNT(*) FROM jobs WHERE {UNFINISHED} AND status = 'submitting'
    AND create_sent_at IS NULL)
"""  # noqa: S608 - only constants are interpolated


def standing_in(
    conn: SyncConnection,
    *,
    guild_id: int,
    user_id: int,
    role_ids: Sequence[int],
    policy: QuotaPolicy,
    now: float,
) -> Standing:
    day_start, day_end = day_window(now)
    month_start, month_end = month_window(now)
    row = conn.execute(
        _STANDING, {"g": guild_id, "u": user_id, "day": day_start, "month": month_start}
    ).fetchone()
    if row[8]:
        limits = Limits(row[9], row[10])  # the member's own override wins
    else:
        limits = _role_or_default_limits(conn, guild_id, role_ids, policy)
    usage = Usage(
        daily_used=float(row[0] or 0),
        monthly_used=float(row[1] or 0),
        limits=limits,
        daily_granted=float(row[2] or 0),
        monthly_granted=float(row[3] or 0),
        day_resets_at=day_end,
        month_resets_at=month_end,
        running=int(row[4]),
    )
    spent_today = 0.0
    if policy.global_daily_cap is not None:
        spent_today = _one(
            conn,
            f"SELECT SUM({_SPENT}) FROM ledger WHERE created_at >= ?",  # noqa: S608 - constant
            (day_start,),
        )
    at_crun = conn.execute(_AT_CRUN, {"u": user_id, "g": guild_id}).fetchone()
    total = conn.execute(_TOTAL_WAITING, {"limit": policy.queue_limit}).fetchone()
    return Standing(
        usage=usage,
        guild_running=int(row[5]),
        blocked=bool(row[6]),
        last_request_at=row[7],
        spent_today=spent_today,
        user_waiting=usage.running - int(at_crun[0]),
        guild_waiting=int(row[5]) - int(at_crun[1]),
        total_waiting=int(total[0]),
    )


def reserve(
    conn: SyncConnection,
    *,
    job_id: str,
    user_id: int,
    guild_id: int | None,
    charge: Charge,
    policy: QuotaPolicy,
    now: float,
) -> None:
    """Apply the quota rules (``domain.quota.refusal``) and hold the credits, inside the caller's
    write transaction: the read, the decision and the insert are one step."""
    gid = guild_id or 0
    standing = standing_in(
        conn, guild_id=gid, user_id=user_id, role_ids=charge.role_ids, policy=policy, now=now
    )
    reason = refusal(standing, guild_id=gid, cost=charge.cost, policy=policy, now=now)
    if reason is not None:
        raise QuotaExceeded(reason)
    conn.execute(
        "INSERT INTO ledger (job_id, user_id, guild_id, reserved, state, created_at)"
        " VALUES (?, ?, ?, ?, 'reserved', ?)",
        (job_id, user_id, gid, charge.cost, now),
    )


class QuotaRepository:
    """Admin-facing reads and writes; reservations go through :func:`reserve`."""

    def __init__(self, db: Db, policy: QuotaPolicy) -> None:
        self.db = db
        self.policy = policy

    async def usage(
        self,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int] = (),
        now: float | None = None,
    ) -> Usage:
        standing = await self.db.run_transaction(
            functools.partial(
                standing_in,
                guild_id=guild_id or 0,
                user_id=user_id,
                role_ids=role_ids,
                policy=self.policy,
                now=time.time() if now is None else now,
            )
        )
        return standing.usage

    async def ledger_state(self, job_id: str) -> tuple[str, float, float | None] | None:
        row = await self.db.fetchone(
            "SELECT state, reserved, charged FROM ledger WHERE job_id = ?", (job_id,)
        )
        return (str(row[0]), float(row[1]), row[2]) if row else None

    async def set_limits(self, guild_id: int, scope: str, subject_id: int, limits: Limits) -> None:
        assert scope in ("guild", "role", "user")
        await self.db.execute(
            "INSERT INTO quota_limits (guild_id, scope, subject_id, daily, monthly)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(guild_id, scope, subject_id)"
            " DO UPDATE SET daily = excluded.daily, monthly = excluded.monthly",
            (guild_id, scope, subject_id, limits.daily, limits.monthly),
        )

    async def clear_limits(self, guild_id: int, scope: str, subject_id: int) -> bool:
        n = await self.db.execute(
            "DELETE FROM quota_limits WHERE guild_id = ? AND scope = ? AND subject_id = ?",
            (guild_id, scope, subject_id),
        )
        return n > 0

    async def list_limits(self, guild_id: int) -> list[tuple[str, int, Limits]]:
        rows = await self.db.fetchall(
            "SELECT scope, subject_id, daily, monthly FROM quota_limits WHERE guild_id = ?"
            " ORDER BY scope, subject_id",
            (guild_id,),
        )
        return [(str(r[0]), int(r[1]), Limits(r[2], r[3])) for r in rows]

    async def grant(
        self, guild_id: int, user_id: int, credits: float, *, period: str, by: int, now: float
    ) -> None:
        assert period in ("day", "month")
        start = (day_window if period == "day" else month_window)(now)[0]
        await self.db.execute(
            "INSERT INTO quota_grants (guild_id, user_id, period, credits, window_start,"
            " granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guild_id, user_id, period, credits, start, by, now),
        )

    async def reset(self, guild_id: int, user_id: int, now: float) -> None:
        await self.db.execute(
            "INSERT INTO quota_resets (guild_id, user_id, reset_at) VALUES (?, ?, ?)"
            " ON CONFLICT(guild_id, user_id) DO UPDATE SET reset_at = excluded.reset_at",
            (guild_id, user_id, now),
        )

    async def block(
        self, guild_id: int, user_id: int, reason: str | None, by: int, now: float
    ) -> None:
        await self.db.execute(
            "INSERT INTO blocked_users (guild_id, user_id, reason, blocked_by, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(guild_id, user_id) DO UPDATE SET"
            " reason = excluded.reason, blocked_by = excluded.blocked_by,"
            " created_at = excluded.created_at",
            (guild_id, user_id, reason, by, now),
        )

    async def unblock(self, guild_id: int, user_id: int) -> bool:
        n = await self.db.execute(
            "DELETE FROM blocked_users WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return n > 0

    async def is_blocked(self, guild_id: int, user_id: int) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM blocked_users WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return row is not None

    async def purge_ledger_before(self, cutoff: float) -> int:
        """Usage older than any quota window is only history; drop it with old jobs."""
        return await self.db.execute(
            "DELETE FROM ledger WHERE created_at < ? AND state != 'reserved'", (cutoff,)
        )

    async def top_users(
        self, guild_id: int, since: float, limit: int = 10
    ) -> list[tuple[int, float, int]]:
        """(user id, credits spent, jobs) since a time, biggest spenders first."""
        rows = await self.db.fetchall(
            f"SELECT user_id, SUM({_SPENT}) AS spent, COUNT(*) FROM ledger"  # noqa: S608 - constant
            " WHERE guild_id = ? AND created_at >= ? GROUP BY user_id"
            " ORDER BY spent DESC, user_id LIMIT ?",
            (guild_id, since, limit),
        )
        return [(int(r[0]), float(r[1] or 0), int(r[2])) for r in rows]

    async def daily_spend(self, guild_id: int | None, since: float) -> list[tuple[float, float]]:
        """(UTC day start, credits) per day since a time, for charts."""
        where = "created_at >= ?" + (" AND guild_id = ?" if guild_id is not None else "")
        params: tuple[object, ...] = (since,) if guild_id is None else (since, guild_id)
        rows = await self.db.fetchall(
            f"SELECT {_DAY_START} * 86400 AS day, SUM({_SPENT})"  # noqa: S608 - constant
            f" FROM ledger WHERE {where} GROUP BY day ORDER BY day",
            params,
        )
        return [(float(r[0]), float(r[1] or 0)) for r in rows]
