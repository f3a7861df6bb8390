"""A result's messages in the channel: finding its images for Vary and Edit, and deleting it.

A result is posted as one or more messages (a 12-image set is two messages of 6); the sink's
receipt lists their ids in part order. Nothing here is kept in memory: every press reads the job
and, where needed, the messages themselves.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.domain.models import Job
from bot.domain.text import Text, t
from bot.errors import InvalidInput, UserFacingError
from bot.ui import modlog
from bot.ui.target import DiscordTarget

log = logging.getLogger(__name__)


def may_delete(interaction: discord.Interaction[Any], job: Job) -> bool:
    """The requester, or someone allowed to delete other people's messages in this channel."""
    if interaction.user.id == job.user_id:
        return True
    # interaction.permissions are the member's resolved permissions in this channel.
    return interaction.guild_id is not None and interaction.permissions.manage_messages


async def delete_result(interaction: discord.Interaction[Any], job: Job) -> None:
    if not may_delete(interaction, job):
        requester = f"<@{job.user_id}>"  # a mention: the same in every language
        raise InvalidInput(
            t(
                "Only {requester}, who asked for this, or members with the Manage Messages "
                "permission can delete it.",
                requester=requester,
            )
        )
    await interaction.response.defer()  # no reply needed: the messages disappearing is the answer
    channel = _result_channel(interaction, job)
    ids = list(dict.fromkeys(_delete_ids(interaction, job)))
    if interaction.message is not None and _is_copy(interaction.message, job):
        # A copy /history showed again: only the copy goes, the result stays where it was.
        client: discord.Client = interaction.client
        channel = client.get_partial_messageable(
            interaction.channel_id or 0, guild_id=interaction.guild_id
        )
        ids = [interaction.message.id]
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
    modlog.result_deleted(interaction, job)  # logged when a moderator deleted someone's result
    if failed:
        raise UserFacingError(
            t("I could not delete all of this result's messages. A moderator can remove the rest.")
        )


def _delete_ids(interaction: discord.Interaction[Any], job: Job) -> list[int]:
    """Every message that shows this result: its parts, and the status message with the prompt."""
    ids = _part_ids(job)
    if interaction.message is not None:
        ids.append(interaction.message.id)
    target = discord_target(job)
    if target is not None and target.status_message_id is not None:
        ids.append(target.status_message_id)
    return ids


def no_image(image: int) -> Text:
    """The refusal for an image number a result does not have (a forged or stale press)."""
    # Verbatim, not a locale-formatted number: it echoes the number pressed.
    return t("This result has no image {image}.", image=str(image))


async def result_image_url(interaction: discord.Interaction[Any], job: Job, image: int) -> str:
    """A fresh, signed URL of result image ``image`` (1-based).

    The buttons sit on the last message of a result; a 12-image set is split over two messages,
    so an image of an earlier part is looked up by fetching that message (ids from the receipt).
    """
    count = len(job.result_urls)
    if not 1 <= image <= max(count, 1):
        raise InvalidInput(no_image(image))
    here = interaction.message
    parts = _part_ids(job)
    # A copy shown again by /history carries the images too: no need for the original.
    copy = here is not None and _is_copy(here, job)
    if here is not None and (not parts or (copy and _images_on(here) >= count)):
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
        t(
            "I can't find image {image} of this result any more; part of it may have been deleted.",
            image=str(image),
        )
    )


async def _fetch_part(
    interaction: discord.Interaction[Any], job: Job, message_id: int, number: int
) -> list[discord.Attachment]:
    channel = _result_channel(interaction, job)
    try:
        message = await channel.fetch_message(message_id)
    except discord.NotFound:
        raise InvalidInput(
            t(
                "Part {number} of this result was deleted, so I can't use its images any more.",
                number=str(number),
            )
        ) from None
    except discord.Forbidden:
        raise InvalidInput(
            t(
                "I can't read part {number} of this result: I need the Read Message History "
                "permission in this channel.",
                number=str(number),
            )
        ) from None
    except discord.HTTPException as exc:
        log.warning("job %s: could not fetch part %d (%s)", job.id, number, exc)
        raise UserFacingError(
            t("Discord did not let me read that image just now. Try again in a moment.")
        ) from exc
    return message.attachments


def _is_copy(message: discord.Message, job: Job) -> bool:
    """A message with this job's buttons that is not one of its result's parts: a copy."""
    parts = _part_ids(job)
    return bool(parts) and message.id not in parts


def _images_on(message: discord.Message) -> int:
    return len([a for a in message.attachments if _is_image(a)])


def _is_image(attachment: discord.Attachment) -> bool:
    return attachment.content_type is None or attachment.content_type.startswith("image/")


def _part_ids(job: Job) -> list[int]:
    """The result's message ids in part order, from the sink's receipt ({"1": id, "2": id})."""
    parts = (job.receipt or {}).get("parts")
    if not isinstance(parts, dict):
        return []
    return [int(parts[k]) for k in sorted(parts, key=int)]


def discord_target(job: Job) -> DiscordTarget | None:
    try:
        return DiscordTarget.of(job)
    except ValueError:
        return None


def _result_channel(interaction: discord.Interaction[Any], job: Job) -> discord.PartialMessageable:
    target = discord_target(job)
    channel_id: int | None = target.channel_id if target is not None else None
    channel_id = channel_id or interaction.channel_id
    guild_id = target.guild_id if target is not None else interaction.guild_id
    client: discord.Client = interaction.client
    return client.get_partial_messageable(channel_id or 0, guild_id=guild_id)
