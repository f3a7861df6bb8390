"""An in-process fake of crun.ai's job API (shared wan-api.md), speaking real HTTP on 127.0.0.1.

Usage::

    async with FakeCrun() as crun:          # or: crun = FakeCrun(); await crun.start()
        client = WanClient(crun.api_key, base_url=crun.base_url)

Everything the fake does is steered through plain attributes and a few methods:

Task life
    ``task_latency`` (seconds, default 0.05): pending -> running at half of it -> terminal, on the
    loop clock. ``None`` = manual mode: tasks stay pending until ``finish()`` (or
    ``set_status()``). ``latency_fn(input) -> seconds`` overrides it per task (benchmarks);
    ``set_latency(task_id, seconds)`` changes one task. ``outcome(input) -> None |
    ("failed", message)`` decides, at create time, how an automatic task ends.
Results
    ``media_urls`` point at ``/media/<task_id>/<i>.png`` (``n`` of them). PNGs are drawn with
    Pillow at ``image_size`` (in a thread) unless ``image_bytes`` is set. Terminal tasks report
    ``credits = credits_per_image * n``; ``balance`` is charged at create time (402 when short).
    ``charge_failed=False`` refunds failed tasks.
Forced errors (queued FIFO per endpoint name, see ``ENDPOINTS``)
    ``fail()``, ``malformed()``, ``truncated()``, ``drop()``, ``slow()``; for CreateTask also
    ``fail_after_create()`` (the task IS created and billed, the reply is lost: the ambiguous
    submit). ``clear_faults()`` empties the queues.
Envelope status
    ``http_mirrors_code`` (default True): HTTP status == envelope code; False: always HTTP 200.
Records
    ``calls`` (Counter per endpoint), ``requests`` [(endpoint, JSON body / query / summary)],
    ``headers_log`` [(endpoint, headers)], ``tasks`` {task_id: FakeTask}, ``uploads``
    {upload_id: bytes}, ``callback_log`` [CallbackAttempt].
Callbacks
    ``callbacks_enabled``, ``callback_delay``, ``callback_duplicates``, ``callback_lie`` (a dict
    merged over ``{"task_id": <real id>}`` and sent instead of the truth);
    ``await wait_for_callbacks(n, timeout)``.
Schema
    ``schema_fields``, ``required_fields``; ``estimate_task_enabled`` /
    ``estimate_credits_enabled`` (False = that path answers 404, to exercise the fallback).
    ``shape`` (a name from tests/fixtures/crun/schemas or a ``crun_shapes.Shape``; None = the
    knobs above): Models answers the shape's reply, CreateTask and both estimates answer 422
    naming the field when ``input`` breaks its strict ``accepts`` schema, and the image count
    comes from the shape's count field (e.g. ``parameters.n``).
Replayed replies
    ``set_info_reply(task_id, envelope)``: TaskInfo for that id answers exactly ``envelope``
    (HTTP 200), whatever the fake knows about the task.
Overlapping TaskInfo (benchmarks)
    ``info_delay`` (seconds, default 0.0): TaskInfo waits this long before answering, so two
    requests for one task at the same time overlap visibly. ``info_overlaps``: how many TaskInfo
    requests started while another for the same task id was still being answered;
    ``info_peak`` {task_id: most TaskInfo requests for it in flight at once}.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from aiohttp import web
from PIL import Image, ImageDraw

from bot.wan.types import MODEL_ID
from tests.fakes.crun_shapes import SHAPE_NAMES, Shape, load_shape

ENDPOINTS = (
    "create",
    "info",
    "balance",
    "estimate",
    "estimate_credits",
    "schema",
    "upload_url",
    "upload_put",
    "media",
    "files",
)

DEFAULT_SCHEMA_FIELDS: tuple[str, ...] = (
    "prompt",
    "img_urls",
    "resolution",
    "aspect_ratio",
    "n",
    "enable_sequential",
    "thinking_mode",
    "color_palette",
    "bbox_list",
    "watermark",
    "seed",
)

_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "prompt": {"type": "string", "maxLength": 5000},
    "img_urls": {"type": "array", "items": {"type": "string", "format": "uri"}, "maxItems": 9},
    "resolution": {"type": "string", "enum": ["1K", "2K", "4K"], "default": "2K"},
    "aspect_ratio": {"type": "string"},
    "n": {"type": "integer", "minimum": 1, "maximum": 12},
    "enable_sequential": {"type": "boolean", "default": False},
    "thinking_mode": {"type": "boolean"},
    "color_palette": {"type": "array"},
    "bbox_list": {"type": "array"},
    "watermark": {"type": "boolean", "default": False},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2147483647},
}

Outcome = tuple[str, str] | None


@dataclass
class FakeTask:
    task_id: str
    input: dict[str, Any]
    callback_url: str | None
    created: float  # loop clock
    create_at: int  # unix seconds, as crun reports it
    cost: float
    n: int
    latency: float | None  # None = manual
    planned: Outcome = None  # how an automatic task ends
    status: str = "pending"
    message: str | None = None
    credits: float | None = None
    complete_at: int | None = None
    media_urls: list[str] = field(default_factory=list)
    handles: list[asyncio.TimerHandle] = field(default_factory=list, repr=False)

    @property
    def terminal(self) -> bool:
        return self.status in ("success", "failed")


@dataclass
class CallbackAttempt:
    task_id: str
    url: str
    status: int | None  # HTTP status the receiver answered, None when the POST failed
    error: str | None
    body: dict[str, Any]


@dataclass
class _Fault:
    kind: Literal["fail", "malformed", "truncated", "drop", "slow"]
    times: int
    code: int = 500
    http_status: int | None = None
    message: str | None = None
    retry_after: float | str | None = None
    body: bytes = b""
    seconds: float = 0.0
    abort: bool = False


@dataclass
class _AfterCreate:
    mode: Literal["500", "drop", "slow"]
    times: int
    seconds: float


@dataclass
class _Slot:
    content_type: str
    ext: str
    sig: str


def render_png(size: tuple[int, int], seed: str, index: int) -> bytes:
    """A solid colour picked from ``seed`` with the index drawn on it (blocking; use a thread)."""
    digest = hashlib.sha256(f"{seed}/{index}".encode()).digest()
    img = Image.new("RGB", size, (digest[0], digest[1], digest[2]))
    ImageDraw.Draw(img).text((2, 2), str(index), fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class FakeCrun:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        task_latency: float | None = 0.05,
        latency_fn: Callable[[dict[str, Any]], float] | None = None,
        outcome: Callable[[dict[str, Any]], Outcome] | None = None,
        image_size: tuple[int, int] = (64, 64),
        image_bytes: bytes | None = None,
        credits_per_image: float = 5.0,
        balance: float = 1000.0,
        charge_failed: bool = True,
        http_mirrors_code: bool = True,
        callbacks_enabled: bool = True,
        callback_delay: float = 0.0,
        callback_duplicates: int = 1,
        callback_lie: dict[str, Any] | None = None,
        schema_fields: tuple[str, ...] | list[str] | frozenset[str] = DEFAULT_SCHEMA_FIELDS,
        required_fields: set[str] | frozenset[str] = frozenset({"prompt"}),
        task_id_factory: Callable[[], str] | None = None,
        estimate_task_enabled: bool = True,
        estimate_credits_enabled: bool = True,
        shape: str | Shape | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        # A random key per instance, shaped like crun's (ak_ + 32), so leak tests can grep for it.
        self.api_key = api_key if api_key is not None else "ak_" + secrets.token_hex(16)
        self.task_latency = task_latency
        self.latency_fn = latency_fn
        self.outcome = outcome
        self.image_size = image_size
        self.image_bytes = image_bytes
        self.credits_per_image = credits_per_image
        self.balance = balance
        self.charge_failed = charge_failed
        self.http_mirrors_code = http_mirrors_code
        self.callbacks_enabled = callbacks_enabled
        self.callback_delay = callback_delay
        self.callback_duplicates = callback_duplicates
        self.callback_lie = callback_lie
        self.schema_fields = list(schema_fields)
        self.required_fields = set(required_fields)
        self.task_id_factory = task_id_factory
        self.estimate_task_enabled = estimate_task_enabled
        self.estimate_credits_enabled = estimate_credits_enabled
        self.shape = load_shape(shape) if isinstance(shape, str) else shape
        self.host = host
        self.port = port

        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        # (endpoint, time.monotonic()) of every request as it arrived: what crun's rate limit sees.
        self.arrivals: list[tuple[str, float]] = []
        self.headers_log: list[tuple[str, dict[str, str]]] = []
        self.tasks: dict[str, FakeTask] = {}
        self.uploads: dict[str, bytes] = {}
        self.callback_log: list[CallbackAttempt] = []
        self.info_replies: dict[str, dict[str, Any]] = {}
        self.info_delay = 0.0
        self.info_overlaps = 0
        self.info_peak: dict[str, int] = {}
        self._info_in_flight: Counter[str] = Counter()

        self._faults: dict[str, deque[_Fault]] = {name: deque() for name in ENDPOINTS}
        self._after_create: deque[_AfterCreate] = deque()
        self._slots: dict[str, _Slot] = {}
        self._png_cache: dict[tuple[str, int], bytes] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._cb_cond: asyncio.Condition | None = None
        self._stopping: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._cb_session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeCrun is not started")
        return self._base_url

    async def start(self) -> FakeCrun:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        r = app.router
        job = "/api/v1/client/job"
        r.add_post(f"{job}/CreateTask", self._wrap("create", self._h_create))
        r.add_get(f"{job}/TaskInfo", self._wrap("info", self._h_info))
        r.add_get("/api/v1/client/account/balance", self._wrap("balance", self._h_balance))
        r.add_post(f"{job}/EstimateTask", self._wrap("estimate", self._h_estimate))
        r.add_post(
            f"{job}/estimate-credits", self._wrap("estimate_credits", self._h_estimate_credits)
        )
        r.add_get(job + "/Models/{model:.+}", self._wrap("schema", self._h_schema))
        r.add_get("/api/v1/client/files/upload-url", self._wrap("upload_url", self._h_upload_url))
        r.add_put("/upload/{upload_id}", self._wrap("upload_put", self._h_upload_put, auth=False))
        r.add_get("/files/{name}", self._wrap("files", self._h_files, auth=False))
        r.add_get("/media/{task_id}/{name}", self._wrap("media", self._h_media, auth=False))

        self._stopping = asyncio.Event()
        self._cb_cond = asyncio.Condition()
        self._cb_session = aiohttp.ClientSession()
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base_url = f"http://{self.host}:{port}"
        return self

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # wakes slow handlers and delayed callbacks
        for task in self.tasks.values():
            _cancel_handles(task)
        for bg in list(self._background):
            bg.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._cb_session is not None:
            await self._cb_session.close()
            self._cb_session = None

    async def __aenter__(self) -> FakeCrun:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- knobs: forced errors ----------------------------------------------------------------

    def fail(
        self,
        endpoint: str,
        code: int,
        *,
        times: int = 1,
        http_status: int | None = None,
        message: str | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with envelope ``code`` (no side effects)."""
        self._queue(
            endpoint,
            _Fault(
                "fail",
                times,
                code=code,
                http_status=http_status,
                message=message,
                retry_after=retry_after,
            ),
        )

    def malformed(
        self,
        endpoint: str,
        *,
        times: int = 1,
        body: bytes | str = b"{not json",
        http_status: int = 200,
        retry_after: float | str | None = None,
    ) -> None:
        """Answer with exactly ``body`` (JSON content type) and ``http_status``; no side effects.

        Also the way to serve any hand-written reply (e.g. an odd but valid TaskInfo).
        """
        raw = body.encode() if isinstance(body, str) else body
        self._queue(
            endpoint,
            _Fault("malformed", times, body=raw, http_status=http_status, retry_after=retry_after),
        )

    def truncated(self, endpoint: str, *, times: int = 1, abort: bool = False) -> None:
        """Process the request normally (side effects happen!) but send half the reply.

        ``abort=False``: a complete HTTP reply whose body is the first half of the JSON.
        ``abort=True``: announce the full Content-Length, send half, then cut the connection
        (the client sees a payload error after the request was processed).
        """
        self._queue(endpoint, _Fault("truncated", times, abort=abort))

    def drop(self, endpoint: str, *, times: int = 1) -> None:
        """Abort the connection without replying (before any processing)."""
        self._queue(endpoint, _Fault("drop", times))

    def slow(self, endpoint: str, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before processing. The request is still processed afterwards even if
        the client gave up (aiohttp does not cancel handlers), so a slow create still creates."""
        self._queue(endpoint, _Fault("slow", times, seconds=seconds))

    def fail_after_create(
        self, *, times: int = 1, mode: Literal["500", "drop", "slow"] = "500", seconds: float = 5.0
    ) -> None:
        """CreateTask creates (and bills) the task, then answers 500, drops, or stalls
        ``seconds`` before a normal reply: the ambiguous submit."""
        self._after_create.append(_AfterCreate(mode, times, seconds))

    def clear_faults(self) -> None:
        for q in self._faults.values():
            q.clear()
        self._after_create.clear()

    # --- knobs: tasks ------------------------------------------------------------------------

    def finish(
        self,
        task_id: str,
        status: Literal["success", "failed"] = "success",
        message: str | None = None,
    ) -> None:
        """End a task now (manual mode, or to cut an automatic one short)."""
        task = self.tasks[task_id]
        _cancel_handles(task)
        task.latency = None
        self._complete(task, status, message)

    def set_status(self, task_id: str, status: str) -> None:
        """Put any raw (non-terminal or unknown) status on a task and stop its automatic life."""
        task = self.tasks[task_id]
        _cancel_handles(task)
        task.latency = None
        task.status = status

    def set_info_reply(self, task_id: str, envelope: dict[str, Any]) -> None:
        """Answer TaskInfo for ``task_id`` with exactly ``envelope`` (a replayed crun reply)."""
        self.info_replies[task_id] = envelope

    def set_latency(self, task_id: str, seconds: float | None) -> None:
        """Change one task's latency (counted from its creation); None = manual."""
        task = self.tasks[task_id]
        _cancel_handles(task)
        task.latency = seconds
        self._schedule(task)

    async def wait_for_callbacks(
        self,
        n: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - a test helper with a built-in deadline
    ) -> list[CallbackAttempt]:
        """Wait until ``callback_log`` holds at least ``n`` attempts."""
        assert self._cb_cond is not None, "FakeCrun is not started"
        async with asyncio.timeout(timeout), self._cb_cond:
            await self._cb_cond.wait_for(lambda: len(self.callback_log) >= n)
        return list(self.callback_log)

    def requests_for(self, endpoint: str) -> list[dict[str, Any]]:
        """The recorded bodies (or queries) of one endpoint's requests, oldest first."""
        return [body for name, body in self.requests if name == endpoint]

    def task_data(self, task_id: str) -> dict[str, Any]:
        """What TaskInfo's ``data`` says about a task right now."""
        task = self.tasks[task_id]
        self._advance(task)
        return self._task_data(task)

    # --- request plumbing --------------------------------------------------------------------

    def _queue(self, endpoint: str, fault: _Fault) -> None:
        if endpoint not in self._faults:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {ENDPOINTS}")
        if fault.times > 0:
            self._faults[endpoint].append(fault)

    def _take_fault(self, endpoint: str) -> _Fault | None:
        q = self._faults[endpoint]
        if not q:
            return None
        fault = q[0]
        fault.times -= 1
        if fault.times <= 0:
            q.popleft()
        return fault

    def _wrap(
        self,
        endpoint: str,
        handler: Callable[[web.Request, Any], Awaitable[web.StreamResponse]],
        *,
        auth: bool = True,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.arrivals.append((endpoint, time.monotonic()))
            self.calls[endpoint] += 1
            body = await request.read()
            payload: Any
            if request.method == "POST":
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"_raw": body.decode("utf-8", "replace")}
                record = payload if isinstance(payload, dict) else {"_json": payload}
            elif request.method == "PUT":
                payload = body
                record = {
                    "path": request.path,
                    "size": len(body),
                    "content_type": request.headers.get("Content-Type", ""),
                }
            else:
                payload = dict(request.query)
                record = payload if request.query else {"path": request.path}
            self.requests.append((endpoint, record))
            self.headers_log.append((endpoint, dict(request.headers)))

            fault = self._take_fault(endpoint)
            if fault is not None:
                if fault.kind == "slow":
                    if await self._pause(fault.seconds):
                        return _drop(request)  # shutting down: do not start new work
                elif fault.kind == "drop":
                    return _drop(request)
                elif fault.kind == "fail":
                    return self._envelope(
                        fault.code,
                        fault.message or f"forced error {fault.code}",
                        http_status=fault.http_status,
                        retry_after=fault.retry_after,
                    )
                elif fault.kind == "malformed":
                    headers = (
                        {"Retry-After": str(fault.retry_after)}
                        if fault.retry_after is not None
                        else None
                    )
                    return web.Response(
                        body=fault.body,
                        status=fault.http_status or 200,
                        content_type="application/json",
                        headers=headers,
                    )
            if auth and request.headers.get("x-api-key") != self.api_key:
                return self._envelope(401, "invalid or missing API key")
            resp = await handler(request, payload)
            if fault is not None and fault.kind == "truncated":
                return await _truncate(request, resp, abort=fault.abort)
            return resp

        return wrapped

    def _envelope(
        self,
        code: int,
        message: str = "success",
        data: Any = None,
        *,
        http_status: int | None = None,
        retry_after: float | str | None = None,
    ) -> web.Response:
        if http_status is None:
            http_status = code if self.http_mirrors_code else 200
        if not 100 <= http_status <= 599:
            http_status = 500
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response(
            {"code": code, "message": message, "data": data}, status=http_status, headers=headers
        )

    async def _pause(self, seconds: float) -> bool:
        """Sleep, but end early when the fake stops (so stop() never waits on a slow reply).
        Returns True when it was cut short by stop()."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- validation shared by create and the estimates ---------------------------------------

    def _check_job(self, body: Any) -> tuple[dict[str, Any], int, float] | web.Response:
        if not isinstance(body, dict):
            return self._envelope(422, "body must be a JSON object")
        if body.get("model") != MODEL_ID:
            return self._envelope(404, f"model not found: {body.get('model')!r}")
        inp = body.get("input")
        if not isinstance(inp, dict):
            return self._envelope(422, "input must be an object")
        n = self._check_input(inp)
        if isinstance(n, web.Response):
            return n
        cb = body.get("callback_url")
        if cb is not None and not isinstance(cb, str):
            return self._envelope(422, "callback_url must be a string")
        return inp, n, self.credits_per_image * n

    def _check_input(self, inp: dict[str, Any]) -> int | web.Response:
        """How many images ``inp`` asks for, or the 422 that refuses it."""
        if self.shape is not None:  # a replayed shape: its strict rules instead of the knobs
            problem = self.shape.validate(inp)
            return self.shape.count(inp) if problem is None else self._envelope(422, problem)
        unknown = sorted(set(inp) - set(self.schema_fields))
        if unknown:
            return self._envelope(422, f"unknown input fields: {', '.join(unknown)}")
        missing = sorted(f for f in self.required_fields if inp.get(f) in (None, ""))
        if missing:
            return self._envelope(422, f"missing required fields: {', '.join(missing)}")
        if "prompt" in inp and not isinstance(inp["prompt"], str):
            return self._envelope(422, "prompt must be a string")
        n = inp.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 12:
            return self._envelope(422, "n must be an integer between 1 and 12")
        return n

    # --- handlers ----------------------------------------------------------------------------

    async def _h_create(self, request: web.Request, body: Any) -> web.StreamResponse:
        checked = self._check_job(body)
        if isinstance(checked, web.Response):
            return checked
        inp, n, cost = checked
        if self.balance < cost:
            return self._envelope(402, "insufficient credits")
        loop = asyncio.get_running_loop()
        task_id = self.task_id_factory() if self.task_id_factory else f"task_{uuid.uuid4().hex}"
        latency = self.latency_fn(inp) if self.latency_fn is not None else self.task_latency
        planned = self.outcome(inp) if self.outcome is not None else None
        if planned is not None and (len(planned) != 2 or planned[0] != "failed"):
            raise ValueError(f"outcome must return None or ('failed', message), got {planned!r}")
        task = FakeTask(
            task_id=task_id,
            input=inp,
            callback_url=body.get("callback_url"),
            created=loop.time(),
            create_at=int(time.time()),
            cost=cost,
            n=n,
            latency=latency,
            planned=planned,
        )
        self.balance -= cost
        self.tasks[task_id] = task
        self._schedule(task)

        if self._after_create:
            after = self._after_create[0]
            after.times -= 1
            if after.times <= 0:
                self._after_create.popleft()
            if after.mode == "500":
                return self._envelope(500, "internal server error")
            if after.mode == "drop":
                return _drop(request)
            await self._pause(after.seconds)
        return self._envelope(200, "success", {"task_id": task_id})

    async def _h_info(self, request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        task_id = query.get("task_id")
        if not task_id:
            return self._envelope(422, "task_id is required")
        flying = self._info_in_flight
        if flying[task_id]:
            self.info_overlaps += 1
        flying[task_id] += 1
        self.info_peak[task_id] = max(self.info_peak.get(task_id, 0), flying[task_id])
        try:
            if self.info_delay > 0 and await self._pause(self.info_delay):
                return _drop(request)  # shutting down
            return self._info_reply(task_id)
        finally:
            flying[task_id] -= 1
            if not flying[task_id]:
                del flying[task_id]

    def _info_reply(self, task_id: str) -> web.Response:
        if task_id in self.info_replies:
            return web.json_response(self.info_replies[task_id])
        task = self.tasks.get(task_id)
        if task is None:
            return self._envelope(404, "task not found")
        self._advance(task)
        return self._envelope(200, "success", self._task_data(task))

    async def _h_balance(self, request: web.Request, _query: Any) -> web.StreamResponse:
        return self._envelope(200, "success", {"balance": self.balance})

    async def _h_estimate(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not self.estimate_task_enabled:
            return self._envelope(404, "not found")
        checked = self._check_job(body)
        if isinstance(checked, web.Response):
            return checked
        _inp, _n, cost = checked
        data = {
            "estimated_credits": cost,
            "balance": self.balance,
            "affordable": self.balance >= cost,
        }
        return self._envelope(200, "success", data)

    async def _h_estimate_credits(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not self.estimate_credits_enabled:
            return self._envelope(404, "not found")
        checked = self._check_job(body)
        if isinstance(checked, web.Response):
            return checked
        return self._envelope(200, "success", {"credits": checked[2], "estimated": True})

    async def _h_schema(self, request: web.Request, _query: Any) -> web.StreamResponse:
        model = request.match_info["model"]
        if model != MODEL_ID:
            return self._envelope(404, f"model not found: {model}")
        if self.shape is not None:
            return self._envelope(200, "success", self.shape.reply)
        required = sorted(self.required_fields)
        data = {
            "model": MODEL_ID,
            "operations": ["text-to-image", "image-edit"],
            "required_input_fields": required,
            "input_schema": {
                "type": "object",
                "properties": {f: dict(_FIELD_SCHEMAS.get(f, {})) for f in self.schema_fields},
                "required": required,
            },
        }
        return self._envelope(200, "success", data)

    async def _h_upload_url(self, request: web.Request, query: dict[str, str]) -> web.Response:
        content_type = query.get("content_type")
        ext = query.get("ext")
        if not content_type or not ext:
            return self._envelope(422, "content_type and ext are required")
        upload_id = uuid.uuid4().hex
        # A signature with percent-escapes, like S3's: a client that re-quotes it fails the PUT.
        sig = "abc%2Fdef%3D" + secrets.token_hex(4)
        self._slots[upload_id] = _Slot(content_type, ext, sig)
        data = {
            "presigned_url": f"{self.base_url}/upload/{upload_id}?X-Signature={sig}",
            "file_url": f"{self.base_url}/files/{upload_id}{ext}",
        }
        return self._envelope(200, "success", data)

    async def _h_upload_put(self, request: web.Request, body: bytes) -> web.Response:
        upload_id = request.match_info["upload_id"]
        slot = self._slots.get(upload_id)
        if slot is None:
            return web.Response(status=404, text="NoSuchUpload")
        if request.raw_path.partition("?")[2] != f"X-Signature={slot.sig}":
            return web.Response(status=403, text="SignatureDoesNotMatch")
        if request.headers.get("Content-Type") != slot.content_type:
            return web.Response(status=403, text="SignatureDoesNotMatch (content type)")
        self.uploads[upload_id] = body
        return web.Response(status=200)

    async def _h_files(self, request: web.Request, _query: Any) -> web.Response:
        name = request.match_info["name"]
        for upload_id, data in self.uploads.items():
            slot = self._slots[upload_id]
            if name == upload_id + slot.ext:
                return web.Response(body=data, content_type=slot.content_type)
        return web.Response(status=404, text="not found")

    async def _h_media(self, request: web.Request, _query: Any) -> web.Response:
        task = self.tasks.get(request.match_info["task_id"])
        index_text, dot, ext = request.match_info["name"].partition(".")
        if task is None or dot != "." or ext != "png" or not index_text.isdigit():
            return web.Response(status=404, text="not found")
        self._advance(task)
        index = int(index_text)
        if task.status != "success" or index >= task.n:
            return web.Response(status=404, text="not found")
        data = self.image_bytes
        if data is None:
            key = (task.task_id, index)
            data = self._png_cache.get(key)
            if data is None:
                data = await asyncio.to_thread(render_png, self.image_size, task.task_id, index)
                self._png_cache[key] = data
        return web.Response(body=data, content_type="image/png")

    # --- task life ---------------------------------------------------------------------------

    def _schedule(self, task: FakeTask) -> None:
        if task.latency is None or task.terminal:
            return
        loop = asyncio.get_running_loop()
        task.handles = [
            loop.call_at(task.created + task.latency / 2, self._advance, task),
            loop.call_at(task.created + task.latency, self._advance, task),
        ]

    def _advance(self, task: FakeTask) -> None:
        """Bring an automatic task up to date with the loop clock (timers and queries both call
        this, so a query never sees a state older than the clock says)."""
        if task.latency is None or task.terminal:
            return
        elapsed = asyncio.get_running_loop().time() - task.created
        if elapsed >= task.latency:
            if task.planned is None:
                self._complete(task, "success", None)
            else:
                self._complete(task, "failed", task.planned[1])
        elif elapsed >= task.latency / 2 and task.status == "pending":
            task.status = "running"

    def _complete(self, task: FakeTask, status: str, message: str | None) -> None:
        if task.terminal:
            return
        task.status = status
        task.complete_at = int(time.time())
        task.credits = task.cost
        if status == "success":
            tid = quote(task.task_id, safe="")
            task.media_urls = [f"{self.base_url}/media/{tid}/{i}.png" for i in range(task.n)]
        else:
            task.message = message or "generation failed"
            if not self.charge_failed:
                self.balance += task.cost
                task.credits = 0.0
        if task.callback_url and self.callbacks_enabled:
            self._spawn(self._send_callbacks(task))

    def _task_data(self, task: FakeTask) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "provider": "Alibaba",
            "model_version": "wan2.7-image-pro",
            "status": task.status,
            "param": {"model": MODEL_ID, "callback_url": task.callback_url, "input": task.input},
            "create_at": task.create_at,
            "result": None,
            "duration_s": None,
            "complete_at": task.complete_at,
            "source": "api",
        }
        if task.status == "success":
            data["result"] = {"media_urls": list(task.media_urls)}
        elif task.status == "failed":
            data["result"] = {"code": 501, "message": task.message}
        if task.terminal:
            data["duration_s"] = max(0, (task.complete_at or task.create_at) - task.create_at)
            data["credits"] = task.credits
        return data

    async def _send_callbacks(self, task: FakeTask) -> None:
        assert task.callback_url is not None
        if self.callback_delay > 0 and await self._pause(self.callback_delay):
            return
        if self.callback_lie is not None:
            body = {"task_id": task.task_id, **self.callback_lie}
        else:
            body = self._task_data(task)
        for _ in range(max(1, self.callback_duplicates)):
            status: int | None = None
            error: str | None = None
            try:
                assert self._cb_session is not None
                async with self._cb_session.post(
                    task.callback_url, json=body, timeout=aiohttp.ClientTimeout(total=5)
                ) as resp:
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            assert self._cb_cond is not None
            async with self._cb_cond:
                self.callback_log.append(
                    CallbackAttempt(task.task_id, task.callback_url, status, error, body)
                )
                self._cb_cond.notify_all()


def _cancel_handles(task: FakeTask) -> None:
    for handle in task.handles:
        handle.cancel()
    task.handles = []


def _drop(request: web.Request) -> web.Response:
    """Kill the connection without a reply; aiohttp ignores the response we return."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


async def _truncate(
    request: web.Request, resp: web.StreamResponse, *, abort: bool
) -> web.StreamResponse:
    body = resp.body if isinstance(resp, web.Response) and isinstance(resp.body, bytes) else b""
    half = body[: len(body) // 2]
    if not abort:
        return web.Response(body=half, status=resp.status, content_type="application/json")
    stream = web.StreamResponse(status=resp.status)
    stream.content_type = "application/json"
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(half)
    await asyncio.sleep(0)  # let the half leave before the cut
    if request.transport is not None:
        request.transport.abort()
    return stream


class RecordingSleep:
    """An injectable ``sleep`` that records the waits and returns at once (yielding once)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


async def _serve(port: int, key: str, latency: float, size: int, shape: str | None) -> None:
    async with FakeCrun(
        api_key=key, port=port, task_latency=latency, image_size=(size, size), shape=shape
    ) as crun:
        print(f"fake crun on {crun.base_url} (key {key}, shape {shape or 'default'})", flush=True)
        print(
            "Its result URLs are plain http, which wanbot refuses unless ALLOW_HTTP_RESULTS=true"
            " (for local testing only). Try the CLI from the project folder in another terminal"
            " (its own database, so your real one stays clean):\n"
            f"  WAN_API_BASE={crun.base_url} WAN_API_KEY={key} ALLOW_HTTP_RESULTS=true"
            " DATABASE_URL=sqlite:///data/fake-crun.sqlite3"
            ' .venv/bin/wanbot generate "a lighthouse at dusk" --out out',
            flush=True,
        )
        await asyncio.Event().wait()


def main() -> None:
    """``python -m tests.fakes.crun_server``: a fake crun to try the CLI or the bot by hand."""
    import argparse  # noqa: PLC0415 - only for the manual entry point

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--key", default="ak_" + "0" * 32)
    p.add_argument("--latency", type=float, default=3.0)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--shape", choices=SHAPE_NAMES, help="serve and enforce a replayed crun schema")
    a = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(a.port, a.key, a.latency, a.size, a.shape))


if __name__ == "__main__":
    main()
