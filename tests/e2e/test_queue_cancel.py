"""Waiting in line and cancelling, through the real discord.py, the fake Discord and the fake crun.

One job runs at crun at a time (``max_concurrent_jobs=1``) and crun tasks stay pending until the
test finishes them (manual mode), so every later request waits in line, visibly.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from bot.app import WanBot
from bot.store.quotas import QuotaRepository
from tests.fakes.discord_fake import CB_DEFERRED_UPDATE, FakeMember, FakeMessage, InteractionHandle
from tests.helpers import wait_until
from tests.world import Ledger, WanWorld, click, ephemeral_text, job_id_of

pytestmark = pytest.mark.timeout(90)

CANCELLED = "Cancelled; nothing was charged."
QUEUE_MENU = "wan:1:cq"


# --- helpers ------------------------------------------------------------------------------------


def one_at_a_time(wan: WanWorld) -> WanBot:
    """The bot with one running slot at crun, and crun tasks that wait for ``finish``."""
    wan.crun.task_latency = None
    return wan.bot(engine={"max_concurrent_jobs": 1}, user_concurrent_jobs=5)


def described(message: FakeMessage) -> str:
    return str(message.embeds[0].get("description") or "") if message.embeds else ""


def cancel_button(status: FakeMessage) -> str:
    return f"wan:1:cx:{job_id_of(status)}"


async def running(wan: WanWorld, prompt: str, user: FakeMember, tasks: int) -> InteractionHandle:
    """``user`` asks for ``prompt``; it is sent to crun as its ``tasks``-th task."""
    handle = await wan.imagine(prompt, user=user)
    await wait_until(lambda: len(wan.crun.tasks) == tasks, timeout=10, what=f"crun task {tasks}")
    return handle


async def waiting(
    wan: WanWorld, prompt: str, user: FakeMember, place: int
) -> tuple[InteractionHandle, FakeMessage]:
    """``user`` asks for ``prompt``; it waits in line at ``place``, with a Cancel button."""
    handle = await wan.imagine(prompt, user=user)
    status = await waits_at(handle, place)
    return handle, status


async def waits_at(handle: InteractionHandle, place: int) -> FakeMessage:
    return await handle.wait_original_edit(
        predicate=lambda m: f"Waiting in line: #{place}" in described(m) and bool(m.components),
        timeout=15,
    )


async def at_crun(handle: InteractionHandle) -> FakeMessage:
    """The status message once it says crun has the job (and its Cancel button is gone)."""
    return await handle.wait_original_edit(
        predicate=lambda m: "can no longer be stopped" in described(m) and not m.components,
        timeout=15,
    )


async def finish_next(wan: WanWorld, number: int) -> FakeMessage:
    """Finish crun task ``number`` (1-based), once it exists, and wait for its result."""
    await wait_until(lambda: len(wan.crun.tasks) >= number, timeout=10, what=f"crun task {number}")
    before = wan.result_ids()
    wan.crun.finish(list(wan.crun.tasks)[number - 1])
    result = await wan.next_result(before)
    await wan.settle()
    return result


async def ledger(wan: WanWorld, job_id: str) -> Ledger | None:
    async with wan.database() as db:
        return await QuotaRepository(db, wan.settings().quota_policy()).ledger_state(job_id)


def places_shown(handle: InteractionHandle) -> list[int]:
    """Every place in line the status message showed, in order."""
    places = []
    for edit in handle.original_edits:
        for embed in edit.get("embeds") or []:
            found = re.search(r"Waiting in line: #(\d+)", embed.get("description") or "")
            if found:
                places.append(int(found[1]))
    return places


def prompts_sent(wan: WanWorld) -> list[str]:
    return [body["input"]["prompt"] for body in wan.crun.requests_for("create")]


# --- the status message ---------------------------------------------------------------------------


async def test_a_waiting_job_shows_its_place_and_a_cancel_button_until_it_starts(
    wan: WanWorld,
) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        first = await running(wan, "first", wan.alice, 1)
        bob, bob_status = await waiting(wan, "second", wan.bob, 1)
        carol = wan.fake.add_member(wan.guild, username="carol")
        carol_handle, carol_status = await waiting(wan, "third", carol, 2)

        embed = bob_status.embeds[0]
        assert embed["title"] == "Imagine: waiting in line"
        assert "Cancel" in described(bob_status)
        assert bob_status.custom_ids() == [cancel_button(bob_status)]
        assert carol_status.custom_ids() == [cancel_button(carol_status)]
        assert "can no longer be stopped" in described(await at_crun(first))

        # The first job ends: bob's starts (no more Cancel), carol moves up to #1.
        await finish_next(wan, 1)
        started = await at_crun(bob)
        assert "🎨 Rendering" in described(started)
        moved_up = await waits_at(carol_handle, 1)
        # A job has finished here, so the bot can estimate when hers starts.
        assert re.search(r"#1, (should start <t:\d+:R>|starting soon)\n", described(moved_up))
        places = places_shown(carol_handle)
        assert places[0] == 2
        assert places[-1] == 1
        assert places == sorted(places, reverse=True)  # never moves back

        await finish_next(wan, 2)
        await at_crun(carol_handle)
        await finish_next(wan, 3)
    assert prompts_sent(wan) == ["first", "second", "third"]


# --- the Cancel button ----------------------------------------------------------------------------


async def test_cancel_by_the_requester_refunds_and_sends_nothing_to_crun(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "first", wan.alice, 1)
        _, status = await waiting(wan, "never sent", wan.bob, 1)
        job_id = job_id_of(status)

        pressed = await click(wan, wan.bob, status, cancel_button(status))
        assert await ephemeral_text(pressed) == CANCELLED
        await wan.fake.wait_for(lambda: "Cancelled by" in described(status), 5, "cancelled")
        assert status.embeds[0]["title"] == "Imagine: cancelled"
        assert described(status).startswith(f"✖️ Cancelled by <@{wan.bob.id}>; nothing was charged.")
        assert not status.components

        refund = await ledger(wan, job_id)
        assert refund is not None and refund[0] == "refunded"
        await finish_next(wan, 1)
        await wan.fake.wait_bot_idle()
    assert prompts_sent(wan) == ["first"]  # the cancelled job never reached crun


async def test_cancel_by_another_member_is_refused_and_the_job_still_runs(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "first", wan.alice, 1)
        _, status = await waiting(wan, "bob's picture", wan.bob, 1)

        refused = await click(wan, wan.alice, status, cancel_button(status))
        text = await ephemeral_text(refused)
        await wan.settle()
        assert "Only the member who asked" in text
        assert "Manage Messages" in text
        assert status.custom_ids() == [cancel_button(status)]  # still there for bob

        await finish_next(wan, 1)
        result = await finish_next(wan, 2)
        assert result.content == f"<@{wan.bob.id}>"
    assert prompts_sent(wan) == ["first", "bob's picture"]


async def test_a_moderator_may_cancel_someone_elses_waiting_job(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "first", wan.alice, 1)
        _, status = await waiting(wan, "off-topic", wan.bob, 1)
        job_id = job_id_of(status)

        pressed = await click(wan, wan.mod, status, cancel_button(status))
        assert await ephemeral_text(pressed) == CANCELLED
        await wan.fake.wait_for(lambda: "Cancelled by" in described(status), 5, "cancelled")
        assert f"Cancelled by <@{wan.mod.id}>" in described(status)
        refund = await ledger(wan, job_id)
        assert refund is not None and refund[0] == "refunded"
        await finish_next(wan, 1)
        await wan.fake.wait_bot_idle()
    assert prompts_sent(wan) == ["first"]


async def test_a_late_press_once_at_crun_says_it_can_no_longer_be_stopped(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "first", wan.alice, 1)
        handle, status = await waiting(wan, "too late", wan.bob, 1)
        shown = copy.deepcopy(status.components)

        await finish_next(wan, 1)
        await at_crun(handle)
        # A client that still shows the old button (its update had not arrived yet).
        status.components = shown
        pressed = await click(wan, wan.bob, status, cancel_button(status))
        text = await ephemeral_text(pressed)
        assert "can no longer be stopped" in text
        await wan.fake.wait_for(lambda: not status.components, 5, "the stale button to go")
        await wan.settle()

        await finish_next(wan, 2)  # it runs to the end, as promised
    assert prompts_sent(wan) == ["first", "too late"]


async def test_the_cancel_button_keeps_working_after_a_restart(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "first", wan.alice, 1)
        _, status = await waiting(wan, "still waiting", wan.bob, 1)
    async with wan.fake.running(one_at_a_time(wan)):
        pressed = await click(wan, wan.bob, status, cancel_button(status))
        assert await ephemeral_text(pressed) == CANCELLED
        await wan.fake.wait_for(lambda: "Cancelled by" in described(status), 5, "cancelled")
        await finish_next(wan, 1)
        await wan.fake.wait_bot_idle()
    assert prompts_sent(wan) == ["first"]


# --- /queue ---------------------------------------------------------------------------------------


async def queue_of(wan: WanWorld, user: FakeMember) -> FakeMessage:
    handle = await wan.fake.slash(user, wan.guild, wan.channel, "queue")
    await handle.wait_response()
    assert handle.ephemeral
    assert handle.original is not None
    return handle.original


def fields_of(message: FakeMessage) -> dict[str, Any]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


async def test_queue_lists_my_waiting_jobs_and_its_menu_cancels_one(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "someone else's", wan.bob, 1)
        _, two = await waiting(wan, "my second picture", wan.alice, 1)
        three_handle, three = await waiting(wan, "my third picture", wan.alice, 2)

        panel = await queue_of(wan, wan.alice)
        fields = fields_of(panel)
        assert fields["Rendering now"] == "1"
        assert fields["Waiting"] == "2"
        mine = fields["Your waiting jobs"].splitlines()
        assert "#1 in line" in mine[0] and "my second picture" in mine[0]
        assert "#2 in line" in mine[1] and "my third picture" in mine[1]
        menu = panel.find_component(QUEUE_MENU)
        assert menu is not None
        assert [o["value"] for o in menu["options"]] == [job_id_of(two), job_id_of(three)]
        assert menu["options"][1]["label"] == "#2: my third picture"

        chosen = await click(wan, wan.alice, panel, QUEUE_MENU, values=[job_id_of(three)])
        assert (await chosen.wait_response()).type == CB_DEFERRED_UPDATE
        await wan.fake.wait_for(lambda: panel.content == CANCELLED, 5, "the panel to update")
        await wan.settle()
        assert "my third picture" not in fields_of(panel)["Your waiting jobs"]
        menu = panel.find_component(QUEUE_MENU)
        assert menu is not None and [o["value"] for o in menu["options"]] == [job_id_of(two)]
        await wan.fake.wait_for(lambda: "Cancelled by" in described(three), 5, "cancelled")
        assert f"<@{wan.alice.id}>" in described(three)
        refund = await ledger(wan, job_id_of(three))
        assert refund is not None and refund[0] == "refunded"
        assert three_handle.original is three

        # Bob has nothing waiting: no menu.
        empty = await queue_of(wan, wan.bob)
        assert fields_of(empty)["Your waiting jobs"] == "none"
        assert not empty.components

        await finish_next(wan, 1)
        await finish_next(wan, 2)
    assert prompts_sent(wan) == ["someone else's", "my second picture"]


async def test_the_queue_menu_cancels_only_the_members_own_jobs(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "first", wan.alice, 1)
        _, bobs = await waiting(wan, "bob's", wan.bob, 1)
        await waiting(wan, "alice's", wan.alice, 2)
        panel = await queue_of(wan, wan.alice)
        # A forged value naming bob's job: refused privately, nothing cancelled.
        forged = await click(wan, wan.alice, panel, QUEUE_MENU, values=[job_id_of(bobs)])
        assert "Only the member who asked" in await ephemeral_text(forged)
        await wan.settle()
        assert bobs.custom_ids() == [cancel_button(bobs)]
        await finish_next(wan, 1)
        await finish_next(wan, 2)
        await finish_next(wan, 3)
    assert prompts_sent(wan) == ["first", "bob's", "alice's"]
