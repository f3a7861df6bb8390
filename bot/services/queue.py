"""/queue and Cancel: how busy the bot is, where a member's waiting jobs stand, and taking one out
of the line before crun sees it (its reserved credits are released; nothing is charged)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.domain.text import Text, t
from bot.errors import InvalidInput
from bot.jobs.cancelling import CancelResult
from bot.jobs.engine import JobEngine
from bot.services.generation import no_such_job

MENU_MAX = 25  # Discord's options per select menu: the most /queue lists

NOT_YOURS = t(
    "Only the member who asked for this image, or members with the Manage Messages permission, "
    "can cancel it."
)
CANCELLED = t("Cancelled; nothing was charged.")
AT_CRUN = t("It was already sent to the image service, so it can no longer be stopped.")
FINISHED = t("This job is no longer waiting; there is nothing to cancel.")


@dataclass(frozen=True, slots=True)
class WaitingJob:
    job_id: str
    place: int  # 1-based place in the whole line
    starts_at: float | None  # wall-clock estimate of when it starts, if known
    prompt: str


@dataclass(frozen=True, slots=True)
class QueueStanding:
    rendering: int  # jobs at crun now
    waiting: int  # jobs waiting for a slot
    mine: tuple[WaitingJob, ...]  # the asker's waiting jobs, in service order


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"
    AT_CRUN = "at-crun"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class CancelAnswer:
    outcome: CancelOutcome
    text: Text  # what the member is told (the Discord edge renders it in their language)

    @property
    def control_stale(self) -> bool:
        """The job stopped waiting on its own: a Cancel control showing it should go."""
        return self.outcome is not CancelOutcome.CANCELLED


class QueueService:
    def __init__(self, engine: JobEngine) -> None:
        self._engine = engine

    async def standing(self, user_id: int) -> QueueStanding:
        engine = self._engine
        mine: list[WaitingJob] = []
        for job_id, place, starts_at in engine.waiting_for(user_id)[:MENU_MAX]:
            job = await engine.jobs.get(job_id)
            if job is not None:  # it may have started or been cancelled meanwhile
                mine.append(WaitingJob(job_id, place, starts_at, job.request.prompt))
        return QueueStanding(
            rendering=engine.inflight, waiting=engine.queue_depth, mine=tuple(mine)
        )

    async def cancel(self, job_id: str, *, user_id: int, can_manage: bool) -> CancelAnswer:
        """Cancel a waiting job for its requester or for a member who may manage messages where
        it was asked for (``can_manage``: the face knows Discord's permissions, this does not).

        Raises InvalidInput for an unknown job and for anyone else.
        """
        job = await self._engine.jobs.get(job_id)
        if job is None:
            raise no_such_job(job_id)
        if job.user_id != user_id and not can_manage:
            raise InvalidInput(NOT_YOURS)
        result = await self._engine.cancel(job_id, by_user_id=user_id)
        if result is CancelResult.CANCELLED:
            return CancelAnswer(CancelOutcome.CANCELLED, CANCELLED)
        if result is CancelResult.AT_CRUN:
            return CancelAnswer(CancelOutcome.AT_CRUN, AT_CRUN)
        if result is CancelResult.FINISHED:
            return CancelAnswer(CancelOutcome.FINISHED, FINISHED)
        raise no_such_job(job_id)  # NOT_FOUND: gone from the store meanwhile
