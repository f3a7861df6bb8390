"""How a job row reads, and the statements that every write to a job shares.

Used by the job repository (bot/store/jobs.py, bot/store/job_transitions.py) and by instance
ownership (bot/store/instances.py).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from bot.domain.models import DeliveryState, GenerationRequest, Job, JobStatus, Target
from bot.store.protocol import Row, SyncConnection

# Jobs with something left to do: not yet terminal, or terminal but not yet delivered.
UNFINISHED = "delivery_state IN ('none', 'started')"

# A job's request never changes and GenerationRequest is immutable, while a job is read several
# times on its way (submit, progress, delivery): parsing it was a third of the cost of a read.
# Bounded: a key is at most ~30 KB (a 5,000-character prompt), typically well under 1 KB.
_request_from_json = functools.lru_cache(maxsize=512)(GenerationRequest.from_json)


def _url_list(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def record_event(
    conn: SyncConnection, job_id: str, now: float, event: str, detail: str | None
) -> None:
    """The job's history, written inside the transaction that made the change."""
    conn.execute(
        "INSERT INTO job_events (job_id, at, event, detail) VALUES (?, ?, ?, ?)",
        (job_id, now, event, detail),
    )


def refund(conn: SyncConnection, job_id: str, now: float, *, was: str) -> bool:
    """Give a job's credits back if its ledger row is in state ``was``; False if it was not."""
    cur = conn.execute(
        "UPDATE ledger SET state = 'refunded', charged = 0, settled_at = ?"
        " WHERE job_id = ? AND state = ?",
        (now, job_id, was),
    )
    return cur.rowcount == 1


def row_to_job(row: Row) -> Job:
    return Job(
        id=row["id"],
        user_id=row["user_id"],
        guild_id=row["guild_id"],
        request=_request_from_json(row["request_json"]),
        target=Target.from_json(row["target_json"]),
        status=JobStatus(row["status"]),
        created_at=row["created_at"],
        task_id=row["task_id"],
        input_payload=json.loads(row["input_json"]) if row["input_json"] else None,
        uploaded_urls=_url_list(row["uploaded_json"]),
        result_urls=_url_list(row["result_urls_json"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        credits=row["credits"],
        submitted_at=row["submitted_at"],
        finished_at=row["finished_at"],
        next_poll_at=row["next_poll_at"],
        poll_count=row["poll_count"],
        delivery_state=DeliveryState(row["delivery_state"]),
        delivery_attempts=row["delivery_attempts"],
        delivered_at=row["delivered_at"],
        receipt=json.loads(row["receipt_json"]) if row["receipt_json"] else None,
        parent_job_id=row["parent_job_id"],
    )


@dataclass(frozen=True, slots=True)
class PollView:
    """What a poll needs to know about a job. Read on every poll, so nothing is parsed."""

    id: str
    status: JobStatus
    task_id: str | None
    submitted_at: float | None
