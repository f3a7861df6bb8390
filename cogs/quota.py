"""/quota and /queue: a member's own standing."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.quota import Usage, fmt_credits
from bot.services import Services
from bot.ui import embeds
from bot.ui.cancel import queue_panel
from bot.ui.doors import role_ids
from bot.ui.sink import NO_PINGS


def _line(used: float, limit: float | None, resets: float) -> str:
    if limit is None:
        return f"{fmt_credits(used)} used · no limit"
    left = max(0.0, limit - used)
    return (
        f"{fmt_credits(used)} of {fmt_credits(limit)} used · **{fmt_credits(left)} left** · "
        f"resets {embeds.ts(resets)}"
    )


def quota_embed(usage: Usage) -> discord.Embed:
    embed = discord.Embed(title="Your image credits", colour=embeds.BRAND)
    embed.add_field(
        name="Today",
        value=_line(usage.daily_used, usage.daily_limit, usage.day_resets_at),
        inline=False,
    )
    embed.add_field(
        name="This month",
        value=_line(usage.monthly_used, usage.monthly_limit, usage.month_resets_at),
        inline=False,
    )
    embed.add_field(name="Running now", value=str(usage.running), inline=False)
    embed.set_footer(text="Credits are refunded for jobs that fail. Ask an admin for more.")
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
            embed=quota_embed(usage), ephemeral=True, allowed_mentions=NO_PINGS
        )

    @app_commands.command(
        name="queue", description="How busy the bot is, and your waiting jobs (cancel one here)"
    )
    async def queue(self, interaction: discord.Interaction) -> None:
        standing = await self.services.queue.standing(interaction.user.id)
        embed, view = queue_panel(standing)
        await interaction.response.send_message(
            embed=embed, view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )
