"""The live schema kept fresh (timer, and after a 422 naming a field) and admins told once when
the field map changes or crun keeps refusing one mode: the real Runtime against the fake crun."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import GenerationRequest, Job, JobStatus, Mode, Target
from bot.domain.text import Text
from bot.jobs.schema_watch import CONTRACT_TOPIC, SCHEMA_TOPIC
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.quotas import Charge
from tests.conftest import FAST
from tests.fakes.crun_server import DEFAULT_SCHEMA_FIELDS, FakeCrun
from tests.helpers import RecordingSink, wait_until

pytestmark = pytest.mark.timeout(60)

PROMPT = "a velvet heron asleep on a copper roof"
T2I = GenerationRequest(prompt=PROMPT)
SET = GenerationRequest(prompt=PROMPT, mode=Mode.IMAGE_SET, n=2)
TEST = Target("test", {})
GUILD = 77
MINUTE = 60.0
# crun echoes the input back: neither the admins nor the field match may see the prompt.
SEED_422 = f"seed must be between 0 and 2147483647 (got -1 with '{PROMPT}')"
WATCH_LOG = "bot.jobs.schema_watch"


class Alerts:
    """Records what the runtime would post to the alerts channels."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    async def __call__(self, topic: str, message: Text) -> None:
        self.posted.append((topic, message.english()))

    def about(self, topic: str) -> list[str]:
        return [m for t, m in self.posted if t == topic]


class Clock:
    """The engine's clock: real time plus whatever the test moved it forward by."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclasses.dataclass
class World:
    runtime: Runtime
    crun: FakeCrun
    alerts: Alerts
    clock: Clock
    sink: RecordingSink

    async def submit(self, request: GenerationRequest = T2I, user_id: int = 1) -> Job:
        engine = self.runtime.engine
        job = await engine.submit(
            request, user_id=user_id, guild_id=GUILD, target=TEST, charge=Charge(2.0)
        )
        return await engine.wait_finished(job.id, timeout=10)

    async def refused(self, request: GenerationRequest = T2I, message: str = SEED_422) -> Job:
        """One member's request that crun answers with a 422."""
        self.crun.fail("create", 422, message=message)
        done = await self.submit(request)
        assert done.status is JobStatus.FAILED
        return done

    def schema_reads(self) -> int:
        return self.crun.calls["schema"]


Opener = Callable[..., Awaitable[World]]


@pytest.fixture
async def open_world(crun: FakeCrun, tmp_path: Path) -> AsyncIterator[Opener]:
    opened: list[Runtime] = []

    async def make(*, start: bool = True, **overrides: Any) -> World:
        values: dict[str, Any] = {
            "wan_api_key": crun.api_key,
            "wan_api_base": crun.base_url,
            "database_url": f"sqlite:///{tmp_path / 'wanbot.sqlite3'}",
            "allow_http_results": True,
            "wan_get_retries": 0,
            "cooldown_seconds": 0,
            **overrides,
        }
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        config = dataclasses.replace(FAST, quota=settings.quota_policy())
        sink, alerts, clock = RecordingSink(), Alerts(), Clock()
        runtime = Runtime(
            settings,
            sinks={"test": lambda _rt: sink},
            engine_config=config,
            alert=alerts,
            clock=clock,
        )
        opened.append(runtime)
        await runtime.open(start_engine=start)
        return World(runtime, crun, alerts, clock, sink)

    yield make
    for runtime in opened:
        await runtime.close()


def watch_warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == WATCH_LOG and r.levelno == logging.WARNING and text in r.getMessage()
    ]


# --- the schema kept fresh ----------------------------------------------------------------------


