"""Property tests for WanClient's reply parsing (bot/wan/client.py).

Whatever crun (or a proxy in front of it) sends back, parsing either returns a typed value or
raises one of the documented ``WanApiError`` subclasses, never anything else; and a valid
envelope comes back as the TaskInfo it describes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
)
from bot.wan.client import WanClient
from bot.wan.replies import Reply as _Reply
from bot.wan.types import TaskInfo, TaskStatus

API_KEY = "ak_property_test_key_0123456789"
CLIENT = WanClient(API_KEY)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DOCUMENTED = {
    401: AuthError,
    402: InsufficientCredits,
    404: NotFound,
    422: ValidationError,
    429: RateLimited,
    455: Maintenance,
    500: ServerError,
    501: GenerationError,
    505: FeatureDisabled,
}


def _parse_info(body: bytes, status: int = 200) -> TaskInfo:
    """What ``task_info`` does with one HTTP reply: envelope, then the TaskInfo parser."""
    data, message = CLIENT._parse_envelope("info", _Reply(status, body, None))
    return CLIENT._parse_task_info(data, message, "task_asked")


def _parse_create(body: bytes, status: int = 200) -> str:
    data, message = CLIENT._parse_envelope("create", _Reply(status, body, None))
    return CLIENT._parse_task_id(data, message)


PARSERS: list[Callable[[bytes, int], object]] = [_parse_info, _parse_create]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    ["code", "message", "data", "task_id", "status", "result", "media_urls", "credits", "x"]
)
# Envelope-shaped documents with arbitrary values where the parser looks.
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "code": st.one_of(st.sampled_from([200, *DOCUMENTED, 503, 418]), json_values),
        "message": json_values,
        "data": st.one_of(
            json_values,
            st.dictionaries(keys, json_values, max_size=6),
            st.fixed_dictionaries(
                {},
                optional={
                    "task_id": json_values,
                    "status": st.one_of(
                        st.sampled_from(["pending", "running", "success", "failed", " SUCCESS "]),
                        json_values,
                    ),
                    "result": st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "media_urls": json_values,
                                "message": json_values,
                                "code": json_values,
                            },
                        ),
                    ),
                    "credits": json_values,
                    "create_at": json_values,
                    "complete_at": json_values,
                    "duration_s": json_values,
                },
            ),
        ),
    },
)
statuses = st.sampled_from([200, 201, 400, 401, 404, 429, 500, 502, 503])


def _only_documented_errors(
    parse: Callable[[bytes, int], object], body: bytes, status: int
) -> None:
    try:
        parse(body, status)
    except WanApiError as exc:
        assert API_KEY not in str(exc)
    # Anything else (KeyError, TypeError, AttributeError, ValueError...) fails the test.


@PROPS
@given(value=json_values, status=statuses)
def test_any_json_value_parses_or_raises_a_wan_api_error(value: Any, status: int) -> None:
    body = json.dumps(value).encode()
    for parse in PARSERS:
        _only_documented_errors(parse, body, status)


@PROPS
@given(doc=envelopes, status=statuses)
def test_any_envelope_shape_parses_or_raises_a_wan_api_error(
    doc: dict[str, Any], status: int
) -> None:
    body = json.dumps(doc).encode()
    for parse in PARSERS:
        _only_documented_errors(parse, body, status)


@PROPS
@given(body=st.binary(max_size=300), status=statuses)
def test_arbitrary_bytes_parse_or_raise_a_wan_api_error(body: bytes, status: int) -> None:
    for parse in PARSERS:
        _only_documented_errors(parse, body, status)


@PROPS
@given(doc=envelopes)
def test_truncated_replies_raise_a_wan_api_error(doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    for cut in {len(body) // 2, max(0, len(body) - 1)}:
        for parse in PARSERS:
            _only_documented_errors(parse, body[:cut], 200)


@PROPS
@given(code=st.sampled_from(sorted(DOCUMENTED)), message=st.text(max_size=40))
def test_each_documented_code_maps_to_its_error_class(code: int, message: str) -> None:
    body = json.dumps({"code": code, "message": message + API_KEY, "data": None}).encode()
    for parse in PARSERS:
        with pytest.raises(DOCUMENTED[code]) as info:
            parse(body, code)
        assert API_KEY not in str(info.value)  # a key echoed by crun is redacted


task_ids = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != "")
finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
urls = st.lists(
    st.from_regex(r"https://cdn\.example/[a-z0-9]{1,12}\.png", fullmatch=True), max_size=12
)


@PROPS
@given(
    task_id=task_ids,
    status=st.sampled_from(["pending", "running", "success", "failed"]),
    media=urls,
    fail_message=st.text(min_size=1, max_size=60),
    credits=finite,
    create_at=st.integers(min_value=0, max_value=2**40),
    duration=finite,
)
def test_a_valid_task_info_envelope_round_trips(
    task_id: str,
    status: str,
    media: list[str],
    fail_message: str,
    credits: float,
    create_at: int,
    duration: float,
) -> None:
    result: dict[str, Any] | None = None
    if status == "success":
        result = {"media_urls": media}
    elif status == "failed":
        result = {"code": 501, "message": fail_message}
    data = {
        "task_id": task_id,
        "status": status,
        "result": result,
        "credits": credits,
        "create_at": create_at,
        "complete_at": create_at + 7,
        "duration_s": duration,
        "param": {"input": {"prompt": "p"}},  # extras are ignored
    }
    info = _parse_info(json.dumps({"code": 200, "message": "success", "data": data}).encode())
    assert info.task_id == task_id
    assert info.status is TaskStatus(status)
    assert info.raw_status == status
    assert info.media_urls == (tuple(media) if status == "success" else ())
    assert info.error_message == (fail_message if status == "failed" else None)
    assert info.error_code == (501 if status == "failed" else None)
    assert info.credits is not None and math.isclose(info.credits, credits)
    assert info.create_at == create_at
    assert info.complete_at == create_at + 7
    assert info.duration_s is not None and math.isclose(info.duration_s, duration)


@PROPS
@given(task_id=task_ids)
def test_a_valid_create_envelope_round_trips(task_id: str) -> None:
    body = json.dumps({"code": 200, "message": "success", "data": {"task_id": task_id}})
    assert _parse_create(body.encode()) == task_id


# Regression: json.loads raised RecursionError on deeply nested replies (100 kB of '[').
@pytest.mark.parametrize("parse", PARSERS, ids=["info", "create"])
def test_deeply_nested_reply_is_a_malformed_response(
    parse: Callable[[bytes, int], object],
) -> None:
    with pytest.raises(MalformedResponse):
        parse(b'{"code": 200, "data": ' + b"[" * 100_000, 200)
