"""Where a request came in, and how its member is answered: the one shape every door takes.

A slash command, a context menu, a button and a form arrive as an interaction; a mention arrives
as a plain message. Both become a ``Door``: the plain facts of the origin (who, where, what the bot
may do there) plus three ways to talk back. ``flow.begin_job`` starts every job through a door and
``report`` answers every failure through one, so there is one path and one error handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from bot.domain.text import Text, t
from bot.jobs.background import TaskGroup
from bot.ui.errors import STATUS_MESSAGE, error_text, reply_ephemeral
from bot.ui.language import member_locale
from bot.ui.sink import NO_PINGS
from bot.ui.target import DEFAULT_UPLOAD_LIMIT

log = logging.getLogger(__name__)

#: Seconds an error reply to a mention stays in the channel (read at call time: tests shorten it).
ERROR_TTL = 60.0

# A reply pings its author only through ``replied_user``; nothing in the text can ping anyone.
ONLY_AUTHOR = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)

# What the bot needs in a channel to post results there (English names: logs, Origin.missing).
NEEDED = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
}
READ_HISTORY = "Read Message History"
# The same names as the members' Discord client shows them, for the refusal.
PERMISSION_NAMES: dict[str, Text] = {
    "View Channel": t("View Channel"),
    "Send Messages": t("Send Messages"),
    "Attach Files": t("Attach Files"),
    "Embed Links": t("Embed Links"),
    READ_HISTORY: t("Read Message History"),
}


@dataclass(frozen=True, slots=True)
class Origin:
    """The plain facts of a request's origin: enough to check it and to deliver its result."""

    user_id: int
    guild_id: int | None
    channel_id: int
    parent_channel_id: int | None  # the channel a thread lives in
    role_ids: tuple[int, ...]  # for quota overrides (members only)
    missing: tuple[str, ...]  # permissions the bot lacks here to post a result
    upload_limit: int
    reply_to_message_id: int | None = None
    application_id: int | None = None  # interactions only: the status is edited through
    interaction_token: str | None = None  # the interaction webhook while the token lives
    interaction_at: float | None = None
    # The Discord locale replies are written in: the member's client (interactions), else the
    # server's preferred locale (mentions); None reads English.
    locale: str | None = None
    # The server's Discord language (interaction.guild_locale, guild.preferred_locale): what
    # posts in its channels use unless its admins chose one (``/wan-admin config language``).
    guild_locale: str | None = None

    @property
    def in_dm(self) -> bool:
        return self.guild_id is None


class Door(Protocol):
    origin: Origin

    async def acknowledge(self) -> None:
        """Tell Discord the request was received (interactions: within 3 s)."""

    async def show_status(self, embed: discord.Embed) -> int:
        """Post the public status message; returns its id."""
        ...

    async def fail(self, text: str) -> None:
        """Tell the member, as privately as this door allows, and tidy any status message."""

    async def tell(self, text: str) -> None:
        """A note for the member beside the status (e.g. a preference the server capped), as
        privately as this door allows."""


def missing_permissions(perms: discord.Permissions) -> list[str]:
    return [label for attr, label in NEEDED.items() if not getattr(perms, attr)]


def role_ids(user: discord.User | discord.Member) -> tuple[int, ...]:
    return tuple(r.id for r in getattr(user, "roles", ()) if not r.is_default())


def parent_channel_id(channel: object) -> int | None:
    """The channel a thread belongs to: a thread of an enabled channel is enabled too."""
    parent = getattr(channel, "parent_id", None)
    return parent if isinstance(parent, int) else None


