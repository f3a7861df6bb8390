"""Input images: what the model accepts (type, pixel sizes, ratio, MB), and making an accepted
image ready for upload (alpha flattened)."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import Final

from bot.domain.text import Text, t
from bot.errors import MediaError
from bot.media.decode import (
    ImageInfo,
    Label,
    decoded,
    file_label,
    flatten,
    image_info,
    not_an_image,
    open_image,
    pillow_errors,
    wrong_format,
)
from bot.media.limits import (
    INPUT_FORMATS,
    INPUT_MAX_ASPECT,
    INPUT_MAX_BYTES,
    INPUT_MAX_SIDE,
    INPUT_MIN_SIDE,
)
from bot.media.sniff import EXTENSIONS, sniff_format

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    data: bytes
    content_type: str
    ext: str  # with the dot, e.g. ".png" (crun's upload-url wants it that way)


def check_input_image(data: bytes, *, name: Label) -> ImageInfo:
    """Enforce the model's input rules; every refusal names the file and says what to do."""
    label = file_label(name)
    fmt, header = sniff_format(data)
    if fmt is None:
        raise not_an_image(label, data)
    if fmt not in INPUT_FORMATS:
        raise wrong_format(label, fmt)
    if len(data) > INPUT_MAX_BYTES:
        raise MediaError(
            too_many_bytes(label, len(data)),
            detail=f"{label}: {len(data)} bytes > {INPUT_MAX_BYTES}",
        )
    if header is not None:
        # Side and ratio rules straight from the header: a 30000 px bomb gets the useful message.
        _check_dimensions(label, header.width, header.height)
    im, header = open_image(data, name)
    with im:
        info = image_info(im, header.format)
        with pillow_errors(label, info.format):
            im.verify()  # cheap structural check (PNG chunk CRCs); does not decode pixels
    if info.format in _VERIFY_IS_BLIND:
        _check_scan(data, name, label)
    _check_dimensions(label, info.width, info.height)
    return info


def too_many_bytes(label: Label, size: int) -> Text:
    """The refusal of a file over ``INPUT_MAX_BYTES`` (also used before downloading)."""
    megabytes = f"{size / 1_000_000:.1f}"  # a string: "20.0", as written today
    return t(
        "{name} is {size} MB; images must be at most {limit} MB. Send a smaller or more "
        "compressed image (a JPEG usually is).",
        name=label,
        size=megabytes,
        limit=INPUT_MAX_BYTES // 1_000_000,
    )


# verify() checks nothing for these, so a file cut short would be accepted and billed.
_VERIFY_IS_BLIND: Final = frozenset({"JPEG", "BMP"})


def _check_scan(data: bytes, name: Label, label: Label) -> None:
    """Decode the pixels to prove the file is whole; a JPEG only at 1/8 scale, which is cheap."""
    im, _ = open_image(data, name)
    with im:
        if im.format == "JPEG":
            # The decoder still walks every scan to the end at 1/8 scale, so truncation shows.
            im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
        decoded(im, label, im.format or "image")


def too_small(label: Label, width: int, height: int) -> Text:
    # Pixel sizes as strings: written as today (8000, not 8,000) in every language.
    return t(
        "{name} is {width}×{height} px; each side must be at least {limit} px. "
        "Send a larger image.",
        name=label,
        width=str(width),
        height=str(height),
        limit=str(INPUT_MIN_SIDE),
    )


def too_large(label: Label, width: int, height: int) -> Text:
    return t(
        "{name} is {width}×{height} px; each side must be at most {limit} px. "
        "Resize it and send it again.",
        name=label,
        width=str(width),
        height=str(height),
        limit=str(INPUT_MAX_SIDE),
    )


def _check_dimensions(label: Label, width: int, height: int) -> None:
    if min(width, height) < INPUT_MIN_SIDE:
        raise MediaError(
            too_small(label, width, height),
            detail=f"{label}: {width}x{height} below {INPUT_MIN_SIDE}",
        )
    if max(width, height) > INPUT_MAX_SIDE:
        raise MediaError(
            too_large(label, width, height),
            detail=f"{label}: {width}x{height} above {INPUT_MAX_SIDE}",
        )
    if max(width, height) > INPUT_MAX_ASPECT * min(width, height):
        raise MediaError(
            t(
                "{name} is {width}×{height} px, too long and thin; the sides may differ by at "
                "most {ratio}:1. Crop it and send it again.",
                name=label,
                width=str(width),
                height=str(height),
                ratio=INPUT_MAX_ASPECT,
            ),
            detail=f"{label}: aspect {width}x{height} beyond {INPUT_MAX_ASPECT}:1",
        )


def prepare_for_upload(data: bytes, *, name: Label) -> Prepared:
    """Make an input image acceptable upstream: no alpha channel (PNG is re-encoded flat).

    Opaque images pass through byte for byte, so nothing is lost to a needless re-encode.
    Run ``check_input_image`` first: this does not enforce the model's input rules.
    """
    label = file_label(name)
    im, header = open_image(data, name)
    with im:
        info = image_info(im, header.format)
        if not info.has_alpha:
            return Prepared(data=data, content_type=info.mime, ext=EXTENSIONS[info.format])
        flat = flatten(decoded(im, label, info.format))
        buf = io.BytesIO()
        flat.save(buf, "PNG", icc_profile=im.info.get("icc_profile"))
    log.debug("flattened alpha of %s (%s %dx%d)", label, info.format, info.width, info.height)
    return Prepared(data=buf.getvalue(), content_type="image/png", ext=".png")


# --- async wrappers: Pillow never runs on the event loop -------------------------------------


async def check_input_image_async(data: bytes, *, name: Label) -> ImageInfo:
    return await asyncio.to_thread(check_input_image, data, name=name)


async def prepare_for_upload_async(data: bytes, *, name: Label) -> Prepared:
    return await asyncio.to_thread(prepare_for_upload, data, name=name)
