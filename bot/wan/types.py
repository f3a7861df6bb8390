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
    error_message: str | None = None  # result.message, else data.message, on failure
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
class FieldSpec:
    """One leaf of the model's ``input`` as its live schema describes it (any source shape)."""

    path: tuple[str, ...]  # ("parameters", "size") for a field nested under "parameters"
    type: str | None = None  # string, integer, number, boolean, array, object; None = not said
    enum: tuple[Any, ...] = ()
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    format: str | None = None
    description: str = ""
    items_type: str | None = None
    items_format: str | None = None
    item_keys: tuple[str, ...] = ()  # property names of object items (e.g. a palette entry)

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    def summary(self) -> str:
        """``array of string, max 9`` - for operators' reports."""
        kind = self.type or "any type"
        if self.type == "array" and self.items_type:
            kind += f" of {self.items_type}"
        extras = []
        if self.enum:
            shown = ", ".join(str(v) for v in self.enum[:8])
            extras.append(f"one of {shown}{', ...' if len(self.enum) > 8 else ''}")
        if self.max_items is not None:
            extras.append(f"max {self.max_items} items")
        if self.minimum is not None or self.maximum is not None:
            extras.append(f"range {_num(self.minimum)}..{_num(self.maximum)}")
        if self.pattern:
            extras.append(f"pattern {self.pattern}")
        if self.required:
            extras.append("required")
        return kind + (f" ({'; '.join(extras)})" if extras else "")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True, slots=True)
class ModelSchema:
    model: str
    fields: tuple[FieldSpec, ...]
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def input_fields(self) -> frozenset[str]:
        """Dotted paths of every leaf field."""
        return frozenset(f.dotted for f in self.fields)

    @property
    def required_fields(self) -> frozenset[str]:
        return frozenset(f.dotted for f in self.fields if f.required)

    @classmethod
    def of_names(
        cls,
        names: frozenset[str] | set[str],
        required: frozenset[str] | set[str] = frozenset(),
        *,
        model: str = MODEL_ID,
    ) -> ModelSchema:
        """A schema that says only names (as ``required_input_fields`` lists do)."""
        every = sorted(set(names) | set(required))
        fields = tuple(FieldSpec(tuple(n.split(".")), required=n in required) for n in every)
        return cls(model=model, fields=fields)


@dataclass(frozen=True, slots=True)
class UploadSlot:
    presigned_url: str
    file_url: str