class InteractionDoor:
    """Slash commands, context menus, buttons and forms."""

    def __init__(
        self, interaction: discord.Interaction[Any], *, reply_to_message_id: int | None = None
    ) -> None:
        self.interaction = interaction
        in_dm = interaction.guild_id is None
        assert interaction.channel_id is not None
        self.origin = Origin(
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            parent_channel_id=parent_channel_id(interaction.channel),
            role_ids=role_ids(interaction.user),
            missing=() if in_dm else tuple(missing_permissions(interaction.app_permissions)),
            upload_limit=interaction.filesize_limit,
            reply_to_message_id=reply_to_message_id,
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            interaction_at=interaction.created_at.timestamp(),
            locale=member_locale(interaction),
            guild_locale=interaction.guild_locale.value if interaction.guild_locale else None,
        )

    async def acknowledge(self) -> None:
        await defer(self.interaction)

    async def show_status(self, embed: discord.Embed) -> int:
        status = await self.interaction.edit_original_response(
            embed=embed, allowed_mentions=NO_PINGS
        )
        return status.id

    async def fail(self, text: str) -> None:
        await reply_ephemeral(self.interaction, text)

    async def tell(self, text: str) -> None:
        await self.interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Acknowledge within Discord's 3 seconds; the public status message follows."""
    if not interaction.response.is_done():
        await interaction.response.defer(thinking=True)
        interaction.extras[STATUS_MESSAGE] = True


class MessageDoor:
    """A reply that mentions the bot. No interaction: no deadline, no token, no ephemeral answers,
    so refusals are replies that ping only the author and delete themselves."""

    def __init__(self, message: discord.Message, *, tasks: TaskGroup) -> None:
        self.message = message
        self._tasks = tasks
        self._status: discord.Message | None = None
        guild = message.guild
        missing: list[str] = []
        self.can_answer = True
        if guild is not None:
            perms = message.channel.permissions_for(guild.me)
            missing = missing_permissions(perms)
            if not perms.read_message_history:
                missing.append(READ_HISTORY)  # the status and result are replies
            self.can_answer = perms.view_channel and perms.send_messages
        self.origin = Origin(
            user_id=message.author.id,
            guild_id=guild.id if guild else None,
            channel_id=message.channel.id,
            parent_channel_id=parent_channel_id(message.channel),
            role_ids=role_ids(message.author),
            missing=tuple(missing),
            upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
            reply_to_message_id=message.id,
            locale=guild.preferred_locale.value if guild is not None else None,
            guild_locale=guild.preferred_locale.value if guild is not None else None,
        )

    async def acknowledge(self) -> None:
        return None  # a message has no deadline to meet

    async def show_status(self, embed: discord.Embed) -> int:
        self._status = await self.message.reply(
            embed=embed, allowed_mentions=NO_PINGS, mention_author=False
        )
        return self._status.id

    async def fail(self, text: str) -> None:
        if self._status is not None:
            with contextlib.suppress(discord.HTTPException):
                await self._status.delete()
            self._status = None
        await reply_error(self.message, text, tasks=self._tasks)

    async def tell(self, text: str) -> None:
        await self.message.reply(text, allowed_mentions=NO_PINGS, mention_author=False)


async def report(door: Door, error: BaseException) -> None:
    """The one error handler, whatever the door: see ``errors.error_text``."""
    origin = door.origin
    text = error_text(
        error, user_id=origin.user_id, channel_id=origin.channel_id, locale=origin.locale
    )
    await door.fail(text)


async def reply_error(
    message: discord.Message, text: str, *, tasks: TaskGroup, ttl: float | None = None
) -> None:
    """Plain messages have no ephemeral replies. The closest thing: a reply that pings only its
    author (``ONLY_AUTHOR``: no one else is notified, whatever the text says) and deletes itself
    after ``ERROR_TTL`` seconds, so the channel is not left littered with refusals.
    """
    try:
        sent = await message.channel.send(
            f"⚠️ {text}",
            reference=message.to_reference(fail_if_not_exists=False),
            allowed_mentions=ONLY_AUTHOR,
        )
    except discord.HTTPException as exc:
        # A reply needs Read Message History; a plain message that names the author does not.
        log.info("error reply to user %s failed (%s); posting it plainly", message.author.id, exc)
        try:
            sent = await message.channel.send(
                f"{message.author.mention} ⚠️ {text}",
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, replied_user=False, users=[message.author]
                ),
            )
        except discord.HTTPException as again:
            log.warning("could not tell user %s about an error (%s)", message.author.id, again)
            return
    tasks.spawn(_delete_later(sent, ERROR_TTL if ttl is None else ttl), name=f"expire-{sent.id}")


async def _delete_later(message: discord.Message, delay: float) -> None:
    await asyncio.sleep(delay)
    with contextlib.suppress(discord.HTTPException):
        await message.delete()
