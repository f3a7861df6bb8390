"""What /wan-admin config shows: the settings overview and long lists (cogs/admin_config.py).
Every text is written in the language of the admin who ran the command."""

from __future__ import annotations

import io

import discord

from bot.domain import config as rules
from bot.domain.config import GuildConfig
from bot.domain.text import Text, t
from bot.domain.validation import DEFAULT_RESOLUTION
from bot.ui import embeds
from bot.ui.language import for_member
from bot.ui.sink import NO_PINGS

TEXT_LIMIT = 1900  # a reply longer than this goes out as a text file


def channels_text(ids: tuple[int, ...]) -> Text | str:
    return ", ".join(f"<#{c}>" for c in ids) if ids else t("every channel")


def _channel(channel_id: int | None) -> Text | str:
    return f"<#{channel_id}>" if channel_id else t("not set")


def _default_resolution(config: GuildConfig) -> Text | str:
    if config.default_resolution is not None:
        return config.default_resolution.value
    effective = rules.clamp_resolution(DEFAULT_RESOLUTION, config.max_resolution)
    if effective is not DEFAULT_RESOLUTION:
        return t("{resolution} (the maximum)", resolution=effective.value)
    return t("model default ({resolution})", resolution=DEFAULT_RESOLUTION.value)


def _dms(bot_wide: GuildConfig, allow_dms_default: bool) -> Text:
    allowed = rules.dms_allowed(bot_wide, allow_dms_default)
    if bot_wide.dms_allowed is not None:
        return t("allowed (set by the bot owner)") if allowed else t("off (set by the bot owner)")
    return t("allowed (ALLOW_DMS setting)") if allowed else t("off (ALLOW_DMS setting)")


def settings_embed(
    interaction: discord.Interaction,
    config: GuildConfig,
    bot_wide: GuildConfig,
    *,
    allow_dms_default: bool,
) -> discord.Embed:
    """The overview, in the language of the admin who asked."""

    def say(text: Text | str) -> str:
        return for_member(interaction, text)

    embed = discord.Embed(title=say(t("Image bot settings")), colour=embeds.BRAND)
    embed.add_field(
        name=say(t("Channels")),
        value=embeds.clip(say(channels_text(config.allowed_channels)), 1024),
        inline=False,
    )
    resolution = t(
        "default {default} · maximum {maximum}",
        default=_default_resolution(config),
        maximum=config.max_resolution.value,
    )
    embed.add_field(name=say(t("Resolution")), value=say(resolution))
    spoilers = t("every result") if config.spoiler else t("off")
    embed.add_field(name=say(t("Spoilers")), value=say(spoilers))
    # A language code (``de``) as the admin chose it.
    language = config.language or t("the server's Discord language")
    embed.add_field(name=say(t("Language")), value=say(language))
    blocked = t(
        "{words} word(s), {patterns} pattern(s)",
        words=len(config.blocked_words),
        patterns=len(config.blocked_patterns),
    )
    embed.add_field(name=say(t("Blocked")), value=say(blocked))
    embed.add_field(name=say(t("Alerts channel")), value=say(_channel(config.alerts_channel_id)))
    embed.add_field(name=say(t("Mod log")), value=say(_channel(config.modlog_channel_id)))
    dms = _dms(bot_wide, allow_dms_default)
    embed.add_field(name=say(t("DMs (all servers)")), value=say(dms))
    return embed


async def reply(interaction: discord.Interaction, text: Text | str) -> None:
    """A private answer; a ``Text`` in the admin's language (a string is sent as it is)."""
    await interaction.response.send_message(
        for_member(interaction, text), ephemeral=True, allowed_mentions=NO_PINGS
    )


async def reply_long(
    interaction: discord.Interaction, title: Text | str, body: str, name: str
) -> None:
    """A code block when it fits in a message, else a text file. ``body`` (words, patterns,
    styles an admin typed) is sent as it is."""
    heading = for_member(interaction, title)
    if len(body) + len(heading) + 16 <= TEXT_LIMIT:
        safe = body.replace("```", "`\u200b``")  # a pattern must not close the code block
        await reply(interaction, f"**{heading}**\n```\n{safe}\n```")
        return
    await interaction.response.send_message(
        f"**{heading}**",
        file=discord.File(io.BytesIO(body.encode()), filename=name),
        ephemeral=True,
        allowed_mentions=NO_PINGS,
    )
