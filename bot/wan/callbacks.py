"""The optional receiver for crun's ``callback_url`` POSTs.

crun documents no signature, so the POST is only a wake-up call: the per-job token in the URL must
match (constant-time compare), the answer is 200 at once, and the engine then re-reads the task
through TaskInfo. Nothing in the body is trusted.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024

TokenLookup = Callable[[str], Awaitable[str | None]]
Wake = Callable[[str], bool]


def callback_routes(lookup_token: TokenLookup, wake: Wake) -> list[web.RouteDef]:
    async def receive(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        given = request.query.get("t", "")
        expected = await lookup_token(job_id) if len(job_id) <= 64 else None
        # Compare even when the job is unknown so timing does not reveal which ids exist.
        ok = hmac.compare_digest(given.encode(), (expected or "\x00" * 32).encode())
        if not ok or expected is None:
            log.warning("callback rejected for job id %r", job_id[:64])
            return web.Response(status=404, text="not found")
        # Drain (bounded by client_max_size) but never parse: the truth comes from TaskInfo.
        await request.read()
        woke = wake(job_id)
        log.info("callback for job %s (tracked: %s)", job_id, woke)
        return web.Response(status=200, text="ok")

    return [web.post("/crun/callback/{job_id}", receive)]


def make_app(lookup_token: TokenLookup, wake: Wake) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app.add_routes(callback_routes(lookup_token, wake))
    return app


class CallbackServer:
    """Runs an app (the receiver, plus /healthz and /metrics) on ``host:port`` and, with
    ``also``, on further addresses: one server, one app, several listening sockets."""

    def __init__(
        self, app: web.Application, host: str, port: int, *, also: Sequence[tuple[str, int]] = ()
    ) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self.host = host
        self.port = port
        self._sites = [(host, port), *also]
        self.ports: list[int] = []

    async def start(self) -> int:
        await self._runner.setup()
        try:
            for host, port in self._sites:
                known = len(self._runner.addresses)
                await web.TCPSite(self._runner, host, port).start()
                addresses = self._runner.addresses  # the bound port, when 0 was asked for
                self.ports.append(int(addresses[known][1]) if len(addresses) > known else port)
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = self.ports[0]
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()
