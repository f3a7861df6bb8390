"""How a job row changes on its way: guarded status transitions, then its delivery."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bot.domain.models import DeliveryState, Job, JobStatus, Target
from bot.store.job_rows import record_event, refund, row_to_job
from bot.store.protocol import Db, Row, SyncConnection


class JobTransitions:
    """The writes that move a job along; JobRepository adds creating, reading and forgetting."""

    def __init__(self, db: Db) -> None:
        self.db = db

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
        also: Callable[[SyncConnection], object] | None = None,
        owner: str | None = None,
        **fields: Any,
    ) -> bool:
        """With ``owner``, only while that instance holds the job's lease."""
        sets = ", ".join(f"{name} = :{name}" for name in fields)
        states = ",".join(f"'{s.value}'" for s in expect)
        held = "" if owner is None else " AND owner = :_owner"
        params = {**fields, "_id": job_id} | ({} if owner is None else {"_owner": owner})

        def write(conn: SyncConnection) -> bool:
            cur = conn.execute(
                f"UPDATE jobs SET {sets} WHERE id = :_id AND status IN ({states}){held}",  # noqa: S608 - names are ours
                params,
            )
            if cur.rowcount != 1:
                return False
            record_event(conn, job_id, now, event, detail)
            if also is not None:
                also(conn)
            return True

        return await self.db.run_transaction(write)

    async def _transition_and_read(self, job_id: str, **transition: Any) -> Job | None:
        """A transition that also returns the job as it now is, read in the same transaction
        (one round trip to the database thread instead of two)."""
        read: list[Row] = []

        def fetch(conn: SyncConnection) -> None:
            read.append(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

        if not await self._transition(job_id, also=fetch, **transition):
            return None
        return row_to_job(read[0])

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
        self, job_id: str, input_payload: dict[str, Any], now: float, *, owner: str | None = None
    ) -> bool:
        """Written right before CreateTask goes out: from here on the job is never resent. With
        ``owner``, False unless that instance still holds the job (never two CreateTasks)."""
        return await self._transition(
            job_id,
            owner=owner,
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

    async def create_was_sent(self, job_id: str) -> bool:
        row = await self.db.fetchone("SELECT create_sent_at FROM jobs WHERE id = ?", (job_id,))
        return bool(row and row[0] is not None)

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

        def settle(conn: SyncConnection) -> None:
            if status is JobStatus.SUCCEEDED:
                conn.execute(
                    "UPDATE ledger SET state = 'settled', charged = COALESCE(?, reserved),"
                    " settled_at = ? WHERE job_id = ? AND state = 'reserved'",
                    (credits, now, job_id),
                )
            else:
                refund(conn, job_id, now, was="reserved")

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

        def write(conn: SyncConnection) -> bool:
            if not refund(conn, job_id, now, was="settled"):
                return False
            record_event(conn, job_id, now, "refunded", reason)
            return True

        return await self.db.run_transaction(write)

    # --- delivery -------------------------------------------------------------------------------

    async def begin_delivery(self, job_id: str, now: float, *, owner: str | None = None) -> int:
        """Mark a delivery attempt as started; returns the attempt number (1-based), or 0 when
        the job is delivered already (or, with ``owner``, held by another instance)."""
        held = "" if owner is None else " AND owner = ?"

        def write(conn: SyncConnection) -> int:
            cur = conn.execute(
                "UPDATE jobs SET delivery_state = 'started', delivery_attempts ="  # noqa: S608
                " delivery_attempts + 1 WHERE id = ? AND delivery_state IN ('none', 'started')"
                + held,
                (job_id,) if owner is None else (job_id, owner),
            )
            if cur.rowcount != 1:
                return 0
            row = conn.execute(
                "SELECT delivery_attempts FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            attempts = int(row[0]) if row else 0
            record_event(conn, job_id, now, "delivery-started", str(attempts))
            return attempts

        return await self.db.run_transaction(write)

    async def end_delivery(
        self,
        job_id: str,
        *,
        state: DeliveryState,
        receipt: dict[str, Any] | None,
        now: float,
        by: str = "",
    ) -> bool:
        """Close the delivery. DONE also writes the job's delivery record (one per job, by the
        primary key): a second delivery of one job can never be recorded."""
        assert state in (DeliveryState.DONE, DeliveryState.GAVE_UP)
        receipt_json = json.dumps(receipt) if receipt is not None else None

        def write(conn: SyncConnection) -> bool:
            cur = conn.execute(
                "UPDATE jobs SET delivery_state = ?, receipt_json = ?, delivered_at = ?"
                " WHERE id = ? AND delivery_state = 'started'",
                (state.value, receipt_json, now, job_id),
            )
            if cur.rowcount != 1:
                return False
            if state is DeliveryState.DONE:
                conn.execute(
                    "INSERT INTO deliveries (job_id, instance, attempts, delivered_at)"
                    " SELECT id, ?, delivery_attempts, ? FROM jobs WHERE id = ?",
                    (by, now, job_id),
                )
            record_event(conn, job_id, now, f"delivery-{state.value}", None)
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
