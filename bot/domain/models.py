"""Frozen value types shared by the engine, the store, the CLI and the cogs.

Nothing here imports discord, aiohttp or aiosqlite: the domain is plain data (a test enforces it).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any


class Mode(enum.StrEnum):
    TEXT_TO_IMAGE = "text-to-image"
    EDIT = "edit"
    IMAGE_SET = "image-set"


class Resolution(enum.StrEnum):
    R1K = "1K"
    R2K = "2K"
    R4K = "4K"


class ImageSource(enum.StrEnum):
    """Where an input image comes from, which decides how it reaches crun."""

    URL = "url"  # a stable https URL crun can fetch itself
    UPLOAD_URL = "upload-url"  # a URL we download and re-upload (e.g. expiring Discord CDN links)
    PATH = "path"  # a local file (CLI), uploaded through crun's upload-url flow


@dataclass(frozen=True, slots=True)
class ImageRef:
    source: ImageSource
    location: str  # URL or local path
    name: str = ""  # what the user calls it (attachment file name), for messages

    def label(self) -> str:
        return self.name or self.location.rsplit("/", 1)[-1].split("?", 1)[0] or "image"


@dataclass(frozen=True, slots=True)
class PaletteColor:
    hex: str  # "#1A2B3C"
    ratio: str  # "25.00%"


@dataclass(frozen=True, slots=True)
class Style:
    """A server style a member picked: its text is appended to the prompt sent to crun. Stored
    with the request (name and text), so Reroll, Vary and Upscale keep it even if an admin
    changes or removes the style afterwards."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a member asked for, before it is mapped to crun's field names."""

    prompt: str
    mode: Mode = Mode.TEXT_TO_IMAGE
    images: tuple[ImageRef, ...] = ()
    resolution: Resolution | None = None  # None: let the contract pick the model default
    aspect_ratio: str | None = None
    n: int = 1
    thinking: bool | None = None  # None: model default; only meaningful for text-to-image
    seed: int | None = None
    watermark: bool = False
    color_palette: tuple[PaletteColor, ...] = ()
    style: Style | None = None

    def with_seed(self, seed: int | None) -> GenerationRequest:
        return replace(self, seed=seed)

    def to_json(self) -> str:
        return json.dumps(request_to_dict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> GenerationRequest:
        return request_from_dict(json.loads(text))


def request_to_dict(req: GenerationRequest) -> dict[str, Any]:
    d: dict[str, Any] = {
        "prompt": req.prompt,
        "mode": req.mode.value,
        "images": [
            {"source": i.source.value, "location": i.location, "name": i.name} for i in req.images
        ],
        "resolution": req.resolution.value if req.resolution else None,
        "aspect_ratio": req.aspect_ratio,
        "n": req.n,
        "thinking": req.thinking,
        "seed": req.seed,
        "watermark": req.watermark,
        "color_palette": [{"hex": c.hex, "ratio": c.ratio} for c in req.color_palette],
    }
    if req.style is not None:  # absent without a style: older rows and readers stay as they were
        d["style"] = {"name": req.style.name, "text": req.style.text}
    return d


def request_from_dict(d: dict[str, Any]) -> GenerationRequest:
    style = d.get("style")  # absent in rows written before styles, and without one
    return GenerationRequest(
        prompt=d["prompt"],
        mode=Mode(d.get("mode", Mode.TEXT_TO_IMAGE.value)),
        images=tuple(
            ImageRef(ImageSource(i["source"]), i["location"], i.get("name", ""))
            for i in d.get("images", [])
        ),
        resolution=Resolution(d["resolution"]) if d.get("resolution") else None,
        aspect_ratio=d.get("aspect_ratio"),
        n=int(d.get("n", 1)),
        thinking=d.get("thinking"),
        seed=d.get("seed"),
        watermark=bool(d.get("watermark", False)),
        color_palette=tuple(PaletteColor(c["hex"], c["ratio"]) for c in d.get("color_palette", [])),
        style=Style(style["name"], style["text"]) if style else None,
    )


class JobStatus(enum.StrEnum):
    """Where a job is in its life. See bot/jobs/engine.py for the transitions."""

    QUEUED = "queued"  # stored, waiting for a submit slot
    SUBMITTING = "submitting"  # uploading inputs / CreateTask in flight
    PENDING = "pending"  # crun accepted it (task_id stored)
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # crun says success; result URLs stored
    FAILED = "failed"  # crun or we said no; see error_code / error_message
    UNCERTAIN = "uncertain"  # CreateTask outcome unknown (timeout/500): never resubmitted
    EXPIRED = "expired"  # tracked past the hard deadline without a terminal state

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def tracked(self) -> bool:
        """True when crun holds the task and we are waiting for it."""
        return self in (JobStatus.PENDING, JobStatus.RUNNING)


_TERMINAL = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.UNCERTAIN, JobStatus.EXPIRED}
)


class DeliveryState(enum.StrEnum):
    NONE = "none"  # nothing sent yet
    STARTED = "started"  # a send was attempted; the sink deduplicates by job id
    DONE = "done"  # the outcome reached its target, exactly once
    GAVE_UP = "gave-up"  # the target is gone (deleted channel, ...); logged, never retried


@dataclass(frozen=True, slots=True)
class Target:
    """Where a job's outcome goes. ``kind`` picks a registered delivery sink."""

    kind: str  # "files", "discord", ...
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "data": self.data}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Target:
        d = json.loads(text)
        return Target(kind=d["kind"], data=d.get("data", {}))


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job row. The store is the source of truth; this is a snapshot of it."""

    id: str
    user_id: int
    guild_id: int | None
    request: GenerationRequest
    target: Target
    status: JobStatus
    created_at: float
    task_id: str | None = None
    input_payload: dict[str, Any] | None = None  # the crun `input` object actually sent
    uploaded_urls: tuple[str, ...] = ()  # crun file URLs of inputs uploaded so far, in order
    result_urls: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None  # safe to show the user
    credits: float | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    next_poll_at: float | None = None
    poll_count: int = 0
    delivery_state: DeliveryState = DeliveryState.NONE
    delivery_attempts: int = 0
    delivered_at: float | None = None
    receipt: dict[str, Any] | None = None  # what the sink reported (message ids, file paths)
    parent_job_id: str | None = None  # rerolls / upscales / variations point at their source

    @property
    def finished(self) -> bool:
        """Nothing left to do: outcome known and delivered (or delivery abandoned)."""
        return self.status.terminal and self.delivery_state in (
            DeliveryState.DONE,
            DeliveryState.GAVE_UP,
        )


@dataclass(frozen=True, slots=True)
class ResultImage:
    """One finished image, downloaded and fitted for its target."""

    index: int  # 0-based position in the task's media_urls
    data: bytes
    filename: str  # e.g. "wan-<job>-1.png"
    content_type: str
    width: int
    height: int
    source_url: str
    reencoded: bool = False
