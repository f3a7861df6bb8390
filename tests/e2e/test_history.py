"""/history through the real discord.py, the fake Discord and the fake crun: a member's own jobs,
ten a page, Show here and Re-run on one of them, and nobody else's hands on the controls."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.app import WanBot
from tests.fakes.discord_fake import FakeMember, FakeMessage
from tests.world import WanWorld, button, click, ephemeral_text, job_id_of

pytestmark = pytest.mark.timeout(120)

DELETED = "The original message was deleted, so its images are gone."
NOT_YOURS = "These controls belong to someone else's /history"


def listed(panel: FakeMessage) -> list[str]:
    """The job ids on the panel, top to bottom."""
    return re.findall(r"`([a-z0-9]{10})`", str(panel.embeds[0].get("description") or ""))


def ids_of(panel: FakeMessage, kind: str) -> list[str]:
    return [c for c in panel.custom_ids() if c.split(":")[2] == kind]


async def history_of(wan: WanWorld, user: FakeMember) -> FakeMessage:
    handle = await wan.fake.slash(user, wan.guild, wan.channel, "history")
    await handle.wait_response()
    assert handle.ephemeral
    assert handle.original is not None
    await wan.settle()
    return handle.original


async def press(
    wan: WanWorld, user: FakeMember, panel: FakeMessage, custom_id: str, **kw: Any
) -> None:
    """A press that updates the panel in place."""
    before = list(panel.custom_ids()), panel.embeds[0].get("description"), panel.content
    await click(wan, user, panel, custom_id, **kw)
    await wan.fake.wait_for(
        lambda: (
            (list(panel.custom_ids()), panel.embeds[0].get("description"), panel.content) != before
        ),
        5,
        "the panel to update",
    )
    await wan.settle()


async def pick(wan: WanWorld, user: FakeMember, panel: FakeMessage, job_id: str) -> None:
    (menu,) = ids_of(panel, "hs")
    await press(wan, user, panel, menu, values=[job_id])
    assert ids_of(panel, "hx") and ids_of(panel, "hr")


def creates(wan: WanWorld) -> list[dict[str, Any]]:
    return [body["input"] for body in wan.crun.requests_for("create")]


async def test_pages_of_ten_newest_first_only_my_own_and_only_i_can_press(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot(user_queue_limit=20, user_concurrent_jobs=4)):
        mine = [job_id_of(await wan.imagine_result(f"picture {i}")) for i in range(12)]
        bobs = job_id_of(await wan.imagine_result("bob's picture", user=wan.bob))

        panel = await history_of(wan, wan.alice)
        assert listed(panel) == mine[::-1][:10]
        text = str(panel.embeds[0]["description"])
        assert "picture 11" in text and "text-to-image" in text
        assert "credit" in text and "[result](https://discord.com/channels/" in text
        (prev,) = ids_of(panel, "hp")
        (nxt,) = ids_of(panel, "hn")
        assert panel.find_component(prev)["disabled"]  # type: ignore[index]

        # Bob can neither turn alice's pages nor pick her jobs.
        refused = await click(wan, wan.bob, panel, nxt)
        assert NOT_YOURS in await ephemeral_text(refused)
        refused = await click(wan, wan.bob, panel, ids_of(panel, "hs")[0], values=[mine[0]])
        assert NOT_YOURS in await ephemeral_text(refused)
        await wan.settle()
        assert listed(panel) == mine[::-1][:10]

        await press(wan, wan.alice, panel, nxt)
        assert listed(panel) == [mine[1], mine[0]]
        (nxt,) = ids_of(panel, "hn")
        assert panel.find_component(nxt)["disabled"]  # type: ignore[index]
        await press(wan, wan.alice, panel, ids_of(panel, "hp")[0])
        assert listed(panel) == mine[::-1][:10]

        bob_panel = await history_of(wan, wan.bob)
        assert listed(bob_panel) == [bobs]
        assert not ids_of(bob_panel, "hn")  # one page: no paging
        assert bobs not in listed(panel)

        # A forged job id in the menu (bob's job on alice's panel) is not found.
        forged = await click(wan, wan.alice, panel, ids_of(panel, "hs")[0], values=[bobs])
        assert "There is no job" in await ephemeral_text(forged)
        await wan.settle()


async def test_show_here_reposts_with_working_buttons_and_explains_a_deleted_original(
    wan: WanWorld,
) -> None:
    async with wan.fake.running(wan.bot()):
        original = await wan.imagine_result("a harbour at night", seed=11)
        job_id = job_id_of(original)
        gone = await wan.imagine_result("soon deleted")

        panel = await history_of(wan, wan.alice)
        await pick(wan, wan.alice, panel, job_id)
        before = wan.result_ids()
        shown = await click(wan, wan.alice, panel, ids_of(panel, "hx")[0])
        assert "Posted again here: https://discord.com/channels/" in await ephemeral_text(shown)
        copy = await wan.next_result(before)
        await wan.settle()
        assert job_id_of(copy) == job_id
        assert [a.data for a in copy.attachments] == [a.data for a in original.attachments]
        assert copy.custom_ids() == original.custom_ids()

        # Its buttons work: bob rerolls from the copy.
        before = wan.result_ids()
        await click(wan, wan.bob, copy, button(copy, "rr"))
        rerolled = await wan.next_result(before)
        await wan.settle()
        assert rerolled.content == f"<@{wan.bob.id}>"
        assert creates(wan)[-1]["prompt"] == "a harbour at night"
        assert creates(wan)[-1]["seed"] != 11

        # Delete on the copy removes only the copy.
        await click(wan, wan.alice, copy, button(copy, "rm"))
        await wan.fake.wait_for(lambda: copy.deleted, 5, "the copy to go")
        await wan.settle()
        assert not original.deleted

        # The original of another result was deleted: its images are gone, and she is told.
        await wan.fake.delete_message(gone)
        panel = await history_of(wan, wan.alice)
        await pick(wan, wan.alice, panel, job_id_of(gone))
        before = wan.result_ids()
        refused = await click(wan, wan.alice, panel, ids_of(panel, "hx")[0])
        assert await ephemeral_text(refused) == DELETED
        await wan.settle()
        assert wan.result_ids() == before


async def test_rerun_uses_the_same_settings_with_a_new_seed_under_this_servers_rules(
    wan: WanWorld,
) -> None:
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("a zebra crossing", seed=3, aspect_ratio="16:9")
        job_id = job_id_of(first)
        panel = await history_of(wan, wan.alice)
        await pick(wan, wan.alice, panel, job_id)

        before = wan.result_ids()
        await click(wan, wan.alice, panel, ids_of(panel, "hr")[0])
        again = await wan.next_result(before)
        await wan.settle()
        original, rerun = creates(wan)
        assert rerun["prompt"] == original["prompt"] == "a zebra crossing"
        assert rerun["aspect_ratio"] == original["aspect_ratio"] == "16:9"
        assert rerun.get("resolution") == original.get("resolution")
        assert original["seed"] == 3 and rerun["seed"] != 3
        assert again.content == f"<@{wan.alice.id}>"

        # The server blocks a word since: Re-run is refused like any request, nothing is sent.
        admin = wan.add_admin()
        handle = await wan.fake.slash(
            admin, wan.guild, wan.channel, "wan-admin config blocked-words-add", {"words": "zebra"}
        )
        await handle.wait_response()
        refused = await click(wan, wan.alice, panel, ids_of(panel, "hr")[0])
        assert "doesn't allow" in await ephemeral_text(refused)
        await wan.settle()
        assert len(creates(wan)) == 2


async def test_rerun_is_refused_when_the_quota_is_used_up(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        first = await wan.imagine_result("one is all")
        boss = wan.add_admin("boss")
        await wan.command(boss, "wan-admin quota set-user", member=wan.alice, daily=0)
        panel = await history_of(wan, wan.alice)
        await pick(wan, wan.alice, panel, job_id_of(first))
        refused = await click(wan, wan.alice, panel, ids_of(panel, "hr")[0])
        text = await ephemeral_text(refused)
        await wan.settle()
        assert "resets" in text
        assert len(creates(wan)) == 1


async def test_forgotten_jobs_are_gone_from_history(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()) as client:
        assert isinstance(client, WanBot)
        await wan.imagine_result("to be forgotten")
        await wan.imagine_result("kept", user=wan.bob)
        panel = await history_of(wan, wan.alice)
        assert len(listed(panel)) == 1
        await client.runtime.jobs.forget_user(wan.alice.id)
        panel = await history_of(wan, wan.alice)
        assert listed(panel) == []
        assert "You have no jobs yet" in str(panel.embeds[0]["description"])
        assert not panel.components
        assert len(listed(await history_of(wan, wan.bob))) == 1


async def test_a_private_result_shown_here_comes_without_buttons_that_would_refuse(
    wan: WanWorld,
) -> None:
    """Its buttons answer only its member in their DM: a copy in the channel gets none."""
    async with wan.fake.running(wan.bot()):
        dm = wan.fake.dm_channel(wan.alice.user)
        before = wan.result_ids(dm)
        await wan.imagine("a secret fox", private=True)
        private = await wan.next_result(before, channel=dm)
        await wan.settle()
        assert private.custom_ids()

        panel = await history_of(wan, wan.alice)
        await pick(wan, wan.alice, panel, job_id_of(private))
        before = wan.result_ids()
        shown = await click(wan, wan.alice, panel, ids_of(panel, "hx")[0])
        assert "its buttons work only where it was made" in (await ephemeral_text(shown)).lower()
        await wan.settle()
        (copy,) = [m for m in wan.results() if m.id not in before]
        assert job_id_of(copy) == job_id_of(private)
        assert [a.data for a in copy.attachments] == [a.data for a in private.attachments]
        assert copy.components == []
