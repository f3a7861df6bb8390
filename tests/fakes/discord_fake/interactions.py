"""Interactions from the user's side: slash commands, autocomplete, context menus, component
clicks and modal submits, each sent as INTERACTION_CREATE; ``InteractionHandle`` then tracks what
the bot did with it (callback, @original, followups).

Values are checked against the synced command definitions, like Discord's client does, so a test
cannot send what a real user could not.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.discord_fake import payloads
from tests.fakes.discord_fake.gateway import Gateway
from tests.fakes.discord_fake.model import (
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
)
from tests.fakes.discord_fake.protocol import (
    FLAG_EPHEMERAL,
    IT_AUTOCOMPLETE,
    IT_COMMAND,
    IT_COMPONENT,
    IT_MODAL,
    JSON,
)
from tests.fakes.discord_fake.rest import UploadedFile
from tests.fakes.discord_fake.world import World

# fake.wait_for: re-checks a predicate whenever the fake handles something, until a deadline.
WaitFor = Callable[[Callable[[], bool], float, str], Awaitable[None]]


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
        wait_for: WaitFor,
        payload: JSON,
        *,
        user: FakeUser,
        guild: FakeGuild | None,
        channel: FakeChannel,
        attachment_size_limit: int,
        source_message: FakeMessage | None = None,
        command_name: str | None = None,
    ) -> None:
        self._wait_for = wait_for
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
        await self._wait_for(lambda: bool(self.callbacks), timeout, f"a response to {self!r}")
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

        await self._wait_for(done, timeout, f"{count} edit(s) of @original of {self!r}")
        assert self.original is not None
        return self.original

    async def wait_followup(self, count: int = 1, *, timeout: float = 5.0) -> FakeMessage:  # noqa: ASYNC109 - test API asks for timeouts
        """Wait for the ``count``-th followup message and return it."""
        await self._wait_for(
            lambda: len(self.followups) >= count, timeout, f"followup #{count} of {self!r}"
        )
        return self.followups[count - 1]

    async def wait_until(
        self,
        predicate: Callable[[InteractionHandle], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - test API asks for timeouts
    ) -> None:
        await self._wait_for(lambda: predicate(self), timeout, f"condition on {self!r}")


class InteractionDriver:
    """Plays the Discord client for interactions and keeps every handle it created."""

    def __init__(self, world: World, gateway: Gateway, wait_for: WaitFor) -> None:
        self.world = world
        self.gateway = gateway
        self._wait_for = wait_for
        self.handles: dict[int, InteractionHandle] = {}
        self.by_token: dict[str, InteractionHandle] = {}
        self.modals: dict[str, InteractionHandle] = {}  # by custom_id, for submit_modal

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
        cmd = self.world.find_command(parts[0], 1, guild)
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
        return await self._invoke_command(
            user,
            guild,
            channel,
            name,
            data,
            locale=locale,
            app_permissions=app_permissions,
            attachment_size_limit=attachment_size_limit,
            entitlements=entitlements,
            context=context,
            authorizing_integration_owners=authorizing_integration_owners,
        )

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
        cmd = self.world.find_command(parts[0], 1, guild)
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
        payload, fake_user, limit = payloads.interaction_create(
            self.world, IT_AUTOCOMPLETE, user, guild, channel, data
        )
        handle = InteractionHandle(
            self._wait_for,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            command_name=name,
        )
        return await self._send(handle)

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
            att = self.world.as_attachment(value, channel.id, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = att.payload()
            return {"name": name, "type": otype, "value": str(att.id)}
        if otype in (6, 9) and isinstance(value, FakeUser | FakeMember):
            user = value.user if isinstance(value, FakeMember) else value
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            member = guild.members.get(user.id) if guild else None
            if member is not None and guild is not None:
                mp = member.payload(with_user=False)
                mp["permissions"] = str(self.world.permissions_for(guild, member, channel))
                resolved.setdefault("members", {})[str(user.id)] = mp
            return {"name": name, "type": otype, "value": str(user.id)}
        if otype in (8, 9) and isinstance(value, FakeRole):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return {"name": name, "type": otype, "value": str(value.id)}
        if otype == 7 and isinstance(value, FakeChannel):
            ch = value.payload()
            ch["permissions"] = str(self.world.bot_permissions(value))
            resolved.setdefault("channels", {})[str(value.id)] = ch
            return {"name": name, "type": otype, "value": str(value.id)}
        raise TypeError(f"option {name!r} (type {otype}) cannot take {value!r}")

    async def message_context(
        self,
        /,
        user: FakeUser | FakeMember,
        message: FakeMessage,
        name: str,
        **knobs: Any,
    ) -> InteractionHandle:
        """Invoke a synced MESSAGE context-menu command on ``message``."""
        guild = self.world.guilds.get(message.guild_id) if message.guild_id else None
        channel = self.world.channels[message.channel_id]
        cmd = self.world.find_command(name, 3, guild)
        data = self._command_data(
            cmd,
            {
                "target_id": str(message.id),
                "resolved": {
                    "messages": {str(message.id): payloads.message_payload(self.world, message)}
                },
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
        payload, fake_user, limit = payloads.interaction_create(
            self.world, IT_COMMAND, user, guild, channel, data, **knobs
        )
        handle = InteractionHandle(
            self._wait_for,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            command_name=name,
        )
        return await self._send(handle)

    async def user_context(
        self,
        /,
        user: FakeUser | FakeMember,
        target: FakeUser | FakeMember,
        guild: FakeGuild | None,
        channel: FakeChannel,
        name: str,
        **knobs: Any,
    ) -> InteractionHandle:
        """Invoke a synced USER context-menu command on ``target``."""
        cmd = self.world.find_command(name, 2, guild)
        resolved: JSON = {}
        target_user = target.user if isinstance(target, FakeMember) else target
        self._option_value({"name": "target", "type": 6}, target_user, resolved, guild, channel)
        data = self._command_data(cmd, {"target_id": str(target_user.id), "resolved": resolved})
        return await self._invoke_command(user, guild, channel, name, data, **knobs)

    async def click(
        self,
        /,
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
        guild = self.world.guilds.get(message.guild_id) if message.guild_id else None
        channel = self.world.channels[message.channel_id]
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
        payload, fake_user, limit = payloads.interaction_create(
            self.world, IT_COMPONENT, user, guild, channel, data, message=message, **knobs
        )
        handle = InteractionHandle(
            self._wait_for,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            source_message=message,
        )
        return await self._send(handle)

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
        /,
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
        opener = opened_by or self.modals.get(custom_id)
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
        payload, fake_user, limit = payloads.interaction_create(
            self.world, IT_MODAL, user, guild, channel, data, message=opener.source_message, **knobs
        )
        handle = InteractionHandle(
            self._wait_for,
            payload,
            user=fake_user,
            guild=guild,
            channel=channel,
            attachment_size_limit=limit,
            source_message=opener.source_message,
        )
        return await self._send(handle)

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
            atts = [self.world.as_attachment(v, channel.id, ephemeral=True) for v in items]
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

    def _command_data(self, cmd: JSON, data: JSON) -> JSON:
        out: JSON = {"id": cmd["id"], "name": cmd["name"], "type": int(cmd.get("type", 1)), **data}
        if cmd.get("guild_id"):
            out["guild_id"] = cmd["guild_id"]
        return out

    async def _send(self, handle: InteractionHandle) -> InteractionHandle:
        self.handles[handle.id] = handle
        self.by_token[handle.token] = handle
        sent = await self.gateway.dispatch(
            "INTERACTION_CREATE", handle.payload, guild_id=handle.guild.id if handle.guild else None
        )
        if not sent:
            raise RuntimeError("no gateway session to deliver INTERACTION_CREATE; is the bot up?")
        return handle

    def expire_token(self, token: str | InteractionHandle, *, status: int = 401) -> None:
        """Expire an interaction token: webhook calls then get 401 50027 "Invalid Webhook Token"
        (what Discord answers after 15 min) or, with ``status=404``, 404 10015 "Unknown
        Webhook"; the callback endpoint answers 404 10062 "Unknown interaction".
        """
        handle = token if isinstance(token, InteractionHandle) else self.by_token[token]
        handle.expired_status = status
