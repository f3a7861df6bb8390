"""Discord faults from docs/failure-modes.md, through the real bot against both fakes.

Permission changes are made in the fake's world (channel overwrites), so the refusals come from
the same checks Discord makes; injected failures (``fake.fail``) stand in for outages.
"""

from __future__ import annotations

import logging

import pytest

from bot.domain.models import DeliveryState, JobStatus
from tests.fakes.discord_fake import (
    PERM_ATTACH_FILES,
    PERM_SEND_MESSAGES,
    PERM_VIEW_CHANNEL,
    InteractionHandle,
)
from tests.helpers import wait_until
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)

SEND_RESULT = r"^/channels/\d+/messages$"
# Status edits by message id; the command's own edit of @original is left alone.
WEBHOOK_EDIT = r"^/webhooks/\d+/[^/]+/messages/\d+$"
CHANNEL_EDIT = r"^/channels/\d+/messages/\d+$"


def status_title(handle: InteractionHandle) -> str:
    assert handle.original is not None
    return str(handle.original.embeds[0]["title"])


def lines(caplog: pytest.LogCaptureFixture, logger: str, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and text in r.getMessage()]


def deny_in_channel(wan: WanWorld, permissions: int) -> None:
    """A server admin changes the bot's channel permissions while the job runs."""
    wan.fake.set_overwrite(wan.channel, wan.fake.bot_role(wan.guild), deny=permissions)


# --- 403 Missing Permissions on the result send ------------------------------------------------


@pytest.mark.parametrize("token", ["token-valid", "token-expired"])
async def test_missing_permissions_at_delivery_time(
    wan: WanWorld,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
) -> None:
    caplog.set_level(logging.INFO)
    if token == "token-expired":
        monkeypatch.setattr("bot.ui.target.TOKEN_TTL", 0.0)  # "older than 14 minutes"
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(wait="status")
        task_id = await wan.one_task()
        deny_in_channel(wan, PERM_SEND_MESSAGES | PERM_ATTACH_FILES)
        wan.crun.finish(task_id)
        job = await wan.wait_delivery(DeliveryState.DONE, DeliveryState.GAVE_UP)
        _, ledger = await wan.the_job()

    refused = wan.fake.requests_to("POST", SEND_RESULT)
    assert [r.status for r in refused] == [403]  # tried once, never retried
    assert job.status is JobStatus.SUCCEEDED
    assert ledger is not None
    assert ledger[0] == "settled"  # the images were made
    gone = lines(caplog, "bot.jobs.engine", "target gone")
    if token == "token-valid":
        # The interaction followup needs no channel permission: the member gets the result.
        assert job.delivery_state is DeliveryState.DONE
        (result,) = wan.results()
        assert result in handle.followups
        assert f"<@{wan.alice.id}>" in (result.content or "")
        assert "done" in status_title(handle)
        assert gone == []
    else:
        assert job.delivery_state is DeliveryState.GAVE_UP
        assert job.delivery_attempts == 1
        assert wan.results() == []
        assert "done" not in status_title(handle)
        (line,) = gone
        assert line.levelno == logging.WARNING


# --- errors on status-message edits ------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 429])
async def test_status_edit_errors_leave_a_stale_status_but_the_result_arrives(
    wan: WanWorld, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.INFO)
    webhook = wan.fake.fail("PATCH", WEBHOOK_EDIT, status, times=None)
    channel = wan.fake.fail("PATCH", CHANNEL_EDIT, status, times=None)
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(wait="status")
        result = await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        job = await wan.wait_delivery(DeliveryState.DONE, DeliveryState.GAVE_UP)

    assert job.status is JobStatus.SUCCEEDED
    assert job.delivery_state is DeliveryState.DONE
    assert wan.results() == [result]
    assert result.webhook_id is None  # posted in the channel, not as a followup
    # Every status edit was refused, so the status message still shows where it started.
    assert "starting" in status_title(handle)
    # Both routes were tried (webhook first, then the channel), each edit once: not retried.
    assert webhook.hits >= 1
    assert channel.hits >= 1
    not_updated = lines(caplog, "bot.ui.sink", "status message not updated")
    assert len(not_updated) == channel.hits // (5 if status == 429 else 1)
    assert {r.levelno for r in not_updated} == {logging.INFO}
    assert str(status) in not_updated[0].getMessage()


async def test_a_status_edit_answering_500_does_not_hold_up_the_result(wan: WanWorld) -> None:
    wan.fake.fail("PATCH", WEBHOOK_EDIT, 500, times=None)
    wan.fake.fail("PATCH", CHANNEL_EDIT, 500, times=None)
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        await wan.imagine(wait="status")
        task_id = await wan.one_task()
        wan.crun.set_status(task_id, "running")  # the poll that sees it updates the status

        async def running() -> bool:
            job, _ = await wan.the_job()
            return job.status is JobStatus.RUNNING

        await wait_until(running, timeout=10, what="the job to be running")
        wan.crun.finish(task_id)
        # Polls run every 20-50 ms here: the result normally follows within a second.
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=5)


# --- the failure message cannot be shown -------------------------------------------------------


@pytest.mark.parametrize("how", ["refused-by-discord", "access-revoked-token-expired"])
async def test_an_unshowable_failure_gives_up_and_still_refunds(
    wan: WanWorld, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.INFO)
    wan.crun.task_latency = None
    if how == "refused-by-discord":
        for method, path in [
            ("PATCH", WEBHOOK_EDIT),
            ("PATCH", CHANNEL_EDIT),
            ("POST", SEND_RESULT),
        ]:
            wan.fake.fail(method, path, 403, times=None)  # 50013 Missing Permissions
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(wait="status")
        task_id = await wan.one_task()
        if how == "access-revoked-token-expired":
            wan.fake.expire_token(handle)
            deny_in_channel(wan, PERM_VIEW_CHANNEL)
        wan.crun.finish(task_id, status="failed", message="the model gave up")
        job = await wan.wait_delivery(DeliveryState.DONE, DeliveryState.GAVE_UP)
        _, ledger = await wan.the_job()

    assert job.status is JobStatus.FAILED
    assert job.delivery_state is DeliveryState.GAVE_UP
    assert ledger is not None
    assert ledger[0] == "refunded"
    assert ledger[2] == 0
    # Nobody was told: no failure message anywhere, the status message never changed.
    sent = wan.fake.requests_to("POST", SEND_RESULT)
    assert len(sent) == 1
    assert sent[0].status == 403
    assert "starting" in status_title(handle) or "working" in status_title(handle)
    assert all(not m.attachments for m in wan.fake.messages[wan.channel.id])
    assert handle.followups == []
    (line,) = lines(caplog, "bot.jobs.engine", "target gone")
    assert line.levelno == logging.WARNING
