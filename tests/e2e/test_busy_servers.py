"""A busy server through the real discord.py, the fake Discord and the fake crun: requests over
the running limits are accepted and wait their turn; only the queue limits refuse; a top-up is
picked up by the very next request."""

from __future__ import annotations

import pytest

from tests.fakes.discord_fake import InteractionHandle
from tests.helpers import wait_until
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(90)


async def private_texts(wan: WanWorld, handle: InteractionHandle) -> list[str]:
    """What the member alone was told (a refusal), once the bot has answered."""
    await handle.wait_until(lambda h: h.original is not None or bool(h.followups), timeout=15)
    await wan.fake.wait_bot_idle()
    texts = [f.content for f in handle.followups if f.ephemeral]
    if handle.original is not None and handle.original.ephemeral:
        texts.append(handle.original.content)
    return texts


async def test_twenty_members_at_once_on_one_server_all_get_images(wan: WanWorld) -> None:
    members = [wan.fake.add_member(wan.guild, username=f"member{i}") for i in range(20)]
    wan.crun.task_latency = 0.3
    async with wan.fake.running(wan.bot()):  # GUILD_CONCURRENT_JOBS 10: half of them wait
        handles = [
            await wan.imagine(f"picture {i}", user=member, wait="sent", count=1)
            for i, member in enumerate(members)
        ]
        await wan.fake.wait_for(lambda: len(wan.results(bot_only=True)) >= 20, 60, "twenty results")
        await wan.settle()
        for handle in handles:
            assert not [f for f in handle.followups if f.ephemeral]  # nobody was refused
    posted = {m.embeds[0]["description"] for m in wan.results(bot_only=True)}
    assert posted == {f"picture {i}" for i in range(20)}  # every one, once
    assert len(wan.results(bot_only=True)) == 20
    assert wan.crun.calls["create"] == 20


async def test_a_members_sixth_waiting_request_gets_the_queue_limit_message(
    wan: WanWorld,
) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):  # 2 running and 5 waiting per member
        for i in range(2):
            await wan.imagine(f"running {i}", wait="status")
        await wait_until(lambda: len(wan.crun.tasks) == 2, timeout=10, what="two tasks")
        for i in range(5):
            await wan.imagine(f"waiting {i}", wait="status")
        refused = await wan.imagine("one too many", wait="sent")
        texts = await private_texts(wan, refused)
        assert any(t.startswith("You already have 5 images waiting in line") for t in texts)
        bob = await wan.imagine("bob's turn", user=wan.bob, wait="sent")
        assert await private_texts(wan, bob) == []  # alice's line does not hold bob back
        for done in range(1, 9):  # everything accepted runs in the end
            await wait_until(lambda n=done: len(wan.crun.tasks) >= n, timeout=10, what="a task")
            wan.crun.finish(list(wan.crun.tasks)[done - 1])
        await wan.fake.wait_for(lambda: len(wan.results(bot_only=True)) == 8, 30, "8 results")
    prompts = {body["input"]["prompt"] for body in wan.crun.requests_for("create")}
    assert "one too many" not in prompts
    assert len(prompts) == 8


async def test_a_top_up_is_picked_up_by_the_very_next_request(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        alerts = await wan.set_alerts_channel()
        wan.crun.balance = 0
        await wan.imagine("x")  # CreateTask answers 402: requests pause
        await wan.fake.wait_message(alerts, lambda m: "out of credits" in m.content, timeout=10)
        wan.crun.balance = 1000  # an admin tops up; the timed check is a minute away
        before = wan.result_ids()
        await wan.imagine("after the top-up", user=wan.bob, wait="sent")
        result = await wan.next_result(before)
        assert "after the top-up" in result.embeds[0]["description"]
        await wan.fake.wait_message(alerts, lambda m: "recovered" in m.content, timeout=10)
        await wan.settle()
