"""The REST server: the route table, the request log, injected failures (``fake.fail``), and the
attachment/CDN files. Handlers live in the ``routes_*`` modules.
"""

from __future__ import annotations

import json
import re
import secrets
import struct
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from tests.fakes.discord_fake.protocol import E_MISSING_PERMISSIONS, E_TOO_LARGE, JSON, ApiError
from tests.fakes.discord_fake.world import Knobs, World

if TYPE_CHECKING:
    from tests.fakes.discord_fake.routes_app import AppRoutes
    from tests.fakes.discord_fake.routes_channels import ChannelRoutes
    from tests.fakes.discord_fake.routes_interactions import InteractionRoutes

Handler = Callable[..., Awaitable[Any]]


@dataclass
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str
    data: bytes
    content_type: str | None = None

    @property
    def index(self) -> int | None:
        m = re.fullmatch(r"files\[(\d+)\]", self.field)
        return int(m.group(1)) if m else None


@dataclass
class RecordedRequest:
    """Every request the fake served, in order (``fake.requests``)."""

    method: str
    path: str  # without the /api/v10 prefix, e.g. "/channels/1/messages"
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    headers: dict[str, str]
    at: float
    route: str | None = None  # template key, e.g. "POST /channels/{channel_id}/messages"
    status: int | None = None


@dataclass
class FailRule:
    """An injected failure (``fake.fail``); ``hits`` counts how often it fired."""

    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None
    json: JSON | None
    headers: dict[str, str]
    retry_after: float
    is_global: bool
    after_commit: bool = False  # the request takes effect, then the answer is an error
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, path: str) -> bool:
        return (
            not self.exhausted
            and self.method in ("*", method)
            and self.pattern.search(path) is not None
        )


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    auth: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


def build_routes(
    app: AppRoutes, channels: ChannelRoutes, interactions: InteractionRoutes
) -> list[Route]:
    """In match order: a literal segment ("@me", "@original") comes before a ``{param}``."""
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/users/@me", app.get_me),
        ("POST", "/users/@me/channels", app.create_dm),
        ("GET", "/users/{user_id}", app.get_user),
        ("GET", "/gateway", app.gateway),
        ("GET", "/gateway/bot", app.gateway_bot),
        ("GET", "/oauth2/applications/@me", app.app_info),
        ("GET", "/applications/@me", app.app_info),
        ("GET", "/applications/{application_id}/commands", app.get_commands),
        ("PUT", "/applications/{application_id}/commands", app.put_commands),
        ("POST", "/applications/{application_id}/commands", app.upsert_command),
        ("GET", "/applications/{application_id}/commands/{command_id}", app.get_command),
        ("PATCH", "/applications/{application_id}/commands/{command_id}", app.edit_command),
        (
            "DELETE",
            "/applications/{application_id}/commands/{command_id}",
            app.delete_command,
        ),
        (
            "GET",
            "/applications/{application_id}/guilds/{guild_id}/commands",
            app.get_commands,
        ),
        (
            "PUT",
            "/applications/{application_id}/guilds/{guild_id}/commands",
            app.put_commands,
        ),
        (
            "POST",
            "/applications/{application_id}/guilds/{guild_id}/commands",
            app.upsert_command,
        ),
        (
            "GET",
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
            app.get_command,
        ),
        (
            "PATCH",
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
            app.edit_command,
        ),
        (
            "DELETE",
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
            app.delete_command,
        ),
        ("GET", "/applications/{application_id}/entitlements", app.entitlements),
        ("GET", "/guilds/{guild_id}", app.get_guild),
        ("GET", "/guilds/{guild_id}/channels", app.get_guild_channels),
        ("GET", "/guilds/{guild_id}/roles", app.get_roles),
        ("GET", "/guilds/{guild_id}/members/{user_id}", app.get_member),
        ("GET", "/channels/{channel_id}", channels.get_channel),
        ("GET", "/channels/{channel_id}/messages", channels.history),
        ("POST", "/channels/{channel_id}/messages", channels.create_message),
        ("GET", "/channels/{channel_id}/messages/{message_id}", channels.get_message),
        ("PATCH", "/channels/{channel_id}/messages/{message_id}", channels.edit_message),
        ("DELETE", "/channels/{channel_id}/messages/{message_id}", channels.delete_message),
        ("POST", "/channels/{channel_id}/typing", channels.trigger_typing),
        (
            "PUT",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            channels.add_reaction,
        ),
        (
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            channels.remove_reaction,
        ),
        ("POST", "/interactions/{interaction_id}/{token}/callback", interactions.callback),
        ("GET", "/webhooks/{application_id}/{token}/messages/@original", interactions.get_original),
        (
            "PATCH",
            "/webhooks/{application_id}/{token}/messages/@original",
            interactions.edit_original,
        ),
        (
            "DELETE",
            "/webhooks/{application_id}/{token}/messages/@original",
            interactions.delete_original,
        ),
        ("POST", "/webhooks/{application_id}/{token}", interactions.followup),
        (
            "GET",
            "/webhooks/{application_id}/{token}/messages/{message_id}",
            interactions.get_followup,
        ),
        (
            "PATCH",
            "/webhooks/{application_id}/{token}/messages/{message_id}",
            interactions.edit_followup,
        ),
        (
            "DELETE",
            "/webhooks/{application_id}/{token}/messages/{message_id}",
            interactions.delete_followup,
        ),
    ]
    routes = []
    for method, template, handler in table:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        auth = not template.startswith(("/webhooks/", "/interactions/"))
        routes.append(Route(method, template, re.compile(f"^{pattern}$"), handler, auth))
    return routes


