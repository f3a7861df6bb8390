"""Opening untrusted image bytes with Pillow: the decompression-bomb guard, errors that name the
file, decoding and flattening to opaque pixels.

Decompression bombs: no image is handed to ``Image.open`` before its header has been parsed here
and its declared pixel count checked against ``MAX_PIXELS``. Pillow's own bomb warning is turned
into an error only around ``Image.open`` (the one place it is raised for the formats we open),
under a lock, because ``warnings.catch_warnings`` edits process-global state and two threads
entering/leaving it out of order would leave the filter installed for everyone.
"""

from __future__ import annotations

import contextlib
import io
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from bot.domain.text import Text, t
from bot.errors import MediaError
from bot.media.limits import INPUT_MAX_SIDE, MAX_PIXELS
from bot.media.sniff import CONTENT_TYPES, OPENABLE, Header, sniff_format

_WHITE = (255, 255, 255)

_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # Pillow's name: "PNG", "JPEG", "WEBP", "BMP", "GIF"
    width: int
    height: int
    has_alpha: bool
    mime: str


#: A file's name as the messages show it: a string, or a ``Text`` when the file has none.
Label = str | Text

#: Formats named by a word of their own (sniff.py): translated; the others are acronyms.
_FORMAT_WORDS: dict[str, Text] = {"PDF document": t("PDF document"), "ICO icon": t("ICO icon")}


def file_label(name: Label) -> Label:
    if isinstance(name, Text):
        return name  # already what a member reads ("the image", "embedded image 2")
    name = " ".join(name.split())
    if len(name) > 80:
        name = name[:77] + "..."
    return name or t("the image")


def damaged(name: Label, fmt: str, detail: str) -> MediaError:
    return MediaError(
        t(
            "{name} looks like a {format} file but could not be read (it may be damaged); "
            "send a PNG, JPEG, WEBP or BMP image.",
            name=name,
            format=fmt,
        ),
        detail=detail,
    )


@contextlib.contextmanager
def pillow_errors(name: Label, fmt: str) -> Iterator[None]:
    """Turn whatever Pillow raises on bad input into a MediaError naming the file."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(
            t("{name} is too large to open safely; send a smaller image.", name=name),
            detail=f"{name}: decompression bomb guard: {exc}",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as exc:
        raise damaged(name, fmt, f"{name}: {type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def as_result_error(message: Text) -> Iterator[None]:
    """Results come from the model, so "send a PNG instead" would make no sense to the user:
    ``message`` says which result could not be read."""
    try:
        yield
    except MediaError as exc:
        raise MediaError(message, detail=exc.detail) from None


def open_image(data: bytes, name: Label) -> tuple[Image.Image, Header]:
    """Sniff, check the declared size, then let Pillow open (header only) the one format."""
    label = file_label(name)
    fmt, header = sniff_format(data)
    if fmt is None:
        raise not_an_image(label, data)
    if fmt not in OPENABLE:
        raise wrong_format(label, fmt)
    if header is None:
        raise damaged(label, fmt, f"{label}: unparseable {fmt} header")
    _check_pixels(label, header.width, header.height)
    with pillow_errors(label, fmt):
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[fmt])
        # Belt and braces: trust Pillow's reading of the size over ours if they differ.
        _check_pixels(label, *im.size)
    return im, header


def not_an_image(label: Label, data: bytes) -> MediaError:
    return MediaError(
        t(
            "{name} is not an image the bot can read; send a PNG, JPEG, WEBP or BMP image.",
            name=label,
        ),
        detail=f"{label}: unrecognised content ({len(data)} bytes)",
    )


def wrong_format(label: Label, fmt: str) -> MediaError:
    values: dict[str, object] = {"name": label, "format": _FORMAT_WORDS.get(fmt, fmt)}
    if fmt[0] in "AEFILMNORSX":  # "an AVIF", "an ICO icon"; "a GIF", "a HEIC"
        text = t("{name} is an {format}; send a PNG, JPEG, WEBP or BMP image.", **values)
    else:
        text = t("{name} is a {format}; send a PNG, JPEG, WEBP or BMP image.", **values)
    return MediaError(text, detail=f"{label}: {fmt}")


def _check_pixels(label: Label, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(
            t("{name} has no pixels; send a PNG, JPEG, WEBP or BMP image.", name=label),
            detail=f"{label}: declared {width}x{height}",
        )
    if width * height > MAX_PIXELS:
        raise MediaError(
            # Pixel sizes as strings: written as today (8000, not 8,000) in every language.
            t(
                "{name} is {width}×{height} px, too large to open safely; send an image of at "
                "most {limit} px per side.",
                name=label,
                width=str(width),
                height=str(height),
                limit=str(INPUT_MAX_SIDE),
            ),
            detail=f"{label}: declared {width}x{height} > {MAX_PIXELS} pixels",
        )


def format_of(im: Image.Image, fallback: str) -> str:
    fmt = im.format or fallback
    return "JPEG" if fmt == "MPO" else fmt  # phone "multi-picture" JPEGs are still JPEGs


def image_info(im: Image.Image, fallback: str) -> ImageInfo:
    fmt = format_of(im, fallback)
    return ImageInfo(
        format=fmt,
        width=im.width,
        height=im.height,
        has_alpha=im.has_transparency_data,
        mime=CONTENT_TYPES.get(fmt, Image.MIME.get(fmt, "application/octet-stream")),
    )


def inspect_image(data: bytes, *, name: Label) -> ImageInfo:
    """Format, size and alpha of an image, read from its header without decoding the pixels."""
    im, header = open_image(data, name)
    with im:
        return image_info(im, header.format)


# --- pixel work ------------------------------------------------------------------------------


def decoded(im: Image.Image, label: Label, fmt: str) -> Image.Image:
    with pillow_errors(label, fmt):
        im.load()
    return im


def flatten(im: Image.Image) -> Image.Image:
    """An opaque RGB or L image: alpha composited onto white, 16-bit scaled down to 8-bit."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Plain convert() clips 16-bit values at 255 and turns most of the image white.
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if im.mode == "F":
        return im.convert("L")
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if im.mode in ("RGB", "L"):
        return im
    if im.mode == "1":
        return im.convert("L")
    return im.convert("RGB")
