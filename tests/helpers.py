"""Test helpers shared by the suites: a recording delivery sink and condition waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from bot.domain.models import Job
from bot.jobs.delivery import DeliveryGone, Outcome, Progress
from tests.fakes.crun_server import FakeCrun


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout: float = 5.0,  # noqa: ASYNC109 - a polling helper with its own deadline
    what: str = "condition",
) -> None:
    """Wait for a condition with a deadline (checked every 5 ms): no fixed sleeps in tests."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


class RecordingSink:
    """Records what the engine delivers. Deduplicates by job id the way Discord's
    ``enforce_nonce`` does, and counts every attempt so tests can tell the two apart."""

    kind = "test"

    def __init__(self, *, upload_limit: int = 10 * 1024 * 1024) -> None:
        self.limit = upload_limit
        self.attempts: list[str] = []
        self.delivered: dict[str, Outcome] = {}
        self.progress_log: list[tuple[str, Progress]] = []
        self.fail_next = 0  # raise a transient error this many times
        self.gone: set[str] = set()  # job ids whose target "was deleted"
        self.block: asyncio.Event | None = None  # hold deliveries until set
        self.entered = asyncio.Event()

    def upload_limit(self, job: Job) -> int:
        return self.limit

    async def deliver(self, outcome: Outcome) -> dict[str, Any]:
        job_id = outcome.job.id
        self.attempts.append(job_id)
        self.entered.set()
        if self.block is not None:
            await self.block.wait()
        if job_id in self.gone:
            raise DeliveryGone("channel deleted")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("discord is having a moment")
        self.delivered.setdefault(job_id, outcome)
        return {"message_id": len(self.delivered), "images": len(outcome.images)}

    async def progress(self, job: Job, progress: Progress) -> None:
        self.progress_log.append((job.id, progress))


def uploaded(crun: FakeCrun, file_url: str) -> bytes:
    """The bytes crun stored behind one of its file URLs (/files/<upload id><ext>)."""
    upload_id = file_url.rsplit("/", 1)[1].split(".", 1)[0]
    return crun.uploads[upload_id]


def sent_input(crun: FakeCrun) -> dict[str, Any]:
    """The input of the one CreateTask crun received."""
    requests = crun.requests_for("create")
    assert len(requests) == 1
    return cast(dict[str, Any], requests[0]["input"])
