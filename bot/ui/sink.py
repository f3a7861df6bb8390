"""Delivers job outcomes to Discord, exactly once.

Progress is shown on the job's status message: through the interaction webhook while its token is
valid (14 minutes), then through the channel endpoint (the bot owns the message). Results are
posted as new channel messages (files, never just links) with a nonce Discord deduplicates; a
retry after a failed attempt first looks for a message that really is that part of the result: the
bot's own, with the result footer (which no status, failure or alert message carries) and exactly
the part's files. Anything less is not taken for a result, so a retry posts it instead.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.domain.models import Job, ResultImage
from bot.domain.text import Text, t
from bot.errors import MediaError
from bot.jobs.delivery import UNDELIVERED, DeliveryGone, Outcome, Progress, ProgressKind
from bot.media import fit_image_async
from bot.ui import embeds
from bot.ui.target import DiscordTarget, job_locale, message_link

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
MAX_FILES = 10  # Discord's attachments per message

TOO_LARGE_MESSAGE = t(
    "The images were made, but even compressed they are larger than this channel accepts. "
    "Ask an admin about the server's upload limit, or try a lower resolution."
)
# The same when none of the images was posted: the credits are refunded.
TOO_LARGE_NOT_CHARGED = t(
    "The images were made, but even compressed they are larger than this channel accepts. "
    "Ask an admin about the server's upload limit, or try a lower resolution. "
    "Nothing was charged."
)

ViewFactory = Callable[[Job, int], discord.ui.View | None]
# The Cancel button of a waiting job's status message (by job id).
CancelFactory = Callable[[str, str | None], discord.ui.View]  # job id, channel language
# Records a multi-part delivery's progress, so a retry skips the parts already posted.
SaveReceipt = Callable[[str, dict[str, Any]], Awaitable[None]]

# Discord JSON error codes that mean "this target is gone for good".
UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, MISSING_ACCESS, MISSING_PERMISSIONS = 10003, 10008, 50001, 50013
CANNOT_DM = 50007  # a private result's member closed their DMs
GONE = (UNKNOWN_CHANNEL, MISSING_ACCESS, MISSING_PERMISSIONS, CANNOT_DM)
FILE_TOO_LARGE = 40005
REFIT_ATTEMPTS = 6  # on 413, halve the size this many times (10 MiB -> 160 KiB) before giving up


def split_parts(images: Sequence[ResultImage]) -> list[list[ResultImage]]:
    """At most 10 files a message, split evenly (12 -> 6 + 6, not 10 + 2)."""
    n = len(images)
    if n <= MAX_FILES:
        return [list(images)]
    parts = -(-n // MAX_FILES)
    size = -(-n // parts)
    return [list(images[i : i + size]) for i in range(0, n, size)]


def ping_only(user_id: int) -> discord.AllowedMentions:
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)]
    )


class TooLarge(Exception):
    """Even heavily compressed, the images do not fit this channel's upload limit."""


