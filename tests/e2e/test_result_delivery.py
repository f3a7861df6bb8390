"""A result counts as delivered only when a message that really carries it is in the channel.

Regression for issue 15: Discord answered the first result uploads with 503; the retry's
crash-recovery lookup found the status message (same footer as a one-part result), marked the job
delivered and linked the status to itself. The member never got the image. Every test here goes
through the real bot, the fake Discord and the fake crun, and checks the channel itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.domain.models import DeliveryState, Job, JobStatus
from bot.ui import embeds
from tests.fakes.discord_fake import FakeMessage, InteractionHandle
from tests.helpers import png
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(90)

# "right-after-status": crun's default 50 ms task, so the result is due while the status message
# is seconds old (the case that was lost 4 times in 4). "later": the task finishes well after
# the status message, beyond the history lookup's clock-skew slack.
RIGHT, LATER_FINISH = "right-after-status", "later"
SEND_RESULT = r"^/channels/\d+/messages$"
HISTORY = SEND_RESULT  # the same route, read with GET
LATER = 6.0  # seconds; longer than the 5 s slack before finished_at that the lookup reads


async def run_imagine(wan: WanWorld, finish: str) -> tuple[InteractionHandle, Job]:
    """Alice's /imagine with the bot running; returns her status handle and the settled job."""
    if finish == LATER_FINISH:
        wan.crun.task_latency = None
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(wait="status")
        if finish == LATER_FINISH:
            task_id = await wan.one_task()
            await asyncio.sleep(LATER)  # lets wall time pass; nothing is asserted on timing
            wan.crun.finish(task_id)
        job = await wan.wait_delivery(DeliveryState.DONE, DeliveryState.GAVE_UP)
        await wan.settle()
    return handle, job


def assert_posted_once(wan: WanWorld, handle: InteractionHandle, job: Job) -> FakeMessage:
    """One result message with the job's file, the delivery record points at it, and the status
    message links to it (not to itself)."""
    assert job.status is JobStatus.SUCCEEDED
    assert job.delivery_state is DeliveryState.DONE
    (result,) = wan.results()
    assert result.author.id == wan.fake.bot_user.id
    assert [a.filename for a in result.attachments] == [f"wan-{job.id}-1.png"]
    assert result.embeds[0]["footer"]["text"] == f"job {job.id} · result"
    assert job.receipt is not None
    assert job.receipt["parts"] == {"1": result.id}
    status = handle.original
    assert status is not None
    assert status.id != result.id
    assert status.embeds[0]["title"] == "Imagine: done"
    assert f"/{wan.channel.id}/{result.id})" in status.embeds[0]["description"]
    return result


@pytest.mark.parametrize(
    ("finish", "failures"),
    # Every count right after the status (the case that was lost); a later finish once with the
    # count that took the status message for the result: each "later" run waits LATER seconds.
    [(RIGHT, 1), (RIGHT, 2), (RIGHT, 3), (LATER_FINISH, 2), (LATER_FINISH, 3)],
)
async def test_uploads_answering_503_still_post_the_result_exactly_once(
    wan: WanWorld, finish: str, failures: int
) -> None:
    wan.fake.fail("POST", SEND_RESULT, 503, times=failures)
    handle, job = await run_imagine(wan, finish)

    assert_posted_once(wan, handle, job)
    assert job.delivery_attempts == failures + 1  # each 503 failed one attempt; none was skipped
    sent = wan.fake.requests_to("POST", SEND_RESULT)
    assert [r.status for r in sent] == [503] * failures + [200]


