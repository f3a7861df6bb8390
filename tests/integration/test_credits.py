"""Low balance and out-of-credits alerts, posted once; submissions pause until a top-up."""

from __future__ import annotations

import pytest

from bot.domain.models import GenerationRequest, JobStatus, Target
from bot.domain.text import Text
from bot.errors import ServiceUnavailable
from bot.jobs.credits import CreditMonitor, CreditState
from bot.store.meta import MetaRepository
from tests.conftest import Harness

REQ = GenerationRequest(prompt="a lantern")
TEST = Target("test", {})


class Alerts:
    def __init__(self) -> None:
        self.posted: list[tuple[CreditState, str]] = []

    async def __call__(self, state: CreditState, message: Text) -> None:
        self.posted.append((state, message.english()))


def monitor(h: Harness, alerts: Alerts) -> CreditMonitor:
    return CreditMonitor(h.client, MetaRepository(h.db), threshold=100, alert=alerts, interval=3600)


async def test_low_balance_is_announced_once_even_across_restarts(harness: Harness) -> None:
    harness.crun.balance = 50
    alerts = Alerts()
    first = monitor(harness, alerts)
    await first.start()
    await first.check()
    await first.stop()
    again = monitor(harness, alerts)  # a restart: the state comes from the store
    await again.start()
    await again.stop()
    assert [s for s, _ in alerts.posted] == [CreditState.LOW]
    assert "low" in alerts.posted[0][1]
    assert "50" in alerts.posted[0][1]


async def test_out_of_credits_pauses_submissions_until_top_up(harness: Harness) -> None:
    alerts = Alerts()
    credits = monitor(harness, alerts)
    await credits.start()
    engine = await harness.engine(credits=credits)
    harness.crun.balance = 0  # the next CreateTask answers 402
    first = await engine.submit(REQ, user_id=1, guild_id=None, target=TEST)
    done = await engine.wait_finished(first.id, timeout=10)
    assert done.status is JobStatus.FAILED
    await credits.check()  # the 402 handler also checks; make the test deterministic
    assert credits.paused
    with pytest.raises(ServiceUnavailable, match="paused"):
        await engine.submit(REQ, user_id=2, guild_id=None, target=TEST)

    harness.crun.balance = 1000
    await credits.check()
    assert not credits.paused
    job = await engine.submit(REQ, user_id=2, guild_id=None, target=TEST)
    assert (await engine.wait_finished(job.id, timeout=10)).status is JobStatus.SUCCEEDED
    await credits.stop()
    states = [s for s, _ in alerts.posted]
    assert states == [CreditState.OUT, CreditState.OK]
    assert "paused" in alerts.posted[0][1]
    assert "resumed" in alerts.posted[1][1]
