"""The job a piece of code is working on, carried in a context variable.

The engine binds it at the top of each job step (submit, poll, deliver). asyncio copies the
context into every task it creates, so the binding stays inside that step's task, and every log
line written while the step runs (by the engine, the crun client, the media fetcher or a delivery
sink) is tagged with the job id and guild id, without passing them through every call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobRef:
    job_id: str
    guild_id: int | None = None


_current: contextvars.ContextVar[JobRef | None] = contextvars.ContextVar("wanbot_job", default=None)


def current_job() -> JobRef | None:
    return _current.get()


def bind_job(job_id: str, guild_id: int | None = None) -> contextvars.Token[JobRef | None]:
    """Tag the rest of the current task with this job (a task of its own: no reset needed)."""
    return _current.set(JobRef(job_id, guild_id))


@contextmanager
def job_context(job_id: str, guild_id: int | None = None) -> Iterator[None]:
    """Tag a block inside a task that goes on to do other things afterwards."""
    token = bind_job(job_id, guild_id)
    try:
        yield
    finally:
        _current.reset(token)
