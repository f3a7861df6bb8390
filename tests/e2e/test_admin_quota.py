"""/wan-admin quota, block, usage, balance and forget through the real command tree."""

from __future__ import annotations

import io

import discord
import pytest
from PIL import Image

from tests.fakes.discord_fake import FakeMember, InteractionHandle
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)


def text(handle: InteractionHandle) -> str:
    parts = [handle.original.content] if handle.original is not None else []
    parts += [f.content for f in handle.followups]
    return "\n".join(p for p in parts if p)


async def imagine_reply(wan: WanWorld, who: FakeMember) -> str:
    handle = await wan.imagine(user=who)
    await handle.wait_until(lambda h: bool(h.followups) or (h.original and h.original.embeds))
    await wan.fake.wait_bot_idle()
    return text(handle)


async def test_admin_commands_are_checked_server_side(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        # The fake, like a server whose admins loosened the command's permissions, lets
        # alice invoke it: the bot itself must refuse.
        handle = await wan.command(wan.alice, "wan-admin quota set-user", member=wan.bob, daily=0)
        assert handle.ephemeral
        assert "Manage Server" in text(handle)
        blocked = await wan.command(wan.alice, "wan-admin block", member=wan.bob)
        assert "Manage Server" in text(blocked)
    synced = next(c for c in wan.fake.global_commands if c["name"] == "wan-admin")
    assert int(synced["default_member_permissions"]) == discord.Permissions(manage_guild=True).value


async def test_limits_grants_resets_and_blocks(wan: WanWorld) -> None:
    boss = wan.add_admin("owner")
    async with wan.fake.running(wan.bot()):
        wan.crun.credits_per_image = 1
        done = await wan.command(boss, "wan-admin quota set-user", member=wan.alice, daily=1)
        assert "daily 1, monthly unlimited" in text(done)
        await imagine_reply(wan, wan.alice)
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        assert "quota resets" in await imagine_reply(wan, wan.alice)

        await wan.command(boss, "wan-admin quota grant", member=wan.alice, credits=1)
        assert "quota resets" not in await imagine_reply(wan, wan.alice)

        shown = await wan.command(boss, "wan-admin quota show", member=wan.alice)
        assert shown.original is not None
        assert "of 2 used" in shown.original.embeds[0]["fields"][0]["value"]

        await wan.command(boss, "wan-admin block", member=wan.bob, reason="spam")
        assert "can't use the image bot" in await imagine_reply(wan, wan.bob)
        await wan.command(boss, "wan-admin unblock", member=wan.bob)
        listed = await wan.command(boss, "wan-admin quota list")
        assert f"<@{wan.alice.id}>: daily 1" in text(listed)


async def test_usage_balance_and_forget(wan: WanWorld) -> None:
    boss = wan.add_admin("owner")
    async with wan.fake.running(wan.bot()):
        await imagine_reply(wan, wan.alice)
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        usage = await wan.command(boss, "wan-admin usage", days=7)
        reply = usage.followups[-1] if usage.followups else usage.original
        assert reply is not None
        assert "alice" in reply.content
        (chart,) = reply.attachments
        with Image.open(io.BytesIO(chart.data)) as im:
            assert im.format == "PNG"

        balance = await wan.command(boss, "wan-admin balance")
        assert "balance: **995** credits" in text(balance)

        refused = await wan.command(boss, "wan-admin forget", member=wan.alice)
        assert "confirm" in text(refused)
        forgot = await wan.command(boss, "wan-admin forget", member=wan.alice, confirm=True)
        assert "Deleted 1 stored job(s)" in text(forgot)
