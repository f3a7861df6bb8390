"""Private results: the images go to the member by direct message, with the same buttons.

A request is private when its command said ``private:true``, or said nothing and the member
turned on "Private results" in /settings; a follow-up of a private result (Reroll, Vary, Edit,
Upscale, pressed in the DM) is private too. ``PrivateDoor`` wraps the door the request came
through:

- From a server channel (a slash command, the context menu's form, a mention), the status message
  is posted in the member's DM *before* anything is spent: if their DMs are closed they are told
  how to open them, and no job exists. Interactions are answered ephemerally (the channel sees
  nothing); a mention, being a public message already, gets a short public reply saying the
  result went to the DMs. The job's target is the DM channel, without an interaction token, so
  the sink delivers there exactly once, after a restart too.
- From the member's DM (a press on a private result), the door answers as usual, in the DM; only
  the rules change: the server the first request came from still decides (its channels, limits
  and quotas), read from the parent job's stored target.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import Any

import discord

from bot.domain.models import Job
from bot.domain.text import t
from bot.errors import InvalidInput
from bot.i18n.replies import render
from bot.ui.doors import Door, InteractionDoor, MessageDoor, Origin
from bot.ui.errors import NOT_STARTED as NOT_STARTED_TEXT
from bot.ui.result_messages import discord_target
from bot.ui.sink import CANNOT_DM, NO_PINGS
from bot.ui.target import DEFAULT_UPLOAD_LIMIT, DiscordTarget, supported

log = logging.getLogger(__name__)

DMS_CLOSED_TEXT = t(
    "You asked for a private result, but I can't send you direct messages, so nothing was "
    "started. To allow them, open this server's menu → **Privacy Settings** and turn on "
    "**Direct Messages**, then try again. Or run the command without `private` (and turn "
    "**Private results** off in /settings if it is on there)."
)
PRIVATE_OPTION = "Send the pictures to your DMs instead of this channel"  # an option description
MENTION_NOTE_TEXT = t("🔒 Private result: it will come to your DMs.")
# The English, as a member without a catalog reads it (the tests compare with these).
DMS_CLOSED = DMS_CLOSED_TEXT.english()
MENTION_NOTE = MENTION_NOTE_TEXT.english()
NOT_STARTED = NOT_STARTED_TEXT.english()


def is_private(job: Job) -> bool:
    target = discord_target(job)
    return target is not None and target.private


class PrivateDoor:
    """A door whose status and result live in the member's DM; see the module docstring."""

    def __init__(
        self, inner: InteractionDoor | MessageDoor, *, origin: Origin | None = None
    ) -> None:
        self._inner = inner
        # Where the request is judged: the server channel (``origin``: a DM press's server).
        self.origin = origin or inner.origin
        self.in_dm = inner.origin.in_dm  # already in the DM: answer there as usual
        self._dm_channel_id: int | None = inner.origin.channel_id if self.in_dm else None
        self._status: discord.Message | None = None
        self._note: discord.Message | None = None
        self._acknowledged = False

    @property
    def _user(self) -> discord.User | discord.Member:
        inner = self._inner
        return (
            inner.interaction.user if isinstance(inner, InteractionDoor) else inner.message.author
        )

    async def acknowledge(self) -> None:
        inner = self._inner
        if self.in_dm or not isinstance(inner, InteractionDoor):
            await inner.acknowledge()
            return
        response = inner.interaction.response
        if not response.is_done():  # private "thinking…": the channel sees nothing
            await response.defer(thinking=True, ephemeral=True)
            self._acknowledged = True

    async def show_status(self, embed: discord.Embed) -> int:
        """In the DM: the first message there proves the DM is open, before anything is spent."""
        if self.in_dm:
            return await self._inner.show_status(embed)
        try:
            dm = await self._user.create_dm()
            self._status = await dm.send(embed=embed, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            if exc.code == CANNOT_DM or isinstance(exc, discord.Forbidden):
                log.info("user %s: DMs closed; private request refused", self.origin.user_id)
                raise InvalidInput(DMS_CLOSED_TEXT) from None
            raise
        self._dm_channel_id = dm.id
        await self._say_where(self._status.jump_url)
        return self._status.id

    async def _say_where(self, jump: str) -> None:
        """Tell the origin the result went to the DMs: privately to an interaction, by a short
        reply to a mention (its request is public already)."""
        inner = self._inner
        # An interaction's member reads their own language; a mention's channel the server's.
        locale = inner.origin.locale
        try:
            if isinstance(inner, InteractionDoor):
                sent = t("🔒 Private result: I'm making it in our DMs. {jump}", jump=jump)
                await inner.interaction.edit_original_response(
                    content=render(sent, locale), allowed_mentions=NO_PINGS
                )
            else:
                self._note = await inner.message.reply(
                    render(MENTION_NOTE_TEXT, locale),
                    allowed_mentions=NO_PINGS,
                    mention_author=False,
                )
        except discord.HTTPException as exc:  # the DM has it all; this is only a pointer
            log.info("user %s: 'sent privately' note failed (%s)", self.origin.user_id, exc)

    async def tell(self, text: str) -> None:
        inner = self._inner
        if self._status is not None and isinstance(inner, MessageDoor):
            await self._status.channel.send(text, allowed_mentions=NO_PINGS)
            return
        await inner.tell(text)

    async def fail(self, text: str) -> None:
        await self.withdraw()
        await self._inner.fail(text)

    async def withdraw(self) -> None:
        """The request was refused after its status was posted: remove the DM status and the
        pointer to it (the refusal itself is answered by the error handler)."""
        status, note, self._status, self._note = self._status, self._note, None, None
        for message in (status, note):
            if message is not None:
                with contextlib.suppress(discord.HTTPException):
                    await message.delete()
        inner = self._inner
        if status is not None and isinstance(inner, InteractionDoor):
            with contextlib.suppress(discord.HTTPException):
                await inner.interaction.edit_original_response(
                    content=render(NOT_STARTED_TEXT, inner.origin.locale)
                )

    def target(self, status_id: int, *, spoiler: bool) -> DiscordTarget:
        """Where the engine reports: the DM channel (and, from a DM press, its interaction)."""
        assert self._dm_channel_id is not None, "show_status first"
        place = self._inner.origin
        from_dm = self.in_dm
        return DiscordTarget(
            channel_id=self._dm_channel_id,
            user_id=self.origin.user_id,
            application_id=place.application_id if from_dm else None,
            interaction_token=place.interaction_token if from_dm else None,
            interaction_at=place.interaction_at if from_dm else None,
            status_message_id=status_id,
            upload_limit=place.upload_limit if from_dm else DEFAULT_UPLOAD_LIMIT,
            spoiler=spoiler,
            private=True,
            origin_channel_id=self.origin.channel_id,
            origin_parent_id=self.origin.parent_channel_id,
            origin_role_ids=self.origin.role_ids,
            locale=supported(self.origin.locale),  # the member's own language
        )


def private_door(door: Door) -> PrivateDoor:
    if isinstance(door, PrivateDoor):
        return door
    if isinstance(door, InteractionDoor | MessageDoor):
        return PrivateDoor(door)
    raise TypeError(f"no private results through {type(door).__name__}")


def press_door(interaction: discord.Interaction[Any], parent: Job) -> Door:
    """The door for a follow-up of ``parent`` pressed by a member: a private result's follow-up
    is private and judged by the server the first request came from."""
    door = InteractionDoor(interaction)
    target = discord_target(parent)
    if target is None or not target.private:
        return door
    if parent.guild_id is None:
        return PrivateDoor(door)  # asked for in the DM: its rules are the DM's
    here = door.origin
    origin = replace(
        here,
        guild_id=parent.guild_id,
        channel_id=target.origin_channel_id or here.channel_id,
        parent_channel_id=target.origin_parent_id,
        role_ids=target.origin_role_ids,
        missing=(),  # nothing is posted in the server's channel
        reply_to_message_id=None,
    )
    return PrivateDoor(door, origin=origin)
