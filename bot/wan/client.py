"""Typed aiohttp client for crun.ai's job API (contract: shared wan-api.md, sections 1 and 4).

Only safe requests are retried (GETs, the unbilled estimate and the idempotent upload PUT).
CreateTask is billed, so it is sent exactly once whatever happens; the caller decides what an
ambiguous failure means.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import importlib.metadata
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, NoReturn, Self, TypeVar

import aiohttp
import yarl

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
from bot.wan.ratelimit import RateLimiter, Slot
from bot.wan.types import MODEL_ID, Estimate, ModelSchema, TaskInfo, TaskStatus, UploadSlot

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BASE_URL: Final = "https://api.crun.ai"

PATH_CREATE: Final = "/api/v1/client/job/CreateTask"
PATH_INFO: Final = "/api/v1/client/job/TaskInfo"
PATH_BALANCE: Final = "/api/v1/client/account/balance"
PATH_ESTIMATE: Final = "/api/v1/client/job/EstimateTask"
PATH_ESTIMATE_CREDITS: Final = "/api/v1/client/job/estimate-credits"
PATH_SCHEMA: Final = f"/api/v1/client/job/Models/{MODEL_ID}"  # the slash stays unescaped
PATH_UPLOAD_URL: Final = "/api/v1/client/files/upload-url"

# A JSON envelope is small; anything bigger is not what we asked for.
_MAX_REPLY_BYTES: Final = 4 * 1024 * 1024

_ERRORS_BY_CODE: Final[Mapping[int, type[WanApiError]]] = {
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


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("wanbot")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"wanbot/{version}"


USER_AGENT: Final = _user_agent()


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    retry_after: float | None


class WanClient:
    """One aiohttp session talking to crun; every call returns a typed value or raises WanApiError.

    ``on_call(endpoint, outcome)`` is a metrics hook, called once per HTTP attempt with ``"200"``,
    the error code as a string, ``"timeout"``, ``"connection"`` or ``"malformed"``.

    ``limiter`` is the one budget for every crun API request (retries included): each attempt
    waits for a slot, which is dated when its headers are on the wire; a 429 slows it, successes
    win the rate back. The upload PUT goes to a storage host, not crun's API, and is not counted.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        get_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        retry_after_cap: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        on_call: Callable[[str, str], None] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, connect=connect_timeout)
        self._get_retries = max(0, get_retries)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._retry_after_cap = retry_after_cap
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._on_call = on_call
        self._limiter = limiter
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Set once the legacy estimate path answered while the documented one said 404.
        self._estimate_fallback = False

    def __repr__(self) -> str:  # never show the key
        return f"WanClient(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        return self._base_url

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("WanClient is closed")
        if self._session is None or self._session.closed:
            # The key is added per request, not here: the upload PUT goes to a storage host.
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_date_slot)
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT}, trace_configs=[trace]
            )
        return self._session

    # --- public API --------------------------------------------------------------------------

    async def create_task(self, input: dict[str, Any], *, callback_url: str | None = None) -> str:
        """Submit a task and return its id. Billed: sent once, never retried.

        Any exception other than a ``WanConnectionError`` with ``sent=False`` (or a 4xx refusal)
        leaves it unknown whether crun created the task.
        """
        body: dict[str, Any] = {"model": MODEL_ID, "input": input}
        if callback_url is not None:
            body["callback_url"] = callback_url
        return await self._call(
            "create", "POST", PATH_CREATE, self._parse_task_id, json_body=body, retries=0
        )

    async def task_info(self, task_id: str, *, urgent: bool = False) -> TaskInfo:
        """``urgent``: a callback said the task moved and a member is waiting; it goes first."""

        def parse(data: dict[str, Any], message: str) -> TaskInfo:
            return self._parse_task_info(data, message, task_id)

        return await self._call(
            "info",
            "GET",
            PATH_INFO,
            parse,
            params={"task_id": task_id},
            retries=self._get_retries,
            urgent=urgent,
        )

    async def balance(self) -> float:
        def parse(data: dict[str, Any], _message: str) -> float:
            value = _number(self._field(data, "balance", "balance"))
            if value is None:
                self._malformed("balance", "data.balance is not a number")
            return value

        return await self._call("balance", "GET", PATH_BALANCE, parse, retries=self._get_retries)

    async def estimate(self, input: dict[str, Any]) -> Estimate:
        """Ask what a task would cost. Not billed, so it is retried like a GET."""
        body = {"model": MODEL_ID, "input": input}
        if not self._estimate_fallback:
            try:
                return await self._call(
                    "estimate",
                    "POST",
                    PATH_ESTIMATE,
                    self._parse_estimate,
                    json_body=body,
                    retries=self._get_retries,
                )
            except NotFound:
                log.info("crun %s answered 404; trying %s", PATH_ESTIMATE, PATH_ESTIMATE_CREDITS)
        estimate = await self._call(
            "estimate_credits",
            "POST",
            PATH_ESTIMATE_CREDITS,
            self._parse_estimate_credits,
            json_body=body,
            retries=self._get_retries,
        )
        # Only remember the legacy path once it worked: a 404 may also mean "unknown model".
        self._estimate_fallback = True
        return estimate

    async def model_schema(self) -> ModelSchema:
        return await self._call(
            "schema", "GET", PATH_SCHEMA, self._parse_schema, retries=self._get_retries
        )

    async def upload_slot(self, *, content_type: str, ext: str) -> UploadSlot:
        """Ask for a presigned upload URL (step 1 of wan-api.md 1.6)."""
        if not ext.startswith("."):
            ext = "." + ext
        return await self._call(
            "upload_url",
            "GET",
            PATH_UPLOAD_URL,
            self._parse_upload_slot,
            params={"content_type": content_type, "ext": ext},
            retries=self._get_retries,
        )

    async def upload(self, data: bytes, *, content_type: str, ext: str) -> str:
        """Store ``data`` through crun's presigned-URL flow and return the URL to put in input."""
        slot = await self.upload_slot(content_type=content_type, ext=ext)
        await self._put_bytes(slot.presigned_url, data, content_type=content_type)
        return slot.file_url

    # --- request machinery -------------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        parse: Callable[[dict[str, Any], str], T],
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        retries: int,
        urgent: bool = False,
    ) -> T:
        """Send an API request, retrying safe failures up to ``retries`` extra times.

        ``parse(data, envelope_message)`` runs inside the attempt, so a reply with missing
        fields counts (and is retried) as malformed like any other unusable reply.
        """
        url = self._base_url + path
        headers = {"x-api-key": self._api_key}
        payload: bytes | None = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(json_body, ensure_ascii=False).encode()
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with self._slot(urgent=urgent) as slot:
                    reply = await self._send(
                        endpoint,
                        method,
                        url,
                        headers=headers,
                        data=payload,
                        params=params,
                        slot=slot,
                    )
                retry_after = reply.retry_after
                data, message = self._parse_envelope(endpoint, reply)
                result = parse(data, message)
            except WanApiError as exc:
                if isinstance(exc, RateLimited) and self._limiter is not None:
                    self._limiter.penalize(exc.retry_after)
                if attempt >= retries or not _retryable(exc):
                    raise
                wait = self._backoff(attempt, retry_after)
                log.warning(
                    "crun %s attempt %d failed (%s); retrying in %.2fs",
                    endpoint,
                    attempt + 1,
                    exc,
                    wait,
                )
                attempt += 1
                await self._sleep(wait)
                continue
            self._record(endpoint, "200")
            if self._limiter is not None:
                self._limiter.reward()
            return result

    def _slot(self, *, urgent: bool) -> contextlib.AbstractAsyncContextManager[Slot | None]:
        if self._limiter is None:
            return contextlib.nullcontext()
        return self._limiter.slot(urgent=urgent)

    async def _put_bytes(self, url: str, data: bytes, *, content_type: str) -> None:
        # encoded=True: a presigned URL's query is signed byte for byte; never re-quote it.
        target = yarl.URL(url, encoded=True)
        headers = {"Content-Type": content_type, "Content-Length": str(len(data))}
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                reply = await self._send("upload_put", "PUT", target, headers=headers, data=data)
                retry_after = reply.retry_after
                if not 200 <= reply.status < 300:
                    cls = _error_class(reply.status)
                    self._record("upload_put", str(reply.status))
                    raise self._error(
                        cls, reply.status, reply.status, "upload rejected", retry_after
                    )
            except WanApiError as exc:
                if attempt >= self._get_retries or not _retryable(exc):
                    raise
                wait = self._backoff(attempt, retry_after)
                log.warning(
                    "crun upload_put attempt %d failed (%s); retrying in %.2fs",
                    attempt + 1,
                    exc,
                    wait,
                )
                attempt += 1
                await self._sleep(wait)
                continue
            self._record("upload_put", "200")
            return

    async def _send(
        self,
        endpoint: str,
        method: str,
        url: str | yarl.URL,
        *,
        headers: dict[str, str],
        data: bytes | None,
        params: dict[str, str] | None = None,
        slot: Slot | None = None,
    ) -> _Reply:
        """One HTTP attempt. Transport failures become WanTimeout / WanConnectionError."""
        session = self._get_session()
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=data,
                params=params,
                timeout=self._timeout,
                allow_redirects=False,
                trace_request_ctx={"slot": slot},
            ) as resp:
                body = await self._read_capped(endpoint, resp)
                return _Reply(resp.status, body, _parse_retry_after(resp.headers))
        except TimeoutError as exc:  # aiohttp's timeout errors subclass it too
            self._record(endpoint, "timeout")
            raise WanTimeout(f"crun {endpoint}: request timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            # No connection was made, so the server cannot have seen the request.
            self._record(endpoint, "connection")
            raise WanConnectionError(
                self._redact(f"crun {endpoint}: cannot connect ({type(exc).__name__}: {exc})"),
                sent=False,
            ) from exc
        except aiohttp.InvalidURL as exc:
            self._record(endpoint, "connection")
            raise WanConnectionError(
                self._redact(f"crun {endpoint}: invalid URL ({exc})"), sent=False
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Broke after (or while) sending: the request may have been processed.
            self._record(endpoint, "connection")
            raise WanConnectionError(
                self._redact(f"crun {endpoint}: connection lost ({type(exc).__name__}: {exc})"),
                sent=True,
            ) from exc

    async def _read_capped(self, endpoint: str, resp: aiohttp.ClientResponse) -> bytes:
        if resp.content_length is not None:
            if resp.content_length > _MAX_REPLY_BYTES:
                self._malformed(endpoint, f"reply too large ({resp.content_length} bytes)")
            # The parser stops at Content-Length, so this is capped too, without the chunk loop.
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > _MAX_REPLY_BYTES:
                self._malformed(endpoint, "reply too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse_envelope(self, endpoint: str, reply: _Reply) -> tuple[dict[str, Any], str]:
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
                cls = _error_class(reply.status)
                self._record(endpoint, str(reply.status))
                raise self._error(
                    cls, reply.status, None, "non-JSON error reply", reply.retry_after
                )
            self._malformed(endpoint, "reply is not a JSON envelope with an integer code")
        assert isinstance(doc, dict)
        message = doc.get("message")
        message = message if isinstance(message, str) else ""
        if code != 200:
            self._record(endpoint, str(code))
            raise self._error(_error_class(code), reply.status, code, message, reply.retry_after)
        data = doc.get("data")
        if not isinstance(data, dict):
            self._malformed(endpoint, "data is not an object")
        return data, message

    # --- reply parsers (lenient about extras, strict about what the bot needs) ---------------

    def _parse_task_id(self, data: dict[str, Any], _message: str) -> str:
        task_id = self._field(data, "task_id", "create")
        if isinstance(task_id, int) and not isinstance(task_id, bool):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id:
            self._malformed("create", "data.task_id is not a non-empty string")
        return task_id

    def _parse_estimate(self, data: dict[str, Any], _message: str) -> Estimate:
        credits = _number(self._field(data, "estimated_credits", "estimate"))
        if credits is None:
            self._malformed("estimate", "data.estimated_credits is not a number")
        affordable = data.get("affordable")
        return Estimate(
            credits=credits,
            balance=_number(data.get("balance")),
            affordable=affordable if isinstance(affordable, bool) else None,
        )

    def _parse_estimate_credits(self, data: dict[str, Any], _message: str) -> Estimate:
        credits = _number(self._field(data, "credits", "estimate_credits"))
        if credits is None:
            self._malformed("estimate_credits", "data.credits is not a number")
        return Estimate(credits=credits, balance=None, affordable=None)

    def _parse_upload_slot(self, data: dict[str, Any], _message: str) -> UploadSlot:
        presigned = self._field(data, "presigned_url", "upload_url")
        file_url = self._field(data, "file_url", "upload_url")
        if not _is_http_url(presigned) or not _is_http_url(file_url):
            self._malformed("upload_url", "presigned_url/file_url are not http(s) URLs")
        return UploadSlot(presigned_url=presigned, file_url=file_url)

    def _parse_task_info(
        self, data: dict[str, Any], envelope_message: str, asked_id: str
    ) -> TaskInfo:
        raw = data.get("status")
        if raw is None:
            self._malformed("info", "data.status is missing")
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
            msg = result.get("message")
            error_message = msg if isinstance(msg, str) and msg else envelope_message or None
            rcode = result.get("code")
            if isinstance(rcode, int) and not isinstance(rcode, bool):
                error_code = rcode
        create_at = _number(data.get("create_at"))
        complete_at = _number(data.get("complete_at"))
        return TaskInfo(
            task_id=task_id,
            status=status,
            media_urls=media_urls,
            error_message=self._redact(error_message) if error_message else None,
            error_code=error_code,
            credits=_number(data.get("credits")),
            create_at=int(create_at) if create_at is not None else None,
            complete_at=int(complete_at) if complete_at is not None else None,
            duration_s=_number(data.get("duration_s")),
            raw_status=raw_status,
        )

    def _parse_schema(self, data: dict[str, Any], _message: str) -> ModelSchema:
        # Be lenient about nesting: {input_schema...} or {model: {input_schema...}}.
        node: dict[str, Any] = data
        inner = data.get("model")
        if "input_schema" not in data and isinstance(inner, dict):
            node = inner
        schema = node.get("input_schema")
        required_raw = node.get("required_input_fields")
        if not isinstance(schema, dict) and not isinstance(required_raw, list):
            self._malformed("schema", "neither input_schema nor required_input_fields present")
        fields: set[str] = set()
        required: set[str] = set()
        if isinstance(schema, dict):
            props = schema.get("properties")
            if isinstance(props, dict):
                fields.update(k for k in props if isinstance(k, str))
                req = schema.get("required")
                if isinstance(req, list):
                    required.update(r for r in req if isinstance(r, str))
            else:
                fields.update(k for k in schema if isinstance(k, str))
        if isinstance(required_raw, list):
            required.update(r for r in required_raw if isinstance(r, str))
        fields |= required
        model = node.get("model") if isinstance(node.get("model"), str) else None
        if model is None:
            model_id = node.get("model_id") or node.get("id")
            model = model_id if isinstance(model_id, str) else MODEL_ID
        return ModelSchema(
            model=model,
            input_fields=frozenset(fields),
            required_fields=frozenset(required),
            raw=data,
        )

    # --- helpers -----------------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self._retry_after_cap)
        ceiling = min(self._backoff_cap, self._backoff_base * 2.0**attempt)
        return ceiling * self._rng.random()

    def _record(self, endpoint: str, outcome: str) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(endpoint, outcome)
        except Exception:
            log.exception("on_call hook failed for %s/%s", endpoint, outcome)

    def _redact(self, text: str) -> str:
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text

    def _error(
        self,
        cls: type[WanApiError],
        status: int,
        code: int | None,
        message: str,
        retry_after: float | None,
    ) -> WanApiError:
        message = self._redact(message)
        if cls is RateLimited:
            return RateLimited(status, code, message, retry_after)
        return cls(status, code, message)

    def _field(self, data: dict[str, Any], name: str, endpoint: str) -> Any:
        if name not in data:
            self._malformed(endpoint, f"data.{name} is missing")
        return data[name]

    def _malformed(self, endpoint: str, why: str) -> NoReturn:
        self._record(endpoint, "malformed")
        raise MalformedResponse(0, None, f"crun {endpoint}: {why}")


def _error_class(code: int) -> type[WanApiError]:
    cls = _ERRORS_BY_CODE.get(code)
    if cls is not None:
        return cls
    if 500 <= code < 600:
        return ServerError
    return WanApiError


async def _date_slot(
    _session: aiohttp.ClientSession,
    context: Any,
    _params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    """The request's headers are on the wire: this is when crun sees it, so date its slot."""
    request_ctx = getattr(context, "trace_request_ctx", None)
    slot = request_ctx.get("slot") if isinstance(request_ctx, Mapping) else None
    if isinstance(slot, Slot):
        slot.sent()


def _retryable(exc: WanApiError) -> bool:
    if isinstance(exc, WanTimeout | WanConnectionError | MalformedResponse):
        return True
    code = exc.code if exc.code is not None else exc.status
    return code in (408, 429, 455) or (500 <= code < 600 and code not in (501, 505))


def _number(value: Any) -> float | None:
    """A finite number from a JSON number or numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (delta-seconds or HTTP-date); None when absent or unreadable."""
    raw = headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    seconds = _number(raw)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
