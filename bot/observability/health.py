"""``GET /healthz``: is the bot able to do its job right now?

Three parts, each reported with a short detail, and HTTP 200 only when all are fine (503 names
the failing parts):

- ``gateway``: every gateway shard this process owns is connected to Discord (only in
  ``wanbot run``; the CLI has no gateway); the body's ``shards`` part lists them one by one;
- ``database``: the store takes a write (``check_writable``: the SQLite file, or PostgreSQL);
- ``api``: crun answered a call recently. Any successful call in the last ``api_fresh_for``
  seconds counts (the engine polls often while it has work); otherwise one cheap balance call
  is made, with a short timeout, and its answer is kept for ``probe_cache_for`` seconds, so a
  health check every few seconds never hammers crun.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.errors import AuthError, WanApiError, WanConnectionError, WanTimeout
from bot.observability.metrics import OK_OUTCOME


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str


# The bot's gateway, as health sees it: each shard this process owns -> connected right now.
ShardStates = Callable[[], Mapping[int, bool]]


class HealthChecker:
    def __init__(
        self,
        *,
        db_check: Callable[[], Awaitable[object]],
        api_probe: Callable[[], Awaitable[object]],
        gateway: ShardStates | None = None,
        api_fresh_for: float = 300.0,
        probe_cache_for: float = 60.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db_check = db_check
        self._api_probe = api_probe
        self.gateway = gateway  # None: this process has no Discord connection (the CLI)
        self.api_fresh_for = api_fresh_for
        self.probe_cache_for = probe_cache_for
        self.timeout = timeout
        self._clock = clock
        self._last_ok: float | None = None
        self._probe: Check | None = None
        self._probe_at = 0.0
        self._probe_lock = asyncio.Lock()
        self._db_probe: asyncio.Future[object] | None = None

    def record_api_call(self, endpoint: str, outcome: str) -> None:
        """WanClient's ``on_call`` hook (through the runtime): remember the last success."""
        if outcome == OK_OUTCOME:
            self._last_ok = self._clock()

    async def check(self) -> dict[str, Check]:
        database, api = await asyncio.gather(self._database(), self._api())
        checks: dict[str, Check] = {}
        if self.gateway is not None:
            checks["gateway"] = gateway_check(self.gateway())
        checks["database"] = database
        checks["api"] = api
        return checks

    async def report(self) -> tuple[bool, dict[str, Any]]:
        checks = await self.check()
        failing = [name for name, c in checks.items() if not c.ok]
        body: dict[str, Any] = {
            "status": "failing" if failing else "ok",
            "failing": failing,
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
        }
        if self.gateway is not None:
            states = self.gateway()
            body["shards"] = {
                "count": len(states),
                "ids": sorted(states),
                "connected": {str(i): states[i] for i in sorted(states)},
            }
        return not failing, body

    async def _database(self) -> Check:
        # The probe is not cancelled on timeout: cancelling a write that waits on SQLite's lock
        # would itself wait for that lock. It runs on, and later checks wait for it, not pile up.
        probe = self._db_probe
        if probe is None or probe.done():
            probe = self._db_probe = asyncio.ensure_future(self._db_check())
            probe.add_done_callback(_retrieve)
        done, _ = await asyncio.wait({probe}, timeout=self.timeout)
        if not done:
            return Check(False, f"no answer within {self.timeout:g} s (locked or stalled)")
        exc = probe.exception()
        if exc is not None:
            return Check(False, f"not writable: {type(exc).__name__}: {exc}")
        return Check(True, "writable")

    async def _api(self) -> Check:
        last_ok = self._last_ok
        if last_ok is not None:
            age = self._clock() - last_ok
            if age <= self.api_fresh_for:
                return Check(True, f"last successful call {age:.0f} s ago")
        async with self._probe_lock:  # concurrent health checks share one probe
            if self._probe is not None and self._clock() - self._probe_at < self.probe_cache_for:
                return self._probe
            try:
                async with asyncio.timeout(self.timeout):
                    await self._api_probe()
            except TimeoutError:
                result = Check(False, f"no answer from crun within {self.timeout:g} s")
            except WanApiError as exc:
                result = Check(False, describe_api_error(exc))
            except Exception as exc:
                result = Check(False, f"balance check failed: {type(exc).__name__}")
            else:
                result = Check(True, "crun answered a balance check")
            self._probe, self._probe_at = result, self._clock()
            return result


def gateway_check(states: Mapping[int, bool]) -> Check:
    """OK when every shard this process owns is connected; otherwise names the ones that are not
    (when there are several: one process may own many)."""
    down = [i for i in sorted(states) if not states[i]]
    if states and not down:
        return Check(True, "connected")
    if len(states) <= 1:
        return Check(False, "not connected")
    return Check(False, f"not connected: shard {', '.join(map(str, down))} of {len(states)}")


def _retrieve(future: asyncio.Future[object]) -> None:
    """Mark a probe's error as seen, so an abandoned probe never logs "never retrieved"."""
    if not future.cancelled():
        future.exception()


def describe_api_error(exc: WanApiError) -> str:
    """Short and free of payloads: the health answer may be seen by whoever can reach the port."""
    if isinstance(exc, AuthError):
        return "crun rejected the API key (401)"
    if isinstance(exc, WanTimeout):
        return "crun did not answer in time"
    if isinstance(exc, WanConnectionError):
        return "cannot reach crun (connection failed)"
    code = exc.code if exc.code is not None else exc.status
    return f"crun answered {code} ({type(exc).__name__})"


def health_route(checker: HealthChecker) -> web.RouteDef:
    async def handler(_request: web.Request) -> web.Response:
        ok, body = await checker.report()
        return web.Response(
            status=200 if ok else 503,
            text=json.dumps(body),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    return web.get("/healthz", handler)


def split_host_port(value: str) -> tuple[str, int]:
    """``"0.0.0.0:8081"`` -> ``("0.0.0.0", 8081)``; ``"[::]:8081"`` -> ``("::", 8081)``."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)
