"""What /wan-admin config shows: the settings overview and long lists (cogs/admin_config.py)."""

from __future__ import annotations

import io

import discord

from bot.domain import config as rules
from bot.domain.config import GuildConfig
from bot.domain.validation import DEFAULT_RESOLUTION
from bot.ui import embeds
from bot.ui.sink import NO_PINGS

TEXT_LIMIT = 1900  # a reply longer than this goes out as a text file


def channels_text(ids: tuple[int, ...]) -> str:
    return ", ".join(f"<#{c}>" for c in ids) if ids else "every channel"


def _channel(channel_id: int | None) -> str:
    return f"<#{channel_id}>" if channel_id else "not set"


def settings_embed(
    config: GuildConfig, bot_wide: GuildConfig, *, allow_dms_default: bool
) -> discord.Embed:
    embed = discord.Embed(title="Image bot settings", colour=embeds.BRAND)
    embed.add_field(
        name="Channels",
        value=embeds.clip(channels_text(config.allowed_channels), 1024),
        inline=False,
    )
    default = config.default_resolution
    if default is None:
        default_text = f"model default ({DEFAULT_RESOLUTION})"
        effective = rules.clamp_resolution(DEFAULT_RESOLUTION, config.max_resolution)
        if effective is not DEFAULT_RESOLUTION:
            default_text = f"{effective} (the maximum)"
    else:
        default_text = str(default)
    embed.add_field(
        name="Resolution", value=f"default {default_text} · maximum {config.max_resolution}"
    )
    embed.add_field(name="Spoilers", value="every result" if config.spoiler else "off")
    embed.add_field(name="Language", value=config.language or "the server's Discord language")
    embed.add_field(
        name="Blocked",
        value=f"{len(config.blocked_words)} word(s), {len(config.blocked_patterns)} pattern(s)",
    )
    embed.add_field(name="Alerts channel", value=_channel(config.alerts_channel_id))
    embed.add_field(name="Mod log", value=_channel(config.modlog_channel_id))
    dms = rules.dms_allowed(bot_wide, allow_dms_default)
    source = "set by the bot owner" if bot_wide.dms_allowed is not None else "ALLOW_DMS setting"
    embed.add_field(name="DMs (all servers)", value=f"{'allowed' if dms else 'off'} ({source})")
    return embed


async def reply(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


async def reply_long(interaction: discord.Interaction, title: str, body: str, name: str) -> None:
    """A code block when it fits in a message, else a text file."""
    if len(body) + len(title) + 16 <= TEXT_LIMIT:
        safe = body.replace("```", "`\u200b``")  # a pattern must not close the code block
        await reply(interaction, f"**{title}**\n```\n{safe}\n```")
        return
    await interaction.response.send_message(
        f"**{title}**",
        file=discord.File(io.BytesIO(body.encode()), filename=name),
        ephemeral=True,
        allowed_mentions=NO_PINGS,
    )
