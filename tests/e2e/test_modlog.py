"""The mod log, end to end: /wan-admin config modlog through the real command tree,
then each event (a prompt refused by a word or a pattern or by crun's content filter, a result
deleted by a moderator, a block and an unblock) as exactly one line in that channel, pinging no
one; nothing when no channel is set; a burst held to the rate limit and summarised once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.app import WanBot
from bot.domain.modlog import LINES_PER_WINDOW
from bot.services.modlog import ModLogService
from tests.fakes.discord_fake import FakeChannel, FakeMember, FakeMessage, InteractionHandle
from tests.world import WanWorld, button, click, ephemeral_reply, ephemeral_text, job_id_of

pytestmark = pytest.mark.timeout(60)

FILTERED = "DataInspectionFailed: input data may contain inappropriate content"


async def config_cmd(wan: WanWorld, who: FakeMember, name: str, **options: object) -> str:
    handle = await wan.fake.slash(who, wan.guild, wan.channel, f"wan-admin config {name}", options)
    return await ephemeral_reply(handle)


async def admin_cmd(wan: WanWorld, who: FakeMember, name: str, **options: Any) -> str:
    handle: InteractionHandle = await wan.command(who, f"wan-admin {name}", **options)
    return await ephemeral_text(handle)


def modlog_of(bot: object) -> ModLogService:
    assert isinstance(bot, WanBot)
    return bot.runtime.modlog


async def modlog_channel(bot: object, guild_id: int) -> int | None:
    assert isinstance(bot, WanBot) and bot.services is not None
    return (await bot.services.admin.config(guild_id)).modlog_channel_id


def lines(wan: WanWorld, channel: FakeChannel) -> list[FakeMessage]:
    return [m for m in wan.fake.messages[channel.id] if wan.from_bot(m)]


def assert_pings_no_one(message: FakeMessage) -> None:
    assert message.allowed_mentions == {"parse": []}
    assert not message.mentions and not message.mention_roles and not message.mention_everyone


@asynccontextmanager
async def logged_server(wan: WanWorld) -> AsyncIterator[tuple[WanBot, FakeMember, FakeChannel]]:
    """The bot running, an admin, and a #mod-log channel set as the server's mod log."""
    admin = wan.add_admin()
    channel = wan.fake.add_channel(wan.guild, "mod-log")
    async with wan.fake.running(wan.bot()) as bot:
        assert isinstance(bot, WanBot)
        text = await config_cmd(wan, admin, "modlog", channel=channel)
        assert f"<#{channel.id}>" in text
        yield bot, admin, channel


# --- the setting --------------------------------------------------------------------------


async def test_the_modlog_channel_is_admin_only_shown_in_the_overview_and_clearable(
    wan: WanWorld,
) -> None:
    admin = wan.add_admin()
    channel = wan.fake.add_channel(wan.guild, "mod-log")
    async with wan.fake.running(wan.bot()) as bot:
        for who in (wan.alice, wan.mod):  # mod has Manage Messages, not Manage Server
            refused = await config_cmd(wan, who, "modlog", channel=channel)
            assert "Manage Server" in refused
        assert "Manage Server" in await config_cmd(wan, wan.alice, "modlog")
        assert await modlog_channel(bot, wan.guild.id) is None

        await config_cmd(wan, admin, "modlog", channel=channel)
        assert await modlog_channel(bot, wan.guild.id) == channel.id
        handle = await wan.fake.slash(admin, wan.guild, wan.channel, "wan-admin config show", {})
        await handle.wait_response()
        assert handle.original is not None
        fields = {f["name"]: f["value"] for f in handle.original.embeds[0]["fields"]}
        assert fields["Mod log"] == f"<#{channel.id}>"

        cleared = await config_cmd(wan, admin, "modlog")
        assert "any more" in cleared
        assert await modlog_channel(bot, wan.guild.id) is None


# --- the events ---------------------------------------------------------------------------


