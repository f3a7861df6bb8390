"""The end-to-end world: the real bot against the fake Discord (tests/fakes/discord_fake/) and the
fake crun, with the actions and look-ups tests share. tests/e2e and tests/security take the
fixtures through their conftest; tests import ``WanWorld`` from here."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import discord
import pytest

from bot.app import WanBot
from bot.domain.models import DeliveryState, Job
from bot.settings import Settings
from bot.store.database import Database
from bot.store.jobs import JobRepository
from bot.store.quotas import QuotaRepository
from tests.conftest import FAST
from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import (
    CB_MESSAGE,
    DiscordFake,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    InteractionHandle,
)
from tests.helpers import png, wait_until

Ledger = tuple[str, float, float | None]


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
    yield png(64, 48)


async def ephemeral_reply(handle: InteractionHandle) -> str:
    """The text of an immediate private reply (nothing deferred, no public status message)."""
    response = await handle.wait_response()
    assert response.type == CB_MESSAGE
    assert handle.ephemeral
    assert handle.original is not None
    return handle.original.content


def button(message: FakeMessage, action: str, image: int | None = None) -> str:
    """The custom_id of ``action`` (rr, up, va, ed, in, rm) on ``message``."""
    wanted = [
        c
        for c in message.custom_ids()
        if c.split(":")[2] == action and (image is None or c.endswith(f":{image}"))
    ]
    assert len(wanted) == 1, f"{action}/{image} not unique in {message.custom_ids()}"
    return wanted[0]


async def ephemeral_text(handle: InteractionHandle) -> str:
    """The ephemeral answer to an interaction, as a reply or as a followup."""
    response = await handle.wait_response()
    if response.type == CB_MESSAGE:
        assert handle.ephemeral
        assert handle.original is not None
        return handle.original.content
    followup = await handle.wait_followup()
    assert followup.ephemeral
    return followup.content


async def click(
    wan: WanWorld, user: FakeMember, message: FakeMessage, custom_id: str, **kw: Any
) -> InteractionHandle:
    """``user`` presses ``custom_id`` on ``message``, once the bot's handlers are idle."""
    await wan.settle()
    return await wan.fake.click(user, message, custom_id, **kw)


async def submit(
    wan: WanWorld, user: FakeMember, opener: InteractionHandle, values: dict[str, Any]
) -> InteractionHandle:
    """``user`` sends the form ``opener`` showed, once the bot's handlers are idle: discord.py
    keeps the form only after Discord acknowledged it, and drops a submit that comes sooner."""
    assert opener.modal is not None, "the bot opened no form"
    await wan.settle()
    return await wan.fake.submit_modal(user, opener.modal["custom_id"], values)


