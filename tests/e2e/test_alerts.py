"""Credit alerts reach the servers' alerts channels once; requests pause while crun is out."""

from __future__ import annotations

import pytest

from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)


async def test_low_balance_alert_is_posted_once_across_restarts(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        alerts = await wan.set_alerts_channel()
    wan.crun.balance = 40  # below the default threshold of 100
    async with wan.fake.running(wan.bot()):
        await wan.fake.wait_message(alerts, lambda m: "low" in m.content, timeout=10)
    async with wan.fake.running(wan.bot()):
        await wan.fake.wait_bot_idle()
    posted = [m for m in wan.fake.messages[alerts] if "balance" in m.content]
    assert len(posted) == 1
    assert "40" in posted[0].content
    assert posted[0].allowed_mentions == {"parse": []}


async def test_out_of_credits_pauses_requests_until_top_up(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()) as bot:
        alerts = await wan.set_alerts_channel()
        wan.crun.balance = 0
        await wan.imagine("x")
        await wan.fake.wait_message(alerts, lambda m: "out of credits" in m.content, timeout=10)
        second = await wan.imagine("y", user=wan.bob, wait="sent")
        await second.wait_until(lambda h: any(f.ephemeral for f in h.followups), timeout=10)
        assert any("paused" in f.content for f in second.followups if f.ephemeral)
        wan.crun.balance = 1000
        await bot.runtime.credits.check()
        await wan.fake.wait_message(alerts, lambda m: "recovered" in m.content, timeout=10)
        await wan.imagine("z", user=wan.bob)
        await wan.one_task()  # a task after top-up