async def test_a_prompt_blocked_by_a_word_and_one_by_a_pattern_are_one_line_each(
    wan: WanWorld,
) -> None:
    async with logged_server(wan) as (bot, admin, modlog):
        await config_cmd(wan, admin, "blocked-words-add", words="gore")
        await config_cmd(wan, admin, "blocked-patterns-add", pattern=r"\bdrag(on|ons)\b")
        refused = await ephemeral_reply(await wan.imagine("so much g0re <@&1> ||x||"))
        assert "doesn't allow" in refused
        await modlog_of(bot).idle()
        await ephemeral_reply(await wan.imagine("two DRAGONS", user=wan.bob))
        await modlog_of(bot).idle()
    word, pattern = lines(wan, modlog)
    art, alice, bob = wan.channel.id, wan.alice.id, wan.bob.id
    assert word.content == (
        f"**Blocked prompt** · <@{alice}> in <#{art}> · blocked word: gore · "
        r"||so much g0re \<\@&1\> \|\|x\|\|||"
    )
    assert pattern.content == (
        f"**Blocked prompt** · <@{bob}> in <#{art}> · "
        r"blocked pattern: \\bdrag\(on\|ons\)\\b · ||two DRAGONS||"
    )
    for line in (word, pattern):
        assert_pings_no_one(line)
    assert wan.crun.calls["create"] == 0


async def test_a_prompt_stopped_by_cruns_content_filter_is_one_line(wan: WanWorld) -> None:
    wan.crun.outcome = lambda _input: ("failed", FILTERED)
    async with logged_server(wan) as (bot, _admin, modlog):
        handle = await wan.imagine("a fox in the snow")
        await handle.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "content filter" in str(m.embeds[0]),
            timeout=15,
        )
        await wan.settle()
        await modlog_of(bot).idle()
    (job,) = await wan.job_rows()
    (line,) = lines(wan, modlog)
    assert line.content == (
        f"**Content filter** · <@{wan.alice.id}> in <#{wan.channel.id}> · crun's content "
        f"filter refused job `{job.id}` (its prompt or images) · ||a fox in the snow||"
    )
    assert_pings_no_one(line)


async def test_a_result_deleted_by_a_moderator_is_logged_and_by_its_requester_is_not(
    wan: WanWorld,
) -> None:
    async with logged_server(wan) as (bot, _admin, modlog):
        mine = await wan.imagine_result("my own fox")
        await click(wan, wan.alice, mine, button(mine, "rm"))
        await wan.fake.wait_for(lambda: mine.deleted, 5, "alice's own result to be deleted")
        await wan.settle()
        await modlog_of(bot).idle()
        assert lines(wan, modlog) == []

        theirs = await wan.imagine_result("a fox to moderate")
        await click(wan, wan.mod, theirs, button(theirs, "rm"))
        await wan.fake.wait_for(lambda: theirs.deleted, 5, "the moderated result to be deleted")
        await wan.settle()
        await modlog_of(bot).idle()
    (line,) = lines(wan, modlog)
    assert line.content == (
        f"**Result deleted** · <@{wan.mod.id}> deleted <@{wan.alice.id}>'s result "
        f"(job `{job_id_of(theirs)}`) · in <#{wan.channel.id}> · ||a fox to moderate||"
    )
    assert_pings_no_one(line)


async def test_a_block_and_an_unblock_are_one_line_each(wan: WanWorld) -> None:
    async with logged_server(wan) as (bot, admin, modlog):
        await admin_cmd(wan, admin, "block", member=wan.bob, reason="spamming @everyone")
        await modlog_of(bot).idle()
        await admin_cmd(wan, admin, "unblock", member=wan.bob)
        await admin_cmd(wan, admin, "unblock", member=wan.bob)  # not blocked: nothing happened
        await modlog_of(bot).idle()
    blocked, unblocked = lines(wan, modlog)
    who, whom, where = admin.id, wan.bob.id, wan.channel.id
    assert blocked.content == (
        f"**Member blocked** · <@{who}> blocked <@{whom}> on this server · "
        rf"reason: spamming \@everyone · command used in <#{where}>"
    )
    assert unblocked.content == (
        f"**Member unblocked** · <@{who}> unblocked <@{whom}> on this server · "
        f"command used in <#{where}>"
    )
    for line in (blocked, unblocked):
        assert_pings_no_one(line)


