"""All SQL about creating, reading and forgetting jobs.

How a job row changes on its way: bot/store/job_transitions.py; which engine instance owns it:
bot/store/instances.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.models import GenerationRequest, Job, JobStatus, Target
from bot.domain.quota import QuotaPolicy
from bot.store.job_rows import UNFINISHED, PollView, record_event, row_to_job
from bot.store.job_transitions import JobTransitions
from bot.store.protocol import SyncConnection
from bot.store.quotas import Charge, reserve

_JOB_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o/1/l: ids are typed by people


def new_job_id() -> str:
    # 32 letters = 5 bits each: one 50-bit draw instead of ten (each draw reads os.urandom).
    bits = secrets.randbits(50)
    return "".join(_JOB_ID_ALPHABET[(bits >> (5 * i)) & 31] for i in range(10))


@dataclass(frozen=True, slots=True)
class ChargedJob:
    """A job with its ledger entry, if it still has one: ``ledger_state`` is reserved, settled
    or refunded; ``charged`` is what a settled job cost (its reservation when crun named no
    cost), what a running job holds, 0 when refunded."""

    job: Job
    ledger_state: str | None
    charged: float | None


# A member's jobs with their credits, newest first (the jobs_user index). Portable SQL.
_HISTORY = (
    "SELECT jobs.*, ledger.state AS ledger_state,"
    " CASE ledger.state WHEN 'settled' THEN COALESCE(ledger.charged, ledger.reserved)"
    " WHEN 'reserved' THEN ledger.reserved WHEN 'refunded' THEN 0 END AS ledger_charged"
    " FROM jobs LEFT JOIN ledger ON ledger.job_id = jobs.id WHERE jobs.user_id = ?"
    " ORDER BY jobs.created_at DESC, jobs.id DESC LIMIT ? OFFSET ?"
)


def _insert_job(
    conn: SyncConnection, job: Job, *, owner: str | None, lease_until: float | None
) -> None:
    """The new job's row (with a fresh callback token) and its "created" event."""
    conn.execute(
        "INSERT INTO jobs (id, user_id, guild_id, parent_job_id, request_json, target_json,"
        " target_kind, status, callback_token, created_at, owner, lease_until)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job.id,
            job.user_id,
            job.guild_id,
            job.parent_job_id,
            job.request.to_json(),
            job.target.to_json(),
            job.target.kind,
            job.status.value,
            secrets.token_urlsafe(24),
            job.created_at,
            owner,
            lease_until,
        ),
    )
    record_event(conn, job.id, job.created_at, "created", None)


