"""Fixtures for end-to-end tests against the fake Discord (tests/fakes/discord_fake.py)."""

from __future__ import annotations

import asyncio
import gc
import io
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from PIL import Image

from tests.fakes.discord_fake import DiscordFake


@pytest.fixture(autouse=True)
async def no_leaks() -> AsyncIterator[list[dict[str, Any]]]:
    """Fail the test if the loop saw unhandled errors (e.g. "Unclosed client session",
    "Task exception was never retrieved") or a ResourceWarning was raised.

    Torn down after every other fixture of the test (it is set up first), so leaked
    sessions from a bot that was not closed are collected and reported here.
    """
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield seen
        gc.collect()
    loop.set_exception_handler(previous)
    resource = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not seen, f"unhandled loop errors: {[c.get('message') for c in seen]}"
    assert not resource, f"resource warnings: {[str(w.message) for w in resource]}"


@pytest.fixture
async def discord_fake() -> AsyncIterator[DiscordFake]:
    async with DiscordFake() as fake:
        yield fake


@pytest.fixture
def png_bytes() -> Iterator[bytes]:
    """A small real PNG (64x48) so Discord-style width/height can be checked."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    yield buf.getvalue()
