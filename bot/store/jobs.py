"""All SQL about jobs, their events and the engine instances that own them."""

from __future__ import annotations

import functools
import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.domain.models import (
    DeliveryState,
    GenerationRequest,
    Job,
    JobStatus,
    Target,
)
from bot.domain.quota import QuotaPolicy
from bot.store.database import Database
from bot.store.quotas import Charge, reserve

# Jobs with something left to do: not yet terminal, or terminal but not yet delivered.
_UNFINISHED = "delivery_state IN ('none', 'started')"

_JOB_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o/1/l: ids are typed by people


def new_job_id() -> str:
    # 32 letters = 5 bits each: one 50-bit draw instead of ten (each draw reads os.urandom).
    bits = secrets.randbits(50)
    return "".join(_JOB_ID_ALPHABET[(bits >> (5 * i)) & 31] for i in range(10))


# A job's request never changes and GenerationRequest is immutable, while a job is read several
# times on its way (submit, progress, delivery): parsing it was a third of the cost of a read.
# Bounded: a key is at most ~30 KB (a 5,000-character prompt), typically well under 1 KB.
_request_from_json = functools.lru_cache(maxsize=512)(GenerationRequest.from_json)


def _url_list(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def _record_event(
    conn: sqlite3.Connection, job_id: str, now: float, event: str, detail: str | None
) -> None:
    """The job's history, written inside the transaction that made the change."""
    conn.execute(
        "INSERT INTO job_events (job_id, at, event, detail) VALUES (?, ?, ?, ?)",
        (job_id, now, event, detail),
    )


def _refund(conn: sqlite3.Connection, job_id: str, now: float, *, was: str) -> bool:
    """Give a job's credits back if its ledger row is in state ``was``; False if it was not."""
    cur = conn.execute(
        "UPDATE ledger SET state = 'refunded', charged = 0, settled_at = ?"
        " WHERE job_id = ? AND state = ?",
        (now, job_id, was),
    )
    return cur.rowcount == 1


def _row_to_job(row: aiosqlite.Row) -> Job:
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


class JobRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

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
        parent_job_id: str | None = None,
        job_id: str | None = None,
        charge: Charge | None = None,
        policy: QuotaPolicy | None = None,
    ) -> Job:
        """Insert the job; with a ``charge``, reserve its credits in the same transaction
        (raises QuotaExceeded and stores nothing when the rules say no)."""
        jid = job_id or new_job_id()

        def insert(conn: sqlite3.Connection) -> None:
            if charge is not None:
                reserve(
                    conn,
                    job_id=jid,
                    user_id=user_id,
                    guild_id=guild_id,
                    charge=charge,
                    policy=policy or QuotaPolicy(),
                    now=now,
                )
            conn.execute(
                "INSERT INTO jobs (id, user_id, guild_id, parent_job_id, request_json, target_json,"
                " target_kind, status, callback_token, created_at, owner)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    jid,
                    user_id,
                    guild_id,
                    parent_job_id,
                    request.to_json(),
                    target.to_json(),
                    target.kind,
                    JobStatus.QUEUED.value,
                    secrets.token_urlsafe(24),
                    now,
                    owner,
                ),
            )
            _record_event(conn, jid, now, "created", None)

        await self.db.run_transaction(insert)
        # Built from what was just inserted: re-reading would cost another round trip.
        return Job(
            id=jid,
            user_id=user_id,
            guild_id=guild_id,
            request=request,
            target=target,
            status=JobStatus.QUEUED,
            created_at=now,
            parent_job_id=parent_job_id,
        )

    async def get(self, job_id: str) -> Job | None:
        row = await self.db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _row_to_job(row) if row else None

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
        return _row_to_job(row) if row else None

    async def callback_token(self, job_id: str) -> str | None:
        row = await self.db.fetchone("SELECT callback_token FROM jobs WHERE id = ?", (job_id,))
        return str(row[0]) if row else None

    async def unfinished(self, owner: str, kinds: Iterable[str]) -> list[Job]:
        kinds = list(kinds)
        if not kinds:
            return []
        marks = ",".join("?" for _ in kinds)
        rows = await self.db.fetchall(
            f"SELECT * FROM jobs WHERE {_UNFINISHED} AND owner = ? AND target_kind IN ({marks})"  # noqa: S608 - placeholders only
            " ORDER BY created_at",
            (owner, *kinds),
        )
        return [_row_to_job(r) for r in rows]

    async def not_before(self, job_id: str) -> float | None:
        row = await self.db.fetchone("SELECT not_before FROM jobs WHERE id = ?", (job_id,))
        return float(row[0]) if row and row[0] is not None else None

    async def create_was_sent(self, job_id: str) -> bool:
        row = await self.db.fetchone("SELECT create_sent_at FROM jobs WHERE id = ?", (job_id,))
        return bool(row and row[0] is not None)

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

    # --- state transitions ----------------------------------------------------------------------
    # Each transition is guarded by the state it expects, so a stale coroutine can never move a
    # job backwards (e.g. a late poll after delivery).

    async def _transition(
        self,
        job_id: str,
        *,
        expect: Sequence[JobStatus],
        event: str,
        detail: str | None,
        now: float,
        also: Callable[[sqlite3.Connection], object] | None = None,
        **fields: Any,
    ) -> bool:
        sets = ", ".join(f"{name} = :{name}" for name in fields)
        states = ",".join(f"'{s.value}'" for s in expect)

        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                f"UPDATE jobs SET {sets} WHERE id = :_id AND status IN ({states})",  # noqa: S608 - names are ours
                {**fields, "_id": job_id},
            )
            if cur.rowcount != 1:
                return False
            _record_event(conn, job_id, now, event, detail)
            if also is not None:
                also(conn)
            return True

        return await self.db.run_transaction(write)

    async def _transition_and_read(self, job_id: str, **transition: Any) -> Job | None:
        """A transition that also returns the job as it now is, read in the same transaction
        (one round trip to the database thread instead of two)."""
        read: list[sqlite3.Row] = []

        def fetch(conn: sqlite3.Connection) -> None:
            read.append(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

        if not await self._transition(job_id, also=fetch, **transition):
            return None
        return _row_to_job(read[0])

    async def mark_submitting(self, job_id: str, now: float) -> Job | None:
        """Claim a queued job for submitting; returns it, or None when it was not queued."""
        return await self._transition_and_read(
            job_id,
            expect=[JobStatus.QUEUED],
            event="submitting",
            detail=None,
            now=now,
            status=JobStatus.SUBMITTING.value,
        )

    async def save_uploaded(self, job_id: str, urls: Sequence[str]) -> None:
        await self.db.execute(
            "UPDATE jobs SET uploaded_json = ? WHERE id = ?", (json.dumps(list(urls)), job_id)
        )

    async def mark_create_sent(
        self, job_id: str, input_payload: dict[str, Any], now: float
    ) -> bool:
        """Written right before CreateTask goes out: from here on the job is never resent."""
        return await self._transition(
            job_id,
            expect=[JobStatus.SUBMITTING],
            event="create-sent",
            detail=None,
            now=now,
            also=lambda conn: conn.execute(
                "UPDATE jobs SET submit_attempts = submit_attempts + 1 WHERE id = ?", (job_id,)
            ),
            create_sent_at=now,
            input_json=json.dumps(input_payload, sort_keys=True),
        )

    async def mark_submitted(
        self, job_id: str, task_id: str, now: float, next_poll_at: float
    ) -> Job | None:
        return await self._transition_and_read(
            job_id,
            expect=[JobStatus.SUBMITTING],
            event="submitted",
            detail=task_id,
            now=now,
            status=JobStatus.PENDING.value,
            task_id=task_id,
            submitted_at=now,
            next_poll_at=next_poll_at,
        )

    async def requeue(self, job_id: str, *, not_before: float, reason: str, now: float) -> bool:
        """Back to the queue: only for refusals where crun certainly created nothing."""
        return await self._transition(
            job_id,
            expect=[JobStatus.SUBMITTING],
            event="requeued",
            detail=reason,
            now=now,
            status=JobStatus.QUEUED.value,
            not_before=not_before,
            create_sent_at=None,
        )

    async def reset_interrupted_submit(self, job_id: str, now: float) -> JobStatus | None:
        """After a crash mid-submit: requeue when CreateTask was never sent, else mark uncertain."""
        sent = await self.create_was_sent(job_id)
        if not sent:
            ok = await self._transition(
                job_id,
                expect=[JobStatus.SUBMITTING],
                event="resubmit-after-restart",
                detail=None,
                now=now,
                status=JobStatus.QUEUED.value,
            )
            return JobStatus.QUEUED if ok else None
        ok = await self.finish(
            job_id,
            status=JobStatus.UNCERTAIN,
            now=now,
            error_code="interrupted",
            error_message=None,
            expect=[JobStatus.SUBMITTING],
        )
        return JobStatus.UNCERTAIN if ok else None

    async def record_poll(
        self,
        job_id: str,
        *,
        status: JobStatus,
        next_poll_at: float,
        now: float,
        not_found: bool = False,
    ) -> bool:
        n = await self.db.execute(
            "UPDATE jobs SET status = ?, next_poll_at = ?, poll_count = poll_count + 1,"
            " not_found_count = not_found_count + ?"
            " WHERE id = ? AND status IN ('pending', 'running')",
            (status.value, next_poll_at, int(not_found), job_id),
        )
        return n == 1

    async def not_found_count(self, job_id: str) -> int:
        row = await self.db.fetchone("SELECT not_found_count FROM jobs WHERE id = ?", (job_id,))
        return int(row[0]) if row else 0

    async def mark_slow_notified(self, job_id: str) -> bool:
        n = await self.db.execute(
            "UPDATE jobs SET slow_notified = 1 WHERE id = ? AND slow_notified = 0", (job_id,)
        )
        return n == 1

    async def finish(
        self,
        job_id: str,
        *,
        status: JobStatus,
        now: float,
        result_urls: Sequence[str] = (),
        credits: float | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        expect: Sequence[JobStatus] | None = None,
    ) -> bool:
        """Record the terminal outcome (once: only from a non-terminal state) and, in the same
        transaction, settle the job's credits (success) or refund them (anything else)."""
        assert status.terminal

        def settle(conn: sqlite3.Connection) -> None:
            if status is JobStatus.SUCCEEDED:
                conn.execute(
                    "UPDATE ledger SET state = 'settled', charged = COALESCE(?, reserved),"
                    " settled_at = ? WHERE job_id = ? AND state = 'reserved'",
                    (credits, now, job_id),
                )
            else:
                _refund(conn, job_id, now, was="reserved")

        return await self._transition(
            job_id,
            expect=expect
            or [JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.PENDING, JobStatus.RUNNING],
            event=status.value,
            detail=error_code,
            now=now,
            also=settle,
            status=status.value,
            result_urls_json=json.dumps(list(result_urls)),
            credits=credits,
            error_code=error_code,
            error_message=error_message,
            finished_at=now,
        )

    async def refund_settled(self, job_id: str, *, reason: str, now: float) -> bool:
        """Give back a succeeded job's credits when its images can never be shown (the result
        downloads were given up). Once only: a settled row becomes refunded, nothing else moves."""

        def write(conn: sqlite3.Connection) -> bool:
            if not _refund(conn, job_id, now, was="settled"):
                return False
            _record_event(conn, job_id, now, "refunded", reason)
            return True

        return await self.db.run_transaction(write)

    # --- delivery -------------------------------------------------------------------------------

    async def begin_delivery(self, job_id: str, now: float) -> int:
        """Mark a delivery attempt as started; returns the attempt number (1-based)."""

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE jobs SET delivery_state = 'started', delivery_attempts ="
                " delivery_attempts + 1 WHERE id = ? AND delivery_state IN ('none', 'started')",
                (job_id,),
            )
            if cur.rowcount != 1:
                return 0
            row = conn.execute(
                "SELECT delivery_attempts FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            attempts = int(row[0]) if row else 0
            _record_event(conn, job_id, now, "delivery-started", str(attempts))
            return attempts

        return await self.db.run_transaction(write)

    async def end_delivery(
        self, job_id: str, *, state: DeliveryState, receipt: dict[str, Any] | None, now: float
    ) -> bool:
        assert state in (DeliveryState.DONE, DeliveryState.GAVE_UP)
        receipt_json = json.dumps(receipt) if receipt is not None else None

        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE jobs SET delivery_state = ?, receipt_json = ?, delivered_at = ?"
                " WHERE id = ? AND delivery_state = 'started'",
                (state.value, receipt_json, now, job_id),
            )
            if cur.rowcount != 1:
                return False
            _record_event(conn, job_id, now, f"delivery-{state.value}", None)
            return True

        return await self.db.run_transaction(write)

    async def update_target(self, job_id: str, target: Target) -> None:
        """Targets learn things after submit (e.g. the Discord status message id)."""
        await self.db.execute(
            "UPDATE jobs SET target_json = ? WHERE id = ?", (target.to_json(), job_id)
        )

    async def save_partial_receipt(self, job_id: str, receipt: dict[str, Any]) -> None:
        """Progress of a multi-part delivery, so a retry skips the parts already sent."""
        await self.db.execute(
            "UPDATE jobs SET receipt_json = ? WHERE id = ? AND delivery_state = 'started'",
            (json.dumps(receipt), job_id),
        )

    async def recent_for_user(self, user_id: int, limit: int = 10) -> list[Job]:
        rows = await self.db.fetchall(
            "SELECT * FROM jobs WHERE user_id = ? ORDER BY created_at DESC LIMIT ?",
            (user_id, limit),
        )
        return [_row_to_job(r) for r in rows]

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
        """Privacy: delete a member's finished jobs and their credit history everywhere."""
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
            return removed

    async def add_event(self, job_id: str, event: str, detail: str | None, now: float) -> None:
        await self.db.execute(
            "INSERT INTO job_events (job_id, at, event, detail) VALUES (?, ?, ?, ?)",
            (job_id, now, event, detail),
        )

    # --- ownership ------------------------------------------------------------------------------

    async def register_instance(self, instance_id: str, now: float) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO instances (id, host, pid, started_at, heartbeat_at)"
            " VALUES (?, ?, ?, ?, ?)",
            # started_at is real time (it identifies the process); heartbeats use the clock.
            (instance_id, socket.gethostname(), os.getpid(), time.time(), now),
        )

    async def heartbeat(self, instance_id: str, now: float) -> None:
        await self.db.execute(
            "UPDATE instances SET heartbeat_at = ? WHERE id = ?", (now, instance_id)
        )

    async def unregister_instance(self, instance_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET owner = NULL WHERE owner = ?", (instance_id,))
            await conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))

    async def claim_orphans(
        self, instance_id: str, kinds: Iterable[str], *, now: float, stale_after: float
    ) -> int:
        """Take over unfinished jobs whose owner is gone: unset, dead on this host, or silent."""
        kinds = list(kinds)
        if not kinds:
            return 0
        host = socket.gethostname()
        rows = await self.db.fetchall(
            "SELECT id, pid, started_at FROM instances WHERE host = ? AND id != ?",
            (host, instance_id),
        )
        dead = [r["id"] for r in rows if not _alive(int(r["pid"]), float(r["started_at"]))]
        marks = ",".join("?" for _ in kinds)
        dead_marks = ",".join("?" for _ in dead) or "NULL"
        async with self.db.transaction() as conn:
            if dead:
                await conn.execute(f"DELETE FROM instances WHERE id IN ({dead_marks})", dead)  # noqa: S608 - placeholders only
            cur = await conn.execute(
                f"UPDATE jobs SET owner = ? WHERE {_UNFINISHED} AND target_kind IN ({marks})"  # noqa: S608 - placeholders only
                " AND (owner IS NULL OR owner NOT IN (SELECT id FROM instances)"
                "      OR owner IN (SELECT id FROM instances WHERE heartbeat_at < ?))",
                (instance_id, *kinds, now - stale_after),
            )
            return cur.rowcount


# When this process started (roughly: when this module was imported).
_PROCESS_STARTED = time.time()


def _alive(pid: int, started_at: float) -> bool:
    """Is the instance that registered with ``pid`` at ``started_at`` still running?"""
    if pid == os.getpid():
        # Our own pid: an instance registered before we started is a previous process that
        # had the same pid (a restarted container is always pid 1). Later ones are in-process.
        return started_at >= _PROCESS_STARTED - 1.0
    return _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
