"""The world as Discord JSON: messages, GUILD_CREATE, READY, application info, interactions.

Only what needs more than one record lives here; each record builds its own object
(``FakeUser.payload()`` and so on).
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tests.fakes.discord_fake.hooks import API_VERSION
from tests.fakes.discord_fake.model import (
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeUser,
    iso,
)
from tests.fakes.discord_fake.protocol import JSON

if TYPE_CHECKING:
    from tests.fakes.discord_fake.gateway import GatewaySession
    from tests.fakes.discord_fake.world import World


def me(world: World) -> JSON:
    """The bot's own user, as READY and GET /users/@me carry it."""
    return {**world.bot_user.payload(), "verified": True, "mfa_enabled": False, "flags": 0}


def user_payload_with_member(world: World, user: FakeUser, guild_id: int | None) -> JSON:
    data = user.payload()
    if guild_id is not None:
        member = world.guilds[guild_id].members.get(user.id)
        if member is not None:
            data["member"] = member.payload(with_user=False)
    return data


def message_payload(world: World, msg: FakeMessage, *, gateway: bool = False) -> JSON:
    """The message object as Discord returns it over REST (or as a gateway event)."""
    data: JSON = {
        "id": str(msg.id),
        "channel_id": str(msg.channel_id),
        "type": msg.type,
        "content": msg.content,
        "author": msg.author.payload(),
        "attachments": [a.payload() for a in msg.attachments],
        "embeds": [_resolve_embed(e, msg) for e in msg.embeds],
        "components": copy.deepcopy(msg.components),
        "mentions": [user_payload_with_member(world, u, msg.guild_id) for u in msg.mentions],
        "mention_roles": [str(r) for r in msg.mention_roles],
        "mention_everyone": msg.mention_everyone,
        "pinned": False,
        "tts": msg.tts,
        "timestamp": iso(msg.created_at),
        "edited_timestamp": iso(msg.edited_at) if msg.edited_at else None,
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
            message_payload(world, msg.referenced) if msg.referenced is not None else None
        )
    if msg.reactions:
        data["reactions"] = [
            {
                "emoji": emoji(name),
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "me": world.bot_user.id in users,
                "me_burst": False,
                "burst_colors": [],
            }
            for name, users in msg.reactions.items()
            if users
        ]
    if gateway and msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
        member = world.guilds[msg.guild_id].members.get(msg.author.id)
        if member is not None and msg.webhook_id is None:
            data["member"] = member.payload(with_user=False)
    return data


def _resolve_embed(embed: JSON, msg: FakeMessage) -> JSON:
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


def guild_create(world: World, guild: FakeGuild) -> JSON:
    # Without presences only the bot's own member comes with GUILD_CREATE; discord.py asks
    # for the rest with op 8 (REQUEST_GUILD_MEMBERS) when it has the members intent.
    data = guild.payload()
    data.update(
        unavailable=False,
        joined_at=iso(time.time()),
        large=False,
        member_count=len(guild.members),
        members=[guild.members[world.bot_user.id].payload()],
        channels=[
            c.payload() for c in guild.channels.values() if not c.deleted and c.type not in (11, 12)
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


def interaction_create(
    world: World,
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
        else (world.upload_limit(channel))
    )
    iid = world.snowflake()
    payload: JSON = {
        "id": str(iid),
        "application_id": str(world.application_id),
        "type": itype,
        "token": f"aW50ZXJhY3Rpb246{iid}:{secrets.token_urlsafe(48)}",
        "version": 1,
        "locale": locale,
        "app_permissions": str(
            app_permissions if app_permissions is not None else world.bot_permissions(channel)
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
        perms = world.permissions_for(guild, member, channel)
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
        payload["message"] = message_payload(world, message)
    return payload, fake_user, limit


def ready(
    world: World, session: GatewaySession, owned: Sequence[FakeGuild], gateway_url: str
) -> JSON:
    return {
        "v": API_VERSION,
        "user": me(world),
        "guilds": [{"id": str(g.id), "unavailable": True} for g in owned],
        "session_id": session.id,
        "session_type": "normal",
        "resume_gateway_url": gateway_url,
        "shard": list(session.shard),
        "application": {"id": str(world.application_id), "flags": 1 << 19},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
    }


def application(world: World) -> JSON:
    return {
        "id": str(world.application_id),
        "name": world.bot_user.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot": world.bot_user.payload(),
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": 1 << 19,
        "owner": world.owner_user.payload(),
        "team": None,
        "rpc_origins": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "tags": [],
        "install_params": None,
        "integration_types_config": {"0": {}},
        "approximate_guild_count": len(world.guilds),
    }


def reaction_add(world: World, message: FakeMessage, user: FakeUser, emoji_name: str) -> JSON:
    payload: JSON = {
        "user_id": str(user.id),
        "channel_id": str(message.channel_id),
        "message_id": str(message.id),
        "emoji": emoji(emoji_name),
        "burst": False,
        "type": 0,
    }
    if message.guild_id is not None:
        payload["guild_id"] = str(message.guild_id)
        member = world.guilds[message.guild_id].members.get(user.id)
        if member is not None:
            payload["member"] = member.payload()
    return payload


def emoji(name: str) -> JSON:
    m = re.fullmatch(r"<?a?:?(\w+):(\d+)>?", name)
    if m:
        return {"id": m.group(2), "name": m.group(1)}
    return {"id": None, "name": name}
