"""Typed aiohttp client for crun.ai's job API (contract: shared wan-api.md, sections 1 and 4).

Only safe requests are retried (GETs, the unbilled estimate and the idempotent upload PUT).
CreateTask is billed, so it is sent exactly once whatever happens; the caller decides what an
ambiguous failure means. HTTP and retries live in ``bot.wan.transport``, reading the replies in
``bot.wan.replies``; this module says which request each call is and how it may be retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiohttp
import yarl

from bot.errors import NotFound
from bot.wan import replies
from bot.wan.ratelimit import RateLimiter
from bot.wan.replies import Reply
from bot.wan.transport import USER_AGENT, Backoff, Request, Transport
from bot.wan.types import MODEL_ID, Estimate, ModelSchema, TaskInfo, UploadSlot

__all__ = [
    "DEFAULT_BASE_URL",
    "PATH_BALANCE",
    "PATH_CREATE",
    "PATH_ESTIMATE",
    "PATH_ESTIMATE_CREDITS",
    "PATH_INFO",
    "PATH_SCHEMA",
    "PATH_UPLOAD_URL",
    "USER_AGENT",
    "WanClient",
]

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

# A JSON envelope is small; anything bigger is not what we asked for. Read at call time.
_MAX_REPLY_BYTES: Final = 4 * 1024 * 1024


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
        self._get_retries = max(0, get_retries)
        self._transport = Transport(
            timeout=aiohttp.ClientTimeout(total=request_timeout, connect=connect_timeout),
            backoff=Backoff(backoff_base, backoff_cap, retry_after_cap),
            sleep=sleep,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
            redact=self._redact,
            log=log,
            on_call=on_call,
            limiter=limiter,
        )
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
        await self._transport.close()

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
        return await self._call(
            "balance", "GET", PATH_BALANCE, replies.parse_balance, retries=self._get_retries
        )

    async def estimate(self, input: dict[str, Any]) -> Estimate:
        """Ask what a task would cost. Not billed, so it is retried like a GET."""
        body = {"model": MODEL_ID, "input": input}
        if not self._estimate_fallback:
            try:
                return await self._call(
                    "estimate",
                    "POST",
                    PATH_ESTIMATE,
                    replies.parse_estimate,
                    json_body=body,
                    retries=self._get_retries,
                )
            except NotFound:
                log.info("crun %s answered 404; trying %s", PATH_ESTIMATE, PATH_ESTIMATE_CREDITS)
        estimate = await self._call(
            "estimate_credits",
            "POST",
            PATH_ESTIMATE_CREDITS,
            replies.parse_estimate_credits,
            json_body=body,
            retries=self._get_retries,
        )
        # Only remember the legacy path once it worked: a 404 may also mean "unknown model".
        self._estimate_fallback = True
        return estimate

    async def model_schema(self) -> ModelSchema:
        return await self._call(
            "schema", "GET", PATH_SCHEMA, replies.parse_schema, retries=self._get_retries
        )

    async def upload_slot(self, *, content_type: str, ext: str) -> UploadSlot:
        """Ask for a presigned upload URL (step 1 of wan-api.md 1.6)."""
        if not ext.startswith("."):
            ext = "." + ext
        return await self._call(
            "upload_url",
            "GET",
            PATH_UPLOAD_URL,
            replies.parse_upload_slot,
            params={"content_type": content_type, "ext": ext},
            retries=self._get_retries,
        )

    async def upload(self, data: bytes, *, content_type: str, ext: str) -> str:
        """Store ``data`` through crun's presigned-URL flow and return the URL to put in input."""
        slot = await self.upload_slot(content_type=content_type, ext=ext)
        await self._put_bytes(slot.presigned_url, data, content_type=content_type)
        return slot.file_url

    # --- requests ----------------------------------------------------------------------------

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
        """An API request: keyed, metered by the rate limiter, its envelope parsed per attempt."""
        headers = {"x-api-key": self._api_key}
        payload: bytes | None = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(json_body, ensure_ascii=False).encode()
        request = Request(endpoint, method, self._base_url + path, headers, payload, params)

        def interpret(reply: Reply) -> T:
            return parse(*self._parse_envelope(endpoint, reply))

        return await self._transport.call(
            request,
            interpret,
            retries=retries,
            metered=True,
            max_bytes=_MAX_REPLY_BYTES,
            urgent=urgent,
        )

    async def _put_bytes(self, url: str, data: bytes, *, content_type: str) -> None:
        # encoded=True: a presigned URL's query is signed byte for byte; never re-quote it.
        target = yarl.URL(url, encoded=True)
        headers = {"Content-Type": content_type, "Content-Length": str(len(data))}
        request = Request("upload_put", "PUT", target, headers, data)

        def interpret(reply: Reply) -> None:
            replies.check_upload(reply, self._redact)

        await self._transport.call(
            request,
            interpret,
            retries=self._get_retries,
            metered=False,  # a storage host, not crun's API
            max_bytes=_MAX_REPLY_BYTES,
        )

    # --- reading replies (the key is redacted from anything crun echoes back) ----------------

    def _parse_envelope(self, endpoint: str, reply: Reply) -> tuple[dict[str, Any], str]:
        return replies.parse_envelope(endpoint, reply, self._redact)

    def _parse_task_id(self, data: dict[str, Any], message: str) -> str:
        return replies.parse_task_id(data, message)

    def _parse_task_info(
        self, data: dict[str, Any], envelope_message: str, asked_id: str
    ) -> TaskInfo:
        return replies.parse_task_info(data, envelope_message, asked_id, self._redact)

    def _redact(self, text: str) -> str:
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text
