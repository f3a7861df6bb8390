"""Starting an edit from a plain message: a reply to a message with images that mentions the bot.

There is no interaction here: no 3-second deadline, no token, no ephemeral replies. The message
becomes a ``MessageDoor`` and goes through the same ``flow.begin_job`` as every command: the bot
posts its own status reply (the engine keeps it current through the channel endpoint), the result
is posted as a reply to it, and refusals are answered by ``doors.report``.
"""

from __future__ import annotations

import logging
import re

import discord

from bot.domain.models import GenerationRequest, Job, Mode
from bot.domain.text import t
from bot.domain.validation import normalise_prompt
from bot.errors import InvalidInput
from bot.jobs.background import TaskGroup
from bot.services import Services
from bot.ui import inputs
from bot.ui.doors import MessageDoor, report
from bot.ui.flow import begin_job, check_door

log = logging.getLogger(__name__)

DELETED = t("The message you replied to was deleted, so there is nothing to edit.")


def _mention_pattern(user_id: int) -> re.Pattern[str]:
    return re.compile(rf"<@!?{user_id}>")


def my_id(message: discord.Message) -> int | None:
    """The bot's user id, as seen from the message (the cogs get no bot reference)."""
    if message.guild is not None:
        return message.guild.me.id
    me = getattr(message.channel, "me", None)  # DM and group channels know their bot user
    return me.id if isinstance(me, discord.ClientUser) else None


def is_edit_request(message: discord.Message, me_id: int) -> bool:
    """A member's reply that mentions the bot in its text.

    The text is required: a plain reply to one of the bot's messages also lists the bot in
    ``mentions`` (reply ping), and "thanks!" under a result must not start a paid edit.
    """
    return (
        not message.author.bot
        and message.type is discord.MessageType.reply
        and message.reference is not None
        and _mention_pattern(me_id).search(message.content) is not None
    )


def instruction(message: discord.Message, me_id: int) -> str:
    """The prompt: the message text without the bot's mention(s)."""
    text = _mention_pattern(me_id).sub(" ", message.content)
    return normalise_prompt(re.sub(r"[ \t]{2,}", " ", text))


async def _replied_to(message: discord.Message) -> discord.Message:
    ref = message.reference
    assert ref is not None
    resolved = ref.resolved
    if isinstance(resolved, discord.Message):
        return resolved
    if isinstance(resolved, discord.DeletedReferencedMessage):
        raise InvalidInput(DELETED)
    if ref.message_id is None:
        raise InvalidInput(t("Reply to a message that has images, and mention me with what to do."))
    # Discord did not include it (it does not always): ask for it.
    try:
        return await message.channel.fetch_message(ref.message_id)
    except discord.NotFound:
        raise InvalidInput(DELETED) from None
    except discord.HTTPException as exc:
        log.info("cannot fetch replied-to message %s: %s", ref.message_id, exc)
        raise InvalidInput(
            t(
                "I can't read the message you replied to. Right-click it → Apps → Edit with Wan "
                "instead."
            )
        ) from None


async def start_from_message(
    message: discord.Message, services: Services, me_id: int, *, tasks: TaskGroup
) -> Job | None:
    """Start the edit ``message`` asks for. Problems are answered in the channel through the
    message's door; returns the job, or None when it was refused."""
    door = MessageDoor(message, tasks=tasks)
    if not door.can_answer:
        # Not even an error reply would get through; the member will notice the silence.
        log.info("channel %s: cannot reply (missing %s)", message.channel.id, door.origin.missing)
        return None
    try:
        config = await check_door(door, services)  # before fetching anything
        request, candidates = await _parse(message, me_id)
        # No options in a mention: every default comes from the member's /settings.
        return await begin_job(
            door, services, request, candidates=candidates, config=config, given=()
        )
    except Exception as exc:
        await report(door, exc)
        return None


async def _parse(
    message: discord.Message, me_id: int
) -> tuple[GenerationRequest, list[inputs.Candidate]]:
    """The instruction and the replied-to message's images, or InvalidInput saying what to do."""
    prompt = instruction(message, me_id)
    if not prompt:
        name = (message.guild.me.display_name if message.guild else "wanbot").replace("`", "")
        raise InvalidInput(
            t(
                "Tell me what to change, after the mention: e.g. `@{name} make it night time`.",
                name=name,
            )
        )
    source = await _replied_to(message)
    candidates = inputs.message_candidates(source)
    if not candidates:
        raise InvalidInput(
            t(
                "I can't see any images in the message you replied to. If it has some, "
                "right-click it → Apps → Edit with Wan instead."
            )
        )
    return GenerationRequest(prompt=prompt, mode=Mode.EDIT), candidates
