"""Usage reports for admins: a text table of top spenders and a small bar chart of daily spend.

Pillow draws the chart in a worker thread; the table is plain text for a code block. The chart's
few words stay English (Pillow's default font has no CJK glyphs); the table's words are
rendered by the caller for the reader.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw, ImageFont

from bot.domain.quota import fmt_credits
from bot.domain.text import Text, t

CHART_SIZE = (720, 300)
_BG = (32, 34, 37)
_BAR = (88, 101, 242)
_TEXT = (220, 221, 222)
_GRID = (64, 68, 75)


# The table's words; the caller renders them for the reader (``say``), English by default.
MEMBER = t("member")
CREDITS = t("credits")
JOBS = t("jobs")
TOTAL = t("total (shown)")
NO_USAGE = t("no usage in this period")


def top_table(
    rows: Sequence[tuple[str, float, int]],
    *,
    width: int = 24,
    say: Callable[[Text], str] = Text.english,
) -> str:
    """(name, credits, jobs) rows as an aligned table for a Discord code block."""
    if not rows:
        return say(NO_USAGE)
    lines = [f"{say(MEMBER):<{width}} {say(CREDITS):>10} {say(JOBS):>6}"]
    for name, credits, jobs in rows:
        shown = name if len(name) <= width else name[: width - 1] + "…"
        lines.append(f"{shown:<{width}} {fmt_credits(credits):>10} {jobs:>6}")
    total = sum(c for _, c, _ in rows)
    lines.append(f"{say(TOTAL):<{width}} {fmt_credits(total):>10} {sum(j for *_, j in rows):>6}")
    return "\n".join(lines)


def fill_days(points: Sequence[tuple[float, float]], start: float, days: int) -> list[float]:
    """Credits per day for ``days`` days from ``start`` (UTC day starts), zeros where idle."""
    by_day = {int(day // 86_400): credits for day, credits in points}
    first = int(start // 86_400)
    return [by_day.get(first + i, 0.0) for i in range(days)]


def draw_chart(values: Sequence[float], start: float, title: str) -> bytes:
    """A PNG bar chart, one bar per day. Runs Pillow: call through ``chart_png``."""
    w, h = CHART_SIZE
    img = Image.new("RGB", CHART_SIZE, _BG)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 56, 16, 36, 40
    draw.text((left, 10), title, fill=_TEXT, font=font)
    peak = max(values, default=0.0) or 1.0
    plot_w, plot_h = w - left - right, h - top - bottom
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        draw.line((left, y, w - right, y), fill=_GRID)
        draw.text((6, y - 6), fmt_credits(peak * i / 4), fill=_TEXT, font=font)
    n = max(1, len(values))
    slot = plot_w / n
    for i, value in enumerate(values):
        x0 = left + i * slot + slot * 0.15
        x1 = left + (i + 1) * slot - slot * 0.15
        y0 = top + plot_h - plot_h * (value / peak)
        if value > 0:
            draw.rectangle((x0, y0, x1, top + plot_h), fill=_BAR)
    every = max(1, n // 7)
    for i in range(0, n, every):
        day = dt.datetime.fromtimestamp(start + i * 86_400, tz=dt.UTC)
        draw.text((left + i * slot, top + plot_h + 8), day.strftime("%d %b"), fill=_TEXT, font=font)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


async def chart_png(values: Sequence[float], start: float, title: str) -> bytes:
    return await asyncio.to_thread(draw_chart, list(values), start, title)
