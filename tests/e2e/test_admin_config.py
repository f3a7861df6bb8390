"""/wan-admin config: per-server settings set through the real command tree, and their effect on
/imagine and the reply+mention path (refused privately, nothing spent)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

import bot.app
from bot.ui.errors import handle_error
from cogs.admin_config import ConfigCommands
from cogs.admin_group import AdminGroup
from tests.fakes.discord_fake import (
    CB_DEFERRED_MESSAGE,
    CB_MESSAGE,
    DiscordFake,
    FakeMember,
    InteractionHandle,
)
from tests.helpers import png
from tests.world import WanWorld, ephemeral_reply

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def config_commands_mounted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Mount ``config`` under /wan-admin if the cogs do not do it yet (then this is a no-op)."""
    original = bot.app.load_cogs

    async def load(client: Any, ctx: Any) -> None:
        await original(client, ctx)
        group = client.tree.get_command("wan-admin")
        if group is None:
            group = AdminGroup(ctx.owner_ids)
            client.tree.add_command(group)
        if group.get_command("config") is None:
            group.add_command(ConfigCommands(ctx))
        if isinstance(group, AdminGroup):
            group.protect()

    monkeypatch.setattr(bot.app, "load_cogs", load)
    yield


async def admin_cmd(
    wan: WanWorld, who: FakeMember, name: str, **options: object
) -> InteractionHandle:
    handle = await wan.fake.slash(who, wan.guild, wan.channel, f"wan-admin config {name}", options)
    response = await handle.wait_response()
    assert response.type == CB_MESSAGE
    assert handle.ephemeral
    return handle


def content(handle: InteractionHandle) -> str:
    assert handle.original is not None
    return handle.original.content


async def stored_jobs(wan: WanWorld) -> int:
    async with wan.database() as db:
        row = await db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None
    return int(row[0])


async def nothing_spent(wan: WanWorld) -> None:
    assert wan.crun.calls["create"] == 0
    assert await stored_jobs(wan) == 0


# --- permissions --------------------------------------------------------------------------


async def test_members_without_manage_server_are_refused_server_side(wan: WanWorld) -> None:
    other = wan.fake.add_channel(wan.guild, "bots")
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        # The fake lets anyone send the command (as Discord does once a server's admins loosen
        # its permissions); the bot must refuse by itself. mod has Manage Messages only.
        for who in (wan.alice, wan.mod):
            denied = await admin_cmd(wan, who, "channels-add", channel=other)
            assert "Manage Server" in content(denied)
        peek = await admin_cmd(wan, wan.bob, "blocked-words-list")
        assert "Manage Server" in content(peek)
        show = await admin_cmd(wan, admin, "show")
        assert show.original is not None
        channels = show.original.embeds[0]["fields"][0]
        assert channels["value"] == "every channel"  # nothing changed
        # Owners are not admins of the bot-wide DM switch just by managing a server.
        dms = await admin_cmd(wan, admin, "dms", state="off")
        assert "Only the bot's owner" in content(dms)
    synced = wan.fake.find_command("wan-admin")
    assert int(synced["default_member_permissions"]) == discord.Permissions(manage_guild=True).value


# --- channels -------------------------------------------------------------------------------


async def test_allowed_channels_refuse_elsewhere_and_spend_nothing(wan: WanWorld) -> None:
    bots = wan.fake.add_channel(wan.guild, "bots")
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        added = await admin_cmd(wan, admin, "channels-add", channel=bots)
        assert f"<#{bots.id}>" in content(added)
        text = await ephemeral_reply(await wan.imagine("a lighthouse"))
        assert text == f"Image generation isn't enabled in this channel. Try <#{bots.id}>."
        await nothing_spent(wan)
        # In the enabled channel it runs.
        ok = await wan.imagine("a lighthouse", channel=bots)
        assert ok.response_type == CB_DEFERRED_MESSAGE
        await wan.fake.wait_message(bots, lambda m: bool(m.attachments), timeout=15)
        show = await admin_cmd(wan, admin, "show")
        assert show.original is not None
        assert f"<#{bots.id}>" in show.original.embeds[0]["fields"][0]["value"]
        # Removing the last channel allows every channel again, and says so.
        removed = await admin_cmd(wan, admin, "channels-remove", channel=bots)
        assert "every" in content(removed)
        again = await wan.imagine("a lighthouse")
        assert again.response_type == CB_DEFERRED_MESSAGE
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
    assert wan.crun.calls["create"] == 2


