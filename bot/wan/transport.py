"""HTTP for the crun client: one aiohttp session, one attempt, one retry loop.

Every attempt ends in a ``Reply`` or a ``WanApiError`` (transport failures become ``WanTimeout``
/ ``WanConnectionError``), and reports one outcome to the ``on_call`` metrics hook. The retry
loop serves the API calls and the upload PUT alike; the caller says how many retries a request
may have (none for the billed CreateTask) and whether it counts against crun's rate limit.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib.metadata
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp
import yarl

from bot.errors import (
    MalformedResponse,
    RateLimited,
    WanApiError,
    WanConnectionError,
    WanTimeout,
)
from bot.wan.ratelimit import RateLimiter, Slot
from bot.wan.replies import Redact, Reply, malformed, number

T = TypeVar("T")


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("wanbot")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"wanbot/{version}"


USER_AGENT: Final = _user_agent()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as sent on every attempt. ``endpoint`` names it in metrics and logs."""

    endpoint: str
    method: str
    url: str | yarl.URL
    headers: Mapping[str, str]
    data: bytes | None = None
    params: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter; a server's ``Retry-After`` wins (capped)."""

    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        ceiling = min(self.cap, self.base * 2.0**attempt)
        return ceiling * rng.random()


class Transport:
    """The session and the retry loop behind ``WanClient``.

    ``limiter`` is the one budget for crun API requests: each *metered* attempt waits for a slot,
    dated by the trace hook when its headers are sent; a 429 slows it, a success wins the rate
    back. Requests to other hosts (the upload PUT) are not metered. ``log`` is the logger retries
    are reported on (the client's, so operators see one name for crun calls).
    """

    def __init__(
        self,
        *,
        timeout: aiohttp.ClientTimeout,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]],
        rng: random.Random,
        redact: Redact,
        log: logging.Logger,
        on_call: Callable[[str, str], None] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._timeout = timeout
        self._backoff = backoff
        self._sleep = sleep
        self._rng = rng
        self._redact = redact
        self._log = log
        self._on_call = on_call
        self._limiter = limiter
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        self._closed = True
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("WanClient is closed")
        if self._session is None or self._session.closed:
            # No key here: it is added per request, since the upload PUT goes to a storage host.
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_date_slot)
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT}, trace_configs=[trace]
            )
        return self._session

    # --- the retry loop ----------------------------------------------------------------------

    async def call(
        self,
        request: Request,
        interpret: Callable[[Reply], T],
        *,
        retries: int,
        metered: bool,
        max_bytes: int,
        urgent: bool = False,
    ) -> T:
        """Send ``request``, retrying safe failures up to ``retries`` extra times.

        ``interpret(reply)`` runs inside the attempt, so a reply it cannot use counts (and is
        retried) like any other failed attempt.
        """
        endpoint = request.endpoint
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with self._slot(metered=metered, urgent=urgent) as slot:
                    reply = await self._send(request, slot=slot, max_bytes=max_bytes)
                retry_after = reply.retry_after
                result = interpret(reply)
            except WanApiError as exc:
                self._record(endpoint, _outcome(exc))
                if metered and isinstance(exc, RateLimited) and self._limiter is not None:
                    self._limiter.penalize(exc.retry_after)
                if attempt >= retries or not _retryable(exc):
                    raise
                wait = self._backoff.delay(attempt, retry_after, self._rng)
                self._log.warning(
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
            if metered and self._limiter is not None:
                self._limiter.reward()
            return result

    def _slot(
        self, *, metered: bool, urgent: bool
    ) -> contextlib.AbstractAsyncContextManager[Slot | None]:
        if not metered or self._limiter is None:
            return contextlib.nullcontext()
        return self._limiter.slot(urgent=urgent)

    # --- one attempt -------------------------------------------------------------------------

    async def _send(self, request: Request, *, slot: Slot | None, max_bytes: int) -> Reply:
        """One HTTP attempt. Transport failures become WanTimeout / WanConnectionError."""
        endpoint = request.endpoint
        session = self._get_session()
        try:
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.data,
                params=request.params,
                timeout=self._timeout,
                allow_redirects=False,
                trace_request_ctx={"slot": slot},
            ) as resp:
                body = await _read_capped(endpoint, resp, max_bytes)
                return Reply(resp.status, body, parse_retry_after(resp.headers))
        except TimeoutError as exc:  # aiohttp's timeout errors subclass it too
            raise WanTimeout(self._redact(_timeout_text(request, exc, self._timeout))) from exc
        except aiohttp.ClientConnectorError as exc:
            # No connection was made, so the server cannot have seen the request.
            where = f"{exc.host}:{exc.port}"
            raise WanConnectionError(
                self._redact(f"{_what(request)}: cannot connect to {where}: {_cause(exc)}"),
                sent=False,
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise WanConnectionError(
                self._redact(f"crun {endpoint}: invalid URL ({exc})"), sent=False
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Broke after (or while) sending: the request may have been processed.
            raise WanConnectionError(
                self._redact(
                    f"{_what(request)}: connection to {_host(request)} lost "
                    f"({type(exc).__name__}: {exc})"
                ),
                sent=True,
            ) from exc

    def _record(self, endpoint: str, outcome: str) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(endpoint, outcome)
        except Exception:
            self._log.exception("on_call hook failed for %s/%s", endpoint, outcome)


async def _read_capped(endpoint: str, resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if resp.content_length is not None:
        if resp.content_length > max_bytes:
            malformed(endpoint, f"reply too large ({resp.content_length} bytes)")
        # The parser stops at Content-Length, so this is capped too, without the chunk loop.
        return await resp.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            malformed(endpoint, "reply too large")
        chunks.append(chunk)
    return b"".join(chunks)


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


def _url(request: Request) -> yarl.URL:
    return request.url if isinstance(request.url, yarl.URL) else yarl.URL(request.url)


def _host(request: Request) -> str:
    url = _url(request)
    return f"{url.host}:{url.port}"


def _what(request: Request) -> str:
    """Which request failed, e.g. ``crun balance (GET /api/v1/client/account/balance)``: never
    the query, where a presigned upload URL keeps its signature."""
    return f"crun {request.endpoint} ({request.method} {_url(request).path})"


def _cause(exc: aiohttp.ClientConnectorError) -> str:
    """Why no connection was made, in the words a user searches for."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "the server's TLS certificate was not accepted"
    err = exc.os_error
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(err, socket.gaierror):
        return f"host name not found ({err.strerror or err})"
    if isinstance(err, ssl.SSLError):
        return f"TLS handshake failed ({err.reason or err})"
    return err.strerror or str(err) or type(err).__name__


def _timeout_text(request: Request, exc: TimeoutError, timeout: aiohttp.ClientTimeout) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"{_what(request)}: no connection to {_host(request)} within {timeout.connect} s"
    return f"{_what(request)}: no answer from {_host(request)} within {timeout.total} s"


def _outcome(exc: WanApiError) -> str:
    """What the metrics hook hears about a failed attempt."""
    if isinstance(exc, MalformedResponse):
        return "malformed"
    if isinstance(exc, WanTimeout):
        return "timeout"
    if isinstance(exc, WanConnectionError):
        return "connection"
    return str(exc.code if exc.code is not None else exc.status)


def _retryable(exc: WanApiError) -> bool:
    if isinstance(exc, WanTimeout | WanConnectionError | MalformedResponse):
        return True
    code = exc.code if exc.code is not None else exc.status
    return code in (408, 429, 455) or (500 <= code < 600 and code not in (501, 505))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (delta-seconds or HTTP-date); None when absent or unreadable."""
    raw = headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    seconds = number(raw)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
