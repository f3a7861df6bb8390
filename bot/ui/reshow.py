"""Show here: a member's earlier result posted again in the current channel, with its buttons.

The images are not kept anywhere but in the result's own messages, so they are fetched from
there (the receipt lists their ids) and uploaded again; when those messages are gone, so are the
images, and the member is told why. The copy is checked against this server's rules (the
channel, the bot's permissions, blocked words and patterns) like any request; nothing is spent.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from bot.domain.config import PromptBlocked, blocking_rule
from bot.domain.models import Job, JobStatus, ResultImage
from bot.domain.text import Text, t
from bot.errors import InvalidInput, UserFacingError
from bot.services import Services
from bot.ui import embeds
from bot.ui.doors import InteractionDoor
from bot.ui.flow import check_door
from bot.ui.language import for_member
from bot.ui.presses import answers_here
from bot.ui.result_messages import discord_target
from bot.ui.sink import FILE_TOO_LARGE, NO_PINGS, ViewFactory, split_parts
from bot.ui.target import job_locale, message_link

log = logging.getLogger(__name__)

DELETED = t("The original message was deleted, so its images are gone.")
CHANNEL_GONE = t("The channel it was posted in is gone, so its images are gone too.")
UNREADABLE = t(
    "I can no longer read the channel it was posted in (I need View Channel and Read Message "
    "History there), so I can't fetch its images."
)
NOT_YET = t("It isn't finished yet; its result will be posted where you asked for it.")
NO_IMAGES = t("This job made no images, so there is nothing to show.")
NOT_ON_DISCORD = t("Its result was not posted on Discord, so there is nothing to show here.")
TOO_LARGE_HERE = t("Its images are larger than this channel accepts, so I can't post them here.")
# **Re-run** is the /history button's name (bot.ui.history.RE_RUN): translated alike.
NO_BUTTONS = t(
    "Its buttons work only where it was made (a private result: in your DMs), so this copy has "
    "none; use **Re-run** to make it again here."
)

UNKNOWN_CHANNEL = 10003


def _part_ids(job: Job) -> list[int]:
    parts = (job.receipt or {}).get("parts")
    if not isinstance(parts, dict):
        return []
    return [int(parts[k]) for k in sorted(parts, key=int)]


def _nothing_to_show(job: Job) -> Text | None:
    """Why this job has no result to show, or None when it has one."""
    if not job.finished:
        return NOT_YET
    if job.status is not JobStatus.SUCCEEDED or not job.result_urls:
        return NO_IMAGES
    if discord_target(job) is None or not _part_ids(job):
        return NOT_ON_DISCORD
    return None


async def show_here(
    interaction: discord.Interaction[Any], services: Services, job: Job, view: ViewFactory
) -> None:
    """Post ``job``'s result again in the interaction's channel; ``view`` makes its buttons."""
    reason = _nothing_to_show(job)
    if reason is not None:
        raise InvalidInput(reason)
    door = InteractionDoor(interaction)
    config = await check_door(door, services)
    rule = blocking_rule(config, job.request.prompt)
    if rule is not None:
        origin = door.origin
        services.modlog.blocked_prompt(
            origin.guild_id, origin.user_id, origin.channel_id, rule, job.request.prompt
        )
        raise PromptBlocked(rule)
    await interaction.response.defer(ephemeral=True, thinking=True)
    images = await _fetch_images(interaction, job)
    home = answers_here(job, interaction)  # its buttons would answer here
    first = await _post(interaction, job, images, view if home else None, spoiler=config.spoiler)
    url = message_link(interaction.guild_id, interaction.channel_id or 0, first)
    text = for_member(interaction, t("Posted again here: {url}", url=url))
    if not home:
        text = f"{text} {for_member(interaction, NO_BUTTONS)}"
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)


async def _fetch_images(interaction: discord.Interaction[Any], job: Job) -> list[ResultImage]:
    target = discord_target(job)
    assert target is not None  # _nothing_to_show made sure
    client: discord.Client = interaction.client
    channel = client.get_partial_messageable(target.channel_id, guild_id=target.guild_id)
    images: list[ResultImage] = []
    for message_id in _part_ids(job):
        try:
            message = await channel.fetch_message(message_id)
            for attachment in message.attachments:
                if attachment.content_type and not attachment.content_type.startswith("image/"):
                    continue
                images.append(await _image(attachment, len(images)))
        except discord.NotFound as exc:
            raise InvalidInput(CHANNEL_GONE if exc.code == UNKNOWN_CHANNEL else DELETED) from None
        except discord.Forbidden:
            raise InvalidInput(UNREADABLE) from None
        except discord.HTTPException as exc:
            log.warning("job %s: could not fetch message %s (%s)", job.id, message_id, exc)
            raise UserFacingError(
                t("Discord did not let me fetch its images just now. Try again in a moment.")
            ) from exc
    if not images:
        raise InvalidInput(DELETED)
    return images


async def _image(attachment: discord.Attachment, index: int) -> ResultImage:
    data = await attachment.read()
    return ResultImage(
        index=index,
        data=data,
        filename=attachment.filename.removeprefix("SPOILER_"),
        content_type=attachment.content_type or "image/png",
        width=attachment.width or 0,
        height=attachment.height or 0,
        source_url=attachment.url,
    )


async def _post(
    interaction: discord.Interaction[Any],
    job: Job,
    images: list[ResultImage],
    view: ViewFactory | None,
    *,
    spoiler: bool,
) -> int:
    """The copy, in as many messages as the original (buttons on the last); the first's id."""
    client: discord.Client = interaction.client
    assert interaction.channel_id is not None
    channel = client.get_partial_messageable(interaction.channel_id, guild_id=interaction.guild_id)
    parts = split_parts(images)
    first = 0
    for number, part in enumerate(parts, start=1):
        kwargs: dict[str, Any] = {
            "embed": embeds.result_embed(
                job, part, part=number, parts=len(parts), locale=job_locale(job)
            ),
            "files": [
                discord.File(io.BytesIO(i.data), filename=i.filename, spoiler=spoiler) for i in part
            ],
            "allowed_mentions": NO_PINGS,
        }
        last = number == len(parts)
        controls = view(job, len(job.result_urls)) if last and view is not None else None
        if controls is not None:
            kwargs["view"] = controls
        try:
            message = await channel.send(**kwargs)
        except discord.HTTPException as exc:
            if exc.code == FILE_TOO_LARGE or exc.status == 413:
                raise InvalidInput(TOO_LARGE_HERE) from None
            raise
        first = first or message.id
    return first
