"""Private results: the images go to the member's DMs with the same buttons, by the `private`
option or the /settings preference; closed DMs are refused before anything is spent; follow-ups
stay private; a restart still delivers once to the DM. Real discord.py, fake Discord, fake crun."""

from __future__ import annotations

import pytest

from bot.domain.models import DeliveryState, Job
from bot.ui.private import DMS_CLOSED, MENTION_NOTE, NOT_STARTED
from bot.ui.settings import setting_id
from bot.ui.target import DiscordTarget
from tests.fakes.discord_fake import (
    CB_DEFERRED_MESSAGE,
    CB_MESSAGE,
    CB_UPDATE,
    FakeChannel,
    FakeMessage,
)
from tests.helpers import png
from tests.world import WanWorld, button, click, ephemeral_text, job_id_of

pytestmark = pytest.mark.timeout(60)

SINGLE_IMAGE_BUTTONS = [["Reroll", "Vary", "Edit", "Upscale 4K"], ["Info", "Delete"]]


def labels(message: FakeMessage) -> list[list[str]]:
    return [
        [c.get("label") or c.get("placeholder", "") for c in row["components"]]
        for row in message.components
    ]


def public_in_channel(wan: WanWorld) -> list[FakeMessage]:
    """What everyone in the art channel can see from the bot."""
    return [m for m in wan.fake.messages[wan.channel.id] if wan.from_bot(m) and not m.ephemeral]


def dm_of(wan: WanWorld) -> FakeChannel:
    return wan.fake.dm_channel(wan.alice.user)


async def private_result(wan: WanWorld, prompt: str = "a secret fox", **options: object) -> Job:
    """Alice's /imagine whose result lands in her DM; returns its job."""
    dm = dm_of(wan)
    before = wan.result_ids(dm)
    await wan.imagine(prompt, **options)
    result = await wan.next_result(before, channel=dm)
    await wan.settle()
    [job] = [j for j in await wan.job_rows() if j.id == job_id_of(result)]
    return job


async def turn_private_on(wan: WanWorld) -> None:
    """Alice presses "Private results" on her /settings panel."""
    handle = await wan.fake.slash(wan.alice, wan.guild, wan.channel, "settings", {})
    assert (await handle.wait_response()).type == CB_MESSAGE
    assert handle.original is not None
    pressed = await click(wan, wan.alice, handle.original, setting_id("private"))
    assert (await pressed.wait_response()).type == CB_UPDATE
    assert handle.original.content == "Saved: private results on."
    await wan.settle()


# --- the option and the preference --------------------------------------------------------------


async def test_private_option_sends_the_result_to_the_dm_with_the_buttons(wan: WanWorld) -> None:
    dm = dm_of(wan)
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine("a secret fox", private=True)
        assert handle.ephemeral  # "thinking…" only the member sees
        result = await wan.next_result(set(), channel=dm)
        await wan.settle()
        job = await wan.wait_delivery(DeliveryState.DONE)
    assert labels(result) == SINGLE_IMAGE_BUTTONS
    assert result.content == f"<@{wan.alice.id}>"
    # The channel sees nothing at all: no status, no note, no files.
    assert wan.results() == []
    assert public_in_channel(wan) == []
    assert handle.original is not None and handle.original.ephemeral
    assert "DMs" in handle.original.content
    assert f"/channels/@me/{dm.id}/" in handle.original.content
    # The status message lives in the DM and the result replies to it.
    [status] = [m for m in wan.fake.messages[dm.id] if wan.from_bot(m) and not m.attachments]
    assert result.referenced is not None and result.referenced.id == status.id
    assert "done" in status.embeds[0]["title"]
    # The job is the server's (its quota and line), its target the DM.
    assert job.guild_id == wan.guild.id
    target = DiscordTarget.of(job)
    assert (target.channel_id, target.guild_id, target.private) == (dm.id, None, True)
    assert target.status_message_id == status.id
    assert target.origin_channel_id == wan.channel.id
    assert target.interaction_token is None  # the DM is reached through the channel route
    assert wan.crun.calls["create"] == 1


