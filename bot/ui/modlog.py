"""The mod log's Discord side: how a line is sent, and the hooks the faces call.

The line itself, and how many a server gets per minute, are decided in ``bot.domain.modlog`` and
``bot.services.modlog``; this module only renders the line in the server's language
(``bot.ui.language.server_locale``: the admins' choice, else the server's Discord language), sends
it so that it can ping no one and shows no link previews, and logs (never shows a member) a send
that fails.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.domain.models import Job
from bot.domain.text import Text
from bot.services import Services
from bot.services.modlog import Send
from bot.ui.language import in_server_language
from bot.ui.sink import NO_PINGS

log = logging.getLogger(__name__)


def discord_send(client: discord.Client) -> Send:
    """The ``send`` the mod-log service posts with, through ``client``."""

    async def send(guild_id: int, channel_id: int, text: Text, configured: str | None) -> None:
        guild = client.get_guild(guild_id)  # None when not cached: the admins' choice or English
        shown = in_server_language(text, configured, guild.preferred_locale if guild else None)
        channel = client.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            await channel.send(shown, allowed_mentions=NO_PINGS, suppress_embeds=True)
        except discord.HTTPException as exc:
            # Missing access, a deleted channel, an outage: the admins see it in the log.
            log.warning("guild %s: mod-log post to %s failed: %s", guild_id, channel_id, exc)

    return send


def result_deleted(interaction: discord.Interaction[Any], job: Job) -> None:
    """A result was deleted through its Remove button: logged when it was not its requester.

    Buttons find the bot's services through the interaction's client (see
    ``components._services``): they outlive any one view object.
    """
    services = getattr(interaction.client, "services", None)
    if isinstance(services, Services):
        services.modlog.result_deleted(interaction.user.id, job, interaction.channel_id)
