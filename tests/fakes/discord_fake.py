"""A fake Discord (REST + gateway) on 127.0.0.1 that the real discord.py client talks to.

Why: end-to-end tests should run discord.py's own parsing of gateway events, interaction payloads
and REST replies instead of ``MagicMock`` shapes. Every hook into discord.py internals lives in
this module (``_DiscordPatches`` and ``DiscordFake.running``) and is undone on exit.

Typical use::

    async with DiscordFake() as fake:
        guild = fake.add_guild("Test")
        channel = fake.add_channel(guild, "general")
        alice = fake.add_member(guild, username="alice")
        async with fake.running(MyBot()) as bot:
            handle = await fake.slash(alice, guild, channel, "imagine", {"prompt": "a cat"})
            await handle.wait_response()
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import logging
import mimetypes
import re
import secrets
import struct
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import discord
import discord.asset
import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

log = logging.getLogger(__name__)

__all__ = [
    "ApiError",
    "CallbackRecord",
    "DiscordFake",
    "FailRule",
    "FakeAttachment",
    "FakeChannel",
    "FakeGuild",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "InteractionHandle",
    "RecordedRequest",
    "UploadedFile",
]

JSON = dict[str, Any]
T = TypeVar("T")

DISCORD_EPOCH_MS = 1_420_070_400_000
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # non-boosted guilds and DMs since 2024
NONCE_WINDOW_S = 5 * 60.0  # Discord: enforce_nonce dedup holds "for the past few minutes"
MAX_FILES = 10

# Permission bits (named through discord.py so they cannot drift).
P = discord.Permissions
ALL_PERMISSIONS = P.all().value
PERM_ADMINISTRATOR = P(administrator=True).value
PERM_VIEW_CHANNEL = P(view_channel=True).value
PERM_SEND_MESSAGES = P(send_messages=True).value
PERM_ATTACH_FILES = P(attach_files=True).value
PERM_MANAGE_MESSAGES = P(manage_messages=True).value
PERM_READ_HISTORY = P(read_message_history=True).value
PERM_ADD_REACTIONS = P(add_reactions=True).value
DEFAULT_EVERYONE_PERMISSIONS = P(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
).value
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS

# Gateway intents we gate events on.
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

# Interaction and callback types.
IT_PING, IT_COMMAND, IT_COMPONENT, IT_AUTOCOMPLETE, IT_MODAL = 1, 2, 3, 4, 5
CB_PONG, CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE = 1, 4, 5, 6, 7
CB_AUTOCOMPLETE, CB_MODAL, CB_LAUNCH_ACTIVITY = 8, 9, 12
_ALLOWED_CALLBACKS: dict[int, set[int]] = {
    IT_PING: {CB_PONG},
    IT_COMMAND: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_MODAL, CB_LAUNCH_ACTIVITY},
    IT_COMPONENT: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE, CB_MODAL},
    IT_AUTOCOMPLETE: {CB_AUTOCOMPLETE},
    IT_MODAL: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE},
}

# Discord JSON error codes used by the fake.
E_UNKNOWN_CHANNEL = 10003
E_UNKNOWN_MESSAGE = 10008
E_UNKNOWN_USER = 10013
E_UNKNOWN_WEBHOOK = 10015
E_UNKNOWN_COMMAND = 10063
E_UNKNOWN_INTERACTION = 10062
E_TOO_LARGE = 40005
E_ALREADY_ACKNOWLEDGED = 40060
E_MISSING_ACCESS = 50001
E_CANNOT_EDIT_OTHERS = 50005
E_EMPTY_MESSAGE = 50006
E_CANNOT_DM = 50007
E_MISSING_PERMISSIONS = 50013
E_INVALID_WEBHOOK_TOKEN = 50027
E_INVALID_FORM_BODY = 50035

# Names discord.py 2.7 gives the tasks that run bot code (tree.py, ui/view.py, ui/modal.py,
# client.py); wait_bot_idle waits for these.
BOT_TASK_PREFIXES = (
    "CommandTree-invoker",
    "discord-ui-view-dispatch",
    "discord-ui-modal-dispatch",
    "discord-ui-dynamic-item-",
    "discord.py: on_",
)

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_USER_MENTION = re.compile(r"<@!?(\d{15,20})>")
_ROLE_MENTION = re.compile(r"<@&(\d{15,20})>")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _png_1x1() -> bytes:
    """A valid 1x1 PNG, built by hand so serving CDN assets needs no Pillow call."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width/height like Discord reports them. Pillow only parses the header here (cheap)."""
    try:
        from PIL import Image  # noqa: PLC0415 - optional; the fake works without Pillow

        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:
        return None


# --------------------------------------------------------------------------------------------
# Errors and records
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """Raised inside handlers; becomes a Discord-shaped JSON error response."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def _form_error(path: Sequence[str | int], code: str, message: str) -> ApiError:
    """400 Invalid Form Body with Discord's nested ``errors`` object."""
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return ApiError(400, E_INVALID_FORM_BODY, "Invalid Form Body", errors=errors)


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


# --------------------------------------------------------------------------------------------
# World model
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None
    dms_closed: bool = False  # DMs to this user fail with 50007

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "bot": self.bot,
            "public_flags": 0,
        }

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(eq=False)
class FakeRole:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 1
    color: int = 0
    managed: bool = False
    bot_id: int | None = None

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"


@dataclass(eq=False)
class FakeMember:
    user: FakeUser
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    permissions: int | None = None  # exact guild permissions instead of role-derived ones
    joined_at: float = field(default_factory=time.time)

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return self.user.mention

    def payload(self, *, with_user: bool = True) -> JSON:
        data: JSON = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": _iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass(eq=False)
class FakeChannel:
    id: int
    guild_id: int | None
    name: str
    type: int = 0  # 0 text, 1 DM, 2 voice, 5 news, 11 public thread, 15 forum
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    permission_overwrites: list[JSON] = field(default_factory=list)
    upload_limit: int | None = None  # overrides the guild's limit
    recipients: list[FakeUser] = field(default_factory=list)
    deleted: bool = False

    def payload(self) -> JSON:
        if self.type == 1:
            return {
                "id": str(self.id),
                "type": 1,
                "recipients": [u.payload() for u in self.recipients],
                "last_message_id": None,
                "flags": 0,
            }
        data: JSON = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "topic": self.topic,
            "nsfw": self.nsfw,
            "permission_overwrites": copy.deepcopy(self.permission_overwrites),
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        if self.type in (11, 12):
            data["thread_metadata"] = {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _iso(time.time()),
                "locked": False,
            }
            data["owner_id"] = None
            data["member_count"] = 1
            data["message_count"] = 0
        return data

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"


@dataclass(eq=False)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    locale: str = "en-US"
    features: list[str] = field(default_factory=list)
    premium_tier: int = 0
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def payload(self) -> JSON:
        """The REST guild object (no members/channels)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": list(self.features),
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }


@dataclass(eq=False)
class FakeAttachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    proxy_url: str
    width: int | None = None
    height: int | None = None
    description: str | None = None
    title: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
            "content_type": self.content_type,
            "flags": 0,
        }
        if self.width is not None and self.height is not None:
            data["width"] = self.width
            data["height"] = self.height
            data["placeholder"] = "AAAA"
            data["placeholder_version"] = 1
        if self.description is not None:
            data["description"] = self.description
        if self.title is not None:
            data["title"] = self.title
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass(eq=False)
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    allowed_mentions: JSON | None = None
    nonce: str | int | None = None
    enforce_nonce: bool = False
    flags: int = 0
    tts: bool = False
    type: int = 0
    mentions: list[FakeUser] = field(default_factory=list)
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    message_reference: JSON | None = None
    referenced: FakeMessage | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_metadata: JSON | None = None
    poll: JSON | None = None
    sticker_ids: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    edited_at: float | None = None
    reactions: dict[str, set[int]] = field(default_factory=dict)
    edits: list[JSON] = field(default_factory=list)  # every edit payload applied, in order
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in _walk_components(self.components) if "custom_id" in c]

    def find_component(self, custom_id: str) -> JSON | None:
        for comp in _walk_components(self.components):
            if comp.get("custom_id") == custom_id:
                return comp
        return None


def _walk_components(components: Iterable[JSON]) -> Iterable[JSON]:
    """Depth-first over action rows, containers, sections, labels and accessories."""
    for comp in components:
        yield comp
        yield from _walk_components(comp.get("components") or [])
        for key in ("component", "accessory"):
            child = comp.get(key)
            if isinstance(child, dict):
                yield from _walk_components([child])


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------


@dataclass
class CallbackRecord:
    """One POST /interactions/{id}/{token}/callback."""

    type: int
    data: JSON | None
    files: list[UploadedFile]
    at: float


class InteractionHandle:
    """Tracks what the bot did with one interaction: callback, @original, followups."""

    def __init__(
        self,
        fake: DiscordFake,
        payload: JSON,
        *,
        user: FakeUser,
        guild: FakeGuild | None,
        channel: FakeChannel,
        attachment_size_limit: int,
        source_message: FakeMessage | None = None,
        command_name: str | None = None,
    ) -> None:
        self._fake = fake
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.user = user
        self.guild = guild
        self.channel = channel
        self.attachment_size_limit = attachment_size_limit
        self.source_message = source_message
        self.command_name = command_name
        self.created_at = time.monotonic()
        self.callbacks: list[CallbackRecord] = []
        self.original: FakeMessage | None = None
        self.original_edits: list[JSON] = []
        self.original_deleted = False
        self.followups: list[FakeMessage] = []
        self.modal: JSON | None = None
        self.autocomplete_choices: list[JSON] | None = None
        self.expired_status: int | None = None  # set by fake.expire_token

    def __repr__(self) -> str:
        return (
            f"<InteractionHandle id={self.id} type={self.type} "
            f"response={self.response_type} followups={len(self.followups)}>"
        )

    @property
    def response(self) -> CallbackRecord | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None

    @property
    def ephemeral(self) -> bool:
        """Whether the initial response (message or defer) was ephemeral."""
        rec = self.response
        return bool(rec and rec.data and int(rec.data.get("flags", 0)) & FLAG_EPHEMERAL)

    async def wait_response(self, timeout: float = 5.0) -> CallbackRecord:  # noqa: ASYNC109 - test API asks for timeouts
        """Wait for the interaction callback (defer, message, modal, update...)."""
        await self._fake.wait_for(lambda: bool(self.callbacks), timeout, f"a response to {self!r}")
        return self.callbacks[0]

    async def wait_original_edit(
        self,
        count: int = 1,
        *,
        predicate: Callable[[FakeMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - test API asks for timeouts
    ) -> FakeMessage:
        """Wait until @original was edited at least ``count`` times (and ``predicate`` holds)."""

        def done() -> bool:
            msg = self.original
            if msg is None or len(self.original_edits) < count:
                return False
            return predicate is None or predicate(msg)

        await self._fake.wait_for(done, timeout, f"{count} edit(s) of @original of {self!r}")
        assert self.original is not None
        return self.original

    async def wait_followup(self, count: int = 1, *, timeout: float = 5.0) -> FakeMessage:  # noqa: ASYNC109 - test API asks for timeouts
        """Wait for the ``count``-th followup message and return it."""
        await self._fake.wait_for(
            lambda: len(self.followups) >= count, timeout, f"followup #{count} of {self!r}"
        )
        return self.followups[count - 1]

    async def wait_until(
        self,
        predicate: Callable[[InteractionHandle], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - test API asks for timeouts
    ) -> None:
        await self._fake.wait_for(lambda: predicate(self), timeout, f"condition on {self!r}")


# --------------------------------------------------------------------------------------------
# Gateway
# --------------------------------------------------------------------------------------------


class _GatewayConnection:
    """One websocket; speaks zlib-stream when discord.py asks for it."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress if compress == "zlib-stream" else None
        self._zlib = zlib.compressobj() if self.compress else None
        self._lock = asyncio.Lock()
        self.session: _GatewaySession | None = None

    async def send(self, payload: JSON) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            if self._zlib is not None:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)


