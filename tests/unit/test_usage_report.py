"""Usage tables and charts for admins."""

from __future__ import annotations

import io

from PIL import Image

from bot.usage_report import chart_png, fill_days, top_table


def test_top_table_aligns_and_totals() -> None:
    table = top_table([("alice", 12.5, 3), ("a-very-long-member-name-indeed", 2, 1)])
    lines = table.splitlines()
    assert lines[0].split() == ["member", "credits", "jobs"]
    assert lines[1].split() == ["alice", "12.5", "3"]
    assert "…" in lines[2]
    assert lines[-1].split()[-2:] == ["14.5", "4"]
    assert top_table([]) == "no usage in this period"


def test_fill_days_puts_zeros_on_idle_days() -> None:
    day = 86_400.0
    start = 100 * day
    assert fill_days([(101 * day, 5.0), (103 * day, 2.0)], start, 5) == [0, 5, 0, 2, 0]


async def test_chart_is_a_real_png() -> None:
    png = await chart_png([0, 5, 2.5, 0, 9], 100 * 86_400.0, "Spend, last 5 days")
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        assert im.size == (720, 300)
        # Bars were drawn: the bar colour is present.
        assert (88, 101, 242) in {c for _, c in im.convert("RGB").getcolors(1 << 16) or []}
