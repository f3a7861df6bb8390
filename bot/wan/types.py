"""Typed replies of the crun job API (see shared wan-api.md sections 1.1-1.6)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

MODEL_ID = "wan/2-7-image-pro"


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UNKNOWN = "unknown"  # anything crun adds later; treated as non-terminal, logged

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.SUCCESS, TaskStatus.FAILED)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    task_id: str
    status: TaskStatus
    media_urls: tuple[str, ...] = ()
    error_message: str | None = None  # result.message (or envelope message) on failure
    error_code: int | None = None  # result.code on failure, informational only
    credits: float | None = None
    create_at: int | None = None
    complete_at: int | None = None
    duration_s: float | None = None
    raw_status: str = ""


@dataclass(frozen=True, slots=True)
class Estimate:
    credits: float | None
    balance: float | None
    affordable: bool | None


@dataclass(frozen=True, slots=True)
class ModelSchema:
    model: str
    input_fields: frozenset[str]
    required_fields: frozenset[str]
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadSlot:
    presigned_url: str
    file_url: str
