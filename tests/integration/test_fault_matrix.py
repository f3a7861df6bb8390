"""crun faults from docs/failure-modes.md, driven through the real engine path.

Each test injects one family of faults into the fake crun and checks the four columns of the
matrix: the job's state in the store, the credits (ledger and usage), what the member is told
(the outcome the sink receives) and the operator's log line at its level.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.domain.models import DeliveryState, GenerationRequest, JobStatus, Target
from bot.domain.quota import QuotaPolicy
from bot.jobs.engine import JobEngine
from bot.store.quotas import Charge, QuotaRepository
from tests.conftest import Harness
from tests.fakes.crun_server import FakeCrun
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)

REQ = GenerationRequest(prompt="a heron in the reeds")
TEST = Target("test", {})
GUILD = 77
USER = 1
COST = 2.0
ROOMY = QuotaPolicy(user_concurrent=1000, guild_concurrent=100_000)
ENGINE_LOG = "bot.jobs.engine"


def quotas(h: Harness) -> QuotaRepository:
    return QuotaRepository(h.db, ROOMY)


async def submit(engine: JobEngine) -> str:
    """A member's request with credits reserved, as the Discord path submits it."""
    job = await engine.submit(REQ, user_id=USER, guild_id=GUILD, target=TEST, charge=Charge(COST))
    return job.id


def engine_lines(
    caplog: pytest.LogCaptureFixture, job_id: str, text: str
) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == ENGINE_LOG and job_id in r.getMessage() and text in r.getMessage()
    ]


async def assert_refunded(h: Harness, job_id: str) -> None:
    assert await quotas(h).ledger_state(job_id) == ("refunded", COST, 0.0)
    assert (await quotas(h).usage(GUILD, USER)).daily_used == 0


# --- CreateTask: definite refusals after sending -----------------------------------------------


@dataclass(frozen=True)
class Refusal:
    inject: Callable[[FakeCrun], None]
    error_code: str
    level: int
    says: str


def _revoke_key(crun: FakeCrun) -> None:
    crun.api_key = "ak_" + "0" * 32  # the bot's key no longer matches: a real 401 from auth


KEY_REJECTED = (
    "The image service rejected the bot's API key. Please tell a server admin; nothing was charged."
)

