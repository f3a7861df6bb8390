"""Fixtures for end-to-end tests against the fake Discord (tests/fakes/discord_fake.py)."""

from __future__ import annotations

import asyncio
import gc
import io
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import discord
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


# --- the product bot against both fakes ----------------------------------------------------------

import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

from bot.app import WanBot  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.conftest import FAST  # noqa: E402
from tests.fakes.crun_server import FakeCrun  # noqa: E402
from tests.fakes.discord_fake import (  # noqa: E402
    FakeChannel,
    FakeGuild,
    FakeMember,
    InteractionHandle,
)


@dataclasses.dataclass
class WanWorld:
    """A server with a channel and members, the fake crun, and a way to (re)start the bot."""

    fake: DiscordFake
    crun: FakeCrun
    tmp_path: Path
    guild: FakeGuild
    channel: FakeChannel
    alice: FakeMember
    bob: FakeMember
    mod: FakeMember

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "discord_token": self.fake.token,
            "wan_api_key": self.crun.api_key,
            "wan_api_base": self.crun.base_url,
            "database_url": f"sqlite:///{self.tmp_path / 'wanbot.sqlite3'}",
            "allow_http_results": True,
            "poll_interval_min": 0.02,
            "poll_interval_max": 0.05,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def bot(self, **overrides: Any) -> WanBot:
        config = dataclasses.replace(FAST, **overrides.pop("engine", {}))
        return WanBot(self.settings(**overrides), engine_config=config)

    async def edit(
        self, attachments: dict[str, Any], prompt: str = "make it nice", **options: Any
    ) -> InteractionHandle:
        """Alice runs /edit in the art channel with these attachments."""
        return await self.fake.slash(
            self.alice,
            self.guild,
            self.channel,
            "edit",
            {"prompt": prompt, **options},
            attachments=attachments,
        )

    async def settle(self) -> None:
        """wait_bot_idle, plus discord.py's DynamicItem tasks (named discord-ui-dynamic-item-*)."""
        await self.fake.wait_bot_idle()

        def idle() -> bool:
            return not any(
                t.get_name().startswith("discord-ui-dynamic-item") and not t.done()
                for t in asyncio.all_tasks()
            )

        await self.fake.wait_for(idle, 5, "DynamicItem callbacks to finish")


@pytest.fixture
async def wan(discord_fake: DiscordFake, tmp_path: Path) -> AsyncIterator[WanWorld]:
    async with FakeCrun() as crun:
        fake = discord_fake
        guild = fake.add_guild("Wan Lab")
        channel = fake.add_channel(guild, "art")
        alice = fake.add_member(guild, username="alice")
        bob = fake.add_member(guild, username="bob")
        mods = fake.add_role(guild, "mods", discord.Permissions(manage_messages=True).value)
        mod = fake.add_member(guild, username="mod", roles=[mods])
        yield WanWorld(fake, crun, tmp_path, guild, channel, alice, bob, mod)
