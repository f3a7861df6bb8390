"""The buttons under results, through the real discord.py, the fake Discord and the fake crun."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import WanBot
from bot.domain.models import GenerationRequest, Job, Mode
from bot.ui.target import DiscordTarget
from tests.fakes.discord_fake import (
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_MESSAGE,
    CB_MODAL,
    FakeMessage,
)
from tests.helpers import uploaded
from tests.world import WanWorld, button, click, ephemeral_text, job_id_of, submit

pytestmark = pytest.mark.timeout(90)

# Model inputs must be at least 240 px a side, so Vary/Edit can feed a result back in.
IMAGE_SIZE = (256, 256)


# --- helpers ------------------------------------------------------------------------------------


async def job(bot: WanBot, job_id: str) -> Job:
    found = await bot.runtime.jobs.get(job_id)
    assert found is not None
    return found


def creates(wan: WanWorld) -> list[dict[str, Any]]:
    return [body["input"] for body in wan.crun.requests_for("create")]


def labels(message: FakeMessage) -> list[list[str]]:
    """Button labels / menu placeholders per action row, as a member sees them."""
    return [
        [c.get("label") or c.get("placeholder", "") for c in row["components"]]
        for row in message.components
    ]


# --- layout -------------------------------------------------------------------------------------


async def test_single_and_multi_image_results_get_the_right_controls(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        single = await wan.imagine_result("one cat")
        four = await wan.imagine_result("four cats", count=4)
        four_k = await wan.imagine_result("a 4K cat", resolution="4K")
    assert labels(single) == [["Reroll", "Vary", "Edit", "Upscale 4K"], ["Info", "Delete"]]
    assert labels(four) == [
        ["Reroll", "Upscale 4K", "Info", "Delete"],
        ["Vary 1", "Vary 2", "Vary 3", "Vary 4"],
        ["Edit 1", "Edit 2", "Edit 3", "Edit 4"],
    ]
    assert labels(four_k) == [["Reroll", "Vary", "Edit"], ["Info", "Delete"]]
    for message in (single, four, four_k):
        ids = message.custom_ids()
        assert all(c.startswith("wan:1:") and job_id_of(message) in c for c in ids)
        assert all(len(c) <= 100 for c in ids)
        assert len(message.components) <= 5
        assert all(len(row["components"]) <= 5 for row in message.components)
    delete = four.find_component(f"wan:1:rm:{job_id_of(four)}")
    assert delete is not None
    assert delete["style"] == 4  # red: destructive


# --- reroll / upscale -------------------------------------------------------------------------


async def test_reroll_is_the_same_request_with_a_new_seed_charged_to_the_presser(
    wan: WanWorld,
) -> None:
    async with wan.fake.running(wan.bot()) as client:
        bot = client
        assert isinstance(bot, WanBot)
        first = await wan.imagine_result("a red fox in snow", seed=42, aspect_ratio="16:9")
        before = wan.result_ids()
        handle = await click(wan, wan.bob, first, button(first, "rr"))
        assert (await handle.wait_response()).type == CB_DEFERRED_MESSAGE
        second = await wan.next_result(before)
        await wan.settle()

        original, reroll = creates(wan)
        assert reroll["prompt"] == original["prompt"] == "a red fox in snow"
        assert reroll["aspect_ratio"] == "16:9"
        assert original["seed"] == 42
        assert reroll["seed"] != 42
        new = await job(bot, job_id_of(second))
        assert new.parent_job_id == job_id_of(first)
        assert new.user_id == wan.bob.id  # their own job, their quota
        assert second.content == f"<@{wan.bob.id}>"


async def test_upscale_rerenders_at_4k_with_the_same_prompt_and_seed(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("a lighthouse at dusk", resolution="1K", seed=7)
        before = wan.result_ids()
        await click(wan, wan.alice, first, button(first, "up"))
        upscaled = await wan.next_result(before)
        await wan.settle()
    original, up = creates(wan)
    assert original["resolution"] == "1K"
    assert up["resolution"] == "4K"
    assert up["seed"] == original["seed"] == 7
    assert up["prompt"] == "a lighthouse at dusk"
    # A 4K result offers no further upscale.
    assert not [c for c in upscaled.custom_ids() if c.split(":")[2] == "up"]


# --- vary / edit --------------------------------------------------------------------------------


async def test_vary_uses_the_result_image_as_reference_with_a_new_seed(wan: WanWorld) -> None:
    wan.crun.image_size = IMAGE_SIZE
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("a paper boat", seed=5)
        before = wan.result_ids()
        handle = await click(wan, wan.bob, first, button(first, "va"))
        assert (await handle.wait_response()).type == CB_DEFERRED_MESSAGE
        varied = await wan.next_result(before)
        await wan.settle()
    _, vary = creates(wan)
    assert vary["prompt"] == "a paper boat"
    assert vary["seed"] != 5
    assert len(vary["img_urls"]) == 1
    assert uploaded(wan.crun, vary["img_urls"][0]) == first.attachments[0].data
    # Edits are rendered at 2K at most: no Upscale on them.
    assert not [c for c in varied.custom_ids() if c.split(":")[2] == "up"]


async def test_picking_image_2_of_4_uses_image_2(wan: WanWorld) -> None:
    wan.crun.image_size = IMAGE_SIZE
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("four owls", count=4)
        assert len(first.attachments) == 4
        assert len({a.data for a in first.attachments}) == 4  # the images really differ
        # One button per image for Vary and for Edit.
        for k in range(1, 5):
            button(first, "va", k)
            button(first, "ed", k)

        before = wan.result_ids()
        await click(wan, wan.bob, first, button(first, "va", 2))
        await wan.next_result(before)
        await wan.settle()
        vary = creates(wan)[1]
        assert uploaded(wan.crun, vary["img_urls"][0]) == first.attachments[1].data

        before = wan.result_ids()
        opener = await click(wan, wan.bob, first, button(first, "ed", 4))
        assert (await opener.wait_response()).type == CB_MODAL
        assert opener.modal is not None
        assert "image 4" in opener.modal["title"]
        await submit(wan, wan.bob, opener, {"instruction": "give them hats"})
        await wan.next_result(before)
        await wan.settle()
        edit = creates(wan)[2]
        assert edit["prompt"] == "give them hats"
        assert uploaded(wan.crun, edit["img_urls"][0]) == first.attachments[3].data


async def test_edit_opens_a_form_and_uses_the_result_as_reference(wan: WanWorld) -> None:
    wan.crun.image_size = IMAGE_SIZE
    async with wan.fake.running(wan.bot()) as client:
        bot = client
        assert isinstance(bot, WanBot)
        first = await wan.imagine_result("a cabin in a forest")
        before = wan.result_ids()
        opener = await click(wan, wan.bob, first, button(first, "ed"))
        assert (await opener.wait_response()).type == CB_MODAL
        assert opener.modal is not None
        assert wan.crun.calls["create"] == 1  # nothing is spent until the form is sent
        submitted = await submit(wan, wan.bob, opener, {"instruction": "make it winter at night"})
        assert (await submitted.wait_response()).type == CB_DEFERRED_MESSAGE
        edited = await wan.next_result(before)
        await wan.settle()

        _, edit = creates(wan)
        assert edit["prompt"] == "make it winter at night"
        assert uploaded(wan.crun, edit["img_urls"][0]) == first.attachments[0].data
        new = await job(bot, job_id_of(edited))
        assert new.request.mode is Mode.EDIT
        assert new.user_id == wan.bob.id
        assert new.parent_job_id == job_id_of(first)


async def test_upscale_is_absent_on_edits_and_refused_if_pressed_anyway(wan: WanWorld) -> None:
    wan.crun.image_size = IMAGE_SIZE
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("a teapot")
        before = wan.result_ids()
        await click(wan, wan.alice, first, button(first, "va"))
        edit_result = await wan.next_result(before)
        await wan.settle()
        assert not [c for c in edit_result.custom_ids() if c.split(":")[2] == "up"]

        # A stale or crafted Upscale button on an edit result: the server side says no.
        forged = f"wan:1:up:{job_id_of(edit_result)}"
        edit_result.components = [
            *edit_result.components,
            {
                "type": 1,
                "components": [{"type": 2, "style": 2, "label": "Up", "custom_id": forged}],
            },
        ]
        handle = await click(wan, wan.bob, edit_result, forged)
        text = await ephemeral_text(handle)
        await wan.settle()
    assert "only for /imagine" in text
    assert wan.crun.calls["create"] == 2


# --- info / delete ------------------------------------------------------------------------------


async def test_info_is_ephemeral_and_shows_the_full_prompt(wan: WanWorld) -> None:
    prompt = " ".join(f"word{i}" for i in range(200))  # ~1,400 characters
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result(prompt)
        assert prompt not in first.embeds[0]["description"]  # the result embed clips it
        handle = await click(wan, wan.bob, first, button(first, "in"))
        assert (await handle.wait_response()).type == CB_MESSAGE
        await wan.settle()
    assert handle.ephemeral
    assert handle.original is not None
    embed = handle.original.embeds[0]
    assert embed["description"] == prompt
    assert job_id_of(first) in embed["title"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "seed" in fields["Settings"]
    assert wan.crun.calls["create"] == 1


async def test_delete_by_a_stranger_is_refused_and_by_a_moderator_works(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("a secret")
        refused = await click(wan, wan.bob, first, button(first, "rm"))
        text = await ephemeral_text(refused)
        await wan.settle()
        assert "Only" in text
        assert f"<@{wan.alice.id}>" in text
        assert not first.deleted
        assert first in wan.fake.messages[wan.channel.id]

        removed = await click(wan, wan.mod, first, button(first, "rm"))
        assert (await removed.wait_response()).type == CB_DEFERRED_UPDATE
        await wan.fake.wait_for(lambda: first.deleted, 5, "the result to be deleted")
        await wan.settle()
    assert not removed.followups  # no error was reported


async def test_delete_by_the_requester_removes_the_result_and_its_status_message(
    wan: WanWorld,
) -> None:
    async with wan.fake.running(wan.bot()) as client:
        bot = client
        assert isinstance(bot, WanBot)
        first = await wan.imagine_result("oops, wrong prompt")
        target = DiscordTarget.of(await job(bot, job_id_of(first)))
        assert target.status_message_id is not None
        status = wan.fake.get_message(wan.channel.id, target.status_message_id)
        await click(wan, wan.alice, first, button(first, "rm"))
        await wan.fake.wait_for(lambda: first.deleted and status.deleted, 5, "both deleted")
        await wan.settle()


# --- image sets split over two messages ------------------------------------------------------


async def test_a_12_image_set_uses_menus_and_reaches_images_on_the_first_part(
    wan: WanWorld,
) -> None:
    wan.crun.image_size = IMAGE_SIZE
    async with wan.fake.running(wan.bot()) as client:
        bot = client
        assert isinstance(bot, WanBot)
        before = wan.result_ids()
        target = DiscordTarget(
            channel_id=wan.channel.id, user_id=wan.alice.id, guild_id=wan.guild.id
        )
        await bot.runtime.services.generation.submit(
            GenerationRequest(prompt="a comic about a cat", mode=Mode.IMAGE_SET, n=12),
            user_id=wan.alice.id,
            guild_id=wan.guild.id,
            target=target.to_target(),
        )
        last = await wan.next_result(before)
        first_part = next(
            m
            for m in wan.fake.messages[wan.channel.id]
            if m.attachments and m.id not in before and m.id != last.id
        )
        assert len(first_part.attachments) == len(last.attachments) == 6
        assert not first_part.components  # the controls sit on the last part only
        vary_menu = last.find_component(f"wan:1:vas:{job_id_of(last)}")
        edit_menu = last.find_component(f"wan:1:eds:{job_id_of(last)}")
        assert vary_menu is not None and edit_menu is not None
        assert [o["label"] for o in vary_menu["options"]] == [
            f"Vary image {k}" for k in range(1, 13)
        ]

        # Image 3 is on the first message: the bot fetches it.
        before = wan.result_ids()
        opener = await click(wan, wan.bob, last, edit_menu["custom_id"], values=["3"])
        assert (await opener.wait_response()).type == CB_MODAL
        assert opener.modal is not None
        await submit(wan, wan.bob, opener, {"instruction": "in blue"})
        await wan.next_result(before)
        await wan.settle()
        edit = creates(wan)[1]
        assert uploaded(wan.crun, edit["img_urls"][0]) == first_part.attachments[2].data

        # Image 9 is on the message with the menu itself.
        before = wan.result_ids()
        await click(wan, wan.bob, last, vary_menu["custom_id"], values=["9"])
        await wan.next_result(before)
        await wan.settle()
        vary = creates(wan)[2]
        assert vary["prompt"] == "a comic about a cat"
        assert uploaded(wan.crun, vary["img_urls"][0]) == last.attachments[2].data

        # Once the first part is gone, its images cannot be used: said so, nothing spent.
        await wan.fake.delete_message(first_part)
        handle = await click(wan, wan.bob, last, vary_menu["custom_id"], values=["2"])
        text = await ephemeral_text(handle)
        await wan.settle()
        assert "deleted" in text
        assert wan.crun.calls["create"] == 3

        # Delete removes every part that is left.
        await click(wan, wan.alice, last, button(last, "rm"))
        await wan.fake.wait_for(lambda: last.deleted, 5, "the last part to be deleted")
        await wan.settle()


# --- restart ------------------------------------------------------------------------------------


async def test_buttons_keep_working_after_a_restart(wan: WanWorld) -> None:
    wan.crun.image_size = IMAGE_SIZE
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("a sleepy dragon", count=2, seed=99)
    assert wan.crun.calls["create"] == 1

    async with wan.fake.running(wan.bot()) as client:
        bot = client
        assert isinstance(bot, WanBot)
        before = wan.result_ids()
        await click(wan, wan.bob, first, button(first, "rr"))
        rerolled = await wan.next_result(before)
        await wan.settle()
        assert (await job(bot, job_id_of(rerolled))).parent_job_id == job_id_of(first)

        before = wan.result_ids()
        await click(wan, wan.bob, first, button(first, "va", 2))
        await wan.next_result(before)
        await wan.settle()

        info = await click(wan, wan.bob, first, button(first, "in"))
        await info.wait_response()
        await wan.settle()
        assert info.ephemeral

        refused = await click(wan, wan.bob, first, button(first, "rm"))
        assert "Only" in await ephemeral_text(refused)
        await wan.settle()
        await click(wan, wan.alice, first, button(first, "rm"))
        await wan.fake.wait_for(lambda: first.deleted, 5, "the result to be deleted")
        await wan.settle()

    _, reroll, vary = creates(wan)
    assert reroll["prompt"] == "a sleepy dragon"
    assert reroll["seed"] != 99
    assert uploaded(wan.crun, vary["img_urls"][0]) == first.attachments[1].data
