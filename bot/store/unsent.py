"""All SQL behind `wanbot jobs`: listing unfinished jobs and cancelling the ones crun never saw.

A job can be cancelled only while CreateTask has not been sent (``create_sent_at`` is unset):
after that crun may have created, and billed, a task. The cancel is one guarded UPDATE, so it
races safely with an engine that is taking the same job: whichever writes first wins (the
engine's ``mark_create_sent`` expects ``submitting``, and a cancelled job is ``failed``).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from bot.domain.models import JobStatus, Target
from bot.store.job_rows import UNFINISHED, record_event, refund
from bot.store.protocol import Db, SyncConnection

CANCELLED_MESSAGE = (
    "This job was cancelled before it was sent to the image service; nothing was charged."
)

_CANCELLABLE = (JobStatus.QUEUED, JobStatus.SUBMITTING)


@dataclass(frozen=True, slots=True)
class UnfinishedJob:
    """One row of `wanbot jobs`."""

    id: str
    status: JobStatus
    created_at: float
    prompt: str
    target: Target
    guild_id: int | None
    sent: bool  # CreateTask went out: crun may hold (and bill) a task

    @property
    def state(self) -> str:
        """Its status and whether crun has it, e.g. ``queued, not sent``."""
        return self.status.value + (", at crun" if self.sent else ", not sent")

    @property
    def cancellable(self) -> bool:
        return not self.sent and self.status in _CANCELLABLE


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not-found"
    AT_CRUN = "at-crun"  # CreateTask was sent: it cannot be taken back
    FINISHED = "finished"  # it already ended


@dataclass(frozen=True, slots=True)
class Cancel:
    job_id: str
    outcome: CancelOutcome
    status: JobStatus | None = None  # the job's status when asked
    refunded: float | None = None  # credits given back (jobs from Discord hold some)


async def list_unfinished(
    db: Db, *, kind: str | None = None, owner: str | None = None
) -> list[UnfinishedJob]:
    """Jobs with something left to do, oldest first; only of target ``kind`` and held by
    engine instance ``owner`` when those are given."""
    rows = await db.fetchall(
        "SELECT id, status, created_at, request_json, target_json, guild_id, create_sent_at"  # noqa: S608 - constants
        f" FROM jobs WHERE {UNFINISHED} AND (CAST(:kind AS TEXT) IS NULL OR target_kind = :kind)"
        " AND (CAST(:owner AS TEXT) IS NULL OR owner = :owner) ORDER BY created_at",
        {"kind": kind, "owner": owner},
    )
    return [
        UnfinishedJob(
            id=r[0],
            status=JobStatus(r[1]),
            created_at=float(r[2]),
            prompt=str(json.loads(r[3]).get("prompt", "")),
            target=Target.from_json(r[4]),
            guild_id=r[5],
            sent=r[6] is not None,
        )
        for r in rows
    ]


async def cancel_unsent(
    db: Db, job_id: str, *, now: float, told: bool = False, by_user_id: int | None = None
) -> Cancel:
    """Cancel a job crun never saw: it fails with ``CANCELLED_MESSAGE`` and its credits are
    refunded, in one transaction. A job for the terminal (``files``) counts as delivered at
    once, and so does any job whose requester the caller tells itself (``told``: the engine
    shows "cancelled" on the status message); any other target is told by the bot that owns
    it. ``by_user_id`` (who asked) goes into the job's history."""

    def write(conn: SyncConnection) -> Cancel:
        row = conn.execute(
            "SELECT status, create_sent_at, target_kind FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            return Cancel(job_id, CancelOutcome.NOT_FOUND)
        status = JobStatus(row[0])
        if status.terminal:
            return Cancel(job_id, CancelOutcome.FINISHED, status)
        if row[1] is not None or status not in _CANCELLABLE:
            return Cancel(job_id, CancelOutcome.AT_CRUN, status)
        held = conn.execute(
            "SELECT reserved FROM ledger WHERE job_id = ? AND state = 'reserved'", (job_id,)
        ).fetchone()
        conn.execute(
            "UPDATE jobs SET status = 'failed', error_code = 'cancelled', error_message = ?,"
            " finished_at = ?, not_before = NULL WHERE id = ?",
            (CANCELLED_MESSAGE, now, job_id),
        )
        if told or row[2] == "files":
            conn.execute(
                "UPDATE jobs SET delivery_state = 'done', delivered_at = ?, receipt_json = ?"
                " WHERE id = ?",
                (now, json.dumps({"error": CANCELLED_MESSAGE}), job_id),
            )
        refunded = float(held[0]) if held and refund(conn, job_id, now, was="reserved") else None
        by = "" if by_user_id is None else f" by {by_user_id}"
        record_event(conn, job_id, now, "cancelled", f"before CreateTask was sent{by}")
        return Cancel(job_id, CancelOutcome.CANCELLED, status, refunded)

    return await db.run_transaction(write)
