"""How a finished job reaches its target. Discord is one sink; the CLI's file writer is another.

The engine records every attempt in the store; a sink makes a repeated attempt harmless by keying
its side effect on the job id (Discord: message nonce with ``enforce_nonce``; files: fixed names).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.domain.models import Job, ResultImage
from bot.domain.text import Text

log = logging.getLogger(__name__)


# A receipt with this key says the member was told their result could not be posted at all (for
# example it does not fit the channel): nothing reached them, so the engine refunds the credits.
UNDELIVERED = "undelivered"


class DeliveryGone(Exception):
    """The target no longer exists (deleted channel, revoked access): retrying cannot help."""


class ProgressKind(enum.StrEnum):
    QUEUED = "queued"  # waiting for a running slot; cancellable
    SUBMITTED = "submitted"  # at crun: can no longer be stopped
    RUNNING = "running"
    SLOW = "slow"
    CANCELLED = "cancelled"  # taken out of the queue before crun saw it; nothing charged


@dataclass(frozen=True, slots=True)
class Progress:
    kind: ProgressKind
    queue_position: int | None = None  # 1-based, for QUEUED
    eta: float | None = None  # wall-clock seconds: when it should start (QUEUED) or finish
    cancelled_by: int | None = None  # for CANCELLED: the member who cancelled it


@dataclass(frozen=True, slots=True)
class Outcome:
    """What gets delivered: images on success, a user-safe message otherwise.

    ``error_message`` is the message in English (receipts, the CLI); ``text``, when there is
    one, the same message for a sink to write in the job's language.
    """

    job: Job
    images: tuple[ResultImage, ...] = ()
    error_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    text: Text | None = None

    @staticmethod
    def failed(job: Job, message: Text | str) -> Outcome:
        """A failure's outcome: a ``Text`` is kept to be translated, a string shown as it is."""
        if isinstance(message, Text):
            return Outcome(job=job, error_message=message.english(), text=message)
        return Outcome(job=job, error_message=message)

    @property
    def message(self) -> Text | str:
        """What the member is told about a failure (a Text when it can be translated)."""
        return self.text if self.text is not None else self.error_message or ""

    def __post_init__(self) -> None:
        # A success with nothing to post would be "delivered" without a result.
        if self.error_message is None and not self.images:
            raise ValueError(f"job {self.job.id}: a successful outcome needs images")

    @property
    def ok(self) -> bool:
        return self.error_message is None


class DeliverySink(Protocol):
    """A place where outcomes go. Implementations must be idempotent per job id."""

    def upload_limit(self, job: Job) -> int:
        """Largest file (bytes) this target accepts for the job."""
        ...

    async def deliver(self, outcome: Outcome) -> dict[str, Any]:
        """Send the outcome; return a JSON-able receipt. Raise DeliveryGone when hopeless."""
        ...

    async def progress(self, job: Job, progress: Progress) -> None:
        """Best-effort status update (not recorded, may be dropped)."""
        ...


class FileSink:
    """Writes results into a folder: ``<job>-<n>.<ext>``. Rewriting the same names is idempotent."""

    kind = "files"

    def __init__(self, *, upload_limit: int = 200 * 1024 * 1024) -> None:
        self._limit = upload_limit

    def upload_limit(self, job: Job) -> int:
        return self._limit

    async def deliver(self, outcome: Outcome) -> dict[str, Any]:
        out_dir = Path(outcome.job.target.data["dir"])
        if not outcome.ok:
            return {"error": outcome.error_message}
        try:
            paths = await asyncio.to_thread(_write_files, out_dir, outcome)
        except (PermissionError, NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
            # Retrying cannot make a file into a folder or grant a permission: say so at once.
            raise DeliveryGone(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
        return {"files": [str(p) for p in paths]}

    async def progress(self, job: Job, progress: Progress) -> None:
        log.info("job %s: %s", job.id, progress.kind.value)


def _write_files(out_dir: Path, outcome: Outcome) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for img in outcome.images:
        final = out_dir / img.filename
        tmp = final.with_suffix(final.suffix + ".part")
        tmp.write_bytes(img.data)
        tmp.replace(final)  # atomic: a crash never leaves half an image under the real name
        paths.append(final)
    meta = out_dir / f"{outcome.job.id}.json"
    meta.write_text(
        json.dumps(
            {
                "job_id": outcome.job.id,
                "task_id": outcome.job.task_id,
                "prompt": outcome.job.request.prompt,
                "seed": outcome.job.request.seed,
                "files": [p.name for p in paths],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return paths
