"""The bot's messages as Discord builds them from a REST body: flags it may set, attachments
(uploads, kept ones, size limits), component ids, who gets pinged, and edits.

Shared by the channel routes and the interaction webhooks, which create the same messages.
"""

from __future__ import annotations

import copy
import time

from tests.fakes.discord_fake.model import (
    FakeAttachment,
    FakeChannel,
    FakeMessage,
    dedupe,
    walk_components,
)
from tests.fakes.discord_fake.protocol import (
    E_TOO_LARGE,
    E_UNKNOWN_MESSAGE,
    FLAG_COMPONENTS_V2,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    JSON,
    MAX_FILES,
    ROLE_MENTION,
    USER_MENTION,
    ApiError,
)
from tests.fakes.discord_fake.rest import UploadedFile
from tests.fakes.discord_fake.validators import form_error, validate_message
from tests.fakes.discord_fake.world import World


class MessageBuilder:
    """Builds and edits the bot's messages in the world."""

    def __init__(self, world: World) -> None:
        self.world = world

    def build(
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
        attachments = self._attachments(channel.id, body.get("attachments"), files, [], limit)
        content = body.get("content") or ""
        embeds = copy.deepcopy(body.get("embeds") or [])
        components = _number_components(copy.deepcopy(body.get("components") or []))
        validate_message(
            content,
            embeds,
            components,
            attachments,
            flags,
            poll=body.get("poll"),
            stickers=body.get("sticker_ids"),
        )
        msg = FakeMessage(
            id=self.world.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.world.bot_user,
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
            msg.webhook_id = self.world.application_id
            msg.application_id = self.world.application_id
        self.apply_mentions(msg, msg.allowed_mentions)
        return msg

    def apply_edit(
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
            attachments = self._attachments(
                msg.channel_id, body.get("attachments"), files, msg.attachments, limit
            )
        flags = msg.flags
        if "flags" in body and body["flags"] is not None:
            mutable = FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2
            flags = (flags & ~mutable) | (int(body["flags"]) & mutable)
        if msg.loading:
            flags &= ~FLAG_LOADING
        validate_message(
            content, embeds, components, attachments, flags, poll=msg.poll, stickers=msg.sticker_ids
        )
        was_loading = msg.loading
        msg.content, msg.embeds, msg.components = content, embeds, components
        msg.attachments, msg.flags = attachments, flags
        if "allowed_mentions" in body:
            msg.allowed_mentions = copy.deepcopy(body["allowed_mentions"])
        self.apply_mentions(msg, msg.allowed_mentions, replied=msg.referenced)
        if not was_loading:
            msg.edited_at = time.time()
        msg.edits.append(copy.deepcopy(body))

    def _attachments(
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
            raise form_error(
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
                    raise form_error(
                        ["attachments", i, "id"], "ATTACHMENT_NOT_FOUND", "Unknown attachment"
                    )
        for f in files:
            if f.index is None or f.index not in used:
                result.append(self._upload(channel_id, f, {}))
        return result

    def _upload(self, channel_id: int, f: UploadedFile, entry: JSON) -> FakeAttachment:
        name = entry.get("filename") or f.filename
        ctype = f.content_type if f.content_type not in (None, "application/octet-stream") else None
        att = self.world.make_attachment(
            name,
            f.data,
            content_type=ctype,
            channel_id=channel_id,
            description=entry.get("description"),
        )
        att.title = entry.get("title")
        return att

    def apply_mentions(
        self, msg: FakeMessage, allowed: JSON | None, replied: FakeMessage | None = None
    ) -> None:
        """Who actually gets pinged, per content and allowed_mentions (Discord's rules)."""
        user_ids = [int(i) for i in USER_MENTION.findall(msg.content)]
        role_ids = [int(i) for i in ROLE_MENTION.findall(msg.content)]
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
        users = [self.world.users[u] for u in user_ids if u in self.world.users]
        if replied is not None and reply_ping and replied.author.id != self.world.bot_user.id:
            users.append(replied.author)
        msg.mentions = dedupe(users)
        msg.mention_roles = list(dict.fromkeys(role_ids))
        msg.mention_everyone = everyone


def _number_components(components: list[JSON]) -> list[JSON]:
    """Discord gives every component a numeric ``id`` unique within the message."""
    taken = {int(c["id"]) for c in walk_components(components) if c.get("id") is not None}
    counter = 1
    for comp in walk_components(components):
        if comp.get("id") is None:
            while counter in taken:
                counter += 1
            comp["id"] = counter
            taken.add(counter)
    return components
