"""/quota, /queue and quota denials through Discord."""

from __future__ import annotations

import pytest

from bot.domain.quota import Limits
from bot.store.quotas import QuotaRepository
from tests.helpers import wait_until
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)


async def set_limits(wan: WanWorld, scope: str, subject: int, limits: Limits) -> None:
    async with wan.database() as db:
        await QuotaRepository(db, wan.settings().quota_policy()).set_limits(
            wan.guild.id, scope, subject, limits
        )


async def test_quota_shows_usage_and_denials_explain_when_it_resets(wan: WanWorld) -> None:
    await set_limits(wan, "guild", 0, Limits(daily=2))
    async with wan.fake.running(wan.bot(cost_per_image=1.0)):
        wan.crun.estimate_task_enabled = False  # use the local table: 1 credit per 2K image
        wan.crun.estimate_credits_enabled = False
        await wan.imagine("a fox", count=2)
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)

        quota = await wan.fake.slash(wan.alice, wan.guild, wan.channel, "quota")
        await quota.wait_response()
        assert quota.ephemeral
        assert quota.original is not None
        today = quota.original.embeds[0]["fields"][0]["value"]
        # Settled to what crun reported (5 per image in the fake), not the estimate.
        assert "10 of 2 used" in today
        assert "<t:" in today

        denied = await wan.imagine("another fox", wait="sent")
        await denied.wait_until(lambda h: h.original is not None or bool(h.followups))
        await wan.fake.wait_bot_idle()
        texts = [f.content for f in denied.followups if f.ephemeral]
        if denied.original is not None and denied.original.ephemeral:
            texts.append(denied.original.content)
        assert any("quota resets <t:" in t for t in texts), texts
    assert wan.crun.calls["create"] == 1


async def test_queue_shows_waiting_jobs(wan: WanWorld) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot(engine={"max_concurrent_jobs": 1})):
        for prompt in ("one", "two"):
            await wan.imagine(prompt)
        await wait_until(lambda: len(wan.crun.tasks) == 1, what="the first task")
        queue = await wan.fake.slash(wan.alice, wan.guild, wan.channel, "queue")
        await queue.wait_response()
        assert queue.original is not None
        fields = {f["name"]: f["value"] for f in queue.original.embeds[0]["fields"]}
        assert fields["Rendering now"] == "1"
        assert "#1 in line" in fields["Your waiting jobs"]
        for task_id in list(wan.crun.tasks):
            wan.crun.finish(task_id)
        await wait_until(lambda: len(wan.crun.tasks) == 2, what="the second task")
        wan.crun.finish(list(wan.crun.tasks)[1])
        await wan.fake.wait_message(
            wan.channel,
            lambda m: len(wan.results()) == 2,
            timeout=15,
        )