async def test_allowed_channels_apply_to_the_mention_path(wan: WanWorld) -> None:
    bots = wan.fake.add_channel(wan.guild, "bots")
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await admin_cmd(wan, admin, "channels-add", channel=bots)
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "my cat", attachments=[("cat.png", png(300, 300, (10, 20, 30)))]
        )
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{wan.fake.bot_user.id}> add a hat", reference=source
        )
        reply = await wan.fake.wait_message(
            wan.channel,
            lambda m: m.author.id == wan.fake.bot_user.id and m.referenced is not None,
        )
    assert reply.referenced is not None and reply.referenced.id == ask.id
    assert f"<#{bots.id}>" in reply.content
    assert not wan.fake.attachment_downloads  # refused before fetching anything
    await nothing_spent(wan)


# --- prompts --------------------------------------------------------------------------------


async def test_blocked_word_is_refused_privately_without_echoing_it(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        added = await admin_cmd(wan, admin, "blocked-words-add", words="zebracorn, gore")
        assert "Blocked 2 words" in content(added)
        text = await ephemeral_reply(await wan.imagine("a Z3BRAC0RN in the fog"))
        assert "doesn't allow" in text
        assert "zebracorn" not in text.casefold()
        assert "z3brac0rn" not in text.casefold()
        listed = await admin_cmd(wan, admin, "blocked-words-list")
        assert "zebracorn, gore" in content(listed)  # the admin can see the list
    await nothing_spent(wan)


async def test_bad_patterns_are_refused_and_good_ones_block(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        slow = await admin_cmd(wan, admin, "blocked-patterns-add", pattern="(a+)+$")
        assert "slow" in content(slow)
        broken = await admin_cmd(wan, admin, "blocked-patterns-add", pattern="(unclosed")
        assert "not a valid regular expression" in content(broken)
        good = await admin_cmd(wan, admin, "blocked-patterns-add", pattern=r"\bdrag(on|ons)\b")
        assert "Added" in content(good)
        text = await ephemeral_reply(await wan.imagine("two DRAGONS fighting"))
        assert "doesn't allow" in text
        listed = await admin_cmd(wan, admin, "blocked-patterns-list")
        assert r"\bdrag(on|ons)\b" in content(listed)
        assert "(a+)+$" not in content(listed)
    await nothing_spent(wan)


# --- resolution ---------------------------------------------------------------------------


async def test_max_resolution_refuses_4k(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await admin_cmd(wan, admin, "resolution-max", resolution="2K")
        text = await ephemeral_reply(await wan.imagine("a lighthouse", resolution="4K"))
    assert text == "This server allows at most 2K. Choose 1K or 2K and try again."
    await nothing_spent(wan)


async def test_default_resolution_is_sent_to_crun(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        too_high = await admin_cmd(wan, admin, "resolution-max", resolution="2K")
        assert "at most 2K" in content(too_high)
        refused = await admin_cmd(wan, admin, "resolution-default", resolution="4K")
        assert "maximum is 2K" in content(refused)
        await admin_cmd(wan, admin, "resolution-default", resolution="1K")
        await wan.imagine("a lighthouse")
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
    [create] = wan.crun.requests_for("create")
    assert create["input"]["resolution"] == "1K"


# --- delivery -------------------------------------------------------------------------------


async def test_spoiler_setting_posts_results_as_spoilers(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await admin_cmd(wan, admin, "spoiler", state="on")
        show = await admin_cmd(wan, admin, "show")
        assert show.original is not None
        fields = {f["name"]: f["value"] for f in show.original.embeds[0]["fields"]}
        assert fields["Spoilers"] == "every result"
        await wan.imagine("a lighthouse", count=2)
        result = await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        assert [a.filename.startswith("SPOILER_") for a in result.attachments] == [True, True]
        await admin_cmd(wan, admin, "spoiler", state="off")
        await wan.imagine("a lighthouse")
        await wan.fake.wait_for(lambda: len(wan.results(bot_only=True)) == 2, 15, "second result")
    plain = wan.results(bot_only=True)[1]
    assert not any(a.filename.startswith("SPOILER_") for a in plain.attachments)


# --- bot-wide -------------------------------------------------------------------------------


async def test_bot_owner_switches_dms_off_for_everyone(wan: WanWorld) -> None:
    # The owner needs no Manage Server: BOT_OWNER_IDS is enough for every admin command.
    async with wan.fake.running(wan.bot(bot_owner_ids=[wan.bob.id], allow_dms=True)):
        switched = await admin_cmd(wan, wan.bob, "dms", state="off")
        assert "refused" in content(switched)
        dm = wan.fake.dm_channel(wan.alice.user)
        handle = await wan.fake.slash(wan.alice.user, None, dm, "imagine", {"prompt": "a fox"})
        assert "DMs" in await ephemeral_reply(handle)
        show = await admin_cmd(wan, wan.bob, "show")
        assert show.original is not None
        fields = {f["name"]: f["value"] for f in show.original.embeds[0]["fields"]}
        assert fields["DMs (all servers)"] == "off (set by the bot owner)"
    await nothing_spent(wan)


async def test_alerts_channel_is_stored(wan: WanWorld) -> None:
    admin = wan.add_admin()
    alerts = wan.fake.add_channel(wan.guild, "alerts")
    async with wan.fake.running(wan.bot()) as client:
        await admin_cmd(wan, admin, "alerts-channel-set", channel=alerts)
        ctx = client.runtime  # type: ignore[attr-defined]
        assert (await ctx.configs.get(wan.guild.id)).alerts_channel_id == alerts.id
        await admin_cmd(wan, admin, "alerts-channel-clear")
        assert (await ctx.configs.get(wan.guild.id)).alerts_channel_id is None


# --- the shared /wan-admin group ----------------------------------------------------------------


async def test_admin_group_guards_commands_that_do_not_check_for_themselves(
    discord_fake: DiscordFake,
) -> None:
    """Another feature's subgroup mounted under AdminGroup, written without any check of its
    own, is still refused to non-admins: discord.py alone would not consult /wan-admin's check
    for /wan-admin probe run (it looks only at the direct parent)."""
    fake = discord_fake
    guild = fake.add_guild("Lab")
    channel = fake.add_channel(guild, "general")
    alice = fake.add_member(guild, username="alice")
    owner = fake.add_member(guild, username="owner")
    role = fake.add_role(guild, "admins", discord.Permissions(manage_guild=True).value)
    admin = fake.add_member(guild, username="admin", roles=[role])
    ran: list[int] = []

    probe = app_commands.Group(name="probe", description="test subgroup")

    @probe.command(name="run", description="test")
    async def run(interaction: discord.Interaction) -> None:
        ran.append(interaction.user.id)
        await interaction.response.send_message("ran", ephemeral=True)

    @app_commands.command(name="direct", description="test")
    async def direct(interaction: discord.Interaction) -> None:
        ran.append(interaction.user.id)
        await interaction.response.send_message("ran", ephemeral=True)

    group = AdminGroup(owner_ids={owner.id})
    group.add_command(probe)
    group.add_command(direct)
    group.protect()
    group.protect()  # idempotent

    class ProbeBot(commands.Bot):
        async def setup_hook(self) -> None:
            self.tree.add_command(group)
            self.tree.error(handle_error)
            await self.tree.sync()

    client = ProbeBot(command_prefix=[], intents=discord.Intents.default(), help_command=None)
    async with fake.running(client):
        for name in ("wan-admin probe run", "wan-admin direct"):
            denied = await fake.slash(alice, guild, channel, name)
            await denied.wait_response()
            assert denied.ephemeral
            assert denied.original is not None
            assert "Manage Server" in denied.original.content
            for who in (admin, owner):
                allowed = await fake.slash(who, guild, channel, name)
                await allowed.wait_response()
                assert allowed.original is not None
                assert allowed.original.content == "ran"
    assert ran == [admin.id, owner.id, admin.id, owner.id]
    leaves = [c for c in group.walk_commands() if isinstance(c, app_commands.Command)]
    assert [len(c.checks) for c in leaves] == [1, 1]
    synced = fake.find_command("wan-admin")
    assert synced["dm_permission"] is False
    assert int(synced["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
