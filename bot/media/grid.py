"""Contact sheets: several results numbered on one JPEG."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Final

from PIL import Image, ImageDraw, ImageFont, ImageOps

from bot.domain.text import Text, t
from bot.media.decode import as_result_error, decoded, flatten, format_of, inspect_image, open_image
from bot.media.fit import encode_jpeg

GRID_MAX_IMAGES: Final = 12

_GRID_BG = (43, 45, 49)  # Discord's dark theme, so cell gaps disappear in the client
_BADGE_BG = (0, 0, 0)
_BADGE_FG = (255, 255, 255)


def _grid_shape(n: int) -> tuple[int, int]:
    cols = 2 if n <= 4 else 3 if n <= 9 else 4
    return cols, math.ceil(n / cols)


def make_grid(images: Sequence[bytes], *, max_side: int = 1024) -> bytes:
    """A JPEG contact sheet (2x2, 3x3 or 4x3) with each cell numbered 1..n in its top-left corner.

    Cells take the first image's aspect ratio; other images are fitted inside theirs.
    """
    n = len(images)
    if not 1 <= n <= GRID_MAX_IMAGES:
        raise ValueError(f"make_grid takes 1..{GRID_MAX_IMAGES} images, got {n}")
    if max_side < 128:
        raise ValueError("max_side must be at least 128")
    cols, rows = _grid_shape(n)
    gap = max(4, max_side // 128)

    with as_result_error(_unreadable(1)):
        first = inspect_image(images[0], name="image 1")
    aspect = min(max(first.width / first.height, 1 / 8), 8.0)
    cell_w = (max_side - (cols + 1) * gap) // cols
    cell_h = round(cell_w / aspect)
    if rows * cell_h + (rows + 1) * gap > max_side:
        cell_h = (max_side - (rows + 1) * gap) // rows
        cell_w = round(cell_h * aspect)
    cell_w, cell_h = max(cell_w, 8), max(cell_h, 8)

    sheet = Image.new(
        "RGB",
        (cols * cell_w + (cols + 1) * gap, rows * cell_h + (rows + 1) * gap),
        _GRID_BG,
    )
    draw = ImageDraw.Draw(sheet)
    font_px = max(12, min(cell_w, cell_h) // 7)
    font = ImageFont.load_default(size=font_px)
    for index, data in enumerate(images):
        label = f"image {index + 1}"
        with as_result_error(_unreadable(index + 1)):
            im, header = open_image(data, label)
            with im:
                fmt = format_of(im, header.format)
                im.draft("RGB", (cell_w, cell_h))  # JPEG: decode at reduced scale, much cheaper
                tile = ImageOps.contain(
                    flatten(decoded(im, label, fmt)).convert("RGB"),
                    (cell_w, cell_h),
                    Image.Resampling.LANCZOS,
                )
        col, row = index % cols, index // cols
        x0 = gap + col * (cell_w + gap)
        y0 = gap + row * (cell_h + gap)
        sheet.paste(tile, (x0 + (cell_w - tile.width) // 2, y0 + (cell_h - tile.height) // 2))
        _draw_badge(draw, font, str(index + 1), at=(x0 + gap, y0 + gap), font_px=font_px)
    return encode_jpeg(sheet, 90, None)


def _unreadable(number: int) -> Text:
    return t(
        "Image {number} of the result could not be read, so it can't be shown here.", number=number
    )


def _draw_badge(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    text: str,
    *,
    at: tuple[int, int],
    font_px: int,
) -> None:
    x, y = at
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(3, font_px // 4)
    w = max(right - left, bottom - top) + 2 * pad
    h = bottom - top + 2 * pad
    draw.rounded_rectangle((x, y, x + w, y + h), radius=pad, fill=_BADGE_BG)
    draw.text((x + (w - (right - left)) / 2 - left, y + pad - top), text, font=font, fill=_BADGE_FG)


# --- async wrapper: Pillow never runs on the event loop --------------------------------------


async def make_grid_async(images: Sequence[bytes], *, max_side: int = 1024) -> bytes:
    return await asyncio.to_thread(make_grid, list(images), max_side=max_side)
