"""/history: a member's own jobs in every server and DM, a page at a time, each with what it
cost. Showing one again and running it again (``GenerationService.reroll``) are the faces' job.

Only the member's own jobs are ever read: every look-up names the member, and a job of anyone
else answers as unknown. Nothing is cached: a job purged by retention or forgotten is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.models import Job
from bot.services.generation import no_such_job
from bot.store.jobs import ChargedJob, JobRepository

PAGE_SIZE = 10


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    job: Job
    # Credits: what a finished job was charged (0 when refunded), what a running one holds;
    # None when no record is left (the job's own figure is used when crun named one).
    credits: float | None
    held: bool  # still reserved: the job has not finished


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: tuple[HistoryEntry, ...]
    page: int  # 0-based
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 0


def _entry(row: ChargedJob) -> HistoryEntry:
    credits = row.charged if row.ledger_state is not None else row.job.credits
    return HistoryEntry(row.job, credits, held=row.ledger_state == "reserved")


class HistoryService:
    def __init__(self, jobs: JobRepository) -> None:
        self._jobs = jobs

    async def page(self, user_id: int, page: int) -> HistoryPage:
        """Page ``page`` (0-based, ten jobs, newest first); one more row tells if a next exists.
        A page past the end (jobs were purged meanwhile) shows the first page instead."""
        page = max(0, page)
        rows = await self._jobs.history_for_user(user_id, PAGE_SIZE + 1, page * PAGE_SIZE)
        if not rows and page > 0:
            page = 0
            rows = await self._jobs.history_for_user(user_id, PAGE_SIZE + 1, 0)
        entries = tuple(_entry(r) for r in rows[:PAGE_SIZE])
        return HistoryPage(entries, page, has_next=len(rows) > PAGE_SIZE)

    async def job_of(self, user_id: int, job_id: str) -> Job:
        """The member's own job; anyone else's (or a purged one) answers as unknown."""
        job = await self._jobs.get(job_id.strip().lower())
        if job is None or job.user_id != user_id:
            raise no_such_job(job_id)
        return job
