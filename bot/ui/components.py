"""Buttons and menus under results: persistent DynamicItems that carry the job id.

Nothing about a result is kept in memory. The custom_id says what to do and to which job
(``wan:1:<action>:<job_id>[:<image>]``, ``1`` being the format version); a press reads the job from
the store. So buttons keep working after a restart, and any number of results cost no memory.

Who may press: anyone who can see the result may Reroll, Upscale, Vary or Edit (the new job is
theirs and charged to them) and view Info. Delete is for the requester and for members with
Manage Messages, checked here on every press, not by hiding the button.
"""

from __future__ import annotations

import enum
import logging
import re
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Self

import discord
from discord.ext import commands

from bot.domain.models import Job, Mode, Resolution
from bot.domain.validation import MAX_PROMPT_CHARS
from bot.errors import InvalidInput, UserFacingError
from bot.generation import no_such_job
from bot.ui import embeds
from bot.ui.errors import handle_error
from bot.ui.flow import JobContext, begin_job
from bot.ui.sink import NO_PINGS
from bot.ui.target import DiscordTarget

log = logging.getLogger(__name__)

PREFIX = "wan:1"
_JOB = r"(?P<job>[a-z0-9]{1,32})"
PER_IMAGE_BUTTONS_MAX = 5  # one row of "Vary k" and one of "Edit k"; more images get a menu
EDIT_MODAL_TIMEOUT = 30 * 60  # an open Edit form is held in memory this long (seconds)


class Action(enum.StrEnum):
    REROLL = "rr"
    UPSCALE = "up"
    VARY = "va"
    EDIT = "ed"
    INFO = "in"
    DELETE = "rm"


@dataclass(frozen=True, slots=True)
class _Look:
    label: str
    emoji: str
    style: discord.ButtonStyle


_LOOKS = {
    Action.REROLL: _Look("Reroll", "🎲", discord.ButtonStyle.secondary),
    Action.UPSCALE: _Look("Upscale 4K", "⬆️", discord.ButtonStyle.secondary),
    Action.VARY: _Look("Vary", "✨", discord.ButtonStyle.secondary),
    Action.EDIT: _Look("Edit", "✏️", discord.ButtonStyle.secondary),
    Action.INFO: _Look("Info", "ℹ️", discord.ButtonStyle.secondary),
    Action.DELETE: _Look("Delete", "🗑️", discord.ButtonStyle.danger),
}

# The JobContext of each running bot. DynamicItems are built by discord.py from a custom_id, so
# they cannot take constructor arguments; ``register`` hands the context over here instead.
_contexts: weakref.WeakKeyDictionary[discord.Client, JobContext] = weakref.WeakKeyDictionary()


def custom_id(action: Action, job_id: str, image: int | None = None) -> str:
    tail = f":{image}" if image is not None else ""
    return f"{PREFIX}:{action.value}:{job_id}{tail}"


def picker_id(action: Action, job_id: str) -> str:
    return f"{PREFIX}:{action.value}s:{job_id}"


# --- the items --------------------------------------------------------------------------------


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(
        rf"{PREFIX}:(?P<action>rr|up|va|ed|in|rm):{_JOB}(?::(?P<image>[0-9]{{1,2}}))?"
    ),
):
    def __init__(
        self, action: Action, job_id: str, image: int | None = None, *, row: int | None = None
    ) -> None:
        look = _LOOKS[action]
        # Per-image buttons on multi-image results are "Vary 2", "Edit 2", ...
        label = look.label if image is None else f"{look.label} {image}"
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=look.emoji,
                style=look.style,
                custom_id=custom_id(action, job_id, image),
            ),
            row=row,
        )
        self.action = action
        self.job_id = job_id
        self.image = image

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        image = match["image"]
        return cls(Action(match["action"]), match["job"], int(image) if image else None)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        ctx = _context(interaction)
        job = await _job_here(interaction, ctx, self.job_id)
        if self.action is Action.REROLL:
            await begin_job(interaction, ctx, ctx.service.reroll(job), parent_job_id=job.id)
        elif self.action is Action.UPSCALE:
            await begin_job(interaction, ctx, ctx.service.upscale(job), parent_job_id=job.id)
        elif self.action is Action.VARY:
            await vary(interaction, ctx, job, self.image or 1)
        elif self.action is Action.EDIT:
            await open_edit_form(interaction, ctx, job, self.image or 1)
        elif self.action is Action.INFO:
            await interaction.response.send_message(
                embed=embeds.info_embed(job), ephemeral=True, allowed_mentions=NO_PINGS
            )
        elif self.action is Action.DELETE:
            await delete_result(interaction, job)