async def test_nothing_is_posted_when_no_modlog_channel_is_set(wan: WanWorld) -> None:
    admin = wan.add_admin()
    quiet = wan.fake.add_channel(wan.guild, "mod-log")
    wan.crun.outcome = lambda inp: ("failed", FILTERED) if "filter" in inp["prompt"] else None
    async with wan.fake.running(wan.bot()) as bot:
        await config_cmd(wan, admin, "modlog", channel=quiet)
        await config_cmd(wan, admin, "modlog")
        await config_cmd(wan, admin, "blocked-words-add", words="gore")
        await ephemeral_reply(await wan.imagine("gore"))
        failed = await wan.imagine("filter me")
        await failed.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "content filter" in str(m.embeds[0]),
            timeout=15,
        )
        result = await wan.imagine_result("a fox")
        await click(wan, wan.mod, result, button(result, "rm"))
        await wan.fake.wait_for(lambda: result.deleted, 5, "the result to be deleted")
        await admin_cmd(wan, admin, "block", member=wan.bob)
        await admin_cmd(wan, admin, "unblock", member=wan.bob)
        await wan.settle()
        await modlog_of(bot).idle()
    assert lines(wan, quiet) == []
    everywhere = [m for msgs in wan.fake.messages.values() for m in msgs if wan.from_bot(m)]
    assert not [m for m in everywhere if m.content.startswith(("**", "…and"))]


# --- the rate limit and failures ----------------------------------------------------------


async def test_a_burst_of_blocked_prompts_is_held_to_the_limit_and_summarised_once(
    wan: WanWorld,
) -> None:
    extra = 5
    async with logged_server(wan) as (bot, admin, modlog):
        service = modlog_of(bot)
        now = [5_000.0]
        service.clock = lambda: now[0]  # the test moves the rate limit's clock
        await config_cmd(wan, admin, "blocked-words-add", words="spam")
        for i in range(LINES_PER_WINDOW + extra):
            await ephemeral_reply(await wan.imagine(f"spam {i}", user=wan.bob))
            await service.idle()
        assert len(lines(wan, modlog)) == LINES_PER_WINDOW
        assert await service.flush() == 0  # the minute is not over
        now[0] += 60
        assert await service.flush() == 1
        assert await service.flush() == 0  # once
        await ephemeral_reply(await wan.imagine("spam again", user=wan.bob))  # a new minute
        await service.idle()
    posted = lines(wan, modlog)
    assert len(posted) == LINES_PER_WINDOW + 2
    assert [m.content.split(" · ")[-1] for m in posted[:LINES_PER_WINDOW]] == [
        f"||spam {i}||" for i in range(LINES_PER_WINDOW)
    ]
    assert posted[-2].content == f"…and {extra} more blocked prompts in the last minute."
    assert posted[-1].content.endswith("||spam again||")
    assert_pings_no_one(posted[-2])


async def test_a_failing_modlog_post_is_logged_and_the_member_still_gets_their_answer(
    wan: WanWorld, caplog: pytest.LogCaptureFixture
) -> None:
    async with logged_server(wan) as (bot, admin, modlog):
        await config_cmd(wan, admin, "blocked-words-add", words="gore")
        wan.fake.fail("POST", rf"^/channels/{modlog.id}/messages$", 403, times=None)
        refused = await ephemeral_reply(await wan.imagine("gore"))
        await modlog_of(bot).idle()
    assert "doesn't allow" in refused
    assert lines(wan, modlog) == []
    assert "mod-log post to" in caplog.text