async def test_the_preference_makes_results_private_without_the_option(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        await turn_private_on(wan)
        job = await private_result(wan, "a quiet lake")
        # Bob has no such preference: his result is in the channel.
        await wan.imagine_result("bob's lake", user=wan.bob)
    assert DiscordTarget.of(job).private
    assert [m.content for m in wan.results()] == [f"<@{wan.bob.id}>"]


async def test_private_false_wins_over_the_preference(wan: WanWorld) -> None:
    dm = dm_of(wan)
    async with wan.fake.running(wan.bot()):
        await turn_private_on(wan)
        result = await wan.imagine_result("a loud lake", private=False)
    assert result.channel_id == wan.channel.id
    assert wan.results(dm) == []
    [job] = await wan.job_rows()
    assert not DiscordTarget.of(job).private


async def test_edit_and_imageset_take_the_option_too(wan: WanWorld) -> None:
    dm = dm_of(wan)
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit({"image": ("cat.png", png(300, 300))}, "a hat", private=True)
        assert (await handle.wait_response()).type == CB_DEFERRED_MESSAGE
        assert handle.ephemeral
        await wan.next_result(set(), channel=dm)
        before = wan.result_ids(dm)
        sets = await wan.fake.slash(
            wan.alice, wan.guild, wan.channel, "imageset", {"prompt": "seasons", "private": True}
        )
        await sets.wait_response()
        assert sets.ephemeral
        await wan.next_result(before, channel=dm)
        await wan.settle()
    assert wan.results() == []
    assert public_in_channel(wan) == []


# --- closed DMs ---------------------------------------------------------------------------------


async def test_closed_dms_are_refused_before_anything_is_spent(wan: WanWorld) -> None:
    wan.alice.user.dms_closed = True
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine("a secret fox", private=True)
        text = await ephemeral_text(handle)
        await wan.settle()
    assert text == DMS_CLOSED
    assert "Privacy Settings" in text
    assert await wan.job_rows() == []
    async with wan.database() as db:
        assert await db.fetchall("SELECT job_id FROM ledger") == []
    assert wan.crun.requests_for("create") == []
    assert wan.crun.calls["create"] == 0
    assert public_in_channel(wan) == []
    assert wan.fake.messages[dm_of(wan).id] == []


# --- follow-ups ---------------------------------------------------------------------------------


async def test_reroll_of_a_private_result_is_private_too(wan: WanWorld) -> None:
    dm = dm_of(wan)
    async with wan.fake.running(wan.bot()):
        first = await private_result(wan, "a red fox in snow", seed=42, private=True)
        [message] = [m for m in wan.results(dm) if job_id_of(m) == first.id]
        before = wan.result_ids(dm)
        pressed = await click(wan, wan.alice.user, message, button(message, "rr"))
        assert (await pressed.wait_response()).type == CB_DEFERRED_MESSAGE
        second = await wan.next_result(before, channel=dm)
        await wan.settle()
    assert labels(second) == SINGLE_IMAGE_BUTTONS
    assert wan.results() == []
    assert public_in_channel(wan) == []
    child = next(j for j in await wan.job_rows() if j.id == job_id_of(second))
    assert child.parent_job_id == first.id
    assert child.guild_id == wan.guild.id  # the server's quota and rules, as for the first
    target = DiscordTarget.of(child)
    assert (target.channel_id, target.private) == (dm.id, True)
    assert target.origin_channel_id == wan.channel.id
    assert wan.crun.requests_for("create")[0]["input"]["seed"] == 42


async def test_only_the_member_can_use_a_private_result(wan: WanWorld) -> None:
    dm = dm_of(wan)
    async with wan.fake.running(wan.bot()):
        job = await private_result(wan, private=True)
        [message] = wan.results(dm)
        # A forged press from someone else is answered as if the job did not exist.
        forged = await click(wan, wan.bob.user, message, button(message, "rr"))
        text = await ephemeral_text(forged)
        info = await wan.command(wan.bob, "wan info", job_id=job.id)
    assert "There is no job" in text
    assert info.original is not None and "There is no job" in info.original.content
    assert wan.crun.calls["create"] == 1


# --- restarts and other doors -------------------------------------------------------------------


async def test_a_restart_mid_job_still_delivers_once_to_the_dm(wan: WanWorld) -> None:
    wan.crun.task_latency = None
    dm = dm_of(wan)
    async with wan.fake.running(wan.bot()):
        await wan.imagine("a fox by night", private=True)
        task_id = await wan.one_task()
    wan.crun.finish(task_id)  # finishes while the bot is down
    async with wan.fake.running(wan.bot()):
        await wan.next_result(set(), channel=dm)
        job = await wan.wait_delivery(DeliveryState.DONE)
        await wan.settle()
    assert len(wan.results(dm)) == 1
    assert wan.results() == []
    assert wan.crun.calls["create"] == 1
    assert DiscordTarget.of(job).channel_id == dm.id


async def test_a_mention_with_the_preference_gets_a_short_note_and_a_dm(wan: WanWorld) -> None:
    dm = dm_of(wan)
    bot_id = wan.fake.bot_user.id
    async with wan.fake.running(wan.bot()):
        await turn_private_on(wan)
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "my cat", attachments=[("cat.png", png(300, 300))]
        )
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{bot_id}> give the cat a hat", reference=source
        )
        await wan.next_result(set(), channel=dm)
        await wan.settle()
    [note] = public_in_channel(wan)
    assert note.content == MENTION_NOTE
    assert note.referenced is not None and note.referenced.id == ask.id
    assert not note.attachments
    assert [m for m in wan.results() if wan.from_bot(m)] == []