class ImagePicker(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:(?P<action>va|ed)s:{_JOB}"),
):
    """A menu "Vary image k" / "Edit image k" for results with more images than fit as buttons."""

    def __init__(self, action: Action, job_id: str, count: int, *, row: int | None = None) -> None:
        look = _LOOKS[action]
        verb = "Vary" if action is Action.VARY else "Edit"
        super().__init__(
            discord.ui.Select(
                custom_id=picker_id(action, job_id),
                placeholder=f"{look.emoji} {verb} one of the images…",
                options=[
                    discord.SelectOption(label=f"{verb} image {k}", value=str(k), emoji=look.emoji)
                    for k in range(1, max(1, min(count, 25)) + 1)
                ],
            ),
            row=row,
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        count = len(item.options) if isinstance(item, discord.ui.Select) else 1
        return cls(Action(match["action"]), match["job"], count)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        values = self.item.values
        if not values or not values[0].isdigit():
            raise InvalidInput("Pick one of the images in the menu.")
        ctx = _context(interaction)
        job = await _job_here(interaction, ctx, self.job_id)
        if self.action is Action.VARY:
            await vary(interaction, ctx, job, int(values[0]))
        else:
            await open_edit_form(interaction, ctx, job, int(values[0]))


class EditForm(discord.ui.Modal):
    """The instruction for Edit. Lives in memory only while the form is open."""

    instruction: discord.ui.TextInput[EditForm] = discord.ui.TextInput(
        label="What should change?",
        custom_id="instruction",
        style=discord.TextStyle.paragraph,
        placeholder="e.g. make it night time and add falling snow",
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
    )

    def __init__(self, ctx: JobContext, job_id: str, image: int, count: int) -> None:
        title = "Edit the image" if count == 1 else f"Edit image {image}"
        super().__init__(title=title, timeout=EDIT_MODAL_TIMEOUT)
        self.ctx = ctx
        self.job_id = job_id
        self.image = image

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        # Re-read the job: the form may have been open for a while.
        job = await _job_here(interaction, self.ctx, self.job_id)
        url = await result_image_url(interaction, job, self.image)
        request = self.ctx.service.edit(job, url, self.image, self.instruction.value)
        await begin_job(interaction, self.ctx, request, parent_job_id=job.id)

    # Modal.on_error has no ``item`` argument, unlike BaseView's: discord.py's own typing clash.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await handle_error(interaction, error)


# --- what the sink and the bot call -----------------------------------------------------------


def offers_upscale(job: Job) -> bool:
    """Same rule as GenerationService.upscale: plain text-to-image, not already 4K."""
    r = job.request
    return r.mode is Mode.TEXT_TO_IMAGE and r.resolution is not Resolution.R4K


def result_view(job: Job, image_count: int) -> discord.ui.View | None:
    """The controls under the last message of a result."""
    view = discord.ui.View(timeout=None)
    jid = job.id
    upscale = offers_upscale(job)
    if image_count == 1:
        # Row 0 makes something new, row 1 is about this result.
        view.add_item(ResultButton(Action.REROLL, jid, row=0))
        view.add_item(ResultButton(Action.VARY, jid, row=0))  # no image number: the only one
        view.add_item(ResultButton(Action.EDIT, jid, row=0))
        if upscale:
            view.add_item(ResultButton(Action.UPSCALE, jid, row=0))
        view.add_item(ResultButton(Action.INFO, jid, row=1))
        view.add_item(ResultButton(Action.DELETE, jid, row=1))
        return view
    view.add_item(ResultButton(Action.REROLL, jid, row=0))
    if upscale:
        view.add_item(ResultButton(Action.UPSCALE, jid, row=0))
    view.add_item(ResultButton(Action.INFO, jid, row=0))
    view.add_item(ResultButton(Action.DELETE, jid, row=0))
    if image_count <= 0:
        return view
    if image_count <= PER_IMAGE_BUTTONS_MAX:
        for k in range(1, image_count + 1):
            view.add_item(ResultButton(Action.VARY, jid, k, row=1))
        for k in range(1, image_count + 1):
            view.add_item(ResultButton(Action.EDIT, jid, k, row=2))
    else:
        view.add_item(ImagePicker(Action.VARY, jid, image_count, row=1))
        view.add_item(ImagePicker(Action.EDIT, jid, image_count, row=2))
    return view


def register(bot: commands.Bot, ctx: JobContext) -> None:
    """Route presses on every result ever posted, including those from before a restart."""
    _contexts[bot] = ctx
    bot.add_dynamic_items(ResultButton, ImagePicker)


# --- the actions ------------------------------------------------------------------------------


async def vary(
    interaction: discord.Interaction[Any], ctx: JobContext, job: Job, image: int
) -> None:
    url = await result_image_url(interaction, job, image)
    request = ctx.service.vary(job, url, image)
    await begin_job(interaction, ctx, request, parent_job_id=job.id)


async def open_edit_form(
    interaction: discord.Interaction[Any], ctx: JobContext, job: Job, image: int
) -> None:
    count = len(job.result_urls)
    if not 1 <= image <= max(count, 1):
        raise InvalidInput(f"This result has no image {image}.")
    await interaction.response.send_modal(EditForm(ctx, job.id, image, count))


def may_delete(interaction: discord.Interaction[Any], job: Job) -> bool:
    """The requester, or someone allowed to delete other people's messages in this channel."""
    if interaction.user.id == job.user_id:
        return True
    # interaction.permissions are the member's resolved permissions in this channel.
    return interaction.guild_id is not None and interaction.permissions.manage_messages


async def delete_result(interaction: discord.Interaction[Any], job: Job) -> None:
    if not may_delete(interaction, job):
        raise InvalidInput(
            f"Only <@{job.user_id}>, who asked for this, or members with the Manage Messages "
            "permission can delete it."
        )
    await interaction.response.defer()  # no reply needed: the messages disappearing is the answer
    channel = _result_channel(interaction, job)
    ids = list(dict.fromkeys(_delete_ids(interaction, job)))
    failed = 0
    for message_id in ids:
        try:
            await channel.get_partial_message(message_id).delete()
        except discord.NotFound:
            continue  # already gone
        except discord.HTTPException as exc:
            log.warning("job %s: could not delete message %s (%s)", job.id, message_id, exc)
            failed += 1
    log.info(
        "job %s: result deleted by user %s (%d of %d messages)",
        job.id,
        interaction.user.id,
        len(ids) - failed,
        len(ids),
    )
    if failed:
        raise UserFacingError(
            "I could not delete all of this result's messages. A moderator can remove the rest."
        )


def _delete_ids(interaction: discord.Interaction[Any], job: Job) -> list[int]:
    """Every message that shows this result: its parts, and the status message with the prompt."""
    ids = _part_ids(job)
    if interaction.message is not None:
        ids.append(interaction.message.id)
    target = _discord_target(job)
    if target is not None and target.status_message_id is not None:
        ids.append(target.status_message_id)
    return ids


# --- finding the result image -----------------------------------------------------------------


async def result_image_url(interaction: discord.Interaction[Any], job: Job, image: int) -> str:
    """A fresh, signed URL of result image ``image`` (1-based).

    The buttons sit on the last message of a result; a 12-image set is split over two messages,
    so an image of an earlier part is looked up by fetching that message (ids from the receipt).
    """
    count = len(job.result_urls)
    if not 1 <= image <= max(count, 1):
        raise InvalidInput(f"This result has no image {image}.")
    here = interaction.message
    parts = _part_ids(job)
    if not parts and here is not None:
        parts = [here.id]
    seen = 0
    for number, message_id in enumerate(parts, start=1):
        if here is not None and here.id == message_id:
            attachments = here.attachments
        else:
            attachments = await _fetch_part(interaction, job, message_id, number)
        pictures = [a for a in attachments if _is_image(a)]
        if image <= seen + len(pictures):
            return pictures[image - seen - 1].url
        seen += len(pictures)
    raise InvalidInput(
        f"I can't find image {image} of this result any more; part of it may have been deleted."
    )


async def _fetch_part(
    interaction: discord.Interaction[Any], job: Job, message_id: int, number: int
) -> list[discord.Attachment]:
    channel = _result_channel(interaction, job)
    try:
        message = await channel.fetch_message(message_id)
    except discord.NotFound:
        raise InvalidInput(
            f"Part {number} of this result was deleted, so I can't use its images any more."
        ) from None
    except discord.Forbidden:
        raise InvalidInput(
            f"I can't read part {number} of this result: I need the Read Message History "
            "permission in this channel."
        ) from None
    except discord.HTTPException as exc:
        log.warning("job %s: could not fetch part %d (%s)", job.id, number, exc)
        raise UserFacingError(
            "Discord did not let me read that image just now. Try again in a moment."
        ) from exc
    return message.attachments


def _is_image(attachment: discord.Attachment) -> bool:
    return attachment.content_type is None or attachment.content_type.startswith("image/")


def _part_ids(job: Job) -> list[int]:
    """The result's message ids in part order, from the sink's receipt ({"1": id, "2": id})."""
    parts = (job.receipt or {}).get("parts")
    if not isinstance(parts, dict):
        return []
    return [int(parts[k]) for k in sorted(parts, key=int)]


async def _job_here(interaction: discord.Interaction[Any], ctx: JobContext, job_id: str) -> Job:
    """The job a button or form names, only where it was made: a custom id is client data, and
    a forged one must not reach (delete, read, re-run) another server's or DM's result."""
    job = await ctx.service.get(job_id)
    target = _discord_target(job)
    elsewhere = job.guild_id != interaction.guild_id or (
        job.guild_id is None and (target is None or target.channel_id != interaction.channel_id)
    )
    if elsewhere:
        raise no_such_job(job_id)
    return job


def _discord_target(job: Job) -> DiscordTarget | None:
    try:
        return DiscordTarget.of(job)
    except ValueError:
        return None


def _result_channel(interaction: discord.Interaction[Any], job: Job) -> discord.PartialMessageable:
    target = _discord_target(job)
    channel_id: int | None = target.channel_id if target is not None else None
    channel_id = channel_id or interaction.channel_id
    guild_id = target.guild_id if target is not None else interaction.guild_id
    client: discord.Client = interaction.client
    return client.get_partial_messageable(channel_id or 0, guild_id=guild_id)


# --- plumbing -----------------------------------------------------------------------------------


def _context(interaction: discord.Interaction[Any]) -> JobContext:
    ctx = _contexts.get(interaction.client)
    if ctx is None:
        raise UserFacingError("I'm still starting up. Try again in a few seconds.")
    return ctx


async def _guarded(
    interaction: discord.Interaction[Any], action: Coroutine[Any, Any, None]
) -> None:
    """discord.py only logs errors from DynamicItem callbacks; answer the member instead."""
    try:
        await action
    except Exception as exc:  # every failure gets an ephemeral answer
        await handle_error(interaction, exc)


__all__ = [
    "Action",
    "EditForm",
    "ImagePicker",
    "ResultButton",
    "custom_id",
    "may_delete",
    "picker_id",
    "register",
    "result_image_url",
    "result_view",
]