class DiscordSink:
    kind = "discord"

    def __init__(
        self,
        client: discord.Client,
        save_receipt: SaveReceipt,
        *,
        view_factory: ViewFactory | None = None,
        cancel_factory: CancelFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self._save_receipt = save_receipt
        self.view_factory = view_factory
        self.cancel_factory = cancel_factory
        self.clock = clock

    def upload_limit(self, job: Job) -> int:
        return DiscordTarget.of(job).upload_limit

    # --- progress ----------------------------------------------------------------------------

    async def progress(self, job: Job, progress: Progress) -> None:
        target = DiscordTarget.of(job)
        embed = embeds.status_embed(job, progress, now=self.clock(), locale=job_locale(job))
        await self._edit_status(job, target, embed=embed, view=self.status_controls(job, progress))

    def status_controls(self, job: Job, progress: Progress) -> discord.ui.View | None:
        """A Cancel button while the job waits in line; nothing once crun has it (or it ended)."""
        if progress.kind is not ProgressKind.QUEUED or self.cancel_factory is None:
            return None
        return self.cancel_factory(job.id, job_locale(job))

    async def _edit_status(
        self,
        job: Job,
        target: DiscordTarget,
        *,
        embed: discord.Embed,
        view: discord.ui.View | None = None,
    ) -> bool:
        """Edit the status message by whichever route still works. Best effort. Its controls
        become ``view``: none unless given, so a Cancel button never outlives the wait."""
        if target.status_message_id is None:
            return False
        if target.token_valid(self.clock()):
            assert target.application_id is not None and target.interaction_token
            hook = discord.Webhook.partial(
                target.application_id, target.interaction_token, client=self.client
            )
            try:
                await hook.edit_message(
                    target.status_message_id, embed=embed, view=view, allowed_mentions=NO_PINGS
                )
            except discord.HTTPException as exc:
                # Expired early or revoked: the bot's own channel route may still work.
                log.info("job %s: webhook edit failed (%s); trying the channel", job.id, exc)
            else:
                return True
        try:
            channel = self._channel(target)
            await channel.get_partial_message(target.status_message_id).edit(
                embed=embed, view=view, allowed_mentions=NO_PINGS
            )
        except discord.HTTPException as exc:
            log.info("job %s: status message not updated (%s)", job.id, exc)
            return False
        return True

    def _channel(self, target: DiscordTarget) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(target.channel_id, guild_id=target.guild_id)

    # --- delivery ----------------------------------------------------------------------------

    async def deliver(self, outcome: Outcome) -> dict[str, Any]:
        job = outcome.job
        target = DiscordTarget.of(job)
        if not outcome.ok:
            return await self._deliver_failure(job, target, outcome.message)
        receipt: dict[str, Any] = dict(job.receipt or {})
        sent: dict[str, int] = dict(receipt.get("parts", {}))
        parts = split_parts(outcome.images)
        for number, images in enumerate(parts, start=1):
            key = str(number)
            if key in sent:
                continue  # delivered before a crash
            message_id = await self._find_existing(job, target, images, number, len(parts))
            if message_id is None:
                try:
                    message_id = await self._send_part(job, target, images, number, len(parts))
                except TooLarge:
                    log.warning("job %s: result does not fit the upload limit", job.id)
                    if sent:  # earlier parts were posted: the member has some of the images
                        failure = await self._deliver_failure(job, target, TOO_LARGE_MESSAGE)
                        return {**receipt, **failure}
                    failure = await self._deliver_failure(job, target, TOO_LARGE_NOT_CHARGED)
                    return {**receipt, **failure, UNDELIVERED: "too-large"}
            sent[key] = message_id
            receipt["parts"] = sent
            await self._save_receipt(job.id, receipt)
        first = sent.get("1")
        jump = self._jump_url(target, first) if first else None
        done = embeds.done_embed(job, jump, job_locale(job))
        await self._edit_status(job, target, embed=done)
        receipt["channel_id"] = target.channel_id
        return receipt

    def _jump_url(self, target: DiscordTarget, message_id: int) -> str:
        return message_link(target.guild_id, target.channel_id, message_id)

    async def _send_part(
        self,
        job: Job,
        target: DiscordTarget,
        images: list[ResultImage],
        number: int,
        parts: int,
    ) -> int:
        embed = embeds.result_embed(job, images, part=number, parts=parts, locale=target.locale)
        last = number == parts
        view = self.view_factory(job, len(job.result_urls)) if last and self.view_factory else None
        reference = None
        if number == 1 and (target.status_message_id or target.reply_to_message_id):
            reference = discord.MessageReference(
                message_id=target.status_message_id or target.reply_to_message_id or 0,
                channel_id=target.channel_id,
                fail_if_not_exists=False,
            )
        limit = target.upload_limit
        for attempt in range(REFIT_ATTEMPTS + 1):
            files = [
                discord.File(io.BytesIO(i.data), filename=i.filename, spoiler=target.spoiler)
                for i in images
            ]
            kwargs: dict[str, Any] = {
                "content": f"<@{job.user_id}>" if number == 1 else None,
                "embed": embed,
                "files": files,
                "allowed_mentions": ping_only(job.user_id),
                "nonce": f"{job.id}-{number}",  # discord.py adds enforce_nonce: Discord dedups
            }
            if view is not None:
                kwargs["view"] = view
            if reference is not None:
                kwargs["reference"] = reference
            try:
                message = await self._channel(target).send(**kwargs)
            except discord.HTTPException as exc:
                too_large = exc.code == FILE_TOO_LARGE or exc.status == 413
                if too_large and attempt < REFIT_ATTEMPTS:
                    # The channel's limit is lower than we were told: halve and retry.
                    limit //= 2
                    log.info("job %s: upload too large; refitting under %d bytes", job.id, limit)
                    try:
                        images = await _refit(images, limit)
                    except MediaError:
                        break  # cannot be made that small
                    continue
                if exc.code in GONE:
                    fallback = await self._followup(job, target, kwargs)
                    if fallback is not None:
                        return fallback
                    raise DeliveryGone(
                        f"cannot post in channel {target.channel_id}: {exc}"
                    ) from exc
                if too_large:
                    break  # even the smallest refit was refused
                raise
            return message.id
        raise TooLarge(job.id)

    async def _followup(
        self, job: Job, target: DiscordTarget, kwargs: dict[str, Any]
    ) -> int | None:
        """The channel refused us; an interaction followup needs no channel permission."""
        if not target.token_valid(self.clock()):
            return None
        assert target.application_id is not None and target.interaction_token
        hook = discord.Webhook.partial(
            target.application_id, target.interaction_token, client=self.client
        )
        kwargs = {k: v for k, v in kwargs.items() if k not in ("nonce", "reference")}
        for f in kwargs.get("files", []):
            f.reset()
        try:
            message = await hook.send(wait=True, **kwargs)
        except discord.HTTPException as exc:
            log.warning("job %s: followup fallback failed too (%s)", job.id, exc)
            return None
        return message.id

    async def _find_existing(
        self, job: Job, target: DiscordTarget, images: list[ResultImage], number: int, parts: int
    ) -> int | None:
        """After a failed or interrupted send, this part may already be posted: find it."""
        if job.delivery_attempts <= 1:
            return None
        me = self.client.user
        if me is None:
            return None
        marker = embeds.result_footer(job, number, parts)
        after = discord.Object(
            discord.utils.time_snowflake(_utc(job.finished_at or job.created_at))
        )
        try:
            async for message in self._channel(target).history(limit=50, after=after):
                if message.author.id == me.id and carries_part(message, marker, images):
                    log.info("job %s: part %d was already posted", job.id, number)
                    return message.id
        except discord.HTTPException as exc:
            log.info("job %s: cannot read history to dedupe (%s); relying on nonce", job.id, exc)
        return None

    async def _deliver_failure(
        self, job: Job, target: DiscordTarget, message: Text | str
    ) -> dict[str, Any]:
        """The failure in the job's language (a plain string is shown as it is)."""
        embed = embeds.failure_embed(job, message, job_locale(job))
        if await self._edit_status(job, target, embed=embed):
            return {"failure": "status-edited"}
        try:
            sent = await self._channel(target).send(
                content=f"<@{job.user_id}>",
                embed=embed,
                allowed_mentions=ping_only(job.user_id),
                nonce=f"{job.id}-f",
            )
        except discord.HTTPException as exc:
            if exc.code in GONE:
                raise DeliveryGone(str(exc)) from exc
            raise
        return {"failure": "posted", "message_id": sent.id}


def carries_part(message: discord.Message, marker: str, images: Sequence[ResultImage]) -> bool:
    """True only for a message that is this part of a result: the result footer *and* exactly the
    part's files (names are ``wan-<job>-<n>``; a refit may change the extension, a spoiler adds a
    prefix). A status or failure message shares neither, so it can never count as delivered."""
    if not any((e.footer.text or "") == marker for e in message.embeds):
        return False
    posted = sorted(_stem(a.filename) for a in message.attachments)
    return bool(posted) and posted == sorted(_stem(i.filename) for i in images)


def _stem(filename: str) -> str:
    return filename.removeprefix("SPOILER_").rsplit(".", 1)[0]


async def _refit(images: list[ResultImage], limit: int) -> list[ResultImage]:
    out = []
    for img in images:
        fitted = await fit_image_async(img.data, limit)
        stem = img.filename.rsplit(".", 1)[0]
        out.append(
            ResultImage(
                index=img.index,
                data=fitted.data,
                filename=f"{stem}{fitted.ext}",
                content_type=fitted.content_type,
                width=fitted.width,
                height=fitted.height,
                source_url=img.source_url,
                reencoded=img.reencoded or fitted.reencoded,
            )
        )
    return out


def _utc(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix - 5, tz=dt.UTC)  # 5 s of slack for clock skew
