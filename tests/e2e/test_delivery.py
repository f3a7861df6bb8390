"""Delivery to Discord: token expiry, upload limits, failures, deleted targets, restarts."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.domain.models import DeliveryState, JobStatus
from tests.helpers import noise_png, wait_until
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)


async def test_status_edits_move_to_the_channel_route_when_the_token_expires(
    wan: WanWorld,
) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine()
        task_id = await wan.one_task()
        await handle.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "working" in m.embeds[0]["title"]
        )
        wan.fake.expire_token(handle)  # what Discord does after 15 minutes
        before = len(wan.fake.requests_to("PATCH", r"^/channels/\d+/messages/\d+$"))
        wan.crun.finish(task_id)
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        await wait_until(
            lambda: len(wan.fake.requests_to("PATCH", r"^/channels/\d+/messages/\d+$")) > before,
            what="the status edit through the channel",
        )
        status = handle.original
        assert status is not None
        assert "done" in status.embeds[0]["title"]
    assert len(wan.results()) == 1


async def test_after_the_token_lifetime_no_webhook_is_used(
    wan: WanWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.ui.target.TOKEN_TTL", 0.0)  # every job is "older than 14 minutes"
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine()
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
        await wait_until(
            lambda: (
                handle.original is not None
                and bool(handle.original.embeds)
                and "done" in handle.original.embeds[0]["title"]
            ),
            what="the done status",
        )
    webhook_edits = [
        r for r in wan.fake.requests_to("PATCH", r"^/webhooks/") if "@original" not in r.path
    ]
    assert webhook_edits == []


async def test_results_are_fitted_to_the_interaction_upload_limit(wan: WanWorld) -> None:
    wan.crun.image_bytes = noise_png(1024, 1024)  # ~3 MB of incompressible PNG
    limit = 1024 * 1024
    async with wan.fake.running(wan.bot()):
        await wan.imagine(attachment_size_limit=limit)
        result = await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=30)
    (attachment,) = result.attachments
    assert len(attachment.data) <= limit
    assert attachment.filename.endswith(".jpg")
    with Image.open(io.BytesIO(attachment.data)) as im:
        assert im.format == "JPEG"
    notes = [f for f in result.embeds[0]["fields"] if f["name"] == "Note"]
    assert notes and "compressed" in notes[0]["value"]


async def test_a_lower_channel_limit_is_met_by_refitting(wan: WanWorld) -> None:
    wan.crun.image_bytes = noise_png(1024, 1024)
    wan.channel.upload_limit = 400 * 1024  # lower than the 8 MiB the interaction claims
    async with wan.fake.running(wan.bot()):
        await wan.imagine(attachment_size_limit=8 * 1024 * 1024)
        result = await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=30)
    assert len(result.attachments[0].data) <= 400 * 1024
    rejected = [r for r in wan.fake.requests_to("POST", r"/messages$") if r.status == 413]
    assert rejected  # the first try really was refused


async def test_failed_generation_is_shown_on_the_status_message(wan: WanWorld) -> None:
    wan.crun.outcome = lambda _input: ("failed", "DataInspectionFailed")
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine()
        await handle.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "Could not" in m.embeds[0]["title"],
            timeout=15,
        )
        assert handle.original is not None
        assert "content filter" in handle.original.embeds[0]["description"]
    assert wan.results() == []
    (job,) = await wan.job_rows()
    assert job.status is JobStatus.FAILED
    assert job.delivery_state is DeliveryState.DONE


async def test_deleted_channel_gives_up_quietly(wan: WanWorld) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        await wan.imagine()
        task_id = await wan.one_task()
        await wan.fake.delete_channel(wan.channel)
        wan.crun.finish(task_id)

        async def gave_up() -> bool:
            (job,) = await wan.job_rows()
            return job.delivery_state is DeliveryState.GAVE_UP

        await wait_until(gave_up, timeout=15, what="delivery to give up")


async def test_deleted_status_message_still_gets_the_result(wan: WanWorld) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine()
        task_id = await wan.one_task()
        await handle.wait_original_edit(predicate=lambda m: bool(m.embeds))
        assert handle.original is not None
        await wan.fake.delete_message(handle.original)
        wan.crun.finish(task_id)
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
    assert len(wan.results()) == 1


async def test_discord_errors_on_send_are_retried_once_delivered(wan: WanWorld) -> None:
    wan.fake.fail("POST", r"^/channels/\d+/messages$", 500, times=1)
    wan.fake.fail("POST", r"^/channels/\d+/messages$", 429, times=1)
    async with wan.fake.running(wan.bot()):
        await wan.imagine()
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=30)
    assert len(wan.results()) == 1


async def test_restart_mid_job_posts_the_result_exactly_once(wan: WanWorld) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        await wan.imagine()
        task_id = await wan.one_task()
    wan.crun.finish(task_id)  # finishes while the bot is down
    async with wan.fake.running(wan.bot()):
        await wan.fake.wait_message(wan.channel, lambda m: bool(m.attachments), timeout=15)
    assert len(wan.results()) == 1
    assert wan.crun.calls["create"] == 1


async def test_dms_can_be_switched_off(wan: WanWorld) -> None:
    dm = wan.fake.dm_channel(wan.alice.user)
    async with wan.fake.running(wan.bot(allow_dms=False)):
        handle = await wan.fake.slash(wan.alice.user, None, dm, "imagine", {"prompt": "a fox"})
        await handle.wait_response()
        assert handle.ephemeral
        assert handle.original is not None
        assert "DMs" in handle.original.content
    assert wan.crun.calls["create"] == 0


async def test_unexpected_errors_get_a_reference_not_a_traceback(
    wan: WanWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database on fire: ak_secret")

    monkeypatch.setattr("bot.services.generation.GenerationService.submit", broken)
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine()
        await handle.wait_until(lambda h: any(f.ephemeral for f in h.followups), timeout=10)
    (reply,) = [f for f in handle.followups if f.ephemeral]
    assert "reference" in reply.content
    assert "fire" not in reply.content
    assert "Traceback" not in reply.content
    # The public "thinking" message was removed so the answer could be private.
    assert all(not m.embeds for m in wan.fake.messages[wan.channel.id])


async def test_a_result_that_cannot_fit_is_reported_not_retried_forever(wan: WanWorld) -> None:
    wan.crun.image_bytes = noise_png(1024, 1024)
    wan.channel.upload_limit = 2 * 1024  # nothing useful fits in 2 KiB
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(attachment_size_limit=8 * 1024 * 1024)
        await handle.wait_original_edit(
            predicate=lambda m: (
                bool(m.embeds)
                and "larger than this channel accepts" in (m.embeds[0].get("description") or "")
            ),
            timeout=30,
        )
    assert wan.results() == []
    (job,) = await wan.job_rows()
    assert job.delivery_state is DeliveryState.DONE
    assert job.delivery_attempts == 1
    # Nothing reached the member, so nothing is charged (as when results cannot be downloaded).
    assert handle.original is not None
    assert "Nothing was charged" in handle.original.embeds[0]["description"]
    _, ledger = await wan.the_job()
    assert ledger is not None
    assert ledger[0] == "refunded"