async def test_a_refusal_after_the_dm_status_removes_it(wan: WanWorld) -> None:
    """The DM status is posted before the job is stored; a quota refusal then takes it back,
    and the member is told why, privately."""
    async with wan.fake.running(wan.bot(quota_daily_default=0)):
        handle = await wan.imagine("a costly fox", private=True)
        await handle.wait_until(lambda h: len(h.followups) >= 1, timeout=10)
        await wan.settle()
    assert await wan.job_rows() == []
    assert wan.fake.messages[dm_of(wan).id] == []
    assert [m.channel_id for m in wan.fake.deleted_messages] == [dm_of(wan).id]  # the status
    assert handle.original is not None and handle.original.ephemeral
    assert handle.original.content == NOT_STARTED
    [why] = handle.followups
    assert why.ephemeral
    assert public_in_channel(wan) == []
    assert wan.crun.calls["create"] == 0


async def test_the_context_menu_with_the_preference_answers_only_the_member(
    wan: WanWorld,
) -> None:
    dm = dm_of(wan)
    async with wan.fake.running(wan.bot()):
        await turn_private_on(wan)
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "my cat", attachments=[("cat.png", png(300, 300))]
        )
        opened = await wan.fake.message_context(wan.alice, source, "Edit with Wan")
        await opened.wait_response()
        assert opened.modal is not None
        await wan.settle()
        submitted = await wan.fake.submit_modal(
            wan.alice, opened.modal["custom_id"], {"prompt": "give it a hat"}
        )
        assert (await submitted.wait_response()).type == CB_DEFERRED_MESSAGE
        assert submitted.ephemeral
        await wan.next_result(set(), channel=dm)
        await wan.settle()
    assert public_in_channel(wan) == []
    assert [m for m in wan.results() if wan.from_bot(m)] == []


async def test_dms_closed_mid_job_give_up_instead_of_retrying(wan: WanWorld) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        await wan.imagine("a fox", private=True)
        task_id = await wan.one_task()
        wan.alice.user.dms_closed = True  # closed after the status reached the DM
        wan.crun.finish(task_id)
        job = await wan.wait_delivery(DeliveryState.GAVE_UP)
    assert job.delivery_attempts == 1
    assert wan.results(dm_of(wan)) == []
    assert public_in_channel(wan) == []  # nothing falls back to the channel
