"""Cancelling a job while it waits in line: out of the queue, refunded, the member told.

Only a job crun has not seen can be cancelled (CreateTask not sent: after that crun may have
created, and billed, a task). The store decides in one transaction (bot/store/unsent.py), so a
cancel racing a submit worker that is taking the same job has one winner: either the job is
cancelled and the worker's next guarded step finds it gone, or CreateTask went out first and the
cancel says so.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from bot.jobs.delivery import Progress, ProgressKind
from bot.jobs.fairqueue import FairQueue
from bot.jobs.progress import ProgressReporter
from bot.jobs.records import JobRecords
from bot.store.jobs import JobRepository
from bot.store.unsent import CancelOutcome, cancel_unsent

# The engine logs under one name whichever of its parts writes the line.
log = logging.getLogger("bot.jobs.engine")


class CancelResult(enum.StrEnum):
    CANCELLED = "cancelled"  # out of the line, nothing charged, the status message says so
    AT_CRUN = "at-crun"  # already sent to crun: it can no longer be stopped
    FINISHED = "finished"  # it had already ended
    NOT_FOUND = "not-found"


_RESULTS = {
    CancelOutcome.CANCELLED: CancelResult.CANCELLED,
    CancelOutcome.AT_CRUN: CancelResult.AT_CRUN,
    CancelOutcome.FINISHED: CancelResult.FINISHED,
    CancelOutcome.NOT_FOUND: CancelResult.NOT_FOUND,
}


class Canceller:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        clock: Callable[[], float],
        queue: FairQueue,
        records: JobRecords,
        reporter: ProgressReporter,
    ) -> None:
        self._jobs = jobs
        self._clock = clock
        self._queue = queue
        self._records = records
        self._reporter = reporter

    async def cancel(self, job_id: str, *, by_user_id: int) -> CancelResult:
        """Cancel a waiting job (permission is the caller's business)."""
        user = self._records.user_of(job_id)
        guild = self._records.guild_of(job_id)
        # Out of the line first (no await in between): no worker can pick it from here on.
        was_waiting = self._queue.remove(job_id)
        cancel = await cancel_unsent(
            self._jobs.db, job_id, now=self._clock(), told=True, by_user_id=by_user_id
        )
        result = _RESULTS[cancel.outcome]
        if result is not CancelResult.CANCELLED:
            if was_waiting and user is not None:
                # The store says otherwise (another process ended it): let the usual path
                # pick it up and find out, as it would have.
                self._queue.put(job_id, user, guild)
            return result
        log.info("job %s cancelled by %s before it was sent to crun", job_id, by_user_id)
        job = await self._jobs.get(job_id)
        if job is not None:
            cancelled = Progress(ProgressKind.CANCELLED, cancelled_by=by_user_id)
            await self._reporter.send(job, cancelled)
        self._records.done(job_id)  # frees a slot if a worker held one; waiters learn it ended
        return result