@pytest.mark.parametrize(
    ("finish", "answers"),
    [
        (RIGHT, (500,)),
        (RIGHT, (429, 429)),
        (RIGHT, (500, 429, 503)),
        (LATER_FINISH, (500, 429, 503)),
    ],
    ids=["500", "429x2", "500-429-503", "500-429-503-later"],
)
async def test_uploads_answering_500_and_429_still_post_the_result_exactly_once(
    wan: WanWorld, finish: str, answers: tuple[int, ...]
) -> None:
    for status in answers:  # rules fire in order: the 1st upload gets answers[0], and so on
        wan.fake.fail("POST", SEND_RESULT, status, times=1, retry_after=0.2)
    handle, job = await run_imagine(wan, finish)

    assert_posted_once(wan, handle, job)
    sent = wan.fake.requests_to("POST", SEND_RESULT)
    assert [r.status for r in sent] == [*answers, 200]


@pytest.mark.parametrize("found_by", ["history", "nonce"])
async def test_an_upload_whose_answer_was_lost_is_not_posted_twice(
    wan: WanWorld, found_by: str
) -> None:
    """Discord created the message but the answer was a 503. The retry finds that message in the
    channel history; where the history cannot be read, Discord's nonce dedup returns it."""
    if found_by == "nonce":
        wan.fake.fail("GET", HISTORY, 403, times=None)
    wan.fake.fail("POST", SEND_RESULT, 503, times=1, after_commit=True)
    handle, job = await run_imagine(wan, "right-after-status")

    result = assert_posted_once(wan, handle, job)
    assert job.delivery_attempts == 2
    posts = wan.fake.requests_to("POST", SEND_RESULT)
    if found_by == "history":
        assert len(posts) == 1  # nothing was sent again
        assert wan.fake.counters["nonce.dedup"] == 0
    else:
        assert len(posts) == 2
        assert wan.fake.counters["nonce.dedup"] == 1
    assert wan.results() == [result]


async def test_status_failure_and_alert_messages_are_never_taken_for_the_result(
    wan: WanWorld,
) -> None:
    """Bot messages that share the job's id (status, done, failure, a result footer without the
    files, another job's files) and a member's forgery are all in the channel when the retry
    looks; none of them counts, so the result is really posted."""
    wan.crun.task_latency = None
    wan.fake.fail("POST", SEND_RESULT, 503, times=1)
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(wait="status")
        task_id = await wan.one_task()
        job, _ = await wan.the_job()
        decoys = await post_decoys(wan, job)
        wan.crun.finish(task_id)
        job = await wan.wait_delivery(DeliveryState.DONE, DeliveryState.GAVE_UP)
        await wan.settle()

    real = [m for m in wan.results() if m not in decoys]
    assert len(real) == 1
    assert job.receipt is not None
    assert job.receipt["parts"] == {"1": real[0].id}
    assert job.delivery_attempts == 2
    status = handle.original
    assert status is not None
    assert f"/{real[0].id})" in status.embeds[0]["description"]


async def post_decoys(wan: WanWorld, job: Job) -> list[FakeMessage]:
    bot, image = wan.fake.bot_user, png(32, 32, (10, 120, 200))
    marker = embeds.result_footer(job)
    forged = embeds.result_embed(job, ()).to_dict()
    other_job = {**forged, "footer": {"text": "job zzzzzzzzzz · result"}}
    posts: list[tuple[Any, str, list[dict[str, Any]], list[tuple[str, bytes]]]] = [
        (bot, "", [embeds.failure_embed(job, "The model gave up.").to_dict()], []),
        (bot, "", [embeds.done_embed(job, None).to_dict()], [("not-a-result.png", image)]),
        (bot, "⚠️ The crun.ai balance is low, below the alert threshold.", [], []),
        (bot, "", [forged], []),  # the result footer, but no files
        (bot, "", [forged], [("wan-zzzzzzzzzz-1.png", image)]),  # another job's file
        (bot, "", [other_job], [(f"wan-{job.id}-1.png", image)]),  # another job's footer
        (wan.bob, "", [forged], [(f"wan-{job.id}-1.png", image)]),  # a member's forgery
    ]
    assert forged["footer"]["text"] == marker
    return [
        await wan.fake.post_user_message(wan.channel, who, text, embeds=e, attachments=files)
        for who, text, e, files in posts
    ]