class RestApi:
    """Serves /api/v*/..., records every request, and answers with injected failures first."""

    def __init__(
        self,
        world: World,
        knobs: Knobs,
        routes: list[Route],
        *,
        counters: Counter[str],
        notify: Callable[[], Awaitable[None]],
    ) -> None:
        self.world = world
        self.knobs = knobs
        self._routes = routes
        self.counters = counters
        self._notify = notify
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.fail_rules: list[FailRule] = []

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int | None = 1,
        json: JSON | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float = 0.05,
        is_global: bool = False,
        after_commit: bool = False,
    ) -> FailRule:
        """Make matching requests fail. ``path_regex`` is ``re.search``-ed against the path
        without the API prefix ("/channels/1/messages") or the file path ("/attachments/...").
        ``method`` may be "*". ``times=None`` fails forever. 429s carry ``retry_after`` in the
        body and Discord's rate-limit headers (incl. ``Via``, without which discord.py treats a
        429 as a Cloudflare ban and raises at once). With ``after_commit`` the request takes effect
        (a message is created) and only the answer is the error: a response lost on the way back.
        """
        rule = FailRule(
            method=method.upper(),
            pattern=re.compile(path_regex),
            status=status,
            times=times,
            json=json,
            headers=dict(headers or {}),
            retry_after=retry_after,
            is_global=is_global,
            after_commit=after_commit,
        )
        self.fail_rules.append(rule)
        return rule

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [
            r for r in self.requests if method.upper() in ("*", r.method) and pattern.search(r.path)
        ]

    @property
    def command_syncs(self) -> int:
        """How many bulk command PUTs (global + guild) the bot made."""
        return (
            self.counters["PUT /applications/{application_id}/commands"]
            + self.counters["PUT /applications/{application_id}/guilds/{guild_id}/commands"]
        )

    async def _read_request(self, request: web.Request, path: str) -> RecordedRequest:
        body: Any = None
        files: list[UploadedFile] = []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                if part.filename is not None:
                    files.append(
                        UploadedFile(
                            field=part.name or "",
                            filename=part.filename,
                            data=bytes(await part.read()),
                            content_type=part.headers.get("Content-Type"),
                        )
                    )
                elif part.name == "payload_json":
                    body = json.loads(await part.text())
        elif request.body_exists:
            raw = await request.read()
            if raw:
                body = json.loads(raw)
        return RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            files=files,
            headers=dict(request.headers),
            at=time.monotonic(),
        )

    def _fail_response(self, rule: FailRule, rec: RecordedRequest) -> web.Response:
        rule.hits += 1
        headers = {"Via": "1.1 google"}
        body: JSON
        if rule.status == 429:
            reset_after = f"{rule.retry_after:.3f}"
            headers.update(
                {
                    "Retry-After": str(max(1, int(rule.retry_after + 0.999))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                    "X-RateLimit-Reset-After": reset_after,
                    "X-RateLimit-Bucket": "fake" + secrets.token_hex(8),
                    "X-RateLimit-Scope": "global" if rule.is_global else "user",
                }
            )
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
            }
        else:
            body = _default_error_body(rule.status)
        if rule.json is not None:
            body = rule.json
        headers.update(rule.headers)
        rec.status = rule.status
        return json_response(body, status=rule.status, headers=headers)

    def _check_fail(self, rec: RecordedRequest, *, after_commit: bool) -> web.Response | None:
        for rule in self.fail_rules:
            if rule.after_commit == after_commit and rule.matches(rec.method, rec.path):
                return self._fail_response(rule, rec)
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        rec = await self._read_request(request, path)
        self.requests.append(rec)
        response: web.StreamResponse
        try:
            route, params = self._resolve(rec.method, path)
            if route is not None:
                rec.route = route.key
                self.counters[route.key] += 1
            failed = self._check_fail(rec, after_commit=False)
            if failed is not None:
                response = failed
            elif route is None:
                self.unhandled.append(rec)
                raise ApiError(404, 0, "404: Not Found")
            else:
                if route.auth and request.headers.get("Authorization") != f"Bot {self.knobs.token}":
                    raise ApiError(401, 0, "401: Unauthorized")
                result = await route.handler(rec, **params)
                if isinstance(result, web.StreamResponse):
                    response = result
                elif result is None:
                    response = web.Response(status=204)
                else:
                    response = json_response(result)
                response = self._check_fail(rec, after_commit=True) or response
        except ApiError as exc:
            response = json_response(exc.body(), status=exc.status, headers=exc.headers)
        rec.status = response.status
        await self._notify()
        return response

    def _resolve(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method != method:
                continue
            m = route.regex.match(path)
            if m:
                return route, m.groupdict()
        return None, {}

    async def serve_file(self, request: web.Request) -> web.StreamResponse:
        rec = RecordedRequest(
            method="GET",
            path=request.path,
            query=dict(request.query),
            json=None,
            files=[],
            headers=dict(request.headers),
            at=time.monotonic(),
            route="GET /attachments",
        )
        self.requests.append(rec)
        failed = self._check_fail(rec, after_commit=False)
        if failed is not None:
            return failed
        att = self.world.attachments.get(int(request.match_info["attachment_id"]))
        if att is None or quote(att.filename) != quote(request.match_info["filename"]):
            rec.status = 404
            return web.Response(status=404, text="Not Found")
        self.world.attachment_downloads[att.id] += 1
        rec.status = 200
        return web.Response(
            body=att.data,
            content_type=(att.content_type or "").split(";")[0] or "application/octet-stream",
        )

    async def serve_cdn(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=_png_1x1(), content_type="image/png")


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """JSON with exactly ``Content-Type: application/json`` like Discord: discord.py's
    ``json_or_text`` compares the header verbatim and treats "...; charset=utf-8" as text."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _default_error_body(status: int) -> JSON:
    known: dict[int, JSON] = {
        400: {"message": "400: Bad Request", "code": 0},
        401: {"message": "401: Unauthorized", "code": 0},
        403: {"message": "Missing Permissions", "code": E_MISSING_PERMISSIONS},
        404: {"message": "404: Not Found", "code": 0},
        413: {"message": "Request entity too large", "code": E_TOO_LARGE},
        500: {"message": "500: Internal Server Error", "code": 0},
        502: {"message": "502: Bad Gateway", "code": 0},
        503: {"message": "503: Service Unavailable", "code": 0},
    }
    return dict(known.get(status, {"message": f"{status}", "code": 0}))


def _png_1x1() -> bytes:
    """A valid 1x1 PNG, built by hand so serving CDN assets needs no Pillow call."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
