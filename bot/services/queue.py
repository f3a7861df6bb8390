"""/queue: how busy the bot is, and where a member's own jobs stand in line."""

from __future__ import annotations

from dataclasses import dataclass

from bot.jobs.engine import JobEngine


@dataclass(frozen=True, slots=True)
class QueueStanding:
    rendering: int  # jobs at crun now
    waiting: int  # jobs waiting for a slot
    mine: tuple[tuple[str, int], ...]  # (job id, 1-based place in line) of the asker's jobs


class QueueService:
    def __init__(self, engine: JobEngine) -> None:
        self._engine = engine

    def standing(self, user_id: int) -> QueueStanding:
        engine = self._engine
        return QueueStanding(
            rendering=engine.inflight,
            waiting=engine.queue_depth,
            mine=tuple(engine.queued_for(user_id)),
        )