@dataclass(eq=False)
class _GatewaySession:
    id: str
    intents: int
    shard: tuple[int, int]
    seq: int = 0
    buffer: list[JSON] = field(default_factory=list)
    conn: _GatewayConnection | None = None

    def owns_guild(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return self.shard[0] == 0
        return (guild_id >> 22) % self.shard[1] == self.shard[0]


# --------------------------------------------------------------------------------------------
# The patches (the ONLY place that touches discord.py internals at module level)
# --------------------------------------------------------------------------------------------


class _DiscordPatches:
    """Points discord.py's REST base, default gateway and CDN base at the fake; undoes it.

    Interaction webhooks (followups, @original) go through ``discord.http.Route`` too, so
    ``Route.BASE`` covers them. ``Webhook.url`` stays a discord.com string (display only).
    """

    def __init__(self, base_url: str, gateway_url: str) -> None:
        self._base_url = base_url
        self._gateway_url = gateway_url
        self._saved: tuple[str, yarl.URL, str] | None = None

    def apply(self) -> None:
        self._saved = (
            discord.http.Route.BASE,
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            discord.asset.Asset.BASE,
        )
        version = discord.http.INTERNAL_API_VERSION
        discord.http.Route.BASE = f"{self._base_url}/api/v{version}"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._gateway_url)
        discord.asset.Asset.BASE = f"{self._base_url}/cdn"

    def restore(self) -> None:
        if self._saved is None:
            return
        route_base, gateway, asset_base = self._saved
        discord.http.Route.BASE = route_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
        discord.asset.Asset.BASE = asset_base
        self._saved = None


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------

Handler = Callable[..., Awaitable[Any]]


@dataclass
class _Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    auth: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


