"""One error handler for every app command and component: ephemeral, friendly, with a reference.

Users see the user message of a UserFacingError, or a generic sentence with a short reference id;
the log gets the whole exception under the same id.
"""

from __future__ import annotations

import contextlib
import logging
import secrets

import discord
from discord import app_commands

from bot.domain.text import Text, t, tn
from bot.errors import UserFacingError
from bot.i18n.replies import render
from bot.ui.language import member_locale
from bot.ui.sink import NO_PINGS

log = logging.getLogger(__name__)

STATUS_MESSAGE = "status_message"  # interaction.extras key: a public status message exists
NOT_STARTED = t("Request not started.")


async def reply_ephemeral(interaction: discord.Interaction, message: Text | str) -> None:
    """Works whether the interaction was answered, deferred publicly, or has expired. A ``Text``
    is written in the member's language; a string is sent as it is (already rendered)."""
    message = render(message, member_locale(interaction))
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=NO_PINGS
            )
            return
        public_status = interaction.extras.pop(STATUS_MESSAGE, False)
        if public_status:
            # A public "thinking…" message exists and the first followup would replace it,
            # inheriting its visibility. Resolve it first, answer privately, then remove it.
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(
                    content=render(NOT_STARTED, member_locale(interaction)),
                    embed=None,
                    attachments=[],
                    view=None,
                )
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_PINGS)
        if public_status:
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
    except discord.HTTPException as exc:
        log.warning("could not tell user %s about an error (%s)", interaction.user.id, exc)


def user_message(error: BaseException) -> Text | str | None:
    """The message for errors we expect (a ``Text`` to render, or a plain string not yet
    translated); None for bugs."""
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        error = error.__cause__ or error
    if isinstance(error, UserFacingError):
        return error.text
    if isinstance(error, app_commands.MissingPermissions):
        # Discord's permission names (manage_guild) are the same in every client.
        permissions = ", ".join(error.missing_permissions)
        return t("You need the {permissions} permission for this.", permissions=permissions)
    if isinstance(error, app_commands.NoPrivateMessage):
        return t("This command works only in a server.")
    if isinstance(error, app_commands.CommandOnCooldown):
        seconds = max(1, round(error.retry_after))
        return tn(
            "Slow down a little: try again in {count} second.",
            "Slow down a little: try again in {count} seconds.",
            count=seconds,
        )
    if isinstance(error, app_commands.CheckFailure):
        return t("You can't use this command here.")
    return None


def error_text(
    error: BaseException, *, user_id: int, channel_id: int | None, locale: str | None = None
) -> str:
    """What the member is told, in their ``locale`` (English without one): the user message of
    an expected error, else a generic sentence with a short reference that the log carries with
    the whole exception."""
    message = user_message(error)
    if message is None:
        ref = secrets.token_hex(3)
        original = getattr(error, "original", error)
        log.error(
            "unexpected error (ref %s) for user %s in channel %s",
            ref,
            user_id,
            channel_id,
            exc_info=original,
        )
        return render(
            t(
                "Something went wrong on our side (reference `{ref}`). Please try again; if it "
                "keeps happening, tell a server admin and quote the reference.",
                ref=ref,
            ),
            locale,
        )
    log.info("user %s: %s", user_id, message)  # a Text logs in English
    return render(message, locale)


async def handle_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The tree's, every component's and every form's error handler."""
    text = error_text(
        error,
        user_id=interaction.user.id,
        channel_id=interaction.channel_id,
        locale=member_locale(interaction),
    )
    await reply_ephemeral(interaction, text)
