"""REST handlers for interactions: the callback (defer, message, update, modal, autocomplete),
@original, and followups, with Discord's token and acknowledgement rules (3 s to answer, one
callback, 15-minute webhook tokens via ``fake.expire_token``).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from tests.fakes.discord_fake import payloads
from tests.fakes.discord_fake.gateway import Gateway
from tests.fakes.discord_fake.interactions import (
    CallbackRecord,
    InteractionDriver,
    InteractionHandle,
)
from tests.fakes.discord_fake.messages import MessageBuilder
from tests.fakes.discord_fake.model import FakeMessage
from tests.fakes.discord_fake.protocol import (
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_LAUNCH_ACTIVITY,
    CB_MESSAGE,
    CB_MODAL,
    CB_PONG,
    CB_UPDATE,
    E_ALREADY_ACKNOWLEDGED,
    E_INVALID_WEBHOOK_TOKEN,
    E_UNKNOWN_CHANNEL,
    E_UNKNOWN_INTERACTION,
    E_UNKNOWN_MESSAGE,
    E_UNKNOWN_WEBHOOK,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    IT_AUTOCOMPLETE,
    IT_COMMAND,
    IT_COMPONENT,
    IT_MODAL,
    IT_PING,
    JSON,
    ApiError,
)
from tests.fakes.discord_fake.rest import RecordedRequest
from tests.fakes.discord_fake.validators import form_error, validate_modal
from tests.fakes.discord_fake.world import Knobs, World

ALLOWED_CALLBACKS: dict[int, set[int]] = {
    IT_PING: {CB_PONG},
    IT_COMMAND: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_MODAL, CB_LAUNCH_ACTIVITY},
    IT_COMPONENT: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE, CB_MODAL},
    IT_AUTOCOMPLETE: {CB_AUTOCOMPLETE},
    IT_MODAL: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE},
}


class InteractionRoutes:
    """/interactions/{id}/{token}/callback and /webhooks/{application_id}/{token}/..."""

    def __init__(
        self,
        world: World,
        knobs: Knobs,
        gateway: Gateway,
        driver: InteractionDriver,
        builder: MessageBuilder,
    ) -> None:
        self.world = world
        self.knobs = knobs
        self.gateway = gateway
        self.driver = driver
        self.builder = builder

    def _live_handle(self, handle: InteractionHandle) -> None:
        if handle.expired_status is not None:
            if handle.expired_status == 404:
                raise ApiError(404, E_UNKNOWN_WEBHOOK, "Unknown Webhook")
            raise ApiError(401, E_INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        if handle.channel.deleted:
            raise ApiError(404, E_UNKNOWN_CHANNEL, "Unknown Channel")

    async def callback(self, req: RecordedRequest, interaction_id: str, token: str) -> Any:
        handle = self.driver.handles.get(int(interaction_id))
        if handle is None or handle.token != token or handle.expired_status is not None:
            raise ApiError(404, E_UNKNOWN_INTERACTION, "Unknown interaction")
        deadline = self.knobs.interaction_ack_deadline
        if deadline is not None and time.monotonic() - handle.created_at > deadline:
            raise ApiError(404, E_UNKNOWN_INTERACTION, "Unknown interaction")
        if handle.callbacks:
            raise ApiError(
                400, E_ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."
            )
        body: JSON = req.json or {}
        ctype = int(body.get("type", 0))
        data: JSON | None = body.get("data")
        if ctype not in ALLOWED_CALLBACKS.get(handle.type, set()):
            raise form_error(
                ["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Callback type {ctype} is not valid for this interaction",
            )
        if ctype in (CB_DEFERRED_UPDATE, CB_UPDATE) and handle.source_message is None:
            raise form_error(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "There is no message to update"
            )
        resource_message: FakeMessage | None = None
        metadata = self._interaction_metadata(handle)
        if ctype == CB_MESSAGE:
            msg = self.builder.build(
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
            self.world.messages[handle.channel.id].append(msg)
            handle.original = resource_message = msg
        elif ctype == CB_DEFERRED_MESSAGE:
            ephemeral = int((data or {}).get("flags", 0)) & FLAG_EPHEMERAL
            msg = FakeMessage(
                id=self.world.snowflake(),
                channel_id=handle.channel.id,
                guild_id=handle.channel.guild_id,
                author=self.world.bot_user,
                flags=FLAG_LOADING | ephemeral,
                type=self._response_message_type(handle),
                webhook_id=self.world.application_id,
                application_id=self.world.application_id,
                interaction_metadata=metadata,
            )
            self.world.messages[handle.channel.id].append(msg)
            handle.original = resource_message = msg
        elif ctype == CB_DEFERRED_UPDATE:
            handle.original = handle.source_message
        elif ctype == CB_UPDATE:
            assert handle.source_message is not None
            self.builder.apply_edit(
                handle.source_message, data or {}, req.files, limit=handle.attachment_size_limit
            )
            handle.original = resource_message = handle.source_message
        elif ctype == CB_AUTOCOMPLETE:
            choices = (data or {}).get("choices") or []
            if len(choices) > 25:
                raise form_error(
                    ["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            handle.autocomplete_choices = choices
        elif ctype == CB_MODAL:
            validate_modal(data or {})
            handle.modal = copy.deepcopy(data)
            self.driver.modals[str((data or {})["custom_id"])] = handle
        handle.callbacks.append(
            CallbackRecord(ctype, copy.deepcopy(data), req.files, time.monotonic())
        )
        if resource_message is not None:
            event = "MESSAGE_UPDATE" if ctype == CB_UPDATE else "MESSAGE_CREATE"
            await self.gateway.echo(event, resource_message)
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
            result["resource"] = {
                "type": ctype,
                "message": payloads.message_payload(self.world, resource_message),
            }
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
        if int(application_id) != self.world.application_id:
            raise ApiError(404, E_UNKNOWN_WEBHOOK, "Unknown Webhook")
        handle = self.driver.by_token.get(token)
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

    async def get_original(self, req: RecordedRequest, application_id: str, token: str) -> JSON:
        handle = self._webhook_handle(application_id, token)
        return payloads.message_payload(self.world, self._original(handle))

    async def edit_original(self, req: RecordedRequest, application_id: str, token: str) -> JSON:
        handle = self._webhook_handle(application_id, token)
        msg = self._original(handle)
        self.builder.apply_edit(msg, req.json or {}, req.files, limit=handle.attachment_size_limit)
        handle.original_edits.append(copy.deepcopy(req.json or {}))
        await self.gateway.echo("MESSAGE_UPDATE", msg)
        return payloads.message_payload(self.world, msg)

    async def delete_original(self, req: RecordedRequest, application_id: str, token: str) -> None:
        handle = self._webhook_handle(application_id, token)
        msg = self._original(handle)
        self.world.remove_message(msg)
        handle.original_deleted = True
        await self.gateway.echo("MESSAGE_DELETE", msg)

    async def followup(self, req: RecordedRequest, application_id: str, token: str) -> Any:
        handle = self._webhook_handle(application_id, token)
        body: JSON = req.json or {}
        original = handle.original
        if handle.response_type == CB_DEFERRED_MESSAGE and original is not None:
            if original.deleted:
                raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")
            if original.loading:
                # Discord: the first followup after a "thinking" defer replaces that message
                # and keeps the defer's ephemerality.
                self.builder.apply_edit(
                    original,
                    {k: v for k, v in body.items() if k != "flags"},
                    req.files,
                    limit=handle.attachment_size_limit,
                )
                handle.followups.append(original)
                await self.gateway.echo("MESSAGE_UPDATE", original)
                return (
                    payloads.message_payload(self.world, original)
                    if req.query.get("wait") in ("1", "true")
                    else None
                )
        msg = self.builder.build(
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
        self.world.messages[handle.channel.id].append(msg)
        handle.followups.append(msg)
        await self.gateway.echo("MESSAGE_CREATE", msg)
        if req.query.get("wait") in ("1", "true"):
            return payloads.message_payload(self.world, msg)
        return None

    def _followup_message(self, handle: InteractionHandle, message_id: str) -> FakeMessage:
        mid = int(message_id)
        for msg in [handle.original, *handle.followups]:
            if msg is not None and msg.id == mid and not msg.deleted:
                return msg
        raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")

    async def get_followup(
        self, req: RecordedRequest, application_id: str, token: str, message_id: str
    ) -> JSON:
        handle = self._webhook_handle(application_id, token)
        return payloads.message_payload(self.world, self._followup_message(handle, message_id))

    async def edit_followup(
        self, req: RecordedRequest, application_id: str, token: str, message_id: str
    ) -> JSON:
        handle = self._webhook_handle(application_id, token)
        msg = self._followup_message(handle, message_id)
        self.builder.apply_edit(msg, req.json or {}, req.files, limit=handle.attachment_size_limit)
        if msg is handle.original:
            handle.original_edits.append(copy.deepcopy(req.json or {}))
        await self.gateway.echo("MESSAGE_UPDATE", msg)
        return payloads.message_payload(self.world, msg)

    async def delete_followup(
        self, req: RecordedRequest, application_id: str, token: str, message_id: str
    ) -> None:
        handle = self._webhook_handle(application_id, token)
        msg = self._followup_message(handle, message_id)
        self.world.remove_message(msg)
        if msg is handle.original:
            handle.original_deleted = True
        await self.gateway.echo("MESSAGE_DELETE", msg)
