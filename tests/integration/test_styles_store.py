"""Server styles in the store, the same on both engines (tests/pg.py): the limit is counted and
written in one transaction, names are per server, Discord ids need 64 bits."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.models import Style
from bot.store.protocol import Db
from bot.store.styles import StyleRepository

pytest_plugins = ["tests.pg"]  # the store fixture: SQLite and PostgreSQL

BIG = 1_234_567_890_123_456_789  # a Discord snowflake needs 64 bits
OTHER = BIG + 1


async def test_styles_are_added_replaced_listed_and_removed_per_server(store: Db) -> None:
    styles = StyleRepository(store, clock=lambda: 5.0)
    assert await styles.in_guild(BIG) == []
    assert await styles.put(BIG, Style("watercolor", "soft paint"), by=BIG, limit=25) == "added"
    assert await styles.put(BIG, Style("noir", "black and white"), by=BIG, limit=25) == "added"
    assert await styles.put(BIG, Style("watercolor", "wet paint"), by=7, limit=25) == "replaced"
    assert await styles.in_guild(BIG) == [
        Style("noir", "black and white"),
        Style("watercolor", "wet paint"),
    ]
    assert await styles.in_guild(OTHER) == []  # another server sees none of them
    assert await styles.get(BIG, "noir") == Style("noir", "black and white")
    assert await styles.get(OTHER, "noir") is None
    assert await styles.remove(BIG, "noir")
    assert not await styles.remove(BIG, "noir")
    assert await styles.in_guild(BIG) == [Style("watercolor", "wet paint")]
    row = await store.fetchone(
        "SELECT guild_id, created_by, updated_at FROM styles WHERE name = ?", ("watercolor",)
    )
    assert row is not None
    assert (int(row[0]), int(row[1]), float(row[2])) == (BIG, 7, 5.0)


async def test_a_full_server_takes_no_new_name_but_a_new_text_for_a_known_one(store: Db) -> None:
    styles = StyleRepository(store)
    for i in range(3):
        assert await styles.put(BIG, Style(f"s{i}", "t"), by=1, limit=3) == "added"
    assert await styles.put(BIG, Style("s3", "t"), by=1, limit=3) == "full"
    assert await styles.put(BIG, Style("s0", "new"), by=1, limit=3) == "replaced"
    assert await styles.put(OTHER, Style("s3", "t"), by=1, limit=3) == "added"  # per server
    assert [s.name for s in await styles.in_guild(BIG)] == ["s0", "s1", "s2"]


async def test_admins_adding_at_once_cannot_pass_the_limit_together(store: Db) -> None:
    styles = StyleRepository(store)
    outcomes = await asyncio.gather(
        *(styles.put(BIG, Style(f"s{i:02}", "t"), by=1, limit=5) for i in range(12))
    )
    assert sorted(outcomes) == ["added"] * 5 + ["full"] * 7
    assert len(await styles.in_guild(BIG)) == 5


@pytest.mark.parametrize("text", ["ünïcödé, 絵画, 🎨", 'it\'s "quoted" -- not a comment; DROP'])
async def test_style_text_comes_back_byte_for_byte(store: Db, text: str) -> None:
    styles = StyleRepository(store)
    await styles.put(BIG, Style("x", text), by=1, limit=25)
    assert await styles.get(BIG, "x") == Style("x", text)
