"""WanClient against the real FakeCrun over HTTP on 127.0.0.1 (no aiohttp mocks)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import secrets
import socket
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.errors import (
    AuthError,
    FeatureDisabled,
    GenerationError,
    InsufficientCredits,
    Maintenance,
    MalformedResponse,
    NotFound,
    RateLimited,
    ServerError,
    ValidationError,
    WanApiError,
    WanConnectionError,
    WanTimeout,
)
from bot.wan.client import PATH_BALANCE, USER_AGENT, WanClient
from bot.wan.ratelimit import RateLimiter
from bot.wan.types import MODEL_ID, TaskStatus
from tests.fakes.crun_server import FakeCrun, RecordingSleep

KEY = "ak_" + secrets.token_hex(16)  # unique per run, so a leak cannot hide behind a fixed value

ClientFactory = Callable[..., WanClient]

CODES: list[tuple[int, type[WanApiError]]] = [
    (401, AuthError),
    (402, InsufficientCredits),
    (404, NotFound),
    (422, ValidationError),
    (429, RateLimited),
    (455, Maintenance),
    (500, ServerError),
    (501, GenerationError),
    (505, FeatureDisabled),
]


@pytest.fixture(autouse=True)
def _no_key_in_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """Every test in this file doubles as a leak check on whatever got logged."""
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter()
    for record in caplog.records:
        assert KEY not in formatter.format(record), record


@pytest.fixture
async def crun() -> AsyncIterator[FakeCrun]:
    async with FakeCrun(api_key=KEY, task_latency=None) as fake:
        yield fake


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def make_client(crun: FakeCrun, sleep: RecordingSleep) -> AsyncIterator[ClientFactory]:
    clients: list[WanClient] = []

    def make(**kwargs: Any) -> WanClient:
        kwargs.setdefault("base_url", crun.base_url)
        kwargs.setdefault("sleep", sleep)
        kwargs.setdefault("request_timeout", 5.0)
        client = WanClient(kwargs.pop("api_key", KEY), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> WanClient:
    return make_client()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_no_key(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))  # includes the chained aiohttp error
    assert KEY not in text
    assert KEY not in str(exc)
    assert KEY not in repr(exc)


# --- happy paths -----------------------------------------------------------------------------


async def test_create_task_sends_documented_request(crun: FakeCrun, client: WanClient) -> None:
    task_id = await client.create_task(
        {"prompt": "a lighthouse", "n": 2}, callback_url="https://bot.example/cb?t=x"
    )

    assert task_id in crun.tasks
    assert crun.tasks[task_id].input == {"prompt": "a lighthouse", "n": 2}
    assert crun.tasks[task_id].callback_url == "https://bot.example/cb?t=x"
    endpoint, body = crun.requests[-1]
    assert endpoint == "create"
    assert body == {
        "model": MODEL_ID,
        "input": {"prompt": "a lighthouse", "n": 2},
        "callback_url": "https://bot.example/cb?t=x",
    }
    headers = crun.headers_log[-1][1]
    assert headers["x-api-key"] == KEY
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("wanbot/")


async def test_create_task_omits_callback_url_when_none(crun: FakeCrun, client: WanClient) -> None:
    await client.create_task({"prompt": "x"})
    assert "callback_url" not in crun.requests[-1][1]


async def test_task_info_follows_the_task_life(crun: FakeCrun, client: WanClient) -> None:
    task_id = await client.create_task({"prompt": "x", "n": 3})

    info = await client.task_info(task_id)
    assert (info.task_id, info.status, info.media_urls) == (task_id, TaskStatus.PENDING, ())
    assert info.credits is None

    crun.set_status(task_id, "running")
    assert (await client.task_info(task_id)).status is TaskStatus.RUNNING

    crun.finish(task_id)
    done = await client.task_info(task_id)
    assert done.status is TaskStatus.SUCCESS
    assert done.status.terminal
    assert done.media_urls == tuple(crun.tasks[task_id].media_urls)
    assert len(done.media_urls) == 3
    assert done.credits == 15.0
    assert done.create_at == crun.tasks[task_id].create_at
    assert done.error_message is None
    assert crun.requests[-1] == ("info", {"task_id": task_id})


async def test_automatic_task_latency_reaches_success(make_client: ClientFactory) -> None:
    async with FakeCrun(api_key=KEY, task_latency=0.05) as fake:
        client = make_client(base_url=fake.base_url)
        task_id = await client.create_task({"prompt": "x"})
        seen = [(await client.task_info(task_id)).status]
        async with asyncio.timeout(2):
            while seen[-1] is not TaskStatus.SUCCESS:
                await asyncio.sleep(0.005)
                seen.append((await client.task_info(task_id)).status)
    assert seen[0] is TaskStatus.PENDING
    assert TaskStatus.RUNNING in seen
    assert seen.index(TaskStatus.RUNNING) < seen.index(TaskStatus.SUCCESS)


async def test_failed_task_carries_message_and_code(crun: FakeCrun, client: WanClient) -> None:
    task_id = await client.create_task({"prompt": "x"})
    crun.finish(task_id, "failed", "blocked by moderation")

    info = await client.task_info(task_id)

    assert info.status is TaskStatus.FAILED
    assert info.error_message == "blocked by moderation"
    assert info.error_code == 501
    assert info.media_urls == ()


async def test_balance_and_billing(crun: FakeCrun, client: WanClient) -> None:
    assert await client.balance() == 1000.0
    await client.create_task({"prompt": "x", "n": 4})
    assert await client.balance() == 980.0


async def test_estimate_primary_path(crun: FakeCrun, client: WanClient) -> None:
    crun.balance = 12.0
    estimate = await client.estimate({"prompt": "x", "n": 3})

    assert (estimate.credits, estimate.balance, estimate.affordable) == (15.0, 12.0, False)
    assert crun.calls["estimate"] == 1
    assert crun.calls["estimate_credits"] == 0
    assert crun.requests[-1][1] == {"model": MODEL_ID, "input": {"prompt": "x", "n": 3}}
    assert crun.balance == 12.0  # not billed


async def test_estimate_falls_back_on_404_and_remembers(crun: FakeCrun, client: WanClient) -> None:
    crun.estimate_task_enabled = False

    first = await client.estimate({"prompt": "x", "n": 2})
    second = await client.estimate({"prompt": "x"})

    assert (first.credits, first.balance, first.affordable) == (10.0, None, None)
    assert second.credits == 5.0
    assert crun.calls["estimate"] == 1  # the documented path is not asked again
    assert crun.calls["estimate_credits"] == 2


async def test_estimate_both_paths_404_raises_not_found(crun: FakeCrun, client: WanClient) -> None:
    crun.estimate_task_enabled = False
    crun.estimate_credits_enabled = False
    with pytest.raises(NotFound):
        await client.estimate({"prompt": "x"})


async def test_estimate_is_retried_like_a_get(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=2)
    crun.fail("estimate", 503, times=2)
    assert (await client.estimate({"prompt": "x"})).credits == 5.0
    assert crun.calls["estimate"] == 3
    assert len(sleep.waits) == 2


async def test_model_schema_from_fake(crun: FakeCrun, client: WanClient) -> None:
    crun.schema_fields = ["prompt", "input_urls", "size", "n"]
    crun.required_fields = {"prompt", "n"}

    schema = await client.model_schema()

    assert schema.model == MODEL_ID
    assert schema.input_fields == {"prompt", "input_urls", "size", "n"}
    assert schema.required_fields == {"prompt", "n"}
    assert schema.raw["input_schema"]["properties"]["prompt"]["type"] == "string"
    assert crun.requests[-1] == ("schema", {"path": f"/api/v1/client/job/Models/{MODEL_ID}"})


@pytest.mark.parametrize(
    ("data", "fields", "required"),
    [
        # input_schema without "properties": its keys are the field names
        (
            {"input_schema": {"prompt": {"type": "string"}, "seed": {}}},
            {"prompt", "seed"},
            set(),
        ),
        # only required_input_fields
        ({"required_input_fields": ["prompt", 7]}, {"prompt"}, {"prompt"}),
        # nested under "model", required from the JSON-schema "required" list
        (
            {"model": {"input_schema": {"properties": {"a": {}, "b": {}}, "required": ["a"]}}},
            {"a", "b"},
            {"a"},
        ),
    ],
)
async def test_model_schema_lenient_shapes(
    crun: FakeCrun,
    client: WanClient,
    data: dict[str, Any],
    fields: set[str],
    required: set[str],
) -> None:
    crun.malformed("schema", body=json.dumps({"code": 200, "message": "ok", "data": data}))
    schema = await client.model_schema()
    assert schema.input_fields == fields
    assert schema.required_fields == required


async def test_model_schema_without_any_schema_is_malformed(
    crun: FakeCrun, make_client: ClientFactory
) -> None:
    client = make_client(get_retries=0)
    crun.malformed("schema", body=json.dumps({"code": 200, "message": "ok", "data": {"x": 1}}))
    with pytest.raises(MalformedResponse):
        await client.model_schema()


async def test_upload_round_trip(crun: FakeCrun, client: WanClient) -> None:
    payload = os.urandom(300_000)

    file_url = await client.upload(payload, content_type="image/png", ext=".png")

    assert file_url.startswith(crun.base_url + "/files/")
    assert file_url.endswith(".png")
    async with aiohttp.ClientSession() as session, session.get(file_url) as resp:
        assert resp.status == 200
        assert resp.content_type == "image/png"
        assert await resp.read() == payload
    assert crun.requests[0] == ("upload_url", {"content_type": "image/png", "ext": ".png"})
    put_headers = dict(crun.headers_log[1][1])
    assert crun.headers_log[1][0] == "upload_put"
    assert "x-api-key" not in {k.lower() for k in put_headers}
    assert put_headers["Content-Type"] == "image/png"
    assert put_headers["Content-Length"] == str(len(payload))


async def test_upload_ext_without_dot_is_normalised(crun: FakeCrun, client: WanClient) -> None:
    url = await client.upload(b"abc", content_type="image/jpeg", ext="jpg")
    assert url.endswith(".jpg")


async def test_upload_put_retried_on_5xx_not_on_403(
    crun: FakeCrun, make_client: ClientFactory
) -> None:
    client = make_client(get_retries=2)
    crun.fail("upload_put", 503)
    assert await client.upload(b"abc", content_type="image/png", ext=".png")
    assert crun.calls["upload_put"] == 2
    assert list(crun.uploads.values()) == [b"abc"]

    crun.fail("upload_put", 403, times=5)
    with pytest.raises(WanApiError) as info:
        await client.upload(b"abc", content_type="image/png", ext=".png")
    assert info.value.status == 403
    assert crun.calls["upload_put"] == 3


async def test_task_id_is_url_encoded(crun: FakeCrun, client: WanClient) -> None:
    odd = "task/ä b&c=d?e#f+g%20"
    crun.task_id_factory = lambda: odd

    task_id = await client.create_task({"prompt": "x"})
    info = await client.task_info(task_id)

    assert task_id == odd
    assert info.task_id == odd
    assert crun.requests[-1] == ("info", {"task_id": odd})


# --- real validation paths of the fake -------------------------------------------------------


async def test_wrong_key_is_auth_error(crun: FakeCrun, make_client: ClientFactory) -> None:
    client = make_client(api_key="ak_" + "0" * 32)
    with pytest.raises(AuthError):
        await client.balance()
    with pytest.raises(AuthError):
        await client.create_task({"prompt": "x"})


@pytest.mark.parametrize(
    "payload",
    [{"prompt": "x", "colour": "red"}, {"n": 1}, {"prompt": "x", "n": 13}, {"prompt": "x", "n": 0}],
)
async def test_invalid_input_is_validation_error(
    crun: FakeCrun, client: WanClient, payload: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await client.create_task(payload)
    assert crun.tasks == {}


async def test_short_balance_is_insufficient_credits(crun: FakeCrun, client: WanClient) -> None:
    crun.balance = 9.0
    with pytest.raises(InsufficientCredits) as info:
        await client.create_task({"prompt": "x", "n": 2})
    assert (info.value.status, info.value.code) == (402, 402)
    assert crun.tasks == {}


async def test_unknown_task_is_not_found_and_not_retried(crun: FakeCrun, client: WanClient) -> None:
    with pytest.raises(NotFound):
        await client.task_info("task_nope")
    assert crun.calls["info"] == 1


# --- envelope codes --------------------------------------------------------------------------


@pytest.mark.parametrize("mirrors", [True, False], ids=["http=code", "http=200"])
@pytest.mark.parametrize(("code", "exc_type"), CODES, ids=[str(c) for c, _ in CODES])
async def test_create_codes_map_and_are_never_retried(
    crun: FakeCrun,
    make_client: ClientFactory,
    code: int,
    exc_type: type[WanApiError],
    mirrors: bool,
) -> None:
    crun.http_mirrors_code = mirrors
    client = make_client(get_retries=3)
    crun.fail("create", code, times=5, message=f"reason {code}")

    with pytest.raises(exc_type) as info:
        await client.create_task({"prompt": "x"})

    assert type(info.value) is exc_type
    assert info.value.code == code
    assert info.value.status == (code if mirrors else 200)
    assert info.value.message == f"reason {code}"
    assert crun.calls["create"] == 1


@pytest.mark.parametrize("mirrors", [True, False], ids=["http=code", "http=200"])
@pytest.mark.parametrize(("code", "exc_type"), CODES, ids=[str(c) for c, _ in CODES])
async def test_info_codes_map(
    crun: FakeCrun,
    make_client: ClientFactory,
    code: int,
    exc_type: type[WanApiError],
    mirrors: bool,
) -> None:
    crun.http_mirrors_code = mirrors
    client = make_client(get_retries=0)
    crun.fail("info", code)

    with pytest.raises(exc_type) as info:
        await client.task_info("task_1")

    assert type(info.value) is exc_type
    assert info.value.code == code
    assert info.value.status == (code if mirrors else 200)


@pytest.mark.parametrize(
    ("code", "retried"),
    [
        *[(c, True) for c in (408, 429, 455, 500, 502, 503)],
        *[(c, False) for c in (501, 505, 401, 402, 404, 422, 418)],
    ],
)
async def test_get_retry_policy_per_code(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep, code: int, retried: bool
) -> None:
    client = make_client(get_retries=3)
    crun.fail("balance", code)

    if retried:
        assert await client.balance() == 1000.0
        assert crun.calls["balance"] == 2
        assert len(sleep.waits) == 1
    else:
        with pytest.raises(WanApiError) as info:
            await client.balance()
        assert info.value.code == code
        assert crun.calls["balance"] == 1
        assert sleep.waits == []


async def test_unknown_codes_are_plain_wan_api_error(crun: FakeCrun, client: WanClient) -> None:
    crun.fail("create", 418)
    with pytest.raises(WanApiError) as info:
        await client.create_task({"prompt": "x"})
    assert type(info.value) is WanApiError
    crun.fail("create", 599, http_status=200)
    with pytest.raises(ServerError):
        await client.create_task({"prompt": "x"})


async def test_envelope_code_wins_over_http_status(crun: FakeCrun, client: WanClient) -> None:
    body = json.dumps({"code": 200, "message": "ok", "data": {"balance": 7}})
    crun.malformed("balance", body=body, http_status=500)
    assert await client.balance() == 7.0

    crun.fail("balance", 402, http_status=200)
    with pytest.raises(InsufficientCredits):
        await client.balance()


# --- unusable replies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"<html>oops</html>",
        b"",
        b"[1, 2]",
        b'{"code": "200", "data": {"balance": 1}}',
        b'{"code": true, "data": {"balance": 1}}',
        b'{"message": "no code"}',
        b'{"code": 200, "message": "ok", "data": null}',
        b'{"code": 200, "message": "ok", "data": {}}',
        b'{"code": 200, "message": "ok", "data": {"balance": "lots"}}',
    ],
)
async def test_malformed_replies(crun: FakeCrun, make_client: ClientFactory, body: bytes) -> None:
    client = make_client(get_retries=0)
    crun.malformed("balance", body=body)
    with pytest.raises(MalformedResponse):
        await client.balance()


async def test_malformed_get_is_retried(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=2)
    crun.malformed("info", times=1)
    crun.truncated("info", times=1)
    task_id = await client.create_task({"prompt": "x"})

    assert (await client.task_info(task_id)).status is TaskStatus.PENDING
    assert crun.calls["info"] == 3
    assert len(sleep.waits) == 2


async def test_missing_task_id_on_create_is_malformed_not_retried(
    crun: FakeCrun, client: WanClient
) -> None:
    crun.malformed("create", body=b'{"code": 200, "message": "ok", "data": {"id": "x"}}')
    with pytest.raises(MalformedResponse):
        await client.create_task({"prompt": "x"})
    assert crun.calls["create"] == 1


async def test_truncated_create_is_malformed_and_not_retried(
    crun: FakeCrun, client: WanClient
) -> None:
    crun.truncated("create")
    with pytest.raises(MalformedResponse):
        await client.create_task({"prompt": "x"})
    assert crun.calls["create"] == 1
    assert len(crun.tasks) == 1  # it was created: the caller must treat this as uncertain


async def test_cut_body_on_create_is_sent_connection_error(
    crun: FakeCrun, client: WanClient
) -> None:
    crun.truncated("create", abort=True)
    with pytest.raises(WanConnectionError) as info:
        await client.create_task({"prompt": "x"})
    assert info.value.sent is True
    assert crun.calls["create"] == 1


@pytest.mark.parametrize(("status", "exc_type"), [(502, ServerError), (429, RateLimited)])
async def test_non_json_error_maps_http_status(
    crun: FakeCrun, make_client: ClientFactory, status: int, exc_type: type[WanApiError]
) -> None:
    client = make_client(get_retries=0)
    crun.malformed("balance", body=b"<html>Bad Gateway</html>", http_status=status)
    with pytest.raises(exc_type) as info:
        await client.balance()
    assert (info.value.status, info.value.code) == (status, None)


async def test_non_json_502_is_retried(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=1)
    crun.malformed("balance", body=b"<html>Bad Gateway</html>", http_status=502)
    assert await client.balance() == 1000.0
    assert len(sleep.waits) == 1


# --- lenient TaskInfo parsing ----------------------------------------------------------------


def _info_body(data: dict[str, Any], message: str = "success") -> str:
    return json.dumps({"code": 200, "message": message, "data": data})


async def test_task_info_lenient_parsing(crun: FakeCrun, make_client: ClientFactory) -> None:
    client = make_client(get_retries=0)
    crun.malformed(
        "info",
        body=_info_body(
            {
                "task_id": "t1",
                "status": "SUCCESS",
                "result": {"media_urls": ["https://cdn/a.png", 3, None, "", "https://cdn/b.png"]},
                "credits": "12.5",
                "create_at": 100,
                "complete_at": "141",
                "duration_s": 41,
            }
        ),
    )
    info = await client.task_info("t1")
    assert info.status is TaskStatus.SUCCESS
    assert info.raw_status == "SUCCESS"
    assert info.media_urls == ("https://cdn/a.png", "https://cdn/b.png")
    assert info.credits == 12.5
    assert (info.create_at, info.complete_at, info.duration_s) == (100, 141, 41.0)


@pytest.mark.parametrize(
    ("data", "message", "expected"),
    [
        ({"status": "failed", "result": {"message": "nsfw", "code": 7}}, "success", ("nsfw", 7)),
        ({"status": "Failed", "result": None}, "upstream said no", ("upstream said no", None)),
        ({"status": "failed", "result": {"message": ""}}, "fallback", ("fallback", None)),
    ],
)
async def test_task_info_failure_message_fallback(
    crun: FakeCrun,
    make_client: ClientFactory,
    data: dict[str, Any],
    message: str,
    expected: tuple[str, int | None],
) -> None:
    client = make_client(get_retries=0)
    crun.malformed("info", body=_info_body(data, message))
    info = await client.task_info("t1")
    assert info.status is TaskStatus.FAILED
    assert (info.error_message, info.error_code) == expected
    assert info.task_id == "t1"  # echo missing: the asked id is kept


async def test_unknown_status_is_kept_raw(crun: FakeCrun, client: WanClient) -> None:
    task_id = await client.create_task({"prompt": "x"})
    crun.set_status(task_id, "Canceled")
    info = await client.task_info(task_id)
    assert info.status is TaskStatus.UNKNOWN
    assert not info.status.terminal
    assert info.raw_status == "Canceled"


async def test_task_info_without_status_is_malformed(
    crun: FakeCrun, make_client: ClientFactory
) -> None:
    client = make_client(get_retries=0)
    crun.malformed("info", body=_info_body({"task_id": "t1"}))
    with pytest.raises(MalformedResponse):
        await client.task_info("t1")


# --- transport failures ----------------------------------------------------------------------


async def test_dropped_create_is_sent_and_not_retried(crun: FakeCrun, client: WanClient) -> None:
    crun.drop("create", times=3)
    with pytest.raises(WanConnectionError) as info:
        await client.create_task({"prompt": "x"})
    assert info.value.sent is True
    assert crun.calls["create"] == 1


async def test_ambiguous_submit_variants(crun: FakeCrun, make_client: ClientFactory) -> None:
    client = make_client(request_timeout=0.2)
    crun.fail_after_create(mode="drop")
    with pytest.raises(WanConnectionError) as dropped:
        await client.create_task({"prompt": "x"})
    assert dropped.value.sent is True

    crun.fail_after_create(mode="500")
    with pytest.raises(ServerError):
        await client.create_task({"prompt": "x"})

    crun.fail_after_create(mode="slow", seconds=5)
    with pytest.raises(WanTimeout):
        await client.create_task({"prompt": "x"})

    assert crun.calls["create"] == 3
    assert len(crun.tasks) == 3  # all three were created and billed
    assert crun.balance == 985.0


async def test_dropped_get_is_retried(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=2)
    crun.drop("balance", times=4)  # aiohttp resends a dropped GET once per attempt
    assert await client.balance() == 1000.0
    assert crun.calls["balance"] == 5
    assert len(sleep.waits) == 2


async def test_connection_refused_is_not_sent(make_client: ClientFactory) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{closed_port()}", get_retries=0)
    with pytest.raises(WanConnectionError) as info:
        await client.create_task({"prompt": "x"})
    assert info.value.sent is False


async def test_connection_refused_get_is_retried_then_raised(
    make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    outcomes: list[tuple[str, str]] = []
    client = make_client(
        base_url=f"http://127.0.0.1:{closed_port()}",
        get_retries=2,
        on_call=lambda e, o: outcomes.append((e, o)),
    )
    with pytest.raises(WanConnectionError) as info:
        await client.balance()
    assert info.value.sent is False
    assert outcomes == [("balance", "connection")] * 3
    assert len(sleep.waits) == 2


async def test_get_timeout_is_retried_then_raised(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(request_timeout=0.1, get_retries=2)
    crun.slow("balance", 5.0, times=3)
    with pytest.raises(WanTimeout):
        await client.balance()
    assert crun.calls["balance"] == 3
    assert len(sleep.waits) == 2


async def test_get_timeout_then_success(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(request_timeout=0.1, get_retries=2)
    crun.slow("balance", 5.0, times=1)
    assert await client.balance() == 1000.0
    assert crun.calls["balance"] == 2


async def test_create_timeout_is_not_retried(crun: FakeCrun, make_client: ClientFactory) -> None:
    client = make_client(request_timeout=0.1, get_retries=3)
    crun.slow("create", 5.0, times=3)
    with pytest.raises(WanTimeout):
        await client.create_task({"prompt": "x"})
    assert crun.calls["create"] == 1


# --- backoff ---------------------------------------------------------------------------------


class _MaxRandom(random.Random):
    def random(self) -> float:
        return 1.0


async def test_backoff_is_exponential_and_capped(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=5, backoff_base=0.5, backoff_cap=2.0, rng=_MaxRandom())
    crun.fail("balance", 503, times=5)
    assert await client.balance() == 1000.0
    assert sleep.waits == [0.5, 1.0, 2.0, 2.0, 2.0]


async def test_backoff_uses_full_jitter(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=3, backoff_base=1.0, backoff_cap=8.0, rng=random.Random(7))
    crun.fail("balance", 500, times=3)
    await client.balance()
    twin = random.Random(7)
    assert sleep.waits == pytest.approx([min(8.0, 2.0**i) * twin.random() for i in range(3)])


async def test_retry_after_seconds_is_honoured(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=2)
    crun.fail("info", 429, retry_after=7)
    crun.fail("info", 455, retry_after="2.5")
    task_id = await client.create_task({"prompt": "x"})
    await client.task_info(task_id)
    assert sleep.waits == [7.0, 2.5]


async def test_retry_after_http_date_and_cap(
    crun: FakeCrun, make_client: ClientFactory, sleep: RecordingSleep
) -> None:
    client = make_client(get_retries=2, retry_after_cap=60.0)
    when = datetime.now(UTC) + timedelta(seconds=30)
    crun.fail("balance", 503, retry_after=email.utils.format_datetime(when, usegmt=True))
    crun.fail("balance", 429, retry_after=3600)
    await client.balance()
    assert 25.0 <= sleep.waits[0] <= 30.0
    assert sleep.waits[1] == 60.0


async def test_rate_limited_exposes_retry_after(crun: FakeCrun, client: WanClient) -> None:
    crun.fail("create", 429, retry_after=12)
    with pytest.raises(RateLimited) as info:
        await client.create_task({"prompt": "x"})
    assert info.value.retry_after == 12.0


# --- metrics hook, lifecycle, secrets --------------------------------------------------------


async def test_on_call_reports_every_attempt(crun: FakeCrun, make_client: ClientFactory) -> None:
    outcomes: list[tuple[str, str]] = []
    client = make_client(
        get_retries=4, request_timeout=0.1, on_call=lambda e, o: outcomes.append((e, o))
    )
    crun.fail("balance", 503)
    crun.malformed("balance")
    crun.slow("balance", 5.0)
    # aiohttp itself resends an idempotent request once when the server drops it (RFC 9112
    # 9.3.1), inside one of our attempts; so two drops make one "connection" outcome.
    crun.drop("balance", times=2)
    await client.balance()
    assert crun.calls["balance"] == 6
    assert outcomes == [
        ("balance", "503"),
        ("balance", "malformed"),
        ("balance", "timeout"),
        ("balance", "connection"),
        ("balance", "200"),
    ]


async def test_broken_on_call_hook_does_not_break_calls(
    crun: FakeCrun, make_client: ClientFactory
) -> None:
    def hook(endpoint: str, outcome: str) -> None:
        raise RuntimeError("metrics down")

    client = make_client(on_call=hook)
    assert await client.balance() == 1000.0


async def test_context_manager_closes_session(crun: FakeCrun) -> None:
    async with WanClient(KEY, base_url=crun.base_url) as client:
        assert await client.balance() == 1000.0
    with pytest.raises(RuntimeError):
        await client.balance()
    assert KEY not in repr(client)


async def test_api_key_never_in_errors_or_logs(
    crun: FakeCrun, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Walk every error path; the autouse fixture also checks every log record."""
    client = make_client(get_retries=1, request_timeout=0.1)
    refused = make_client(base_url=f"http://127.0.0.1:{closed_port()}", get_retries=1)
    errors: list[BaseException] = []

    async def collect(coro: Any) -> None:
        try:
            await coro
        except WanApiError as exc:
            errors.append(exc)
        else:
            pytest.fail("expected an error")

    for code, _ in CODES:
        # A server that echoes the key back must not make us leak it.
        crun.fail("create", code, message=f"bad key {KEY}")
        await collect(client.create_task({"prompt": "x"}))
        crun.fail("info", code, times=2, message=f"bad key {KEY}")
        await collect(client.task_info("t"))
    crun.malformed("balance", times=2, body=f"<p>{KEY}</p>".encode(), http_status=502)
    await collect(client.balance())
    crun.malformed("balance", times=2)
    await collect(client.balance())
    crun.slow("balance", 5.0, times=2)
    await collect(client.balance())
    crun.drop("create")
    await collect(client.create_task({"prompt": "x"}))
    crun.truncated("create", abort=True)
    await collect(client.create_task({"prompt": "x"}))
    crun.fail("upload_put", 503, times=2)
    await collect(client.upload(b"x", content_type="image/png", ext=".png"))
    await collect(refused.create_task({"prompt": "x"}))
    await collect(refused.balance())
    await collect(make_client(api_key="ak_" + "1" * 32).balance())

    assert len(errors) == 2 * len(CODES) + 9
    for exc in errors:
        assert_no_key(exc)
    assert any("bad key ***" in str(e) for e in errors)  # the echo was redacted, not dropped
    assert any(r.name == "bot.wan.client" for r in caplog.records)  # retries were logged