async def test_the_timer_rereads_the_schema_and_a_changed_map_is_logged_and_alerted_once(
    open_world: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    w = await open_world(start=False)
    assert w.runtime.contract.field_name("seed") == "seed"
    w.runtime.schema_watch.interval = 0.02  # the runtime's timer, only faster
    await w.runtime.start()
    w.crun.schema_fields = [f for f in DEFAULT_SCHEMA_FIELDS if f != "seed"]

    await wait_until(lambda: bool(w.alerts.about(SCHEMA_TOPIC)), what="the schema alert")
    reads = w.schema_reads()
    await wait_until(lambda: w.schema_reads() >= reads + 3, what="more timed re-reads")

    assert w.runtime.contract.field_name("seed") is None
    [alert] = w.alerts.about(SCHEMA_TOPIC)
    assert "seed" in alert
    assert "not sent" in alert
    [logged] = watch_warnings(caplog, "changed the field map")
    assert "seed" in logged
    assert "not sent" in logged
    assert w.alerts.about(CONTRACT_TOPIC) == []


async def test_an_unchanged_schema_reread_alerts_nothing(
    open_world: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    w = await open_world()
    before = w.runtime.contract.describe()
    reads = w.schema_reads()
    await w.runtime.schema_watch.refresh()
    await w.runtime.schema_watch.refresh()
    assert w.schema_reads() == reads + 2
    assert w.runtime.contract.describe() == before
    assert w.alerts.posted == []
    assert watch_warnings(caplog, "field map") == []


async def test_an_unreachable_schema_keeps_the_map_in_force_without_an_alert(
    open_world: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    w = await open_world()
    before = w.runtime.contract.describe()
    w.crun.fail("schema", 503, message="upstream unavailable")
    assert await w.runtime.schema_watch.refresh() == []
    assert w.runtime.contract.describe() == before
    assert w.alerts.posted == []
    assert watch_warnings(caplog, "keeping the field map in force")


async def test_reads_asked_for_together_share_one_request(open_world: Opener) -> None:
    w = await open_world()
    reads = w.schema_reads()
    w.crun.slow("schema", 0.2)
    watch = w.runtime.schema_watch
    await asyncio.gather(watch.refresh(), watch.refresh(), watch.refresh())
    assert w.schema_reads() == reads + 1


async def test_a_422_naming_a_field_rereads_the_schema_once_per_minute(open_world: Opener) -> None:
    w = await open_world()
    watch = w.runtime.schema_watch
    reads = w.schema_reads()

    await w.refused()
    await wait_until(lambda: w.schema_reads() == reads + 1, what="the re-read after a 422")
    await wait_until(lambda: not watch.reading, what="the re-read to finish")
    await w.refused()  # a second 422 within the minute: no second read
    assert not watch.reading
    assert w.schema_reads() == reads + 1

    w.clock.advance(MINUTE + 1)
    await w.refused()
    await wait_until(lambda: w.schema_reads() == reads + 2, what="the next minute's re-read")


async def test_a_422_that_names_no_field_does_not_reread(open_world: Opener) -> None:
    w = await open_world()
    reads = w.schema_reads()
    await w.refused(message="request rejected")
    assert not w.runtime.schema_watch.reading
    assert w.schema_reads() == reads


# --- when crun still refuses --------------------------------------------------------------------


async def test_a_refused_member_is_told_what_crun_said_and_refunded(open_world: Opener) -> None:
    w = await open_world()
    message = f"seed must be between 0 and 2147483647 (key {w.crun.api_key})"
    done = await w.refused(message=message)

    assert done.error_code == "api-422"
    told = w.sink.delivered[done.id].error_message or ""
    assert told.startswith("The image service rejected the `seed` setting (")
    assert "seed must be between 0 and 2147483647" in told
    assert w.crun.api_key not in told
    assert await w.runtime.quotas.ledger_state(done.id) == ("refunded", 2.0, 0.0)
    assert (await w.runtime.quotas.usage(GUILD, 1)).daily_used == 0


async def test_three_422s_in_one_mode_within_ten_minutes_alert_admins_once(
    open_world: Opener,
) -> None:
    w = await open_world()
    for _ in range(3):
        await w.refused()
        w.clock.advance(2 * MINUTE)
    await wait_until(lambda: bool(w.alerts.about(CONTRACT_TOPIC)), what="the refusal alert")

    [alert] = w.alerts.about(CONTRACT_TOPIC)
    assert "`seed`" in alert
    assert "seed must be between 0 and 2147483647" in alert
    assert "text-to-image" in alert
    assert "wanbot check --probe" in alert
    assert PROMPT not in alert
    assert "velvet heron" not in alert

    await w.refused()  # still inside the window that was reported
    await w.refused()
    assert len(w.alerts.about(CONTRACT_TOPIC)) == 1

    w.clock.advance(11 * MINUTE)  # a quiet window: the next burst is news again
    for _ in range(3):
        await w.refused()
    await wait_until(lambda: len(w.alerts.about(CONTRACT_TOPIC)) == 2, what="a second alert")


async def test_two_422s_or_three_spread_over_more_than_ten_minutes_alert_nothing(
    open_world: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    w = await open_world()
    await w.refused()
    await w.refused()
    assert watch_warnings(caplog, "crun refused") == []

    w.clock.advance(11 * MINUTE)  # those two are out of the window
    for _ in range(2):
        await w.refused()
        w.clock.advance(5.5 * MINUTE)
    await w.refused()  # the third of these, eleven minutes after the first of them
    assert watch_warnings(caplog, "crun refused") == []
    assert w.alerts.about(CONTRACT_TOPIC) == []


async def test_422s_in_different_modes_do_not_add_up(
    open_world: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    w = await open_world()
    await w.refused(T2I)
    await w.refused(SET)
    await w.refused(T2I)
    await w.refused(SET)
    assert watch_warnings(caplog, "crun refused") == []
    assert w.alerts.about(CONTRACT_TOPIC) == []
    await w.refused(SET)
    await wait_until(lambda: bool(w.alerts.about(CONTRACT_TOPIC)), what="the image-set alert")
    [alert] = w.alerts.about(CONTRACT_TOPIC)
    assert "image-set" in alert