REFUSALS = {
    "401-bad-key": Refusal(_revoke_key, "api-401", logging.ERROR, KEY_REJECTED),
    "401-envelope-http-200": Refusal(
        lambda c: c.fail("create", 401, http_status=200), "api-401", logging.ERROR, KEY_REJECTED
    ),
    "404": Refusal(
        lambda c: c.fail("create", 404, message="model not found"),
        "api-404",
        logging.ERROR,
        "Image generation is unavailable right now. Please tell a server admin.",
    ),
    "501": Refusal(
        lambda c: c.fail("create", 501, message="generation failed"),
        "api-501",
        logging.WARNING,
        "The model could not make this image. Try a different prompt.",
    ),
    "505": Refusal(
        lambda c: c.fail("create", 505, message="feature disabled"),
        "api-505",
        logging.WARNING,
        "Image generation is unavailable right now. Please tell a server admin.",
    ),
    "undocumented-400": Refusal(
        lambda c: c.fail("create", 400), "api-400", logging.WARNING, "unavailable right now"
    ),
    "undocumented-403": Refusal(
        lambda c: c.fail("create", 403), "api-403", logging.WARNING, "unavailable right now"
    ),
    "undocumented-418-http-200": Refusal(
        lambda c: c.fail("create", 418, http_status=200),
        "api-418",
        logging.WARNING,
        "unavailable right now",
    ),
    "undocumented-403-html-page": Refusal(
        lambda c: c.malformed("create", body="<html>403 Forbidden</html>", http_status=403),
        "wanapierror",
        logging.WARNING,
        "unavailable right now",
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
async def test_create_task_refusals_fail_the_job_and_refund(
    harness: Harness, caplog: pytest.LogCaptureFixture, case: Refusal
) -> None:
    caplog.set_level(logging.INFO)
    case.inject(harness.crun)
    engine = await harness.engine(quota=ROOMY)
    job_id = await submit(engine)
    done = await engine.wait_finished(job_id, timeout=10)

    assert done.status is JobStatus.FAILED
    assert done.error_code == case.error_code
    assert done.delivery_state is DeliveryState.DONE
    await assert_refunded(harness, job_id)
    # Sent once, never again; crun created nothing.
    assert harness.crun.calls["create"] == 1
    assert harness.crun.tasks == {}
    message = harness.sink.delivered[job_id].error_message or ""
    assert case.says in message
    assert harness.crun.api_key not in message
    (line,) = engine_lines(caplog, job_id, "submit rejected")
    assert line.levelno == case.level
    assert not engine_lines(caplog, job_id, "outcome unknown")


# --- CreateTask: replies that leave the outcome unknown ----------------------------------------

AMBIGUOUS: dict[str, Callable[[FakeCrun], None]] = {
    "undocumented-502": lambda c: c.fail("create", 502),
    "undocumented-503": lambda c: c.fail("create", 503, retry_after=0.05),
    "undocumented-504": lambda c: c.fail("create", 504),
    "undocumented-599": lambda c: c.fail("create", 599),
    "undocumented-503-http-200": lambda c: c.fail("create", 503, http_status=200),
    "proxy-502-html-page": lambda c: c.malformed(
        "create", body="<html>502 Bad Gateway</html>", http_status=502
    ),
    "not-json": lambda c: c.malformed("create", body=b"{not json"),
    "html-on-200": lambda c: c.malformed("create", body="<html>hello</html>"),
    "empty-body": lambda c: c.malformed("create", body=b""),
    "missing-task-id": lambda c: c.malformed(
        "create", body='{"code": 200, "message": "success", "data": {}}'
    ),
    "empty-task-id": lambda c: c.malformed(
        "create", body='{"code": 200, "message": "success", "data": {"task_id": ""}}'
    ),
    "task-id-not-a-string": lambda c: c.malformed(
        "create", body='{"code": 200, "message": "success", "data": {"task_id": {"id": 1}}}'
    ),
    "data-null": lambda c: c.malformed(
        "create", body='{"code": 200, "message": "success", "data": null}'
    ),
    "code-missing": lambda c: c.malformed("create", body='{"data": {"task_id": "task_1"}}'),
    "code-is-a-string": lambda c: c.malformed(
        "create", body='{"code": "200", "data": {"task_id": "task_1"}}'
    ),
}


@pytest.mark.parametrize("inject", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
async def test_create_task_ambiguous_replies_are_uncertain_and_refunded(
    harness: Harness, caplog: pytest.LogCaptureFixture, inject: Callable[[FakeCrun], None]
) -> None:
    caplog.set_level(logging.INFO)
    inject(harness.crun)
    engine = await harness.engine(quota=ROOMY)
    job_id = await submit(engine)
    done = await engine.wait_finished(job_id, timeout=10)

    assert done.status is JobStatus.UNCERTAIN
    assert done.task_id is None
    assert done.delivery_state is DeliveryState.DONE
    await assert_refunded(harness, job_id)
    assert harness.crun.calls["create"] == 1  # never resent: a resend could bill twice
    message = harness.sink.delivered[job_id].error_message or ""
    assert "did not confirm" in message
    assert "not sent again" in message
    assert job_id in message
    (line,) = engine_lines(caplog, job_id, "CreateTask outcome unknown")
    assert line.levelno == logging.ERROR
    assert not engine_lines(caplog, job_id, "submit rejected")


# --- CreateTask: connection refused (nothing sent) --------------------------------------------


async def test_connection_refused_stays_queued_then_goes_out_once_crun_is_back(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    crun = harness.crun
    port = int(crun.base_url.rsplit(":", 1)[1])
    await crun.stop()  # nothing listens: every connection is refused
    # The first retry waits 0.5-1 s: long enough to look at the requeued job undisturbed.
    engine = await harness.engine(
        quota=ROOMY, submit_retry_window=30.0, retry_backoff_base=1.0, retry_backoff_cap=1.0
    )
    job_id = await submit(engine)

    async def requeued() -> bool:
        return "requeued" in [e for _, e, _ in await harness.jobs.events(job_id)]

    await wait_until(requeued, what="the refused submit to be requeued")
    job = await harness.jobs.require(job_id)
    assert job.status is JobStatus.QUEUED
    assert not await harness.jobs.create_was_sent(job_id)
    assert (await harness.jobs.not_before(job_id) or 0) > engine.clock()
    assert harness.sink.delivered == {}
    # Credits are still held for the job: neither refunded nor settled.
    assert await quotas(harness).ledger_state(job_id) == ("reserved", COST, None)
    (refused,) = engine_lines(caplog, job_id, "submit refused")
    assert refused.levelno == logging.WARNING
    assert "cannot connect" in refused.getMessage()

    crun.port = port
    await crun.start()  # crun is back on the same address
    done = await engine.wait_finished(job_id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert crun.calls["create"] == 1  # the refused attempts never reached crun
    assert len(crun.tasks) == 1
    assert list(harness.sink.delivered) == [job_id]
    assert harness.sink.delivered[job_id].ok
    state = await quotas(harness).ledger_state(job_id)
    assert state is not None
    assert state[0] == "settled"
    assert not engine_lines(caplog, job_id, "outcome unknown")


async def test_connection_refused_past_the_retry_window_fails_and_refunds(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await harness.crun.stop()
    engine = await harness.engine(quota=ROOMY, submit_retry_window=0.3)
    job_id = await submit(engine)
    done = await engine.wait_finished(job_id, timeout=10)

    assert done.status is JobStatus.FAILED
    assert done.error_code == "wanconnectionerror"
    await assert_refunded(harness, job_id)
    message = harness.sink.delivered[job_id].error_message or ""
    assert "unavailable right now" in message
    assert "try again" in message
    assert engine_lines(caplog, job_id, "submit refused")
    assert not engine_lines(caplog, job_id, "outcome unknown")


# --- TaskInfo while polling ---------------------------------------------------------------------


async def _pending_job(harness: Harness, engine: JobEngine) -> tuple[str, str]:
    job_id = await submit(engine)
    await wait_until(lambda: len(harness.crun.tasks) == 1, what="the crun task")

    async def tracked() -> bool:
        return (await harness.jobs.require(job_id)).status is JobStatus.PENDING

    await wait_until(tracked, what="the task id to be stored")
    return job_id, next(iter(harness.crun.tasks))


async def _still_waiting(harness: Harness, job_id: str) -> None:
    job = await harness.jobs.require(job_id)
    assert job.status is JobStatus.PENDING
    assert job.delivery_state is DeliveryState.NONE
    assert await quotas(harness).ledger_state(job_id) == ("reserved", COST, None)
    assert harness.sink.delivered == {}


async def test_bad_key_while_polling_keeps_the_job_and_polls_less_often(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness.crun.task_latency = None
    engine = await harness.engine(quota=ROOMY)  # normal polls every 0.02-0.055 s
    job_id, task_id = await _pending_job(harness, engine)
    key = harness.crun.api_key
    harness.crun.api_key = "ak_" + "0" * 32  # the key was revoked mid-job

    def rejected() -> list[logging.LogRecord]:
        return engine_lines(caplog, job_id, "rejected the API key while polling")

    await wait_until(lambda: len(rejected()) >= 3, what="three rejected polls")
    lines = rejected()
    assert {r.levelno for r in lines} == {logging.ERROR}
    # Backed off to 4 x poll_interval_max (0.2 s) instead of the normal <= 0.055 s.
    gaps = [b.created - a.created for a, b in itertools.pairwise(lines)]
    assert min(gaps) > 0.12, gaps  # > 2x the normal interval, with room for slow replies
    await _still_waiting(harness, job_id)
    assert harness.crun.calls["create"] == 1

    harness.crun.api_key = key  # fixed: the next poll goes through
    harness.crun.finish(task_id)
    done = await engine.wait_finished(job_id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert list(harness.sink.delivered) == [job_id]
    state = await quotas(harness).ledger_state(job_id)
    assert state is not None
    assert state[0] == "settled"


POLL_FAULTS: dict[str, tuple[int, int | None]] = {
    # id: (envelope code, HTTP status; None mirrors the code)
    "402": (402, None),
    "402-http-200": (402, 200),
    "422": (422, None),
    "501": (501, None),
    "505": (505, None),
    "505-http-200": (505, 200),
    "undocumented-400": (400, None),
    "undocumented-418": (418, None),
    "undocumented-599": (599, None),  # retried by the client first, like any 5xx
}


@pytest.mark.parametrize(("code", "http_status"), POLL_FAULTS.values(), ids=POLL_FAULTS.keys())
async def test_poll_errors_leave_the_job_unchanged_and_the_next_poll_retries(
    harness: Harness, caplog: pytest.LogCaptureFixture, code: int, http_status: int | None
) -> None:
    caplog.set_level(logging.INFO)
    harness.crun.task_latency = None
    engine = await harness.engine(quota=ROOMY)
    job_id, task_id = await _pending_job(harness, engine)
    per_poll = 4 if code >= 500 and code not in (501, 505) else 1  # the client's GET retries
    harness.crun.fail("info", code, times=2 * per_poll, http_status=http_status)

    def failed() -> list[logging.LogRecord]:
        return engine_lines(caplog, job_id, "poll failed")

    await wait_until(lambda: len(failed()) >= 2, what="two failed polls")
    assert {r.levelno for r in failed()} == {logging.WARNING}
    assert "will retry" in failed()[0].getMessage()
    await _still_waiting(harness, job_id)
    assert await harness.jobs.not_found_count(job_id) == 0

    harness.crun.finish(task_id)
    done = await engine.wait_finished(job_id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert harness.crun.calls["create"] == 1
    assert list(harness.sink.delivered) == [job_id]
    assert not engine_lines(caplog, job_id, "rejected the API key")


# --- result downloads ---------------------------------------------------------------------------


async def test_unreadable_results_are_reported_and_refunded_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: the job stayed settled, so the member paid for images they never got.
    caplog.set_level(logging.INFO)
    harness.crun.image_bytes = b"<html>502 Bad Gateway</html>"  # every result URL serves this
    harness.sink.fail_next = 1  # the first failure message is lost: delivery runs _outcome again
    engine = await harness.engine(quota=ROOMY, download_max_attempts=2)
    job_id = await submit(engine)
    done = await engine.wait_finished(job_id, timeout=10)

    assert done.status is JobStatus.SUCCEEDED  # crun did make the images
    assert done.delivery_state is DeliveryState.DONE
    outcome = harness.sink.delivered[job_id]
    assert outcome.images == ()
    assert outcome.error_message is not None
    assert "could not be downloaded" in outcome.error_message
    assert harness.sink.attempts == [job_id, job_id]
    await assert_refunded(harness, job_id)
    events = await harness.jobs.events(job_id)
    assert [(e, d) for _, e, d in events if e == "refunded"] == [("refunded", "download")]
    assert len(engine_lines(caplog, job_id, "credits refunded")) == 1
    assert job_id not in engine._records  # nor its count of failed downloads
