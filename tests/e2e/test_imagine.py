"""/imagine and /wan through the real discord.py, the fake Discord and the fake crun."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.fakes.discord_fake import CB_DEFERRED_MESSAGE, FLAG_EPHEMERAL
from tests.world import WanWorld, ephemeral_reply, job_id_of

pytestmark = pytest.mark.timeout(60)


async def test_imagine_posts_real_files_with_an_embed(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine("a red fox", count=2)
        assert handle.response_type == CB_DEFERRED_MESSAGE
        result = await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        assert len(result.attachments) == 2
        for a in result.attachments:
            with Image.open(io.BytesIO(a.data)) as im:
                assert im.format == "PNG"
        embed = result.embeds[0]
        assert "a red fox" in embed["description"]
        assert embed["footer"]["text"].startswith("job ")
        assert result.allowed_mentions["parse"] == []
        assert [int(u) for u in result.allowed_mentions["users"]] == [wan.alice.id]
        assert wan.crun.calls["create"] == 1
        # The status message ends as "done" with a link to the result.
        await handle.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "done" in m.embeds[0]["title"]
        )


async def test_prompt_with_everyone_pings_nobody(wan: WanWorld) -> None:
    prompt = "@everyone look at <@&123> and <@456> **bold** `code`"
    async with wan.fake.running(wan.bot()):
        await wan.imagine(prompt, wait="sent")
        result = await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
    for message in wan.fake.messages[wan.channel.id]:
        mentions = message.allowed_mentions or {}
        assert mentions.get("parse", []) == []
        assert "@everyone" not in (message.content or "")
        assert {int(u) for u in mentions.get("users", [])} <= {wan.alice.id}
    assert "@\u200beveryone" in result.embeds[0]["description"]
    assert wan.crun.requests_for("create")[0]["input"]["prompt"] == prompt


async def test_4k_with_thinking_is_explained_not_dropped(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine("a castle", resolution="4K", thinking=True, count=1)
        # Allowed for plain text-to-image: the job runs.
        assert handle.response_type == CB_DEFERRED_MESSAGE
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
    sent = wan.crun.requests_for("create")[0]["input"]
    assert sent["resolution"] == "4K"
    assert sent["thinking_mode"] is True


async def test_missing_permissions_are_explained_before_spending(wan: WanWorld) -> None:
    wan.fake.set_overwrite(wan.channel, wan.fake.bot_role(wan.guild), allow=0, deny=1 << 15)
    async with wan.fake.running(wan.bot()):
        assert "Attach Files" in await ephemeral_reply(await wan.imagine())
    assert wan.crun.calls["create"] == 0


async def test_wan_help_and_info(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        help_ = await wan.fake.slash(wan.alice, wan.guild, wan.channel, "wan help")
        await help_.wait_response()
        assert help_.ephemeral
        assert help_.original is not None
        assert "/imagine" in help_.original.embeds[0]["description"]

        await wan.imagine("owl", wait="sent")
        result = await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        job_id = job_id_of(result)
        info = await wan.fake.slash(wan.bob, wan.guild, wan.channel, "wan info", {"job_id": job_id})
        await info.wait_response()
        assert info.original is not None
        assert info.original.flags & FLAG_EPHEMERAL
        fields = {f["name"]: f["value"] for f in info.original.embeds[0]["fields"]}
        assert fields["Status"] == "succeeded"
        assert "seed" in fields["Settings"]

        missing = await wan.fake.slash(
            wan.bob, wan.guild, wan.channel, "wan info", {"job_id": "nosuchjob"}
        )
        await missing.wait_response()
        assert missing.ephemeral
        assert missing.original is not None
        assert "no job" in missing.original.content


async def test_commands_sync_only_when_changed(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        pass
    async with wan.fake.running(wan.bot()):
        pass
    assert wan.fake.command_syncs == 1
    names = sorted(c["name"] for c in wan.fake.global_commands)
    assert "imagine" in names
    assert "wan" in names


async def test_dev_guild_gets_the_commands_instantly(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot(dev_guild_id=wan.guild.id)):
        handle = await wan.fake.slash(wan.alice, wan.guild, wan.channel, "wan help")
        await handle.wait_response()
    names = {c["name"] for c in wan.fake.guild_commands[wan.guild.id]}
    assert {"imagine", "wan"} <= names
