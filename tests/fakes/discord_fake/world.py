"""The world the fake shows discord.py: the bot's application, users, guilds, channels, members,
roles, messages and attachments, plus Discord's permission resolution.

Plain state and the rules for changing it; the gateway and REST servers read and change it, and
tell discord.py about it.
"""

from __future__ import annotations

import copy
import io
import mimetypes
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.fakes.discord_fake.model import (
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    dedupe,
    id_of,
    message_reference,
)
from tests.fakes.discord_fake.protocol import (
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DEFAULT_UPLOAD_LIMIT,
    DISCORD_EPOCH_MS,
    E_UNKNOWN_MESSAGE,
    JSON,
    PERM_ADMINISTRATOR,
    ROLE_MENTION,
    USER_MENTION,
    ApiError,
)


@dataclass
class Knobs:
    """How this Discord behaves; shared by the facade (which exposes each field) and the servers."""

    token: str
    interaction_ack_deadline: float | None
    echo_bot_messages: bool
    allow_privileged_intents: bool
    heartbeat_interval_ms: int


class World:
    """Everything the fake knows: tests build it via the facade; the servers read and change it."""

    def __init__(
        self, *, bot_name: str, application_id: int | None, base_url: Callable[[], str]
    ) -> None:
        self._base_url = base_url  # where attachments are served (known once the server runs)
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
            roles=[id_of(r) for r in roles],
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
            url=f"{self._base_url()}{path}",
            proxy_url=f"{self._base_url()}/media{path}",
            width=size[0] if size else None,
            height=size[1] if size else None,
            description=description,
            ephemeral=ephemeral,
        )
        self.attachments[aid] = att
        return att

    def as_attachment(
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

    def get_message(self, channel_id: int, message_id: int) -> FakeMessage:
        for msg in self.messages.get(channel_id, []):
            if msg.id == message_id:
                return msg
        raise ApiError(404, E_UNKNOWN_MESSAGE, "Unknown Message")

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

    def add_user_message(
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
        """A user's message, stored. ``mentions`` defaults to the users written as <@id>."""
        ch = self.channels[id_of(channel)]
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
                self.users[int(i)] for i in USER_MENTION.findall(content) if int(i) in self.users
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
            attachments=[self.as_attachment(a, ch.id) for a in attachments],
            type=19 if ref_msg is not None else 0,
            mentions=dedupe(mentioned),
            mention_roles=[int(r) for r in ROLE_MENTION.findall(content)],
            mention_everyone="@everyone" in content or "@here" in content,
        )
        if ref_msg is not None:
            msg.referenced = ref_msg
            msg.message_reference = message_reference(ref_msg)
        self.messages[ch.id].append(msg)
        return msg

    def remove_message(self, msg: FakeMessage) -> None:
        msg.deleted = True
        bucket = self.messages.get(msg.channel_id, [])
        if msg in bucket:
            bucket.remove(msg)
        self.deleted_messages.append(msg)

    def remove_channel(self, channel: FakeChannel) -> None:
        """Later bot calls on it get 404 10003."""
        channel.deleted = True
        if channel.guild_id is not None:
            self.guilds[channel.guild_id].channels.pop(channel.id, None)


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width/height like Discord reports them. Pillow only parses the header here (cheap)."""
    try:
        from PIL import Image  # noqa: PLC0415 - optional; the fake works without Pillow

        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:
        return None


def _overwrite(raw: JSON) -> JSON:
    return {
        "id": str(raw["id"]),
        "type": int(raw.get("type", 0)),
        "allow": str(raw.get("allow", 0)),
        "deny": str(raw.get("deny", 0)),
    }
