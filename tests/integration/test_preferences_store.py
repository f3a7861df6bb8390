"""Members' /settings preferences in the store: the same on SQLite and PostgreSQL (tests/pg.py)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.domain.models import Resolution
from bot.domain.preferences import Preferences, choose, toggle
from bot.errors import InvalidInput
from bot.store.jobs import JobRepository
from bot.store.preferences import PreferenceRepository
from bot.store.protocol import Db

pytest_plugins = ["tests.pg"]  # the store fixture: SQLite and PostgreSQL

BIG = 1_234_567_890_123_456_789  # a Discord snowflake needs 64 bits


async def test_preferences_round_trip_per_user(store: Db) -> None:
    prefs = PreferenceRepository(store, clock=lambda: 5.0)
    assert await prefs.get(BIG) == Preferences()
    await prefs.modify(BIG, lambda p: choose(p, "resolution", "4K"))
    await prefs.modify(BIG, lambda p: choose(p, "aspect_ratio", "16:9"))
    await prefs.modify(BIG, lambda p: toggle(p, "thinking"))
    stored = await prefs.modify(BIG, lambda p: dataclasses.replace(p, suffix="soft light ✨"))
    assert stored == Preferences(
        resolution=Resolution.R4K, aspect_ratio="16:9", thinking=True, suffix="soft light ✨"
    )
    assert await prefs.get(BIG) == stored
    assert await prefs.get(BIG + 1) == Preferences()  # another member has none
    row = await store.fetchone("SELECT updated_at FROM preferences WHERE user_id = ?", (BIG,))
    assert row is not None and row[0] == 5.0


async def test_a_refused_choice_writes_nothing_and_clearing_deletes_the_row(store: Db) -> None:
    prefs = PreferenceRepository(store)
    await prefs.modify(7, lambda p: choose(p, "count", "2"))
    with pytest.raises(InvalidInput):
        await prefs.modify(7, lambda p: choose(p, "count", "99"))  # a forged menu value
    assert (await prefs.get(7)).count == 2
    await prefs.modify(7, lambda p: dataclasses.replace(p, count=None))
    assert await store.fetchall("SELECT user_id FROM preferences") == []  # all unset: no row
    await prefs.modify(7, lambda p: choose(p, "count", "3"))
    assert await prefs.clear(7) is True
    assert await prefs.clear(7) is False
    assert await prefs.get(7) == Preferences()


async def test_concurrent_changes_are_all_kept(store: Db) -> None:
    prefs = PreferenceRepository(store)
    await asyncio.gather(
        prefs.modify(9, lambda p: choose(p, "resolution", "1K")),
        prefs.modify(9, lambda p: choose(p, "aspect_ratio", "9:16")),
        prefs.modify(9, lambda p: choose(p, "count", "4")),
        prefs.modify(9, lambda p: toggle(p, "watermark")),
    )
    assert await prefs.get(9) == Preferences(
        resolution=Resolution.R1K, aspect_ratio="9:16", count=4, watermark=True
    )


async def test_an_unreadable_document_means_defaults(store: Db) -> None:
    await store.execute(
        "INSERT INTO preferences (user_id, prefs_json, updated_at) VALUES (?, ?, ?)",
        (3, "{not json", 1.0),
    )
    await store.execute(
        "INSERT INTO preferences (user_id, prefs_json, updated_at) VALUES (?, ?, ?)",
        (4, '{"resolution": "8K", "count": 2, "thinking": "yes"}', 1.0),
    )
    prefs = PreferenceRepository(store)
    assert await prefs.get(3) == Preferences()
    assert await prefs.get(4) == Preferences(count=2)  # what is still valid is kept


async def test_forget_user_removes_the_preferences(store: Db) -> None:
    prefs = PreferenceRepository(store)
    await prefs.modify(BIG, lambda p: choose(p, "resolution", "2K"))
    await prefs.modify(8, lambda p: choose(p, "resolution", "1K"))
    await JobRepository(store).forget_user(BIG)
    assert await prefs.get(BIG) == Preferences()
    assert (await prefs.get(8)).resolution is Resolution.R1K  # only that member's
