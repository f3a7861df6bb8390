"""/quota and /queue: a member's own standing."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.quota import Usage
from bot.domain.text import Text, t
from bot.i18n.replies import render
from bot.services import Services
from bot.ui import embeds
from bot.ui.cancel import queue_panel
from bot.ui.doors import role_ids
from bot.ui.language import member_locale
from bot.ui.sink import NO_PINGS


def _line(used: float, limit: float | None, resets: float) -> Text:
    # Credits as floats: the reader's locale writes them (``2.5`` / ``2,5``), at most 2 decimals.
    if limit is None:
        return t("{used} used · no limit", used=float(used))
    return t(
        "{used} of {limit} used · **{left} left** · resets {when}",
        used=float(used),
        limit=float(limit),
        left=max(0.0, limit - used),
        when=embeds.ts(resets),
    )


def quota_embed(usage: Usage, locale: str | None = None) -> discord.Embed:
    """A member's credits, in ``locale`` (the reader's; English without one)."""

    def say(text: Text) -> str:
        return render(text, locale)

    embed = discord.Embed(title=say(t("Your image credits")), colour=embeds.BRAND)
    embed.add_field(
        name=say(t("Today")),
        value=say(_line(usage.daily_used, usage.daily_limit, usage.day_resets_at)),
        inline=False,
    )
    embed.add_field(
        name=say(t("This month")),
        value=say(_line(usage.monthly_used, usage.monthly_limit, usage.month_resets_at)),
        inline=False,
    )
    embed.add_field(name=say(t("Running now")), value=str(usage.running), inline=False)
    embed.set_footer(text=say(t("Credits are refunded for jobs that fail. Ask an admin for more.")))
    return embed


class QuotaCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="quota", description="How many image credits you have left")
    async def quota(self, interaction: discord.Interaction) -> None:
        usage = await self.services.admin.usage(
            interaction.guild_id, interaction.user.id, role_ids(interaction.user)
        )
        await interaction.response.send_message(
            embed=quota_embed(usage, member_locale(interaction)),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    @app_commands.command(
        name="queue", description="How busy the bot is, and your waiting jobs (cancel one here)"
    )
    async def queue(self, interaction: discord.Interaction) -> None:
        standing = await self.services.queue.standing(interaction.user.id)
        embed, view = queue_panel(standing, locale=member_locale(interaction))
        await interaction.response.send_message(
            embed=embed, view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )
