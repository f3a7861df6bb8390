"""The fake Discord works with the real discord.py: login, sync, interactions, gateway events.

A tiny ``commands.Bot`` built here (not product code) talks to tests/fakes/discord_fake/.
"""

from __future__ import annotations

import asyncio
import io
import zlib
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord_fake import (
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_MESSAGE,
    CB_MODAL,
    CB_UPDATE,
    FLAG_EPHEMERAL,
    DiscordFake,
    FakeChannel,
    FakeGuild,
    FakeMember,
)

pytestmark = pytest.mark.timeout(30)


@dataclass
class Seen:
    """What the tiny bot observed, with events the tests wait on."""

    prompts: list[tuple[str, int, int | None, int | None]] = field(default_factory=list)
    clicks: list[str] = field(default_factory=list)
    modal_values: list[str] = field(default_factory=list)
    mentions: list[discord.Message] = field(default_factory=list)
    mention_event: asyncio.Event = field(default_factory=asyncio.Event)
    followup_errors: list[discord.HTTPException] = field(default_factory=list)
    followup_done: asyncio.Event = field(default_factory=asyncio.Event)
    slow_gate: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)


class AgainView(discord.ui.View):
    def __init__(self, seen: Seen) -> None:
        super().__init__(timeout=None)
        self.seen = seen

    @discord.ui.button(label="Again", custom_id="tiny:again", style=discord.ButtonStyle.primary)
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.seen.clicks.append(button.custom_id or "")
        await interaction.response.send_modal(PromptModal(self.seen))

    @discord.ui.button(label="Done", custom_id="tiny:done")
    async def done(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.stop()
        await interaction.response.edit_message(content="done", view=None)


class UploadModal(discord.ui.Modal, title="Edit an image"):
    image: discord.ui.Label[UploadModal] = discord.ui.Label(
        text="Image", component=discord.ui.FileUpload(custom_id="tiny:file")
    )
    prompt: discord.ui.Label[UploadModal] = discord.ui.Label(
        text="Prompt", component=discord.ui.TextInput(custom_id="tiny:edit-prompt")
    )

    def __init__(self, seen: Seen) -> None:
        super().__init__(custom_id="tiny:upload", timeout=None)
        self.seen = seen

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.image.component, discord.ui.FileUpload)
        assert isinstance(self.prompt.component, discord.ui.TextInput)
        await interaction.response.defer(thinking=True, ephemeral=True)
        (upload,) = self.image.component.values
        data = await upload.read()
        await interaction.edit_original_response(
            content=f"edited: {self.prompt.component.value}",
            attachments=[discord.File(io.BytesIO(data), filename="edited.png")],
        )


class PromptModal(discord.ui.Modal, title="New prompt"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt", custom_id="tiny:prompt", max_length=200
    )

    def __init__(self, seen: Seen) -> None:
        super().__init__(custom_id="tiny:modal", timeout=None)
        self.seen = seen

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.seen.modal_values.append(self.prompt.value)
        await interaction.response.send_message(f"queued: {self.prompt.value}", ephemeral=True)


