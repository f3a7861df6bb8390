"""/history: the member's own jobs in every server and DM (private)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.services import Services
from bot.ui.history import history_panel
from bot.ui.language import member_locale
from bot.ui.sink import NO_PINGS


class HistoryCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(
        name="history", description="Your jobs everywhere, newest first: show one here or re-run it"
    )
    async def history(self, interaction: discord.Interaction) -> None:
        page = await self.services.history.page(interaction.user.id, 0)
        embed, view = history_panel(page, interaction.user.id, locale=member_locale(interaction))
        await interaction.response.send_message(
            embed=embed, view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )
