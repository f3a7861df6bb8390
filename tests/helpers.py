"""Test helpers shared by the suites: a recording delivery sink, condition waits and image
bytes (real PNGs and JPEGs made with Pillow)."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

from PIL import Image

from bot.domain.models import Job
from bot.jobs.delivery import DeliveryGone, Outcome, Progress
from bot.jobs.engine import JobEngine
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


async def crash(engine: JobEngine) -> None:
    """Vanish without releasing anything, like a SIGKILL would: every loop and step stops where
    it stands, and the instance stays registered as the owner of its unfinished jobs."""
    await engine.abort()


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


# --- image bytes ---------------------------------------------------------------------------------

Colour = float | tuple[int, ...]
RED = (200, 30, 30)


def encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    """``im`` saved as ``fmt``, with Pillow's save options."""
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def png(width: int, height: int, colour: Colour = RED, *, mode: str = "RGB") -> bytes:
    """A real PNG of one colour: small, and opaque in RGB (so it is uploaded byte for byte)."""
    return encode(Image.new(mode, (width, height), colour), "PNG")


def jpeg(width: int, height: int, colour: Colour = RED, *, mode: str = "RGB") -> bytes:
    """A real JPEG of one colour."""
    return encode(Image.new(mode, (width, height), colour), "JPEG")


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Random pixels: nothing to compress, so the encoded size is close to the raw size."""
    bands = len(mode)
    return Image.frombytes(mode, (width, height), os.urandom(width * height * bands))


def noise_png(width: int, height: int, **params: Any) -> bytes:
    """A random-noise PNG (about 3 bytes a pixel, whatever the compression)."""
    return encode(noise(width, height), "PNG", **params)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def raw_png(
    width: int,
    height: int,
    idat: bytes,
    *,
    bit_depth: int = 8,
    colour_type: int = 2,
    before_idat: bytes = b"",
) -> bytes:
    """A PNG assembled chunk by chunk, so the header can say anything (CRCs are all valid)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + before_idat
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite IHDR's declared size (with a valid CRC) so only the header lies."""
    assert data[12:16] == b"IHDR"
    ihdr = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the (baseline) frame header's declared size so only the header lies."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]
