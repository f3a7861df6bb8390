"""Starting an edit from a plain message: a reply to a message with images that mentions the bot.

There is no interaction here: no 3-second deadline, no token, no ephemeral replies. The bot posts
its own status reply (the engine keeps it current through the channel endpoint) and the result
is posted as a reply to it, like every other job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import secrets

import discord

from bot.domain.config import apply_rules, dms_allowed, require_channel
from bot.domain.models import GenerationRequest, Job, Mode
from bot.domain.validation import normalise_prompt, validate_request
from bot.errors import InvalidInput
from bot.jobs.background import TaskGroup
from bot.ui import embeds, inputs
from bot.ui.errors import user_message
from bot.ui.flow import (
    JobContext,
    missing_permissions,
    parent_channel_id,
    role_ids,
    server_config,
)
from bot.ui.sink import NO_PINGS
from bot.ui.target import DEFAULT_UPLOAD_LIMIT, DiscordTarget

log = logging.getLogger(__name__)

#: Seconds an error reply stays in the channel (read at call time, so tests can shorten it).
ERROR_TTL = 60.0

# A reply pings its author only through ``replied_user``; nothing in the text can ping anyone.
ONLY_AUTHOR = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


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
        raise InvalidInput("The message you replied to was deleted, so there is nothing to edit.")
    if ref.message_id is None:
        raise InvalidInput("Reply to a message that has images, and mention me with what to do.")
    # Discord did not include it (it does not always): ask for it.
    try:
        return await message.channel.fetch_message(ref.message_id)
    except discord.NotFound:
        raise InvalidInput(
            "The message you replied to was deleted, so there is nothing to edit."
        ) from None
    except discord.HTTPException as exc:
        log.info("cannot fetch replied-to message %s: %s", ref.message_id, exc)
        raise InvalidInput(
            "I can't read the message you replied to. Right-click it → Apps → Edit with Wan "
            "instead."
        ) from None


def _permission_problem(message: discord.Message) -> tuple[bool, list[str]]:
    """(can_answer, missing): what the bot lacks in this channel to post the result."""
    if message.guild is None:
        return True, []
    perms = message.channel.permissions_for(message.guild.me)
    missing = missing_permissions(perms, in_dm=False)
    if not perms.read_message_history:
        missing.append("Read Message History")  # the status and result are replies
    return perms.view_channel and perms.send_messages, missing


async def start_from_message(
    message: discord.Message, ctx: JobContext, me_id: int, *, tasks: TaskGroup
) -> Job | None:
    """Start the edit ``message`` asks for. Problems are answered in the channel (see
    ``reply_error``); returns the job, or None when it was refused."""
    try:
        return await _start(message, ctx, me_id)
    except Exception as exc:
        text = user_message(exc)
        if text is None:
            ref = secrets.token_hex(3)
            log.error(
                "unexpected error (ref %s) for user %s in channel %s",
                ref,
                message.author.id,
                message.channel.id,
                exc_info=exc,
            )
            text = (
                f"Something went wrong on our side (reference `{ref}`). Please try again; if it "
                "keeps happening, tell a server admin and quote the reference."
            )
        else:
            log.info("user %s: %s", message.author.id, text)
        await reply_error(message, text, tasks=tasks)
        return None


async def _start(message: discord.Message, ctx: JobContext, me_id: int) -> Job | None:
    in_dm = message.guild is None
    config = await server_config(ctx, message.guild.id if message.guild else None)
    if in_dm and not dms_allowed(config, ctx.allow_dms):
        raise InvalidInput("This bot does not take requests in DMs here. Use it in a server.")
    can_answer, missing = _permission_problem(message)
    if not can_answer:
        # Not even an error reply would get through; the member will notice the silence.
        log.info("channel %s: cannot reply (missing %s)", message.channel.id, missing)
        return None
    parent_id = parent_channel_id(message.channel)
    require_channel(config, message.channel.id, parent_id)  # before fetching anything
    if missing:
        raise InvalidInput(
            "I can't post images in this channel: I'm missing the "
            f"{', '.join(missing)} permission{'s' if len(missing) > 1 else ''}. "
            "Ask a server admin to grant them, or use me in another channel."
        )
    prompt = instruction(message, me_id)
    if not prompt:
        name = (message.guild.me.display_name if message.guild else "wanbot").replace("`", "")
        raise InvalidInput(
            f"Tell me what to change, after the mention: e.g. `@{name} make it night time`."
        )
    source = await _replied_to(message)
    candidates = inputs.message_candidates(source)
    if not candidates:
        raise InvalidInput(
            "I can't see any images in the message you replied to. If it has some, right-click "
            "it → Apps → Edit with Wan instead."
        )
    request = GenerationRequest(
        prompt=prompt, mode=Mode.EDIT, images=tuple(c.ref() for c in candidates)
    )
    inputs.precheck(candidates)
    validate_request(request)
    request = apply_rules(
        config, channel_id=message.channel.id, parent_channel_id=parent_id, request=request
    )

    status = await message.reply(
        embed=embeds.preparing_embed(request), allowed_mentions=NO_PINGS, mention_author=False
    )
    try:
        refs = await inputs.verify(candidates, inputs.input_fetcher(ctx))
        target = DiscordTarget(
            channel_id=message.channel.id,
            user_id=message.author.id,
            guild_id=message.guild.id if message.guild else None,
            status_message_id=status.id,
            reply_to_message_id=message.id,
            upload_limit=message.guild.filesize_limit if message.guild else DEFAULT_UPLOAD_LIMIT,
            spoiler=config.spoiler,
        )
        return await ctx.service.submit(
            dataclasses.replace(request, images=tuple(refs)),
            user_id=message.author.id,
            guild_id=target.guild_id,
            target=target.to_target(),
            role_ids=role_ids(message.author),
        )
    except BaseException:
        with contextlib.suppress(discord.HTTPException):
            await status.delete()
        raise


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