async def test_failed_task_message_echoing_key_is_redacted(
    crun: FakeCrun, client: WanClient
) -> None:
    task_id = await client.create_task({"prompt": "x"})
    crun.finish(task_id, "failed", f"key {KEY} rejected")
    info = await client.task_info(task_id)
    assert info.error_message == "key *** rejected"


# --- the fake's own behaviour that other suites rely on --------------------------------------


async def test_fake_serves_result_pngs(crun: FakeCrun, client: WanClient) -> None:
    task_id = await client.create_task({"prompt": "x", "n": 2})
    crun.finish(task_id)
    urls = (await client.task_info(task_id)).media_urls
    async with aiohttp.ClientSession() as session:
        bodies = []
        for url in urls:
            async with session.get(url) as resp:
                assert resp.status == 200
                bodies.append(await resp.read())
    assert all(b.startswith(b"\x89PNG\r\n\x1a\n") for b in bodies)
    assert bodies[0] != bodies[1]

    crun.image_bytes = b"\x89PNG-big" * 10
    other = await client.create_task({"prompt": "y"})
    crun.finish(other)
    (url,) = (await client.task_info(other)).media_urls
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert await resp.read() == crun.image_bytes


async def test_fake_outcome_hook_fails_tasks(make_client: ClientFactory) -> None:
    def outcome(inp: dict[str, Any]) -> tuple[str, str] | None:
        return ("failed", "no cats") if "cat" in inp["prompt"] else None

    async with FakeCrun(api_key=KEY, task_latency=0.0, outcome=outcome) as fake:
        client = make_client(base_url=fake.base_url)
        bad = await client.create_task({"prompt": "a cat"})
        good = await client.create_task({"prompt": "a dog"})
        bad_info, good_info = await client.task_info(bad), await client.task_info(good)
    assert (bad_info.status, bad_info.error_message) == (TaskStatus.FAILED, "no cats")
    assert good_info.status is TaskStatus.SUCCESS


