"""crun's replies read into typed values (contract: shared wan-api.md, sections 1 and 4).

Pure functions, no I/O: the envelope ``{code, message, data}``, the error class each code maps to,
and the ``data`` of every endpoint the bot calls. Lenient about extra fields, strict about what
the bot needs: a reply it cannot use raises ``MalformedResponse``, which the transport retries
on safe requests like any other unusable reply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

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
from bot.wan.contract.schema import SchemaUnreadable, parse_model_schema
from bot.wan.types import Estimate, ModelSchema, TaskInfo, TaskStatus, UploadSlot

#: Removes the API key from text that may echo it (crun messages, aiohttp errors).
Redact = Callable[[str], str]

ERRORS_BY_CODE: Final[Mapping[int, type[WanApiError]]] = {
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

_STATUSES: Final[Mapping[str, TaskStatus]] = {
    s.value: s for s in TaskStatus if s is not TaskStatus.UNKNOWN
}


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP reply, read whole: what the parsers below and the retry loop look at."""

    status: int
    body: bytes
    retry_after: float | None


# --- errors ---------------------------------------------------------------------------------


def error_class(code: int) -> type[WanApiError]:
    """The error for an envelope code or HTTP status; an undocumented 5xx is a ServerError."""
    cls = ERRORS_BY_CODE.get(code)
    if cls is not None:
        return cls
    if 500 <= code < 600:
        return ServerError
    return WanApiError


def api_error(
    cls: type[WanApiError],
    status: int,
    code: int | None,
    message: str,
    retry_after: float | None,
    *,
    redact: Redact,
) -> WanApiError:
    message = redact(message)
    if cls is RateLimited:
        return RateLimited(status, code, message, retry_after)
    return cls(status, code, message)


def malformed(endpoint: str, why: str) -> NoReturn:
    raise MalformedResponse(0, None, f"crun {endpoint}: {why}")


def field(data: dict[str, Any], name: str, endpoint: str) -> Any:
    if name not in data:
        malformed(endpoint, f"data.{name} is missing")
    return data[name]


def check_upload(reply: Reply, redact: Redact) -> None:
    """The storage host's answer to the upload PUT: any 2xx means stored."""
    if not 200 <= reply.status < 300:
        cls = error_class(reply.status)
        raise api_error(
            cls, reply.status, reply.status, "upload rejected", reply.retry_after, redact=redact
        )


# --- the envelope ---------------------------------------------------------------------------


def parse_envelope(endpoint: str, reply: Reply, redact: Redact) -> tuple[dict[str, Any], str]:
    """Return ``(data, message)`` of a ``code == 200`` envelope, or raise the matching error."""
    try:
        doc = json.loads(reply.body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        doc = None
    code = doc.get("code") if isinstance(doc, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        # Not an envelope. A failing HTTP status still says what went wrong (e.g. a proxy's
        # 502 page); a 2xx with junk is just malformed.
        if reply.status >= 400:
            cls = error_class(reply.status)
            raise api_error(
                cls, reply.status, None, "non-JSON error reply", reply.retry_after, redact=redact
            )
        malformed(endpoint, "reply is not a JSON envelope with an integer code")
    assert isinstance(doc, dict)
    message = doc.get("message")
    message = message if isinstance(message, str) else ""
    if code != 200:
        cls = error_class(code)
        raise api_error(cls, reply.status, code, message, reply.retry_after, redact=redact)
    data = doc.get("data")
    if not isinstance(data, dict):
        malformed(endpoint, "data is not an object")
    return data, message


# --- data of each endpoint ------------------------------------------------------------------


def parse_task_id(data: dict[str, Any], _message: str) -> str:
    task_id = field(data, "task_id", "create")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id:
        malformed("create", "data.task_id is not a non-empty string")
    return task_id


def parse_balance(data: dict[str, Any], _message: str) -> float:
    value = number(field(data, "balance", "balance"))
    if value is None:
        malformed("balance", "data.balance is not a number")
    return value


def parse_estimate(data: dict[str, Any], _message: str) -> Estimate:
    credits = number(field(data, "estimated_credits", "estimate"))
    if credits is None:
        malformed("estimate", "data.estimated_credits is not a number")
    affordable = data.get("affordable")
    return Estimate(
        credits=credits,
        balance=number(data.get("balance")),
        affordable=affordable if isinstance(affordable, bool) else None,
    )


def parse_estimate_credits(data: dict[str, Any], _message: str) -> Estimate:
    credits = number(field(data, "credits", "estimate_credits"))
    if credits is None:
        malformed("estimate_credits", "data.credits is not a number")
    return Estimate(credits=credits, balance=None, affordable=None)


def parse_upload_slot(data: dict[str, Any], _message: str) -> UploadSlot:
    presigned = field(data, "presigned_url", "upload_url")
    file_url = field(data, "file_url", "upload_url")
    if not is_http_url(presigned) or not is_http_url(file_url):
        malformed("upload_url", "presigned_url/file_url are not http(s) URLs")
    return UploadSlot(presigned_url=presigned, file_url=file_url)


def parse_task_info(
    data: dict[str, Any], envelope_message: str, asked_id: str, redact: Redact
) -> TaskInfo:
    raw = data.get("status")
    if raw is None:
        malformed("info", "data.status is missing")
    raw_status = raw if isinstance(raw, str) else str(raw)
    status = _STATUSES.get(raw_status.strip().lower(), TaskStatus.UNKNOWN)
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        task_id = asked_id
    result = data.get("result")
    result = result if isinstance(result, dict) else {}
    urls = result.get("media_urls")
    media_urls = (
        tuple(u for u in urls if isinstance(u, str) and u) if isinstance(urls, list) else ()
    )
    error_message: str | None = None
    error_code: int | None = None
    if status is TaskStatus.FAILED:
        # The reason is result.message (crun's CLI), else data.message. The envelope message
        # describes the call, not the task: it counts only when it says more than "success".
        plain = envelope_message.strip().lower() in ("", "success", "ok")
        reasons = (result.get("message"), data.get("message"), None if plain else envelope_message)
        error_message = next((r for r in reasons if isinstance(r, str) and r), None)
        rcode = result.get("code")
        if isinstance(rcode, int) and not isinstance(rcode, bool):
            error_code = rcode
    create_at = number(data.get("create_at"))
    complete_at = number(data.get("complete_at"))
    return TaskInfo(
        task_id=task_id,
        status=status,
        media_urls=media_urls,
        error_message=redact(error_message) if error_message else None,
        error_code=error_code,
        credits=number(data.get("credits")),
        create_at=int(create_at) if create_at is not None else None,
        complete_at=int(complete_at) if complete_at is not None else None,
        duration_s=number(data.get("duration_s")),
        raw_status=raw_status,
    )


def parse_schema(data: dict[str, Any], _message: str) -> ModelSchema:
    try:
        return parse_model_schema(data)
    except SchemaUnreadable as exc:
        malformed("schema", str(exc))


# --- values ---------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """A finite number from a JSON number or numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))