class JobRepository(JobTransitions):
    # --- creation and lookup --------------------------------------------------------------------

    async def create(
        self,
        *,
        user_id: int,
        guild_id: int | None,
        request: GenerationRequest,
        target: Target,
        now: float,
        owner: str | None,
        lease_until: float | None = None,
        parent_job_id: str | None = None,
        job_id: str | None = None,
        charge: Charge | None = None,
        policy: QuotaPolicy | None = None,
    ) -> Job:
        """Insert the job; with a ``charge``, reserve its credits in the same transaction
        (raises QuotaExceeded and stores nothing when the rules say no)."""
        # Built here and returned as inserted: re-reading the row would cost another round trip.
        job = Job(
            id=job_id or new_job_id(),
            user_id=user_id,
            guild_id=guild_id,
            request=request,
            target=target,
            status=JobStatus.QUEUED,
            created_at=now,
            parent_job_id=parent_job_id,
        )

        if charge is not None and policy is None:
            raise ValueError("a charge needs the quota policy it is reserved under")

        def insert(conn: SyncConnection) -> None:
            if charge is not None:
                assert policy is not None
                reserve(
                    conn,
                    job_id=job.id,
                    user_id=user_id,
                    guild_id=guild_id,
                    charge=charge,
                    policy=policy,
                    now=now,
                )
            _insert_job(conn, job, owner=owner, lease_until=lease_until)

        await self.db.run_transaction(insert)
        return job

    async def get(self, job_id: str) -> Job | None:
        row = await self.db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return row_to_job(row) if row else None

    async def poll_view(self, job_id: str) -> PollView | None:
        row = await self.db.fetchone(
            "SELECT status, task_id, submitted_at FROM jobs WHERE id = ?", (job_id,)
        )
        return PollView(job_id, JobStatus(row[0]), row[1], row[2]) if row else None

    async def require(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    async def by_task_id(self, task_id: str) -> Job | None:
        row = await self.db.fetchone("SELECT * FROM jobs WHERE task_id = ?", (task_id,))
        return row_to_job(row) if row else None

    async def callback_token(self, job_id: str) -> str | None:
        row = await self.db.fetchone("SELECT callback_token FROM jobs WHERE id = ?", (job_id,))
        return str(row[0]) if row else None

    async def unfinished(self, owner: str, kinds: Iterable[str]) -> list[Job]:
        kinds = list(kinds)
        if not kinds:
            return []
        marks = ",".join("?" for _ in kinds)
        rows = await self.db.fetchall(
            f"SELECT * FROM jobs WHERE {UNFINISHED} AND owner = ? AND target_kind IN ({marks})"  # noqa: S608 - placeholders only
            " ORDER BY created_at",
            (owner, *kinds),
        )
        return [row_to_job(r) for r in rows]

    async def not_before(self, job_id: str) -> float | None:
        row = await self.db.fetchone("SELECT not_before FROM jobs WHERE id = ?", (job_id,))
        return float(row[0]) if row and row[0] is not None else None

    async def slow_notified(self, job_id: str) -> bool:
        row = await self.db.fetchone("SELECT slow_notified FROM jobs WHERE id = ?", (job_id,))
        return bool(row and row[0])

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    async def events(self, job_id: str) -> list[tuple[float, str, str | None]]:
        rows = await self.db.fetchall(
            "SELECT at, event, detail FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [(float(r[0]), str(r[1]), r[2]) for r in rows]

    async def recent_durations(self, limit: int = 50) -> list[float]:
        """Seconds from submit to finish of recent successful jobs (for ETAs)."""
        rows = await self.db.fetchall(
            "SELECT finished_at - submitted_at FROM jobs WHERE status = 'succeeded'"
            " AND submitted_at IS NOT NULL AND finished_at IS NOT NULL"
            " ORDER BY finished_at DESC LIMIT ?",
            (limit,),
        )
        return [float(r[0]) for r in rows]

    async def recent_for_user(self, user_id: int, limit: int = 10) -> list[Job]:
        rows = await self.db.fetchall(
            "SELECT * FROM jobs WHERE user_id = ? ORDER BY created_at DESC LIMIT ?",
            (user_id, limit),
        )
        return [row_to_job(r) for r in rows]

    async def history_for_user(self, user_id: int, limit: int, offset: int = 0) -> list[ChargedJob]:
        """A member's jobs in every server and DM, newest first, with what each was charged.
        Purged or forgotten jobs are deleted rows, so they are simply not here."""
        rows = await self.db.fetchall(_HISTORY, (user_id, limit, offset))
        return [
            ChargedJob(
                row_to_job(r),
                r["ledger_state"],
                None if r["ledger_charged"] is None else float(r["ledger_charged"]),
            )
            for r in rows
        ]

    async def purge_finished_before(self, cutoff: float) -> int:
        """Privacy: drop finished jobs (prompts, results, events) created before ``cutoff``.
        Unfinished jobs are never touched."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM jobs WHERE created_at < ? AND delivery_state IN ('done', 'gave-up')",
                (cutoff,),
            )
            return cur.rowcount

    async def forget_user(self, user_id: int) -> int:
        """Privacy: delete a member's finished jobs, their credit history and their /settings
        preferences everywhere."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM jobs WHERE user_id = ? AND delivery_state IN ('done', 'gave-up')",
                (user_id,),
            )
            removed = cur.rowcount
            await conn.execute(
                "DELETE FROM ledger WHERE user_id = ? AND state != 'reserved'", (user_id,)
            )
            await conn.execute("DELETE FROM quota_grants WHERE user_id = ?", (user_id,))
            await conn.execute("DELETE FROM quota_resets WHERE user_id = ?", (user_id,))
            await conn.execute(
                "DELETE FROM quota_limits WHERE scope = 'user' AND subject_id = ?", (user_id,)
            )
            await conn.execute("DELETE FROM preferences WHERE user_id = ?", (user_id,))
            return removed

    async def add_event(self, job_id: str, event: str, detail: str | None, now: float) -> None:
        await self.db.execute(
            "INSERT INTO job_events (job_id, at, event, detail) VALUES (?, ?, ?, ?)",
            (job_id, now, event, detail),
        )