async def test_fake_sends_callbacks(client: WanClient, crun: FakeCrun) -> None:
    received: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/cb", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        cb_url = f"http://127.0.0.1:{runner.addresses[0][1]}/cb?t=tok"
        crun.callback_duplicates = 2
        task_id = await client.create_task({"prompt": "x"}, callback_url=cb_url)
        crun.finish(task_id)
        log = await crun.wait_for_callbacks(2, timeout=5)
        assert [a.status for a in log] == [200, 200]
        assert received[0] == received[1] == crun.task_data(task_id)

        crun.callback_duplicates = 1
        crun.callback_lie = {"status": "success", "result": {"media_urls": ["https://evil/x"]}}
        liar = await client.create_task({"prompt": "x"}, callback_url=cb_url)
        crun.finish(liar, "failed", "really failed")
        await crun.wait_for_callbacks(3, timeout=5)
        assert received[2]["task_id"] == liar
        assert received[2]["result"]["media_urls"] == ["https://evil/x"]
        assert (await client.task_info(liar)).status is TaskStatus.FAILED
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
async def test_a_reply_over_the_cap_is_malformed_and_not_read_whole(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    # A broken or hostile endpoint must not make the bot buffer an endless reply.
    monkeypatch.setattr("bot.wan.client._MAX_REPLY_BYTES", 4096)
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if not chunked:
            resp.content_length = 10 * 1024 * 1024
        await resp.prepare(request)
        try:
            for _ in range(10 * 1024):
                await resp.write(b" " * 1024)
                sent.append(1024)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        return resp

    app = web.Application()
    app.router.add_get(PATH_BALANCE, endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        client = make_client(base_url=f"http://127.0.0.1:{port}", get_retries=0)
        with pytest.raises(MalformedResponse, match="too large"):
            await client.balance()
    finally:
        await runner.cleanup()
    assert sum(sent) < 10 * 1024 * 1024


# --- the one rate budget ----------------------------------------------------------------------


def _most_in_a_second(stamps: list[float]) -> int:
    return max(sum(1 for s in stamps if t <= s <= t + 1.0) for t in stamps)


async def test_every_crun_request_and_retry_spends_the_one_rate_budget(
    crun: FakeCrun, make_client: ClientFactory
) -> None:
    """Creates, polls, balance, estimates and uploads, retries included, all at once: crun never
    sees more than the rate in any second, and a 429 slows everyone."""
    crun.fail("info", 500, times=2)  # the two retries are requests too
    limiter = RateLimiter(4.0)
    client = make_client(limiter=limiter, sleep=asyncio.sleep, backoff_base=0.01, backoff_cap=0.02)
    task_id = await client.create_task({"prompt": "x"})
    await asyncio.gather(
        *(client.create_task({"prompt": f"p{i}"}) for i in range(2)),
        *(client.task_info(task_id) for _ in range(3)),
        client.balance(),
        client.estimate({"prompt": "x"}),
        client.upload(b"\x89PNG fake", content_type="image/png", ext="png"),
    )
    api = [t for endpoint, t in crun.arrivals if endpoint != "upload_put"]
    assert len(api) == 11  # 3 creates, 3 polls + 2 retries, balance, estimate, upload URL
    assert _most_in_a_second(api) <= 4
    assert limiter.rate == 4.0  # no 429 yet

    crun.fail("balance", 429, times=1, retry_after=0.05)
    await client.balance()  # retried after the pause
    assert limiter.penalties == 1
    assert 2.0 < limiter.rate < 2.5  # halved, then the retry's success won a little back