class DiscordFake:
    """Fake Discord REST + gateway on 127.0.0.1. Use as ``async with DiscordFake() as fake``."""

    _active: ClassVar[DiscordFake | None] = None

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "wanbot",
        application_id: int | None = None,
        interaction_ack_deadline: float | None = 3.0,
        echo_bot_messages: bool = True,
        allow_privileged_intents: bool = True,
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self.token = token
        self.interaction_ack_deadline = interaction_ack_deadline
        self.echo_bot_messages = echo_bot_messages
        self.allow_privileged_intents = allow_privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms

        self._last_snowflake = 0
        self.bot_user = FakeUser(id=self.snowflake(), username=bot_name, bot=True)
        self.application_id = application_id or self.bot_user.id
        self.owner_user = FakeUser(id=self.snowflake(), username="app-owner")

        self.users: dict[int, FakeUser] = {
            self.bot_user.id: self.bot_user,
            self.owner_user.id: self.owner_user,
        }
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: defaultdict[int, list[FakeMessage]] = defaultdict(list)
        self.deleted_messages: list[FakeMessage] = []
        self.attachments: dict[int, FakeAttachment] = {}
        self.attachment_downloads: Counter[int] = Counter()

        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}

        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.counters: Counter[str] = Counter()
        self.gateway_log: list[tuple[str, JSON]] = []
        self.fail_rules: list[FailRule] = []
        self.typing: list[int] = []  # channel ids, one per POST /typing

        self.interactions: dict[int, InteractionHandle] = {}
        self._handles_by_token: dict[str, InteractionHandle] = {}
        self._modals: dict[str, InteractionHandle] = {}

        self._sessions: dict[str, _GatewaySession] = {}
        self._connections: set[_GatewayConnection] = set()
        self._nonces: dict[tuple[int, str], tuple[float, FakeMessage]] = {}

        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._patches: _DiscordPatches | None = None
        self.port = 0
        self._routes = self._build_routes()

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v{discord.http.INTERNAL_API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> DiscordFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if DiscordFake._active is not None:
            raise RuntimeError("another DiscordFake is active; discord.py's hooks are global")
        self._cond = asyncio.Condition()
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._handle_rest)
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._serve_file)
        app.router.add_get(
            "/media/attachments/{channel_id}/{attachment_id}/{filename}", self._serve_file
        )
        app.router.add_get("/cdn/{tail:.*}", self._serve_cdn)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._patches = _DiscordPatches(self.base_url, self.gateway_url)
        self._patches.apply()
        DiscordFake._active = self
        log.debug("discord fake listening on %s", self.base_url)

    async def stop(self) -> None:
        try:
            for conn in list(self._connections):
                await conn.ws.close(code=1001, message=b"fake shutting down")
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            if self._patches is not None:
                self._patches.restore()
            if DiscordFake._active is self:
                DiscordFake._active = None

    @contextlib.asynccontextmanager
    async def running(
        self,
        client: discord.Client,
        *,
        ready_timeout: float = 5.0,
        close_timeout: float = 5.0,
        guild_ready_timeout: float | None = 0.05,
        reconnect: bool = False,
    ) -> AsyncIterator[discord.Client]:
        """Log ``client`` in against the fake, wait for on_ready, close it cleanly on exit.

        ``guild_ready_timeout`` shortens discord.py's wait after the last GUILD_CREATE before
        on_ready (2 s by default) by setting ``client._connection.guild_ready_timeout``.
        """
        if guild_ready_timeout is not None:
            client._connection.guild_ready_timeout = guild_ready_timeout
        try:
            await client.login(self.token)  # runs setup_hook (e.g. tree.sync) in this task
        except BaseException:
            await client.close()
            raise
        connect = asyncio.create_task(client.connect(reconnect=reconnect), name="fake-connect")
        ready = asyncio.create_task(client.wait_until_ready(), name="fake-wait-ready")
        try:
            done, _ = await asyncio.wait(
                {connect, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if ready not in done:
                ready.cancel()
                if connect in done:
                    connect.result()  # re-raise why the client stopped
                    raise RuntimeError("client stopped before it became ready")
                raise TimeoutError(f"client not ready after {ready_timeout}s")
            yield client
        finally:
            await client.close()
            try:
                async with asyncio.timeout(close_timeout):
                    await connect
            except TimeoutError:
                connect.cancel()
                raise

    # ---------------------------------------------------------------- waiting

    async def _notify(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - test API asks for timeouts
        what: str = "condition",
    ) -> None:
        """Wait until ``predicate()`` is true. It is re-checked after every request/event the
        fake handles and every 20 ms (so predicates on bot-side state work too).
        """
        assert self._cond is not None, "fake not started"
        cond = self._cond
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    while not predicate():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(cond.wait(), 0.02)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}") from None

    async def wait_bot_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until discord.py's handler tasks (app commands, view/modal callbacks, on_*
        events) have finished. A response the fake recorded can precede the bot's own
        bookkeeping (e.g. ``store_view`` after a followup), so do this before "clicking"
        a component that was just sent.
        """
        current = asyncio.current_task()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    busy = [
                        t
                        for t in asyncio.all_tasks()
                        if t is not current
                        and not t.done()
                        and t.get_name().startswith(BOT_TASK_PREFIXES)
                    ]
                    if not busy:
                        return
                    await asyncio.wait(busy)
        except TimeoutError:
            raise TimeoutError(f"bot handlers still running after {timeout}s") from None

    async def wait_message(
        self,
        channel: FakeChannel | int,
        predicate: Callable[[FakeMessage], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - test API asks for timeouts
    ) -> FakeMessage:
        """Wait for a (non-deleted) message in ``channel`` matching ``predicate``."""
        cid = _id(channel)
        found: list[FakeMessage] = []

        def check() -> bool:
            for msg in self.messages.get(cid, []):
                if predicate is None or predicate(msg):
                    found.append(msg)
                    return True
            return False

        await self.wait_for(check, timeout, f"a message in channel {cid}")
        return found[0]

    async def wait_ready(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - test API asks for timeouts
        """Wait until a gateway session has identified (READY and GUILD_CREATEs sent)."""
        await self.wait_for(
            lambda: any(s.conn is not None for s in self._sessions.values()),
            timeout,
            "a gateway IDENTIFY",
        )

    # ---------------------------------------------------------------- world model

    def snowflake(self) -> int:
        """Time-based, strictly increasing snowflake (discord.py reads the timestamp)."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        candidate = max(candidate, self._last_snowflake + 1)
        self._last_snowflake = candidate
        return candidate

    def add_user(
        self,
        username: str,
        *,
        id: int | None = None,
        global_name: str | None = None,
        bot: bool = False,
    ) -> FakeUser:
        user = FakeUser(
            id=id or self.snowflake(), username=username, global_name=global_name, bot=bot
        )
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        id: int | None = None,
        owner: FakeUser | None = None,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        locale: str = "en-US",
        features: Sequence[str] = (),
    ) -> FakeGuild:
        """A guild with @everyone, the bot's managed role and the bot (and owner) as members."""
        gid = id or self.snowflake()
        owner = owner or self.add_user(f"owner-{gid % 10_000}")
        self.users.setdefault(owner.id, owner)
        guild = FakeGuild(
            id=gid,
            name=name,
            owner_id=owner.id,
            upload_limit=upload_limit,
            locale=locale,
            features=list(features),
        )
        guild.roles[gid] = FakeRole(
            id=gid, guild_id=gid, name="@everyone", permissions=everyone_permissions, position=0
        )
        bot_role = FakeRole(
            id=self.snowflake(),
            guild_id=gid,
            name=self.bot_user.username,
            permissions=bot_permissions,
            position=1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = FakeMember(
            user=self.bot_user, guild_id=gid, roles=[bot_role.id]
        )
        guild.members[owner.id] = FakeMember(user=owner, guild_id=gid)
        self.guilds[gid] = guild
        return guild

    def bot_role(self, guild: FakeGuild) -> FakeRole:
        return next(r for r in guild.roles.values() if r.bot_id == self.bot_user.id)

    def add_role(
        self,
        guild: FakeGuild,
        name: str,
        permissions: int = 0,
        *,
        position: int | None = None,
        color: int = 0,
    ) -> FakeRole:
        role = FakeRole(
            id=self.snowflake(),
            guild_id=guild.id,
            name=name,
            permissions=permissions,
            position=position if position is not None else len(guild.roles),
            color=color,
        )
        guild.roles[role.id] = role
        return role

    def add_channel(
        self,
        guild: FakeGuild,
        name: str = "general",
        *,
        type: int = 0,
        id: int | None = None,
        parent: FakeChannel | None = None,
        overwrites: Sequence[JSON] = (),
        upload_limit: int | None = None,
        nsfw: bool = False,
        topic: str | None = None,
    ) -> FakeChannel:
        """``overwrites``: Discord overwrite objects {id, type (0 role, 1 member), allow, deny}."""
        channel = FakeChannel(
            id=id or self.snowflake(),
            guild_id=guild.id,
            name=name,
            type=type,
            position=len(guild.channels),
            parent_id=parent.id if parent else None,
            permission_overwrites=[_overwrite(o) for o in overwrites],
            upload_limit=upload_limit,
            nsfw=nsfw,
            topic=topic,
        )
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def set_overwrite(
        self,
        channel: FakeChannel,
        target: FakeRole | FakeMember | FakeUser,
        *,
        allow: int = 0,
        deny: int = 0,
    ) -> None:
        kind = 0 if isinstance(target, FakeRole) else 1
        channel.permission_overwrites = [
            o for o in channel.permission_overwrites if int(o["id"]) != target.id
        ]
        channel.permission_overwrites.append(
            {"id": str(target.id), "type": kind, "allow": str(allow), "deny": str(deny)}
        )

    def add_member(
        self,
        guild: FakeGuild,
        user: FakeUser | None = None,
        *,
        username: str | None = None,
        roles: Sequence[FakeRole | int] = (),
        permissions: int | None = None,
        nick: str | None = None,
    ) -> FakeMember:
        """Add a member. ``permissions`` fixes their guild permissions (else derived from roles)."""
        if user is None:
            user = self.add_user(username or f"user{len(self.users)}")
        self.users.setdefault(user.id, user)
        member = FakeMember(
            user=user,
            guild_id=guild.id,
            roles=[_id(r) for r in roles],
            nick=nick,
            permissions=permissions,
        )
        guild.members[user.id] = member
        return member

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        for ch in self.channels.values():
            if ch.type == 1 and ch.recipients and ch.recipients[0].id == user.id:
                return ch
        channel = FakeChannel(
            id=self.snowflake(), guild_id=None, name="", type=1, recipients=[user]
        )
        self.channels[channel.id] = channel
        return channel

    def make_attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        channel_id: int = 0,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> FakeAttachment:
        """Store bytes and serve them at a 127.0.0.1 /attachments/... URL, like Discord's CDN."""
        aid = self.snowflake()
        ctype = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if ctype.startswith("text/") and "charset" not in ctype:
            ctype += "; charset=utf-8"
        size = _image_size(data) if ctype.startswith("image/") else None
        signed = (
            f"ex={int(time.time()) + 86_400:x}&is={int(time.time()):x}&hm={secrets.token_hex(32)}"
        )
        path = f"/attachments/{channel_id}/{aid}/{quote(filename)}?{signed}"
        att = FakeAttachment(
            id=aid,
            filename=filename,
            data=bytes(data),
            content_type=ctype,
            url=f"{self.base_url}{path}",
            proxy_url=f"{self.base_url}/media{path}",
            width=size[0] if size else None,
            height=size[1] if size else None,
            description=description,
            ephemeral=ephemeral,
        )
        self.attachments[aid] = att
        return att

    def _as_attachment(
        self, value: Any, channel_id: int, *, ephemeral: bool = False
    ) -> FakeAttachment:
        if isinstance(value, FakeAttachment):
            return value
        if isinstance(value, tuple) and len(value) in (2, 3):
            ctype = value[2] if len(value) == 3 else None
            return self.make_attachment(
                value[0], value[1], content_type=ctype, channel_id=channel_id, ephemeral=ephemeral
            )
        raise TypeError(f"expected FakeAttachment or (filename, bytes[, type]), got {value!r}")

    def permissions_for(
        self, guild: FakeGuild, member: FakeMember, channel: FakeChannel | None = None
    ) -> int:
        """Discord's permission resolution: roles, admin, then channel overwrites."""
        if member.id == guild.owner_id:
            return ALL_PERMISSIONS
        if member.permissions is not None:
            base = member.permissions
        else:
            base = guild.everyone.permissions
            for rid in member.roles:
                role = guild.roles.get(rid)
                if role is not None:
                    base |= role.permissions
        if base & PERM_ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is None or channel.guild_id is None:
            return base
        ows = {(int(o["id"]), int(o["type"])): o for o in channel.permission_overwrites}
        everyone = ows.get((guild.id, 0))
        if everyone:
            base = (base & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for rid in member.roles:
            ow = ows.get((rid, 0))
            if ow:
                allow |= int(ow["allow"])
                deny |= int(ow["deny"])
        base = (base & ~deny) | allow
        own = ows.get((member.id, 1))
        if own:
            base = (base & ~int(own["deny"])) | int(own["allow"])
        return base

    def bot_permissions(self, channel: FakeChannel) -> int:
        if channel.guild_id is None:
            return DEFAULT_EVERYONE_PERMISSIONS
        guild = self.guilds[channel.guild_id]
        return self.permissions_for(guild, guild.members[self.bot_user.id], channel)

    def upload_limit(self, channel: FakeChannel) -> int:
        if channel.upload_limit is not None:
            return channel.upload_limit
        if channel.guild_id is not None:
            return self.guilds[channel.guild_id].upload_limit
        return DEFAULT_UPLOAD_LIMIT

    # ---------------------------------------------------------------- knobs

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

    def expire_token(self, token: str | InteractionHandle, *, status: int = 401) -> None:
        """Expire an interaction token: webhook calls then get 401 50027 "Invalid Webhook Token"
        (what Discord answers after 15 min) or, with ``status=404``, 404 10015 "Unknown
        Webhook"; the callback endpoint answers 404 10062 "Unknown interaction".
        """
        handle = token if isinstance(token, InteractionHandle) else self._handles_by_token[token]
        handle.expired_status = status

    # ---------------------------------------------------------------- gateway dispatch

    async def dispatch(self, event: str, payload: JSON, *, guild_id: int | None = None) -> int:
        """Send a DISPATCH (op 0) to every live session that owns the guild; returns the count."""
        gid = guild_id if guild_id is not None else _opt_int(payload.get("guild_id"))
        sent = 0
        for session in list(self._sessions.values()):
            if session.conn is None or not session.owns_guild(gid):
                continue
            if not self._intents_allow(session, event, payload):
                continue
            await self._send_dispatch(session, event, payload)
            sent += 1
        await self._notify()
        return sent

    async def _send_dispatch(self, session: _GatewaySession, event: str, payload: JSON) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": payload}
        session.buffer.append(frame)
        del session.buffer[:-1000]
        self.gateway_log.append(("send", frame))
        if session.conn is not None:
            await session.conn.send(frame)

    def _intents_allow(self, session: _GatewaySession, event: str, payload: JSON) -> bool:
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"):
            need = INTENT_GUILD_MESSAGES if payload.get("guild_id") else INTENT_DIRECT_MESSAGES
            return bool(session.intents & need)
        return True

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py then RESUMEs on resume_gateway_url."""
        for conn in list(self._connections):
            await conn.send({"op": 7, "d": None})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION to every connection."""
        for conn in list(self._connections):
            if not resumable and conn.session is not None:
                self._sessions.pop(conn.session.id, None)
            await conn.send({"op": 9, "d": resumable})

    @property
    def sessions(self) -> list[_GatewaySession]:
        return list(self._sessions.values())

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _GatewayConnection(ws, request.query.get("compress"))
        self._connections.add(conn)
        self.counters["gateway.connect"] += 1
        try:
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error")
                return ws
            await conn.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    self.gateway_log.append(("recv", frame))
                    await self._on_gateway_frame(conn, frame)
                    await self._notify()
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.discard(conn)
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            await self._notify()
        return ws

    async def _on_gateway_frame(self, conn: _GatewayConnection, frame: JSON) -> None:
        op = frame.get("op")
        data: Any = frame.get("d")
        if op == 1:
            self.counters["gateway.heartbeat"] += 1
            await conn.send({"op": 11})
        elif op == 2:
            self.counters["gateway.identify"] += 1
            await self._identify(conn, data)
        elif op == 6:
            self.counters["gateway.resume"] += 1
            await self._resume(conn, data)
        elif op == 8:
            await self._request_members(conn, data)
        else:
            self.counters[f"gateway.op{op}"] += 1

    async def _identify(self, conn: _GatewayConnection, data: JSON) -> None:
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.allow_privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = data.get("shard") or [0, 1]
        session = _GatewaySession(
            id=secrets.token_hex(16),
            intents=intents,
            shard=(int(shard[0]), int(shard[1])),
            conn=conn,
        )
        self._sessions[session.id] = session
        conn.session = session
        owned = [g for g in self.guilds.values() if session.owns_guild(g.id)]
        ready = {
            "v": discord.http.INTERNAL_API_VERSION,
            "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in owned],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }
        await self._send_dispatch(session, "READY", ready)
        for guild in owned:
            await self._send_dispatch(session, "GUILD_CREATE", self._guild_create(guild))

    async def announce_guild(self, guild: FakeGuild) -> int:
        """Dispatch GUILD_CREATE for a guild added after the bot connected (a join)."""
        return await self.dispatch("GUILD_CREATE", self._guild_create(guild), guild_id=guild.id)

    def _guild_create(self, guild: FakeGuild) -> JSON:
        # Without presences only the bot's own member comes with GUILD_CREATE; discord.py asks
        # for the rest with op 8 (REQUEST_GUILD_MEMBERS) when it has the members intent.
        data = guild.payload()
        data.update(
            unavailable=False,
            joined_at=_iso(time.time()),
            large=False,
            member_count=len(guild.members),
            members=[guild.members[self.bot_user.id].payload()],
            channels=[
                c.payload()
                for c in guild.channels.values()
                if not c.deleted and c.type not in (11, 12)
            ],
            threads=[
                c.payload() for c in guild.channels.values() if not c.deleted and c.type in (11, 12)
            ],
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return data

    async def _resume(self, conn: _GatewayConnection, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await conn.send({"op": 9, "d": False})
            return
        if session.conn is not None and session.conn is not conn:
            old = session.conn
            session.conn = None
            await old.ws.close(code=4000)
        session.conn = conn
        conn.session = session
        last = int(data.get("seq") or 0)
        for frame in [f for f in session.buffer if f["s"] > last]:
            await conn.send(frame)
        await self._send_dispatch(session, "RESUMED", {})

    async def _request_members(self, conn: _GatewayConnection, data: JSON) -> None:
        session = conn.session
        guild = self.guilds.get(int(data["guild_id"]))
        if session is None or guild is None:
            return
        members = list(guild.members.values())
        query = data.get("query")
        if data.get("user_ids"):
            wanted = {int(u) for u in data["user_ids"]}
            members = [m for m in members if m.id in wanted]
        elif query:
            members = [m for m in members if m.user.username.lower().startswith(query.lower())]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ---------------------------------------------------------------- payload builders

    def user_payload_with_member(self, user: FakeUser, guild_id: int | None) -> JSON:
        data = user.payload()
        if guild_id is not None:
            member = self.guilds[guild_id].members.get(user.id)
            if member is not None:
                data["member"] = member.payload(with_user=False)
        return data

    def message_payload(self, msg: FakeMessage, *, gateway: bool = False) -> JSON:
        """The message object as Discord returns it over REST (or as a gateway event)."""
        data: JSON = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "type": msg.type,
            "content": msg.content,
            "author": msg.author.payload(),
            "attachments": [a.payload() for a in msg.attachments],
            "embeds": [self._resolve_embed(e, msg) for e in msg.embeds],
            "components": copy.deepcopy(msg.components),
            "mentions": [self.user_payload_with_member(u, msg.guild_id) for u in msg.mentions],
            "mention_roles": [str(r) for r in msg.mention_roles],
            "mention_everyone": msg.mention_everyone,
            "pinned": False,
            "tts": msg.tts,
            "timestamp": _iso(msg.created_at),
            "edited_timestamp": _iso(msg.edited_at) if msg.edited_at else None,
            "flags": msg.flags,
        }
        if msg.nonce is not None:
            data["nonce"] = msg.nonce
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
        if msg.application_id is not None:
            data["application_id"] = str(msg.application_id)
        if msg.interaction_metadata is not None:
            data["interaction_metadata"] = copy.deepcopy(msg.interaction_metadata)
        if msg.message_reference is not None:
            data["message_reference"] = copy.deepcopy(msg.message_reference)
            data["referenced_message"] = (
                self.message_payload(msg.referenced) if msg.referenced is not None else None
            )
        if msg.reactions:
            data["reactions"] = [
                {
                    "emoji": _emoji_payload(name),
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.bot_user.id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for name, users in msg.reactions.items()
                if users
            ]
        if gateway and msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            member = self.guilds[msg.guild_id].members.get(msg.author.id)
            if member is not None and msg.webhook_id is None:
                data["member"] = member.payload(with_user=False)
        return data

    def _resolve_embed(self, embed: JSON, msg: FakeMessage) -> JSON:
        out = copy.deepcopy(embed)
        out.setdefault("type", "rich")
        by_name = {a.filename: a for a in msg.attachments}
        for key in ("image", "thumbnail"):
            sub = out.get(key)
            if isinstance(sub, dict) and str(sub.get("url", "")).startswith("attachment://"):
                att = by_name.get(sub["url"][len("attachment://") :])
                if att is not None:
                    sub.update(url=att.url, proxy_url=att.proxy_url)
                    if att.width is not None:
                        sub.update(width=att.width, height=att.height)
        return out

    def _interaction_payload(
        self,
        itype: int,
        user: FakeUser | FakeMember,
        guild: FakeGuild | None,
        channel: FakeChannel,
        data: JSON | None,
        *,
        message: FakeMessage | None = None,
        locale: str = "en-US",
        app_permissions: int | None = None,
        attachment_size_limit: int | None = None,
        entitlements: Sequence[JSON] = (),
        context: int | None = None,
        authorizing_integration_owners: Mapping[str, str] | None = None,
    ) -> tuple[JSON, FakeUser, int]:
        fake_user = user.user if isinstance(user, FakeMember) else user
        limit = (
            attachment_size_limit
            if attachment_size_limit is not None
            else (self.upload_limit(channel))
        )
        iid = self.snowflake()
        payload: JSON = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": f"aW50ZXJhY3Rpb246{iid}:{secrets.token_urlsafe(48)}",
            "version": 1,
            "locale": locale,
            "app_permissions": str(
                app_permissions if app_permissions is not None else self.bot_permissions(channel)
            ),
            "entitlements": list(entitlements),
            "entitlement_sku_ids": [],
            "attachment_size_limit": limit,
            "channel_id": str(channel.id),
            "channel": channel.payload(),
        }
        if data is not None:
            payload["data"] = data
        if guild is not None:
            member = guild.members.get(fake_user.id)
            if member is None:
                raise ValueError(f"{fake_user.username} is not a member of {guild.name}")
            member_payload = member.payload()
            perms = self.permissions_for(guild, member, channel)
            member_payload["permissions"] = str(perms)
            payload["channel"]["permissions"] = str(perms)
            payload.update(
                guild_id=str(guild.id),
                guild={
                    "id": str(guild.id),
                    "locale": guild.locale,
                    "features": list(guild.features),
                },
                guild_locale=guild.locale,
                member=member_payload,
            )
            default_ctx, default_owners = 0, {"0": str(guild.id)}
        else:
            payload["user"] = fake_user.payload()
            default_ctx, default_owners = 1, {"1": str(fake_user.id)}
        payload["context"] = default_ctx if context is None else context
        payload["authorizing_integration_owners"] = dict(
            authorizing_integration_owners or default_owners
        )
        if message is not None:
            payload["message"] = self.message_payload(message)
        return payload, fake_user, limit

    async def _send_interaction(self, handle: InteractionHandle) -> InteractionHandle:
        self.interactions[handle.id] = handle
        self._handles_by_token[handle.token] = handle
        sent = await self.dispatch(
            "INTERACTION_CREATE", handle.payload, guild_id=handle.guild.id if handle.guild else None
        )
        if not sent:
            raise RuntimeError("no gateway session to deliver INTERACTION_CREATE; is the bot up?")
        return handle

    # ---------------------------------------------------------------- interaction helpers

    def find_command(self, name: str, type: int = 1, guild: FakeGuild | None = None) -> JSON:
        """A synced command (guild commands first, then global), as the bot PUT it."""
        pools = [self.guild_commands.get(guild.id, [])] if guild is not None else []
        pools.append(self.global_commands)
        for pool in pools:
            for cmd in pool:
                if cmd["name"] == name and int(cmd.get("type", 1)) == type:
                    return cmd
        synced = sorted(c["name"] for pool in pools for c in pool)
        raise LookupError(f"command {name!r} (type {type}) was never synced; synced: {synced}")

    def _command_data(self, cmd: JSON, data: JSON) -> JSON:
        out: JSON = {"id": cmd["id"], "name": cmd["name"], "type": int(cmd.get("type", 1)), **data}
        if cmd.get("guild_id"):
            out["guild_id"] = cmd["guild_id"]
        return out

    async def slash(
        self,
        user: FakeUser | FakeMember,
        guild: FakeGuild | None,
        channel: FakeChannel,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        attachments: Mapping[str, Any] | None = None,
        locale: str = "en-US",
        app_permissions: int | None = None,
        attachment_size_limit: int | None = None,
        entitlements: Sequence[JSON] = (),
        context: int | None = None,
        authorizing_integration_owners: Mapping[str, str] | None = None,
    ) -> InteractionHandle:
        """Invoke a synced CHAT_INPUT command. ``name`` may hold a subcommand path
        ("wan help"). Option types come from the synced definition; values may be str/int/
        float/bool, FakeUser/FakeMember, FakeRole, FakeChannel or FakeAttachment.
        ``attachments`` maps attachment options to FakeAttachment or (filename, bytes[, type]).
        """
        parts = name.split()
        cmd = self.find_command(parts[0], 1, guild)
        values: dict[str, Any] = dict(options or {})
        values.update(attachments or {})
        defs: list[JSON] = cmd.get("options") or []
        chain: list[JSON] = []
        for sub in parts[1:]:
            match = next((o for o in defs if o["name"] == sub and o["type"] in (1, 2)), None)
            if match is None:
                raise LookupError(f"{name!r}: no subcommand {sub!r} in {cmd['name']!r}")
            chain.append(match)
            defs = match.get("options") or []
        if any(o["type"] in (1, 2) for o in defs):
            raise ValueError(f"{name!r} is a group; name a subcommand")
        resolved: JSON = {}
        leaf = [
            self._option_value(d, values.pop(d["name"]), resolved, guild, channel)
            for d in defs
            if d["name"] in values
        ]
        if values:
            raise ValueError(f"{name!r} has no option(s) {sorted(values)}")
        given = {o["name"] for o in leaf}
        missing = [d["name"] for d in defs if d.get("required") and d["name"] not in given]
        if missing:
            raise ValueError(f"{name!r} is missing required option(s) {missing}")
        nested: list[JSON] = leaf
        for sub_def in reversed(chain):
            nested = [{"name": sub_def["name"], "type": sub_def["type"], "options": nested}]
        data = self._command_data(cmd, {"options": nested})
        if resolved:
            data["resolved"] = resolved
        payload, fake_user, limit = self._interaction_payload(
            IT_COMMAND,
            user,
            guild,
            channel,
            data,
            locale=locale,
            app_permissions=app_permissions,
            attachment_size_limit=attachment_size_limit,
            entitlements=entitlements,
            context=context,
            authorizing_integration_owners=authorizing_integration_owners,
        )
        handle = InteractionHandle(
            self,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            command_name=name,
        )
        return await self._send_interaction(handle)

    async def autocomplete(
        self,
        user: FakeUser | FakeMember,
        guild: FakeGuild | None,
        channel: FakeChannel,
        name: str,
        options: Mapping[str, Any],
        focused: str,
    ) -> InteractionHandle:
        """An APPLICATION_COMMAND_AUTOCOMPLETE for ``focused`` (raw, partially typed values)."""
        parts = name.split()
        cmd = self.find_command(parts[0], 1, guild)
        defs: list[JSON] = cmd.get("options") or []
        chain: list[JSON] = []
        for sub in parts[1:]:
            match = next(o for o in defs if o["name"] == sub and o["type"] in (1, 2))
            chain.append(match)
            defs = match.get("options") or []
        by_name = {d["name"]: d for d in defs}
        leaf: list[JSON] = []
        for key, value in options.items():
            opt: JSON = {"name": key, "type": by_name[key]["type"], "value": value}
            if key == focused:
                opt["focused"] = True
            leaf.append(opt)
        nested = leaf
        for sub_def in reversed(chain):
            nested = [{"name": sub_def["name"], "type": sub_def["type"], "options": nested}]
        data = self._command_data(cmd, {"options": nested})
        payload, fake_user, limit = self._interaction_payload(
            IT_AUTOCOMPLETE, user, guild, channel, data
        )
        handle = InteractionHandle(
            self,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            command_name=name,
        )
        return await self._send_interaction(handle)

    def _option_value(
        self, d: JSON, value: Any, resolved: JSON, guild: FakeGuild | None, channel: FakeChannel
    ) -> JSON:
        otype = int(d["type"])
        name = d["name"]
        if otype in (3, 4, 5, 10):
            if otype == 3 and not isinstance(value, str):
                raise TypeError(f"option {name!r} wants a string")
            if otype == 4 and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"option {name!r} wants an integer")
            if otype == 5 and not isinstance(value, bool):
                raise TypeError(f"option {name!r} wants a boolean")
            if otype == 10 and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise TypeError(f"option {name!r} wants a number")
            choices = d.get("choices")
            if choices and value not in [c["value"] for c in choices]:
                raise ValueError(f"option {name!r}: {value!r} is not one of the choices")
            if otype == 3:
                if len(value) < int(d.get("min_length", 0)) or len(value) > int(
                    d.get("max_length", 6000)
                ):
                    raise ValueError(f"option {name!r}: length outside the allowed range")
            elif otype in (4, 10):
                lo, hi = d.get("min_value"), d.get("max_value")
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    raise ValueError(f"option {name!r}: {value} outside [{lo}, {hi}]")
            return {"name": name, "type": otype, "value": value}
        if otype == 11:
            att = self._as_attachment(value, channel.id, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = att.payload()
            return {"name": name, "type": otype, "value": str(att.id)}
        if otype in (6, 9) and isinstance(value, FakeUser | FakeMember):
            user = value.user if isinstance(value, FakeMember) else value
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            member = guild.members.get(user.id) if guild else None
            if member is not None and guild is not None:
                mp = member.payload(with_user=False)
                mp["permissions"] = str(self.permissions_for(guild, member, channel))
                resolved.setdefault("members", {})[str(user.id)] = mp
            return {"name": name, "type": otype, "value": str(user.id)}
        if otype in (8, 9) and isinstance(value, FakeRole):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return {"name": name, "type": otype, "value": str(value.id)}
        if otype == 7 and isinstance(value, FakeChannel):
            ch = value.payload()
            ch["permissions"] = str(self.bot_permissions(value))
            resolved.setdefault("channels", {})[str(value.id)] = ch
            return {"name": name, "type": otype, "value": str(value.id)}
        raise TypeError(f"option {name!r} (type {otype}) cannot take {value!r}")

    async def message_context(
        self,
        user: FakeUser | FakeMember,
        message: FakeMessage,
        name: str,
        **knobs: Any,
    ) -> InteractionHandle:
        """Invoke a synced MESSAGE context-menu command on ``message``."""
        guild = self.guilds.get(message.guild_id) if message.guild_id else None
        channel = self.channels[message.channel_id]
        cmd = self.find_command(name, 3, guild)
        data = self._command_data(
            cmd,
            {
                "target_id": str(message.id),
                "resolved": {"messages": {str(message.id): self.message_payload(message)}},
            },
        )
        return await self._invoke_command(user, guild, channel, name, data, **knobs)

    async def _invoke_command(
        self,
        user: FakeUser | FakeMember,
        guild: FakeGuild | None,
        channel: FakeChannel,
        name: str,
        data: JSON,
        **knobs: Any,
    ) -> InteractionHandle:
        """Send an APPLICATION_COMMAND interaction built from ``data``."""
        payload, fake_user, limit = self._interaction_payload(
            IT_COMMAND, user, guild, channel, data, **knobs
        )
        handle = InteractionHandle(
            self,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            command_name=name,
        )
        return await self._send_interaction(handle)

    async def user_context(
        self,
        user: FakeUser | FakeMember,
        target: FakeUser | FakeMember,
        guild: FakeGuild | None,
        channel: FakeChannel,
        name: str,
        **knobs: Any,
    ) -> InteractionHandle:
        """Invoke a synced USER context-menu command on ``target``."""
        cmd = self.find_command(name, 2, guild)
        resolved: JSON = {}
        target_user = target.user if isinstance(target, FakeMember) else target
        self._option_value({"name": "target", "type": 6}, target_user, resolved, guild, channel)
        data = self._command_data(cmd, {"target_id": str(target_user.id), "resolved": resolved})
        return await self._invoke_command(user, guild, channel, name, data, **knobs)

    async def click(
        self,
        user: FakeUser | FakeMember,
        message: FakeMessage,
        custom_id: str,
        *,
        values: Sequence[Any] | None = None,
        **knobs: Any,
    ) -> InteractionHandle:
        """Press a button / choose select ``values`` on a stored message's component."""
        if message.deleted:
            raise LookupError(f"message {message.id} was deleted")
        comp = message.find_component(custom_id)
        if comp is None:
            raise LookupError(
                f"no component {custom_id!r} on message {message.id}; has {message.custom_ids()}"
            )
        if comp.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a user cannot use it")
        guild = self.guilds.get(message.guild_id) if message.guild_id else None
        channel = self.channels[message.channel_id]
        ctype = int(comp["type"])
        data: JSON = {"custom_id": custom_id, "component_type": ctype}
        if ctype in (3, 5, 6, 7, 8):
            resolved: JSON = {}
            data["values"] = [
                self._select_value(v, resolved, guild, channel) for v in (values or [])
            ]
            if resolved:
                data["resolved"] = resolved
        elif values:
            raise ValueError("values are only for select menus")
        payload, fake_user, limit = self._interaction_payload(
            IT_COMPONENT, user, guild, channel, data, message=message, **knobs
        )
        handle = InteractionHandle(
            self,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            source_message=message,
        )
        return await self._send_interaction(handle)

    def _select_value(
        self, value: Any, resolved: JSON, guild: FakeGuild | None, channel: FakeChannel
    ) -> str:
        if isinstance(value, str):
            return value
        kind = {FakeRole: 8, FakeChannel: 7}.get(type(value), 6)
        return str(
            self._option_value({"name": "v", "type": kind}, value, resolved, guild, channel)[
                "value"
            ]
        )

    async def submit_modal(
        self,
        user: FakeUser | FakeMember,
        custom_id: str,
        values: Mapping[str, Any],
        *,
        opened_by: InteractionHandle | None = None,
        **knobs: Any,
    ) -> InteractionHandle:
        """Submit a modal the bot opened (callback type 9) with ``{field_custom_id: value}``.

        Values: str for text inputs / radio groups, bool for checkboxes, list[str] for selects /
        checkbox groups, FakeAttachment or (filename, bytes) (or a list) for file uploads. The
        submitted components mirror the modal's layout (action rows or labels).
        """
        opener = opened_by or self._modals.get(custom_id)
        if opener is None or opener.modal is None or opener.modal.get("custom_id") != custom_id:
            raise LookupError(f"the bot never opened a modal {custom_id!r}")
        modal = opener.modal
        guild, channel = opener.guild, opener.channel
        remaining = dict(values)
        resolved: JSON = {}
        components = [
            self._modal_component(c, remaining, resolved, channel)
            for c in modal.get("components", [])
        ]
        components = [c for c in components if c is not None]
        if remaining:
            raise LookupError(f"modal {custom_id!r} has no field(s) {sorted(remaining)}")
        data: JSON = {"custom_id": custom_id, "components": components}
        if resolved:
            data["resolved"] = resolved
        payload, fake_user, limit = self._interaction_payload(
            IT_MODAL, user, guild, channel, data, message=opener.source_message, **knobs
        )
        handle = InteractionHandle(
            self,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            source_message=opener.source_message,
        )
        return await self._send_interaction(handle)

    def _modal_component(
        self, comp: JSON, values: dict[str, Any], resolved: JSON, channel: FakeChannel
    ) -> JSON | None:
        ctype = int(comp["type"])
        if ctype == 1:
            children = [
                self._modal_component(c, values, resolved, channel)
                for c in comp.get("components", [])
            ]
            return {"type": 1, "components": [c for c in children if c is not None]}
        if ctype == 18:
            child = self._modal_component(comp["component"], values, resolved, channel)
            return {"type": 18, "component": child} if child is not None else None
        cid = comp.get("custom_id")
        if cid is None:
            return None  # text displays etc. are not submitted
        out: JSON = {"type": ctype, "custom_id": cid}
        if "id" in comp:
            out["id"] = comp["id"]
        present = cid in values
        value = values.pop(cid, None)
        if ctype == 4:
            text = "" if value is None else str(value)
            if comp.get("required", True) and not text:
                raise ValueError(f"text input {cid!r} is required")
            if text and not (
                int(comp.get("min_length", 0)) <= len(text) <= int(comp.get("max_length", 4000))
            ):
                raise ValueError(f"text input {cid!r}: length {len(text)} not allowed")
            out["value"] = text
        elif ctype == 19:
            items = value if isinstance(value, list) else ([] if value is None else [value])
            atts = [self._as_attachment(v, channel.id, ephemeral=True) for v in items]
            out["values"] = [str(a.id) for a in atts]
            for a in atts:
                resolved.setdefault("attachments", {})[str(a.id)] = a.payload()
        elif ctype in (3, 5, 6, 7, 8, 22):
            out["values"] = [self._select_value(v, resolved, None, channel) for v in (value or [])]
        elif ctype == 21:
            out["value"] = value
        elif ctype == 23:
            out["value"] = bool(value)
        elif not present:
            return None
        return out

    # ---------------------------------------------------------------- user-side actions

    async def post_user_message(
        self,
        channel: FakeChannel | int,
        author: FakeUser | FakeMember,
        content: str = "",
        *,
        attachments: Sequence[Any] = (),
        mentions: Sequence[FakeUser | FakeMember] | None = None,
        reference: FakeMessage | int | None = None,
        embeds: Sequence[JSON] = (),
    ) -> FakeMessage:
        """A user posts a message: stored, then MESSAGE_CREATE is dispatched.

        ``mentions`` defaults to the users written as <@id> in ``content``. Without the
        MESSAGE_CONTENT intent the bot receives empty content unless it is mentioned or the
        message is a DM (Discord's rule).
        """
        ch = self.channels[_id(channel)]
        user = author.user if isinstance(author, FakeMember) else author
        self.users.setdefault(user.id, user)
        ref_msg: FakeMessage | None = None
        if reference is not None:
            ref_msg = (
                reference
                if isinstance(reference, FakeMessage)
                else self.get_message(ch.id, int(reference))
            )
        if mentions is None:
            mentioned = [
                self.users[int(i)] for i in _USER_MENTION.findall(content) if int(i) in self.users
            ]
        else:
            mentioned = [m.user if isinstance(m, FakeMember) else m for m in mentions]
        msg = FakeMessage(
            id=self.snowflake(),
            channel_id=ch.id,
            guild_id=ch.guild_id,
            author=user,
            content=content,
            embeds=[copy.deepcopy(e) for e in embeds],
            attachments=[self._as_attachment(a, ch.id) for a in attachments],
            type=19 if ref_msg is not None else 0,
            mentions=_dedupe(mentioned),
            mention_roles=[int(r) for r in _ROLE_MENTION.findall(content)],
            mention_everyone="@everyone" in content or "@here" in content,
        )
        if ref_msg is not None:
            msg.referenced = ref_msg
            msg.message_reference = _reference(ref_msg)
        self.messages[ch.id].append(msg)
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    async def _dispatch_message(self, event: str, msg: FakeMessage) -> None:
        payload = self.message_payload(msg, gateway=True)
        for session in list(self._sessions.values()):
            if session.conn is None or not session.owns_guild(msg.guild_id):
                continue
            if not self._intents_allow(session, event, payload):
                continue
            out = payload
            hidden = (
                msg.guild_id is not None
                and msg.author.id != self.bot_user.id
                and not session.intents & INTENT_MESSAGE_CONTENT
                and all(u.id != self.bot_user.id for u in msg.mentions)
            )
            if hidden:
                out = {**payload, "content": "", "embeds": [], "attachments": [], "components": []}
            await self._send_dispatch(session, event, out)
        await self._notify()

    def get_message(self, channel_id: int, message_id: int) -> FakeMessage:
        for msg in self.messages.get(channel_id, []):
            if msg.id == message_id:
                return msg
        raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")

    async def delete_message(self, message: FakeMessage, *, dispatch: bool = True) -> None:
        """A user/moderator deletes a message (later bot calls on it get 404 10008)."""
        self._remove_message(message)
        if dispatch:
            await self._dispatch_message_delete(message)

    async def delete_channel(self, channel: FakeChannel, *, dispatch: bool = True) -> None:
        """Delete a channel (later bot calls on it get 404 10003)."""
        channel.deleted = True
        if channel.guild_id is not None:
            self.guilds[channel.guild_id].channels.pop(channel.id, None)
        if dispatch:
            await self.dispatch("CHANNEL_DELETE", channel.payload(), guild_id=channel.guild_id)

    async def add_reaction(self, message: FakeMessage, user: FakeUser, emoji: str) -> None:
        message.reactions.setdefault(emoji, set()).add(user.id)
        payload: JSON = {
            "user_id": str(user.id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": _emoji_payload(emoji),
            "burst": False,
            "type": 0,
        }
        if message.guild_id is not None:
            payload["guild_id"] = str(message.guild_id)
            member = self.guilds[message.guild_id].members.get(user.id)
            if member is not None:
                payload["member"] = member.payload()
        await self.dispatch("MESSAGE_REACTION_ADD", payload)

    def _remove_message(self, msg: FakeMessage) -> None:
        msg.deleted = True
        bucket = self.messages.get(msg.channel_id, [])
        if msg in bucket:
            bucket.remove(msg)
        self.deleted_messages.append(msg)

    async def _dispatch_message_delete(self, msg: FakeMessage) -> None:
        payload: JSON = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
        if msg.guild_id is not None:
            payload["guild_id"] = str(msg.guild_id)
        await self.dispatch("MESSAGE_DELETE", payload)

    async def _echo(self, event: str, msg: FakeMessage) -> None:
        """Discord echoes the bot's own (non-ephemeral) messages over the gateway."""
        if not self.echo_bot_messages or msg.ephemeral:
            return
        if event == "MESSAGE_DELETE":
            await self._dispatch_message_delete(msg)
        else:
            await self._dispatch_message(event, msg)

    # ---------------------------------------------------------------- queries

    @property
    def command_syncs(self) -> int:
        """How many bulk command PUTs (global + guild) the bot made."""
        return (
            self.counters["PUT /applications/{application_id}/commands"]
            + self.counters["PUT /applications/{application_id}/guilds/{guild_id}/commands"]
        )

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [
            r for r in self.requests if method.upper() in ("*", r.method) and pattern.search(r.path)
        ]

    # ---------------------------------------------------------------- HTTP plumbing

    def _build_routes(self) -> list[_Route]:
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self._r_get_me),
            ("POST", "/users/@me/channels", self._r_create_dm),
            ("GET", "/users/{user_id}", self._r_get_user),
            ("GET", "/gateway", self._r_gateway),
            ("GET", "/gateway/bot", self._r_gateway_bot),
            ("GET", "/oauth2/applications/@me", self._r_app_info),
            ("GET", "/applications/@me", self._r_app_info),
            ("GET", "/applications/{application_id}/commands", self._r_get_commands),
            ("PUT", "/applications/{application_id}/commands", self._r_put_commands),
            ("POST", "/applications/{application_id}/commands", self._r_upsert_command),
            ("GET", "/applications/{application_id}/commands/{command_id}", self._r_get_command),
            ("PATCH", "/applications/{application_id}/commands/{command_id}", self._r_edit_command),
            (
                "DELETE",
                "/applications/{application_id}/commands/{command_id}",
                self._r_delete_command,
            ),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._r_get_commands,
            ),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._r_put_commands,
            ),
            (
                "POST",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._r_upsert_command,
            ),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._r_get_command,
            ),
            (
                "PATCH",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._r_edit_command,
            ),
            (
                "DELETE",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._r_delete_command,
            ),
            ("GET", "/applications/{application_id}/entitlements", self._r_entitlements),
            ("GET", "/guilds/{guild_id}", self._r_get_guild),
            ("GET", "/guilds/{guild_id}/channels", self._r_get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self._r_get_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._r_get_member),
            ("GET", "/channels/{channel_id}", self._r_get_channel),
            ("GET", "/channels/{channel_id}/messages", self._r_history),
            ("POST", "/channels/{channel_id}/messages", self._r_create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._r_get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._r_edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._r_delete_message),
            ("POST", "/channels/{channel_id}/typing", self._r_typing),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._r_add_reaction,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._r_remove_reaction,
            ),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._r_callback),
            ("GET", "/webhooks/{application_id}/{token}/messages/@original", self._r_get_original),
            (
                "PATCH",
                "/webhooks/{application_id}/{token}/messages/@original",
                self._r_edit_original,
            ),
            (
                "DELETE",
                "/webhooks/{application_id}/{token}/messages/@original",
                self._r_delete_original,
            ),
            ("POST", "/webhooks/{application_id}/{token}", self._r_followup),
            (
                "GET",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                self._r_get_followup,
            ),
            (
                "PATCH",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                self._r_edit_followup,
            ),
            (
                "DELETE",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                self._r_delete_followup,
            ),
        ]
        routes = []
        for method, template, handler in table:
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            auth = not template.startswith(("/webhooks/", "/interactions/"))
            routes.append(_Route(method, template, re.compile(f"^{pattern}$"), handler, auth))
        return routes

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
        return _json_response(body, status=rule.status, headers=headers)

    def _check_fail(self, rec: RecordedRequest, *, after_commit: bool) -> web.Response | None:
        for rule in self.fail_rules:
            if rule.after_commit == after_commit and rule.matches(rec.method, rec.path):
                return self._fail_response(rule, rec)
        return None

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
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
                if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
                    raise ApiError(401, 0, "401: Unauthorized")
                result = await route.handler(rec, **params)
                if isinstance(result, web.StreamResponse):
                    response = result
                elif result is None:
                    response = web.Response(status=204)
                else:
                    response = _json_response(result)
                response = self._check_fail(rec, after_commit=True) or response
        except ApiError as exc:
            response = _json_response(exc.body(), status=exc.status, headers=exc.headers)
        rec.status = response.status
        await self._notify()
        return response

    def _resolve(self, method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method != method:
                continue
            m = route.regex.match(path)
            if m:
                return route, m.groupdict()
        return None, {}

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
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
        att = self.attachments.get(int(request.match_info["attachment_id"]))
        if att is None or quote(att.filename) != quote(request.match_info["filename"]):
            rec.status = 404
            return web.Response(status=404, text="Not Found")
        self.attachment_downloads[att.id] += 1
        rec.status = 200
        return web.Response(
            body=att.data,
            content_type=(att.content_type or "").split(";")[0] or "application/octet-stream",
        )

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=_png_1x1(), content_type="image/png")

    # ---------------------------------------------------------------- REST: users, app, gateway

    async def _r_get_me(self, req: RecordedRequest) -> JSON:
        return {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "flags": 0}

    async def _r_get_user(self, req: RecordedRequest, user_id: str) -> JSON:
        user = self.users.get(int(user_id))
        if user is None:
            raise ApiError(404, E_UNKNOWN_USER, "Unknown User")
        return user.payload()

    async def _r_create_dm(self, req: RecordedRequest) -> JSON:
        user = self.users.get(int(req.json["recipient_id"]))
        if user is None:
            raise ApiError(404, E_UNKNOWN_USER, "Unknown User")
        return self.dm_channel(user).payload()

    async def _r_gateway(self, req: RecordedRequest) -> JSON:
        return {"url": self.gateway_url}

    async def _r_gateway_bot(self, req: RecordedRequest) -> JSON:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 0,
                "max_concurrency": 1,
            },
        }

    async def _r_app_info(self, req: RecordedRequest) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot": self.bot_user.payload(),
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 1 << 19,
            "owner": self.owner_user.payload(),
            "team": None,
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
            "install_params": None,
            "integration_types_config": {"0": {}},
            "approximate_guild_count": len(self.guilds),
        }

    async def _r_entitlements(self, req: RecordedRequest, application_id: str) -> list[JSON]:
        return []

    # ---------------------------------------------------------------- REST: commands

    def _command_pool(self, application_id: str, guild_id: str | None) -> list[JSON]:
        if int(application_id) != self.application_id:
            raise ApiError(403, E_MISSING_ACCESS, "Missing Access")
        if guild_id is None:
            return self.global_commands
        gid = int(guild_id)
        if gid not in self.guilds:
            raise ApiError(403, E_MISSING_ACCESS, "Missing Access")
        return self.guild_commands.setdefault(gid, [])

    def _normalise_command(
        self, payload: JSON, guild_id: str | None, previous: list[JSON], index: int
    ) -> JSON:
        ctype = int(payload.get("type", 1))
        name = payload.get("name", "")
        where: list[str | int] = [index] if index >= 0 else []
        if ctype == 1:
            if not _COMMAND_NAME.match(name) or name != name.lower():
                raise _form_error(
                    [*where, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            if not 1 <= len(payload.get("description", "")) <= 100:
                raise _form_error(
                    [*where, "description"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            _validate_options(payload.get("options") or [], [*where, "options"])
        elif not 1 <= len(name) <= 32:
            raise _form_error(
                [*where, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
            )
        old = next((c for c in previous if c["name"] == name and int(c["type"]) == ctype), None)
        cmd: JSON = {
            "id": old["id"] if old else str(self.snowflake()),
            "application_id": str(self.application_id),
            "version": str(self.snowflake()),
            "type": ctype,
            "name": name,
            "description": payload.get("description", ""),
            "options": copy.deepcopy(payload.get("options") or []),
            "default_member_permissions": payload.get("default_member_permissions"),
            "dm_permission": payload.get("dm_permission", True),
            "nsfw": payload.get("nsfw", False),
            "contexts": payload.get("contexts"),
            "integration_types": payload.get("integration_types") or [0],
            "name_localizations": payload.get("name_localizations"),
            "description_localizations": payload.get("description_localizations"),
        }
        if guild_id is not None:
            cmd["guild_id"] = str(guild_id)
        return cmd

    async def _r_get_commands(
        self, req: RecordedRequest, application_id: str, guild_id: str | None = None
    ) -> list[JSON]:
        return copy.deepcopy(self._command_pool(application_id, guild_id))

    async def _r_put_commands(
        self, req: RecordedRequest, application_id: str, guild_id: str | None = None
    ) -> list[JSON]:
        pool = self._command_pool(application_id, guild_id)
        payload = req.json or []
        if len(payload) > 100:
            raise _form_error([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()
        new = []
        for i, item in enumerate(payload):
            cmd = self._normalise_command(item, guild_id, pool, i)
            key = (cmd["name"], cmd["type"])
            if key in seen:
                raise _form_error(
                    [i, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(key)
            new.append(cmd)
        pool[:] = new
        return copy.deepcopy(new)

    async def _r_upsert_command(
        self, req: RecordedRequest, application_id: str, guild_id: str | None = None
    ) -> JSON:
        pool = self._command_pool(application_id, guild_id)
        cmd = self._normalise_command(req.json, guild_id, pool, -1)
        pool[:] = [c for c in pool if c["id"] != cmd["id"]] + [cmd]
        return copy.deepcopy(cmd)

    def _command_by_id(self, pool: list[JSON], command_id: str) -> JSON:
        for cmd in pool:
            if cmd["id"] == command_id:
                return cmd
        raise ApiError(404, E_UNKNOWN_COMMAND, "Unknown application command")

    async def _r_get_command(
        self,
        req: RecordedRequest,
        application_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> JSON:
        return copy.deepcopy(
            self._command_by_id(self._command_pool(application_id, guild_id), command_id)
        )

    async def _r_edit_command(
        self,
        req: RecordedRequest,
        application_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> JSON:
        pool = self._command_pool(application_id, guild_id)
        cmd = self._command_by_id(pool, command_id)
        cmd.update(copy.deepcopy(req.json or {}))
        cmd["version"] = str(self.snowflake())
        return copy.deepcopy(cmd)

    async def _r_delete_command(
        self,
        req: RecordedRequest,
        application_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> None:
        pool = self._command_pool(application_id, guild_id)
        cmd = self._command_by_id(pool, command_id)
        pool.remove(cmd)

    # ---------------------------------------------------------------- REST: guilds, channels

    def _guild(self, guild_id: str) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    async def _r_get_guild(self, req: RecordedRequest, guild_id: str) -> JSON:
        return self._guild(guild_id).payload()

    async def _r_get_guild_channels(self, req: RecordedRequest, guild_id: str) -> list[JSON]:
        return [c.payload() for c in self._guild(guild_id).channels.values() if not c.deleted]

    async def _r_get_roles(self, req: RecordedRequest, guild_id: str) -> list[JSON]:
        return [r.payload() for r in self._guild(guild_id).roles.values()]

    async def _r_get_member(self, req: RecordedRequest, guild_id: str, user_id: str) -> JSON:
        member = self._guild(guild_id).members.get(int(user_id))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return member.payload()

    def _channel(self, channel_id: str | int, *, need: int = PERM_VIEW_CHANNEL) -> FakeChannel:
        channel = self.channels.get(int(channel_id))
        if channel is None or channel.deleted:
            raise ApiError(404, E_UNKNOWN_CHANNEL, "Unknown Channel")
        perms = self.bot_permissions(channel)
        if not perms & PERM_VIEW_CHANNEL:
            raise ApiError(403, E_MISSING_ACCESS, "Missing Access")
        if perms & need != need:
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        return channel

    async def _r_get_channel(self, req: RecordedRequest, channel_id: str) -> JSON:
        return self._channel(channel_id).payload()

    async def _r_history(self, req: RecordedRequest, channel_id: str) -> list[JSON]:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_READ_HISTORY)
        msgs = [m for m in self.messages.get(channel.id, []) if not m.ephemeral]
        limit = int(req.query.get("limit", 50))
        if "before" in req.query:
            msgs = [m for m in msgs if m.id < int(req.query["before"])]
        if "after" in req.query:
            msgs = [m for m in msgs if m.id > int(req.query["after"])][:limit]
        newest_first = sorted(msgs, key=lambda m: m.id, reverse=True)[:limit]
        return [self.message_payload(m) for m in newest_first]

    async def _r_get_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> JSON:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_READ_HISTORY)
        msg = self.get_message(channel.id, int(message_id))
        if msg.ephemeral:
            raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
        return self.message_payload(msg)

    async def _r_typing(self, req: RecordedRequest, channel_id: str) -> None:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_SEND_MESSAGES)
        self.typing.append(channel.id)

    async def _r_create_message(self, req: RecordedRequest, channel_id: str) -> JSON:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_SEND_MESSAGES)
        if channel.type == 1 and channel.recipients and channel.recipients[0].dms_closed:
            raise ApiError(403, E_CANNOT_DM, "Cannot send messages to this user")
        body: JSON = req.json or {}
        if req.files and not self.bot_permissions(channel) & PERM_ATTACH_FILES:
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        nonce = body.get("nonce")
        now = time.monotonic()
        if nonce is not None and body.get("enforce_nonce"):
            hit = self._nonces.get((channel.id, str(nonce)))
            if hit is not None and now - hit[0] < NONCE_WINDOW_S and not hit[1].deleted:
                self.counters["nonce.dedup"] += 1
                return self.message_payload(hit[1])
        msg = self._build_message(
            channel,
            body,
            req.files,
            limit=self.upload_limit(channel),
            mtype=0,
        )
        msg.nonce = nonce
        msg.enforce_nonce = bool(body.get("enforce_nonce"))
        ref = body.get("message_reference")
        if ref:
            target = None
            with contextlib.suppress(ApiError):
                target = self.get_message(
                    int(ref.get("channel_id") or channel.id), int(ref["message_id"])
                )
            if target is None and ref.get("fail_if_not_exists", True):
                raise _form_error(
                    ["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            if target is not None:
                msg.type = 19
                msg.referenced = target
                msg.message_reference = _reference(target)
                self._apply_mentions(msg, body.get("allowed_mentions"), replied=target)
        self.messages[channel.id].append(msg)
        if nonce is not None:
            self._nonces[(channel.id, str(nonce))] = (now, msg)
        await self._echo("MESSAGE_CREATE", msg)
        return self.message_payload(msg)

    async def _r_edit_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> JSON:
        channel = self._channel(channel_id)
        msg = self.get_message(channel.id, int(message_id))
        if msg.ephemeral:
            # Ephemeral interaction responses are invisible to the channel endpoints.
            raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
        # A non-ephemeral interaction response is the bot's own message: after the token expires
        # the bot can still edit it through the channel endpoint (discord-api-docs #3090).
        own_response = (
            msg.webhook_id == self.application_id
            and msg.interaction_metadata is not None
            and not msg.loading
        )
        if msg.author.id != self.bot_user.id or (msg.webhook_id is not None and not own_response):
            body = req.json or {}
            if set(body) - {"flags"}:
                raise ApiError(
                    403, E_CANNOT_EDIT_OTHERS, "Cannot edit a message authored by another user"
                )
        self._apply_edit(msg, req.json or {}, req.files, limit=self.upload_limit(channel))
        await self._echo("MESSAGE_UPDATE", msg)
        return self.message_payload(msg)

    async def _r_delete_message(
        self, req: RecordedRequest, channel_id: str, message_id: str
    ) -> None:
        channel = self._channel(channel_id)
        msg = self.get_message(channel.id, int(message_id))
        if msg.author.id != self.bot_user.id and not (
            self.bot_permissions(channel) & PERM_MANAGE_MESSAGES
        ):
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        self._remove_message(msg)
        await self._echo("MESSAGE_DELETE", msg)

    async def _r_add_reaction(
        self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str
    ) -> None:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_READ_HISTORY)
        msg = self.get_message(channel.id, int(message_id))
        users = msg.reactions.setdefault(emoji, set())
        if not users and not self.bot_permissions(channel) & PERM_ADD_REACTIONS:
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        users.add(self.bot_user.id)

    async def _r_remove_reaction(
        self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str
    ) -> None:
        channel = self._channel(channel_id)
        msg = self.get_message(channel.id, int(message_id))
        msg.reactions.get(emoji, set()).discard(self.bot_user.id)

    # ---------------------------------------------------------------- message construction

    def _build_message(
        self,
        channel: FakeChannel,
        body: JSON,
        files: list[UploadedFile],
        *,
        limit: int,
        mtype: int,
        extra_flags: int = 0,
        allowed_flags: int = FLAG_SUPPRESS_EMBEDS
        | FLAG_SUPPRESS_NOTIFICATIONS
        | FLAG_COMPONENTS_V2,
        webhook: bool = False,
    ) -> FakeMessage:
        flags = (int(body.get("flags") or 0) & allowed_flags) | extra_flags
        attachments = self._build_attachments(channel.id, body.get("attachments"), files, [], limit)
        content = body.get("content") or ""
        embeds = copy.deepcopy(body.get("embeds") or [])
        components = _number_components(copy.deepcopy(body.get("components") or []))
        _validate_message(
            content,
            embeds,
            components,
            attachments,
            flags,
            poll=body.get("poll"),
            stickers=body.get("sticker_ids"),
        )
        msg = FakeMessage(
            id=self.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.bot_user,
            content=content,
            embeds=embeds,
            components=components,
            attachments=attachments,
            allowed_mentions=copy.deepcopy(body.get("allowed_mentions")),
            flags=flags,
            tts=bool(body.get("tts")),
            type=mtype,
            poll=body.get("poll"),
            sticker_ids=list(body.get("sticker_ids") or []),
        )
        if webhook:
            msg.webhook_id = self.application_id
            msg.application_id = self.application_id
        self._apply_mentions(msg, msg.allowed_mentions)
        return msg

    def _apply_edit(
        self, msg: FakeMessage, body: JSON, files: list[UploadedFile], *, limit: int
    ) -> None:
        if msg.deleted:
            raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
        content = (body.get("content") or "") if "content" in body else msg.content
        embeds = copy.deepcopy(body["embeds"] or []) if "embeds" in body else msg.embeds
        components = (
            _number_components(copy.deepcopy(body["components"] or []))
            if "components" in body
            else msg.components
        )
        attachments = msg.attachments
        if "attachments" in body or files:
            attachments = self._build_attachments(
                msg.channel_id, body.get("attachments"), files, msg.attachments, limit
            )
        flags = msg.flags
        if "flags" in body and body["flags"] is not None:
            mutable = FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2
            flags = (flags & ~mutable) | (int(body["flags"]) & mutable)
        if msg.loading:
            flags &= ~FLAG_LOADING
        _validate_message(
            content, embeds, components, attachments, flags, poll=msg.poll, stickers=msg.sticker_ids
        )
        was_loading = msg.loading
        msg.content, msg.embeds, msg.components = content, embeds, components
        msg.attachments, msg.flags = attachments, flags
        if "allowed_mentions" in body:
            msg.allowed_mentions = copy.deepcopy(body["allowed_mentions"])
        self._apply_mentions(msg, msg.allowed_mentions, replied=msg.referenced)
        if not was_loading:
            msg.edited_at = time.time()
        msg.edits.append(copy.deepcopy(body))

    def _build_attachments(
        self,
        channel_id: int,
        entries: list[JSON] | None,
        files: list[UploadedFile],
        existing: list[FakeAttachment],
        limit: int,
    ) -> list[FakeAttachment]:
        for f in files:
            if len(f.data) > limit:
                raise ApiError(413, E_TOO_LARGE, "Request entity too large")
        if len(files) > MAX_FILES:
            raise _form_error(
                ["attachments"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length."
            )
        by_index = {f.index: f for f in files if f.index is not None}
        used: set[int] = set()
        result: list[FakeAttachment] = []
        if entries is None:
            result = list(existing)
        else:
            old = {a.id: a for a in existing}
            for i, entry in enumerate(entries):
                eid = int(entry["id"])
                if eid in by_index and eid not in used:
                    f = by_index[eid]
                    used.add(eid)
                    result.append(self._upload(channel_id, f, entry))
                elif eid in old:
                    result.append(old[eid])
                else:
                    raise _form_error(
                        ["attachments", i, "id"], "ATTACHMENT_NOT_FOUND", "Unknown attachment"
                    )
        for f in files:
            if f.index is None or f.index not in used:
                result.append(self._upload(channel_id, f, {}))
        return result

    def _upload(self, channel_id: int, f: UploadedFile, entry: JSON) -> FakeAttachment:
        name = entry.get("filename") or f.filename
        ctype = f.content_type if f.content_type not in (None, "application/octet-stream") else None
        att = self.make_attachment(
            name,
            f.data,
            content_type=ctype,
            channel_id=channel_id,
            description=entry.get("description"),
        )
        att.title = entry.get("title")
        return att

    def _apply_mentions(
        self, msg: FakeMessage, allowed: JSON | None, replied: FakeMessage | None = None
    ) -> None:
        """Who actually gets pinged, per content and allowed_mentions (Discord's rules)."""
        user_ids = [int(i) for i in _USER_MENTION.findall(msg.content)]
        role_ids = [int(i) for i in _ROLE_MENTION.findall(msg.content)]
        everyone = "@everyone" in msg.content or "@here" in msg.content
        if allowed is not None:
            parse = allowed.get("parse") or []
            if "users" not in parse:
                permitted = {int(u) for u in allowed.get("users") or []}
                user_ids = [u for u in user_ids if u in permitted]
            if "roles" not in parse:
                permitted = {int(r) for r in allowed.get("roles") or []}
                role_ids = [r for r in role_ids if r in permitted]
            everyone = everyone and "everyone" in parse
            reply_ping = bool(allowed.get("replied_user", False))
        else:
            reply_ping = True
        users = [self.users[u] for u in user_ids if u in self.users]
        if replied is not None and reply_ping and replied.author.id != self.bot_user.id:
            users.append(replied.author)
        msg.mentions = _dedupe(users)
        msg.mention_roles = list(dict.fromkeys(role_ids))
        msg.mention_everyone = everyone

    # ---------------------------------------------------------------- REST: interactions

    def _live_handle(self, handle: InteractionHandle) -> None:
        if handle.expired_status is not None:
            if handle.expired_status == 404:
                raise ApiError(404, E_UNKNOWN_WEBHOOK, "Unknown Webhook")
            raise ApiError(401, E_INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        if handle.channel.deleted:
            raise ApiError(404, E_UNKNOWN_CHANNEL, "Unknown Channel")

    async def _r_callback(self, req: RecordedRequest, interaction_id: str, token: str) -> Any:
        handle = self.interactions.get(int(interaction_id))
        if handle is None or handle.token != token or handle.expired_status is not None:
            raise ApiError(404, E_UNKNOWN_INTERACTION, "Unknown interaction")
        deadline = self.interaction_ack_deadline
        if deadline is not None and time.monotonic() - handle.created_at > deadline:
            raise ApiError(404, E_UNKNOWN_INTERACTION, "Unknown interaction")
        if handle.callbacks:
            raise ApiError(
                400, E_ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."
            )
        body: JSON = req.json or {}
        ctype = int(body.get("type", 0))
        data: JSON | None = body.get("data")
        if ctype not in _ALLOWED_CALLBACKS.get(handle.type, set()):
            raise _form_error(
                ["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Callback type {ctype} is not valid for this interaction",
            )
        if ctype in (CB_DEFERRED_UPDATE, CB_UPDATE) and handle.source_message is None:
            raise _form_error(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "There is no message to update"
            )
        resource_message: FakeMessage | None = None
        metadata = self._interaction_metadata(handle)
        if ctype == CB_MESSAGE:
            msg = self._build_message(
                handle.channel,
                data or {},
                req.files,
                limit=handle.attachment_size_limit,
                mtype=self._response_message_type(handle),
                webhook=True,
                allowed_flags=FLAG_EPHEMERAL
                | FLAG_SUPPRESS_EMBEDS
                | FLAG_SUPPRESS_NOTIFICATIONS
                | FLAG_COMPONENTS_V2,
            )
            msg.interaction_metadata = metadata
            self.messages[handle.channel.id].append(msg)
            handle.original = resource_message = msg
        elif ctype == CB_DEFERRED_MESSAGE:
            ephemeral = int((data or {}).get("flags", 0)) & FLAG_EPHEMERAL
            msg = FakeMessage(
                id=self.snowflake(),
                channel_id=handle.channel.id,
                guild_id=handle.channel.guild_id,
                author=self.bot_user,
                flags=FLAG_LOADING | ephemeral,
                type=self._response_message_type(handle),
                webhook_id=self.application_id,
                application_id=self.application_id,
                interaction_metadata=metadata,
            )
            self.messages[handle.channel.id].append(msg)
            handle.original = resource_message = msg
        elif ctype == CB_DEFERRED_UPDATE:
            handle.original = handle.source_message
        elif ctype == CB_UPDATE:
            assert handle.source_message is not None
            self._apply_edit(
                handle.source_message, data or {}, req.files, limit=handle.attachment_size_limit
            )
            handle.original = resource_message = handle.source_message
        elif ctype == CB_AUTOCOMPLETE:
            choices = (data or {}).get("choices") or []
            if len(choices) > 25:
                raise _form_error(
                    ["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            handle.autocomplete_choices = choices
        elif ctype == CB_MODAL:
            _validate_modal(data or {})
            handle.modal = copy.deepcopy(data)
            self._modals[str((data or {})["custom_id"])] = handle
        handle.callbacks.append(
            CallbackRecord(ctype, copy.deepcopy(data), req.files, time.monotonic())
        )
        if resource_message is not None:
            event = "MESSAGE_UPDATE" if ctype == CB_UPDATE else "MESSAGE_CREATE"
            await self._echo(event, resource_message)
        if req.query.get("with_response") not in ("1", "true", "True"):
            return None
        info: JSON = {"id": str(handle.id), "type": handle.type}
        result: JSON = {"interaction": info}
        if resource_message is not None:
            info.update(
                response_message_id=str(resource_message.id),
                response_message_loading=resource_message.loading,
                response_message_ephemeral=resource_message.ephemeral,
            )
            result["resource"] = {"type": ctype, "message": self.message_payload(resource_message)}
        return result

    def _response_message_type(self, handle: InteractionHandle) -> int:
        if handle.type == IT_COMMAND:
            return 20 if int(handle.payload["data"].get("type", 1)) == 1 else 23
        return 0

    def _interaction_metadata(self, handle: InteractionHandle) -> JSON:
        meta: JSON = {
            "id": str(handle.id),
            "type": handle.type,
            "user": handle.user.payload(),
            "authorizing_integration_owners": handle.payload["authorizing_integration_owners"],
        }
        if handle.type == IT_COMMAND:
            meta["name"] = handle.payload["data"]["name"]
            meta["command_type"] = int(handle.payload["data"].get("type", 1))
        if handle.source_message is not None:
            meta["interacted_message_id"] = str(handle.source_message.id)
        return meta

    def _webhook_handle(self, application_id: str, token: str) -> InteractionHandle:
        if int(application_id) != self.application_id:
            raise ApiError(404, E_UNKNOWN_WEBHOOK, "Unknown Webhook")
        handle = self._handles_by_token.get(token)
        if handle is None:
            raise ApiError(401, E_INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        self._live_handle(handle)
        if not handle.callbacks:
            raise ApiError(404, E_UNKNOWN_WEBHOOK, "Unknown Webhook")
        return handle

    def _original(self, handle: InteractionHandle) -> FakeMessage:
        msg = handle.original
        if msg is None or msg.deleted:
            raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
        return msg

    async def _r_get_original(self, req: RecordedRequest, application_id: str, token: str) -> JSON:
        handle = self._webhook_handle(application_id, token)
        return self.message_payload(self._original(handle))

    async def _r_edit_original(self, req: RecordedRequest, application_id: str, token: str) -> JSON:
        handle = self._webhook_handle(application_id, token)
        msg = self._original(handle)
        self._apply_edit(msg, req.json or {}, req.files, limit=handle.attachment_size_limit)
        handle.original_edits.append(copy.deepcopy(req.json or {}))
        await self._echo("MESSAGE_UPDATE", msg)
        return self.message_payload(msg)

    async def _r_delete_original(
        self, req: RecordedRequest, application_id: str, token: str
    ) -> None:
        handle = self._webhook_handle(application_id, token)
        msg = self._original(handle)
        self._remove_message(msg)
        handle.original_deleted = True
        await self._echo("MESSAGE_DELETE", msg)

    async def _r_followup(self, req: RecordedRequest, application_id: str, token: str) -> Any:
        handle = self._webhook_handle(application_id, token)
        body: JSON = req.json or {}
        original = handle.original
        if handle.response_type == CB_DEFERRED_MESSAGE and original is not None:
            if original.deleted:
                raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
            if original.loading:
                # Discord: the first followup after a "thinking" defer replaces that message
                # and keeps the defer's ephemerality.
                self._apply_edit(
                    original,
                    {k: v for k, v in body.items() if k != "flags"},
                    req.files,
                    limit=handle.attachment_size_limit,
                )
                handle.followups.append(original)
                await self._echo("MESSAGE_UPDATE", original)
                return (
                    self.message_payload(original)
                    if req.query.get("wait") in ("1", "true")
                    else None
                )
        msg = self._build_message(
            handle.channel,
            body,
            req.files,
            limit=handle.attachment_size_limit,
            mtype=0,
            webhook=True,
            allowed_flags=FLAG_EPHEMERAL
            | FLAG_SUPPRESS_EMBEDS
            | FLAG_SUPPRESS_NOTIFICATIONS
            | FLAG_COMPONENTS_V2,
        )
        msg.interaction_metadata = self._interaction_metadata(handle)
        self.messages[handle.channel.id].append(msg)
        handle.followups.append(msg)
        await self._echo("MESSAGE_CREATE", msg)
        if req.query.get("wait") in ("1", "true"):
            return self.message_payload(msg)
        return None

    def _followup_message(self, handle: InteractionHandle, message_id: str) -> FakeMessage:
        mid = int(message_id)
        for msg in [handle.original, *handle.followups]:
            if msg is not None and msg.id == mid and not msg.deleted:
                return msg
        raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")

    async def _r_get_followup(
        self, req: RecordedRequest, application_id: str, token: str, message_id: str
    ) -> JSON:
        handle = self._webhook_handle(application_id, token)
        return self.message_payload(self._followup_message(handle, message_id))

    async def _r_edit_followup(
        self, req: RecordedRequest, application_id: str, token: str, message_id: str
    ) -> JSON:
        handle = self._webhook_handle(application_id, token)
        msg = self._followup_message(handle, message_id)
        self._apply_edit(msg, req.json or {}, req.files, limit=handle.attachment_size_limit)
        if msg is handle.original:
            handle.original_edits.append(copy.deepcopy(req.json or {}))
        await self._echo("MESSAGE_UPDATE", msg)
        return self.message_payload(msg)

    async def _r_delete_followup(
        self, req: RecordedRequest, application_id: str, token: str, message_id: str
    ) -> None:
        handle = self._webhook_handle(application_id, token)
        msg = self._followup_message(handle, message_id)
        self._remove_message(msg)
        if msg is handle.original:
            handle.original_deleted = True
        await self._echo("MESSAGE_DELETE", msg)


# --------------------------------------------------------------------------------------------
# Validation (Discord's documented limits; 400 50035 like the real API)
# --------------------------------------------------------------------------------------------


def _validate_message(
    content: str,
    embeds: list[JSON],
    components: list[JSON],
    attachments: list[FakeAttachment],
    flags: int,
    *,
    poll: Any = None,
    stickers: Any = None,
) -> None:
    if flags & FLAG_LOADING:
        return
    if not (content or embeds or components or attachments or poll or stickers):
        raise ApiError(400, E_EMPTY_MESSAGE, "Cannot send an empty message")
    if len(content) > 2000:
        raise _form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    if flags & FLAG_COMPONENTS_V2 and (content or embeds):
        raise _form_error(
            ["content" if content else "embeds"],
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used with components v2",
        )
    if len(embeds) > 10:
        raise _form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    limits = {"title": 256, "description": 4096}
    for i, embed in enumerate(embeds):
        for key, limit in limits.items():
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                raise _form_error(
                    ["embeds", i, key],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {limit} or fewer in length.",
                )
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise _form_error(
                ["embeds", i, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                text = str(fld.get(key) or "")
                total += len(text)
                if not text or len(text) > limit:
                    raise _form_error(
                        ["embeds", i, "fields", j, key],
                        "BASE_TYPE_BAD_LENGTH",
                        f"Must be between 1 and {limit} in length.",
                    )
        for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
            text = str((embed.get(key) or {}).get(sub) or "")
            total += len(text)
            if len(text) > limit:
                raise _form_error(
                    ["embeds", i, key, sub],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {limit} or fewer in length.",
                )
    if total > 6000:
        raise _form_error(
            ["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    _validate_components(components, v2=bool(flags & FLAG_COMPONENTS_V2))


def _validate_components(components: list[JSON], *, v2: bool) -> None:
    if not v2:
        if len(components) > 5:
            raise _form_error(
                ["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
            )
        for i, row in enumerate(components):
            if int(row.get("type", 0)) != 1:
                raise _form_error(
                    ["components", i, "type"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "Top-level components must be action rows",
                )
            children = row.get("components") or []
            selects = [c for c in children if int(c["type"]) in (3, 5, 6, 7, 8)]
            if not children or len(children) > 5 or (selects and len(children) > 1):
                raise _form_error(
                    ["components", i, "components"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
    seen: set[str] = set()
    for comp in _walk_components(components):
        cid = comp.get("custom_id")
        if comp.get("type") == 2:
            if len(comp.get("label") or "") > 80:
                raise _form_error(
                    ["components"], "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."
                )
            link = comp.get("style") == 5
            if link and (cid or not comp.get("url")):
                raise _form_error(
                    ["components"],
                    "BUTTON_COMPONENT_INVALID",
                    "Link buttons need a url and no custom_id",
                )
            if not link and comp.get("style") != 6 and not cid:
                raise _form_error(
                    ["components"], "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required"
                )
        if cid is None:
            continue
        if len(cid) > 100:
            raise _form_error(
                ["components"], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
            )
        if cid in seen:
            raise _form_error(
                ["components"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(cid)


def _validate_modal(data: JSON) -> None:
    if not 1 <= len(data.get("title") or "") <= 45:
        raise _form_error(
            ["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
        )
    cid = data.get("custom_id") or ""
    if not 1 <= len(cid) <= 100:
        raise _form_error(
            ["data", "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        raise _form_error(
            ["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    for comp in _walk_components(components):
        if comp.get("type") == 4 and "label" in comp and len(comp["label"] or "") > 45:
            raise _form_error(
                ["data", "components"], "BASE_TYPE_MAX_LENGTH", "Must be 45 or fewer in length."
            )


def _validate_options(options: list[JSON], where: list[str | int]) -> None:
    if len(options) > 25:
        raise _form_error(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    optional_seen = False
    for i, opt in enumerate(options):
        name = opt.get("name", "")
        if not _COMMAND_NAME.match(name) or name != name.lower():
            raise _form_error(
                [*where, i, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        if not 1 <= len(opt.get("description", "")) <= 100:
            raise _form_error(
                [*where, i, "description"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        if int(opt.get("type", 0)) in (1, 2):
            _validate_options(opt.get("options") or [], [*where, i, "options"])
            continue
        if opt.get("required"):
            if optional_seen:
                raise _form_error(
                    [*where, i],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _id(obj: Any) -> int:
    return int(obj.id) if hasattr(obj, "id") else int(obj)


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _dedupe(users: Iterable[FakeUser]) -> list[FakeUser]:
    return list({u.id: u for u in users}.values())


def _overwrite(raw: JSON) -> JSON:
    return {
        "id": str(raw["id"]),
        "type": int(raw.get("type", 0)),
        "allow": str(raw.get("allow", 0)),
        "deny": str(raw.get("deny", 0)),
    }


def _reference(msg: FakeMessage) -> JSON:
    ref: JSON = {"type": 0, "message_id": str(msg.id), "channel_id": str(msg.channel_id)}
    if msg.guild_id is not None:
        ref["guild_id"] = str(msg.guild_id)
    return ref


def _emoji_payload(name: str) -> JSON:
    m = re.fullmatch(r"<?a?:?(\w+):(\d+)>?", name)
    if m:
        return {"id": m.group(2), "name": m.group(1)}
    return {"id": None, "name": name}


def _number_components(components: list[JSON]) -> list[JSON]:
    """Discord gives every component a numeric ``id`` unique within the message."""
    taken = {int(c["id"]) for c in _walk_components(components) if c.get("id") is not None}
    counter = 1
    for comp in _walk_components(components):
        if comp.get("id") is None:
            while counter in taken:
                counter += 1
            comp["id"] = counter
            taken.add(counter)
    return components


def _json_response(
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