class TinyBot(commands.Bot):
    def __init__(self, seen: Seen) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents)
        self.seen = seen

    async def setup_hook(self) -> None:
        seen = self.seen

        @self.tree.command(name="imagine", description="Make a picture")
        async def imagine(
            interaction: discord.Interaction, prompt: str, image: discord.Attachment
        ) -> None:
            await interaction.response.defer(thinking=True)
            data = await image.read()  # downloaded from the fake's /attachments URL
            seen.prompts.append((prompt, len(data), image.width, image.height))
            await interaction.followup.send(
                f"{prompt} ({interaction.filesize_limit})",
                file=discord.File(io.BytesIO(data[::-1]), filename="result.png"),
                view=AgainView(seen),
            )

        @self.tree.command(name="slow", description="Defers and answers later")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await seen.slow_gate.wait()
            try:
                await interaction.followup.send("late")
            except discord.HTTPException as exc:
                seen.followup_errors.append(exc)
            finally:
                seen.followup_done.set()

        @self.tree.command(name="upload", description="Edit an uploaded image")
        async def upload(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(UploadModal(seen))

        async def size_choices(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            sizes = ["1024x1024", "1536x1024", "1024x1536"]
            return [app_commands.Choice(name=s, value=s) for s in sizes if s.startswith(current)]

        @self.tree.command(name="size", description="Pick a size")
        @app_commands.autocomplete(size=size_choices)
        async def size(interaction: discord.Interaction, size: str) -> None:
            await interaction.response.send_message(size)

        wan = app_commands.Group(name="wan", description="About the bot")

        @wan.command(name="help", description="How to use it")
        async def wan_help(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("help text", ephemeral=True)

        @wan.command(name="info", description="Versions")
        async def wan_info(interaction: discord.Interaction) -> None:
            perms = interaction.app_permissions
            await interaction.response.send_message(f"attach={perms.attach_files}")

        self.tree.add_command(wan)

        @self.tree.context_menu(name="Edit with Wan")
        async def edit_with_wan(interaction: discord.Interaction, message: discord.Message) -> None:
            names = ",".join(a.filename for a in message.attachments)
            await interaction.response.send_message(f"editing {message.id} [{names}]")

        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None and self.user in message.mentions:
            self.seen.mentions.append(message)
            self.seen.mention_event.set()

    async def on_resumed(self) -> None:
        self.seen.resumed.set()


@dataclass
class World:
    guild: FakeGuild
    channel: FakeChannel
    alice: FakeMember


def make_world(fake: DiscordFake) -> World:
    guild = fake.add_guild("Wan Lab")
    channel = fake.add_channel(guild, "art")
    artists = fake.add_role(guild, "artists")
    alice = fake.add_member(guild, username="alice", roles=[artists])
    return World(guild, channel, alice)


async def test_login_syncs_commands_and_receives_guild(discord_fake: DiscordFake) -> None:
    fake = discord_fake
    world = make_world(fake)
    async with fake.running(TinyBot(Seen())) as bot:
        assert bot.user is not None and bot.user.id == fake.bot_user.id
        guild = bot.get_guild(world.guild.id)
        assert guild is not None and guild.name == "Wan Lab"
        assert guild.get_channel(world.channel.id) is not None
        me = guild.me
        assert me.guild_permissions.attach_files and not me.guild_permissions.administrator
        assert fake.command_syncs == 1
        names = sorted((c["name"], c["type"]) for c in fake.global_commands)
        assert names == [
            ("Edit with Wan", 3),
            ("imagine", 1),
            ("size", 1),
            ("slow", 1),
            ("upload", 1),
            ("wan", 1),
        ]
        # discord.py asked for zlib-stream and inflated our binary frames.
        assert fake.counters["gateway.identify"] == 1
        assert any(f[1].get("t") == "GUILD_CREATE" for f in fake.gateway_log)
        assert fake.sessions[0].conn is not None
        assert fake.sessions[0].conn.compress == "zlib-stream"
    assert bot.is_closed()


async def test_slash_with_attachment_defers_then_followup_with_file(
    discord_fake: DiscordFake, png_bytes: bytes
) -> None:
    fake = discord_fake
    world = make_world(fake)
    seen = Seen()
    async with fake.running(TinyBot(seen)):
        handle = await fake.slash(
            world.alice,
            world.guild,
            world.channel,
            "imagine",
            {"prompt": "a red fox"},
            attachments={"image": ("fox.png", png_bytes)},
            attachment_size_limit=8 * 1024 * 1024,
        )
        response = await handle.wait_response()
        assert response.type == CB_DEFERRED_MESSAGE
        reply = await handle.wait_followup()
        # The first followup after a "thinking" defer replaces the deferred message.
        assert reply is handle.original and not reply.loading
        assert reply.content == f"a red fox ({8 * 1024 * 1024})"
        assert [(a.filename, a.data) for a in reply.attachments] == [
            ("result.png", png_bytes[::-1])
        ]
        assert reply.custom_ids() == ["tiny:again", "tiny:done"]
        assert seen.prompts == [("a red fox", len(png_bytes), 64, 48)]
        assert sum(fake.attachment_downloads.values()) == 1
        assert fake.messages[world.channel.id] == [reply]


async def test_button_opens_modal_and_modal_submit_is_handled(
    discord_fake: DiscordFake, png_bytes: bytes
) -> None:
    fake = discord_fake
    world = make_world(fake)
    seen = Seen()
    async with fake.running(TinyBot(seen)):
        first = await fake.slash(
            world.alice,
            world.guild,
            world.channel,
            "imagine",
            {"prompt": "owl"},
            attachments={"image": ("owl.png", png_bytes)},
        )
        message = await first.wait_followup()
        await fake.wait_bot_idle()  # the view is registered after the followup returns

        click = await fake.click(world.alice, message, "tiny:again")
        opened = await click.wait_response()
        assert opened.type == CB_MODAL
        assert seen.clicks == ["tiny:again"]
        assert click.modal is not None and click.modal["custom_id"] == "tiny:modal"

        submit = await fake.submit_modal(world.alice, "tiny:modal", {"tiny:prompt": "an owl"})
        answer = await submit.wait_response()
        assert answer.type == CB_MESSAGE
        assert submit.original is not None
        assert submit.original.content == "queued: an owl"
        assert submit.original.flags & FLAG_EPHEMERAL
        assert seen.modal_values == ["an owl"]

        with pytest.raises(LookupError):
            await fake.click(world.alice, message, "tiny:missing")


async def test_subcommands_and_message_context_menu(
    discord_fake: DiscordFake, png_bytes: bytes
) -> None:
    fake = discord_fake
    world = make_world(fake)
    async with fake.running(TinyBot(Seen())):
        help_ = await fake.slash(world.alice, world.guild, world.channel, "wan help")
        info = await fake.slash(world.alice, world.guild, world.channel, "wan info")
        await help_.wait_response()
        await info.wait_response()
        assert help_.original is not None and help_.original.content == "help text"
        assert help_.ephemeral
        assert info.original is not None and info.original.content == "attach=True"

        posted = await fake.post_user_message(
            world.channel, world.alice, "edit this", attachments=[("cat.png", png_bytes)]
        )
        ctx = await fake.message_context(world.alice, posted, "Edit with Wan")
        await ctx.wait_response()
        assert ctx.original is not None
        assert ctx.original.content == f"editing {posted.id} [cat.png]"


async def test_mention_reaches_on_message(discord_fake: DiscordFake, png_bytes: bytes) -> None:
    fake = discord_fake
    world = make_world(fake)
    seen = Seen()
    async with fake.running(TinyBot(seen)):
        earlier = await fake.post_user_message(world.channel, world.alice, "first")
        await fake.post_user_message(
            world.channel,
            world.alice,
            f"{fake.bot_user.mention} make it blue",
            attachments=[("in.png", png_bytes)],
            reference=earlier,
        )
        async with asyncio.timeout(5):
            await seen.mention_event.wait()
        (message,) = seen.mentions
        assert message.content.endswith("make it blue")
        assert message.author.id == world.alice.id
        assert isinstance(message.author, discord.Member)
        (att,) = message.attachments
        assert (att.filename, att.width, att.height, att.size) == ("in.png", 64, 48, len(png_bytes))
        assert att.content_type == "image/png"
        assert await att.read() == png_bytes
        assert message.reference is not None and message.reference.message_id == earlier.id


async def test_expired_token_makes_followup_fail(discord_fake: DiscordFake) -> None:
    fake = discord_fake
    world = make_world(fake)
    seen = Seen()
    async with fake.running(TinyBot(seen)):
        handle = await fake.slash(world.alice, world.guild, world.channel, "slow")
        await handle.wait_response()
        fake.expire_token(handle)
        seen.slow_gate.set()
        async with asyncio.timeout(5):
            await seen.followup_done.wait()
        (error,) = seen.followup_errors
        assert error.status == 401 and error.code == 50027
        assert handle.followups == []


async def test_rest_knobs_rate_limit_deleted_channel_size_limit_and_nonce(
    discord_fake: DiscordFake,
) -> None:
    fake = discord_fake
    world = make_world(fake)
    small = fake.add_channel(world.guild, "small", upload_limit=10)
    async with fake.running(TinyBot(Seen())) as bot:
        channel = bot.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)

        rule = fake.fail("POST", r"^/channels/\d+/messages$", 429, retry_after=0.01)
        sent = await channel.send("after a 429")
        assert rule.hits == 1
        assert [r.status for r in fake.requests_to("POST", r"^/channels/\d+/messages$")] == [
            429,
            200,
        ]

        first = await channel.send("once", nonce="job-1")
        again = await channel.send("once", nonce="job-1")
        assert first.id == again.id
        assert [m.content for m in fake.messages[world.channel.id]] == ["after a 429", "once"]

        small_ch = bot.get_channel(small.id)
        assert isinstance(small_ch, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_big:
            await small_ch.send(file=discord.File(io.BytesIO(b"x" * 11), filename="big.bin"))
        assert too_big.value.status == 413 and too_big.value.code == 40005

        await fake.delete_message(fake.messages[world.channel.id][0])
        with pytest.raises(discord.NotFound) as gone:
            await sent.edit(content="too late")
        assert gone.value.code == 10008

        await fake.delete_channel(world.channel)
        with pytest.raises(discord.NotFound) as no_channel:
            await channel.send("into the void")
        assert no_channel.value.code == 10003


async def test_gateway_reconnect_resumes_session(discord_fake: DiscordFake) -> None:
    fake = discord_fake
    make_world(fake)
    seen = Seen()
    async with fake.running(TinyBot(seen)):
        await fake.request_reconnect()
        async with asyncio.timeout(5):
            await seen.resumed.wait()
        assert fake.counters["gateway.identify"] == 1
        assert fake.counters["gateway.resume"] == 1


async def test_file_upload_modal_then_edit_original_with_file(
    discord_fake: DiscordFake, png_bytes: bytes
) -> None:
    fake = discord_fake
    world = make_world(fake)
    async with fake.running(TinyBot(Seen())):
        opener = await fake.slash(world.alice, world.guild, world.channel, "upload")
        assert (await opener.wait_response()).type == CB_MODAL
        submit = await fake.submit_modal(
            world.alice,
            "tiny:upload",
            {"tiny:file": ("photo.png", png_bytes), "tiny:edit-prompt": "make it blue"},
        )
        edited = await submit.wait_original_edit()
        assert submit.response_type == CB_DEFERRED_MESSAGE and submit.ephemeral
        assert edited.content == "edited: make it blue"
        assert edited.ephemeral and not edited.loading
        assert [(a.filename, a.data) for a in edited.attachments] == [("edited.png", png_bytes)]
        assert submit.original_edits[0]["attachments"] == [{"id": 0, "filename": "edited.png"}]


async def test_update_message_click_and_autocomplete(
    discord_fake: DiscordFake, png_bytes: bytes
) -> None:
    fake = discord_fake
    world = make_world(fake)
    async with fake.running(TinyBot(Seen())):
        first = await fake.slash(
            world.alice,
            world.guild,
            world.channel,
            "imagine",
            {"prompt": "cat"},
            attachments={"image": ("c.png", png_bytes)},
        )
        message = await first.wait_followup()
        await fake.wait_bot_idle()
        done = await fake.click(world.alice, message, "tiny:done")
        assert (await done.wait_response()).type == CB_UPDATE
        assert done.original is message
        assert message.content == "done" and message.components == []
        assert message.attachments[0].filename == "result.png"  # kept: edit did not list them

        complete = await fake.autocomplete(
            world.alice, world.guild, world.channel, "size", {"size": "1536"}, focused="size"
        )
        assert (await complete.wait_response()).type == CB_AUTOCOMPLETE
        assert complete.autocomplete_choices == [{"name": "1536x1024", "value": "1536x1024"}]

        with pytest.raises(ValueError, match="missing required"):
            await fake.slash(world.alice, world.guild, world.channel, "imagine", {"prompt": "x"})
        with pytest.raises(LookupError):
            await fake.slash(world.alice, world.guild, world.channel, "nope")


class PlainBot(discord.Client):
    """No message_content intent, but members: exercises chunking and content hiding."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.members = True
        super().__init__(intents=intents)
        self.received: list[discord.Message] = []
        self.got_two = asyncio.Event()

    async def on_message(self, message: discord.Message) -> None:
        self.received.append(message)
        if len(self.received) == 2:
            self.got_two.set()


async def test_intents_member_chunking_and_permission_errors(
    discord_fake: DiscordFake,
) -> None:
    fake = discord_fake
    world = make_world(fake)
    locked = fake.add_channel(world.guild, "locked")
    fake.set_overwrite(
        locked, fake.bot_role(world.guild), deny=discord.Permissions(attach_files=True).value
    )
    async with fake.running(PlainBot()) as bot:
        assert isinstance(bot, PlainBot)
        guild = bot.get_guild(world.guild.id)
        assert guild is not None and guild.get_member(world.alice.id) is not None  # chunked
        assert any(f[1].get("op") == 8 for f in fake.gateway_log)

        await fake.post_user_message(world.channel, world.alice, "secret words")
        await fake.post_user_message(world.channel, world.alice, f"{fake.bot_user.mention} hi")
        async with asyncio.timeout(5):
            await bot.got_two.wait()
        assert [m.content for m in bot.received] == ["", f"{fake.bot_user.mention} hi"]

        channel = bot.get_channel(locked.id)
        assert isinstance(channel, discord.TextChannel)
        assert not channel.permissions_for(guild.me).attach_files
        await channel.send("text is fine")
        with pytest.raises(discord.Forbidden) as denied:
            await channel.send(file=discord.File(io.BytesIO(b"abc"), filename="a.txt"))
        assert denied.value.code == 50013


async def test_patches_are_restored_after_exit() -> None:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with DiscordFake() as fake:
        assert discord.http.Route.BASE.startswith(f"http://127.0.0.1:{fake.port}/")
        with pytest.raises(RuntimeError):
            await DiscordFake().start()
    assert base == discord.http.Route.BASE
    assert gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


def test_zlib_stream_frames_are_what_discord_py_inflates() -> None:
    """Our framing (compress + Z_SYNC_FLUSH per message) round-trips through discord.py."""
    ctx = discord.utils._ActiveDecompressionContext()
    if ctx.COMPRESSION_TYPE != "zlib-stream":
        pytest.skip("discord.py uses zstd here")
    comp = zlib.compressobj()
    for text in ('{"op":11}', '{"op":0,"t":"X","s":1,"d":{}}'):
        frame = comp.compress(text.encode()) + comp.flush(zlib.Z_SYNC_FLUSH)
        assert ctx.decompress(frame) == text
