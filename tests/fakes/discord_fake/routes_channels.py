"""REST handlers for channels: fetching channels, history and messages, creating (with
``enforce_nonce`` dedup and replies), editing and deleting messages, typing and reactions, each
checked against the bot's channel permissions like Discord does.

Patch ``NONCE_WINDOW_S`` here (``tests.fakes.discord_fake.routes_channels``): this module reads it.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter

from tests.fakes.discord_fake import payloads
from tests.fakes.discord_fake.gateway import Gateway
from tests.fakes.discord_fake.messages import MessageBuilder
from tests.fakes.discord_fake.model import FakeChannel, FakeMessage, message_reference
from tests.fakes.discord_fake.protocol import (
    E_CANNOT_DM,
    E_CANNOT_EDIT_OTHERS,
    E_MISSING_ACCESS,
    E_MISSING_PERMISSIONS,
    E_UNKNOWN_CHANNEL,
    E_UNKNOWN_MESSAGE,
    JSON,
    PERM_ADD_REACTIONS,
    PERM_ATTACH_FILES,
    PERM_MANAGE_MESSAGES,
    PERM_READ_HISTORY,
    PERM_SEND_MESSAGES,
    PERM_VIEW_CHANNEL,
    ApiError,
)
from tests.fakes.discord_fake.rest import RecordedRequest
from tests.fakes.discord_fake.validators import form_error
from tests.fakes.discord_fake.world import World

NONCE_WINDOW_S = 5 * 60.0  # Discord: enforce_nonce dedup holds "for the past few minutes"


class ChannelRoutes:
    """/channels/{channel_id}/..."""

    def __init__(
        self, world: World, gateway: Gateway, builder: MessageBuilder, *, counters: Counter[str]
    ) -> None:
        self.world = world
        self.gateway = gateway
        self.builder = builder
        self.counters = counters
        self.typing: list[int] = []  # channel ids, one per POST /typing
        self._nonces: dict[tuple[int, str], tuple[float, FakeMessage]] = {}

    def _channel(self, channel_id: str | int, *, need: int = PERM_VIEW_CHANNEL) -> FakeChannel:
        channel = self.world.channels.get(int(channel_id))
        if channel is None or channel.deleted:
            raise ApiError(404, E_UNKNOWN_CHANNEL, "Unknown Channel")
        perms = self.world.bot_permissions(channel)
        if not perms & PERM_VIEW_CHANNEL:
            raise ApiError(403, E_MISSING_ACCESS, "Missing Access")
        if perms & need != need:
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        return channel

    async def get_channel(self, req: RecordedRequest, channel_id: str) -> JSON:
        return self._channel(channel_id).payload()

    async def history(self, req: RecordedRequest, channel_id: str) -> list[JSON]:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_READ_HISTORY)
        msgs = [m for m in self.world.messages.get(channel.id, []) if not m.ephemeral]
        limit = int(req.query.get("limit", 50))
        if "before" in req.query:
            msgs = [m for m in msgs if m.id < int(req.query["before"])]
        if "after" in req.query:
            msgs = [m for m in msgs if m.id > int(req.query["after"])][:limit]
        newest_first = sorted(msgs, key=lambda m: m.id, reverse=True)[:limit]
        return [payloads.message_payload(self.world, m) for m in newest_first]

    async def get_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> JSON:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_READ_HISTORY)
        msg = self.world.get_message(channel.id, int(message_id))
        if msg.ephemeral:
            raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
        return payloads.message_payload(self.world, msg)

    async def trigger_typing(self, req: RecordedRequest, channel_id: str) -> None:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_SEND_MESSAGES)
        self.typing.append(channel.id)

    async def create_message(self, req: RecordedRequest, channel_id: str) -> JSON:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_SEND_MESSAGES)
        if channel.type == 1 and channel.recipients and channel.recipients[0].dms_closed:
            raise ApiError(403, E_CANNOT_DM, "Cannot send messages to this user")
        body: JSON = req.json or {}
        if req.files and not self.world.bot_permissions(channel) & PERM_ATTACH_FILES:
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        nonce = body.get("nonce")
        now = time.monotonic()
        if nonce is not None and body.get("enforce_nonce"):
            hit = self._nonces.get((channel.id, str(nonce)))
            if hit is not None and now - hit[0] < NONCE_WINDOW_S and not hit[1].deleted:
                self.counters["nonce.dedup"] += 1
                return payloads.message_payload(self.world, hit[1])
        msg = self.builder.build(
            channel,
            body,
            req.files,
            limit=self.world.upload_limit(channel),
            mtype=0,
        )
        msg.nonce = nonce
        msg.enforce_nonce = bool(body.get("enforce_nonce"))
        ref = body.get("message_reference")
        if ref:
            target = None
            with contextlib.suppress(ApiError):
                target = self.world.get_message(
                    int(ref.get("channel_id") or channel.id), int(ref["message_id"])
                )
            if target is None and ref.get("fail_if_not_exists", True):
                raise form_error(
                    ["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            if target is not None:
                msg.type = 19
                msg.referenced = target
                msg.message_reference = message_reference(target)
                self.builder.apply_mentions(msg, body.get("allowed_mentions"), replied=target)
        self.world.messages[channel.id].append(msg)
        if nonce is not None:
            self._nonces[(channel.id, str(nonce))] = (now, msg)
        await self.gateway.echo("MESSAGE_CREATE", msg)
        return payloads.message_payload(self.world, msg)

    async def edit_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> JSON:
        channel = self._channel(channel_id)
        msg = self.world.get_message(channel.id, int(message_id))
        if msg.ephemeral:
            # Ephemeral interaction responses are invisible to the channel endpoints.
            raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
        # A non-ephemeral interaction response is the bot's own message: after the token expires
        # the bot can still edit it through the channel endpoint (discord-api-docs #3090).
        own_response = (
            msg.webhook_id == self.world.application_id
            and msg.interaction_metadata is not None
            and not msg.loading
        )
        if msg.author.id != self.world.bot_user.id or (
            msg.webhook_id is not None and not own_response
        ):
            body = req.json or {}
            if set(body) - {"flags"}:
                raise ApiError(
                    403, E_CANNOT_EDIT_OTHERS, "Cannot edit a message authored by another user"
                )
        self.builder.apply_edit(
            msg, req.json or {}, req.files, limit=self.world.upload_limit(channel)
        )
        await self.gateway.echo("MESSAGE_UPDATE", msg)
        return payloads.message_payload(self.world, msg)

    async def delete_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> None:
        channel = self._channel(channel_id)
        msg = self.world.get_message(channel.id, int(message_id))
        if msg.author.id != self.world.bot_user.id and not (
            self.world.bot_permissions(channel) & PERM_MANAGE_MESSAGES
        ):
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        self.world.remove_message(msg)
        await self.gateway.echo("MESSAGE_DELETE", msg)

    async def add_reaction(
        self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str
    ) -> None:
        channel = self._channel(channel_id, need=PERM_VIEW_CHANNEL | PERM_READ_HISTORY)
        msg = self.world.get_message(channel.id, int(message_id))
        users = msg.reactions.setdefault(emoji, set())
        if not users and not self.world.bot_permissions(channel) & PERM_ADD_REACTIONS:
            raise ApiError(403, E_MISSING_PERMISSIONS, "Missing Permissions")
        users.add(self.world.bot_user.id)

    async def remove_reaction(
        self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str
    ) -> None:
        channel = self._channel(channel_id)
        msg = self.world.get_message(channel.id, int(message_id))
        msg.reactions.get(emoji, set()).discard(self.world.bot_user.id)