def job_id_of(message: FakeMessage) -> str:
    """The job id in a result's footer ("job <id> · ...")."""
    return str(message.embeds[0]["footer"]["text"].split()[1])


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
        """The bot with fast engine clocks (``engine={...}`` overrides fields); the quota policy
        comes from its settings, as in production."""
        engine = overrides.pop("engine", {})
        settings = self.settings(**overrides)
        config = dataclasses.replace(FAST, **{"quota": settings.quota_policy(), **engine})
        return WanBot(settings, engine_config=config)

    def add_admin(self, username: str = "admin") -> FakeMember:
        """A member of a role with Manage Server (what the admin commands ask for)."""
        role = self.fake.add_role(
            self.guild, "admins", discord.Permissions(manage_guild=True).value
        )
        return self.fake.add_member(self.guild, username=username, roles=[role])

    async def set_alerts_channel(self) -> int:
        """An admin points the bot's alerts at a new #bot-alerts channel; returns its id."""
        boss = self.add_admin("boss")
        alerts = self.fake.add_channel(self.guild, "bot-alerts")
        command = "wan-admin config alerts-channel-set"
        handle = await self.fake.slash(boss, self.guild, self.channel, command, {"channel": alerts})
        await handle.wait_response()
        return alerts.id

    # --- commands ---------------------------------------------------------------------------------

    async def imagine(
        self,
        prompt: str = "a fox",
        *,
        user: FakeMember | None = None,
        guild: FakeGuild | None = None,
        channel: FakeChannel | None = None,
        wait: Literal["sent", "response", "status"] = "response",
        attachment_size_limit: int | None = None,
        **options: Any,
    ) -> InteractionHandle:
        """``user`` (alice) runs /imagine in ``channel`` (the art channel). Returns once it is
        sent, once the bot answered (``response``) or once the status message shows (``status``)."""
        handle = await self.fake.slash(
            user or self.alice,
            guild or self.guild,
            channel or self.channel,
            "imagine",
            {"prompt": prompt, **options},
            attachment_size_limit=attachment_size_limit,
        )
        if wait != "sent":
            await handle.wait_response()
        if wait == "status":
            await handle.wait_original_edit(predicate=lambda m: bool(m.embeds))
        return handle

    async def imagine_result(
        self,
        prompt: str,
        *,
        user: FakeMember | None = None,
        guild: FakeGuild | None = None,
        channel: FakeChannel | None = None,
        **options: Any,
    ) -> FakeMessage:
        """/imagine, then its result message with the buttons, once their callbacks are idle."""
        before = self.result_ids(channel)
        await self.imagine(prompt, user=user, guild=guild, channel=channel, wait="sent", **options)
        result = await self.next_result(before, channel=channel)
        await self.settle()
        return result

    async def command(
        self, user: FakeMember, name: str, /, *, guild: FakeGuild | None = None, **options: Any
    ) -> InteractionHandle:
        """``user`` runs the slash command ``name`` in the art channel; returns once the answer
        shows (a reply past "thinking…", or a followup)."""
        handle = await self.fake.slash(user, guild or self.guild, self.channel, name, options)
        await handle.wait_response()
        await handle.wait_until(
            lambda h: (h.original is not None and not h.original.loading) or bool(h.followups)
        )
        return handle

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

    # --- what the channel shows -------------------------------------------------------------------

    def from_bot(self, message: FakeMessage) -> bool:
        return message.author.id == self.fake.bot_user.id

    def is_result(self, message: FakeMessage) -> bool:
        """A message the bot posted with files."""
        return self.from_bot(message) and bool(message.attachments)

    def results(
        self, channel: FakeChannel | None = None, *, bot_only: bool = False
    ) -> list[FakeMessage]:
        """Messages in ``channel`` (the art channel) that carry files (``bot_only``: the bot's)."""
        messages = self.fake.messages[(channel or self.channel).id]
        return [m for m in messages if (self.is_result(m) if bot_only else m.attachments)]

    def result_ids(self, channel: FakeChannel | None = None) -> set[int]:
        return {m.id for m in self.results(channel)}

    async def next_result(
        self,
        before: set[int],
        *,
        channel: FakeChannel | None = None,
        timeout: float = 15,  # noqa: ASYNC109 - the fake's waits take timeouts
    ) -> FakeMessage:
        """The last message of the next result (the one carrying the buttons)."""
        return await self.fake.wait_message(
            channel or self.channel,
            lambda m: bool(m.attachments) and bool(m.components) and m.id not in before,
            timeout=timeout,
        )

    # --- crun and the bot's database --------------------------------------------------------------

    async def one_task(self) -> str:
        """The id of the one task crun was asked for, once it was."""
        await wait_until(lambda: len(self.crun.tasks) == 1, timeout=10, what="the crun task")
        return next(iter(self.crun.tasks))

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[Database]:
        """The bot's database, opened beside it (running or not)."""
        db = await Database.open(self.tmp_path / "wanbot.sqlite3")
        try:
            yield db
        finally:
            await db.close()

    async def job_rows(self) -> list[Job]:
        async with self.database() as db:
            rows = await db.fetchall("SELECT id FROM jobs")
            repo = JobRepository(db)
            return [await repo.require(r[0]) for r in rows]

    async def the_job(self) -> tuple[Job, Ledger | None]:
        """The only job and its ledger entry, read from the bot's database."""
        async with self.database() as db:
            (row,) = await db.fetchall("SELECT id FROM jobs")
            job = await JobRepository(db).require(row[0])
            ledger = await QuotaRepository(db, self.settings().quota_policy()).ledger_state(job.id)
            return job, ledger

    async def wait_delivery(self, *states: DeliveryState) -> Job:
        """The only job, once its delivery is in one of ``states``."""

        async def settled() -> bool:
            # The status message shows before the job row is stored: no row yet is "not yet".
            jobs = await self.job_rows()
            return len(jobs) == 1 and jobs[0].delivery_state in states

        await wait_until(settled, timeout=15, what=f"delivery {states}")
        job, _ = await self.the_job()
        return job


def world_for(fake: DiscordFake, crun: FakeCrun, tmp_path: Path) -> WanWorld:
    """One server ("Wan Lab", channel #art) with alice, bob and a moderator, beside ``crun``."""
    guild = fake.add_guild("Wan Lab")
    channel = fake.add_channel(guild, "art")
    alice = fake.add_member(guild, username="alice")
    bob = fake.add_member(guild, username="bob")
    mods = fake.add_role(guild, "mods", discord.Permissions(manage_messages=True).value)
    mod = fake.add_member(guild, username="mod", roles=[mods])
    return WanWorld(fake, crun, tmp_path, guild, channel, alice, bob, mod)


@pytest.fixture
async def wan(discord_fake: DiscordFake, tmp_path: Path) -> AsyncIterator[WanWorld]:
    async with FakeCrun() as crun:
        yield world_for(discord_fake, crun, tmp_path)
