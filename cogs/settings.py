"""/settings: a member's own defaults, in a private panel of menus and buttons (bot/ui/settings)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.services import Services
from bot.ui.language import member_locale
from bot.ui.settings import settings_panel
from bot.ui.sink import NO_PINGS


class SettingsCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(
        name="settings", description="Your defaults for new pictures (resolution, shape, count…)"
    )
    async def settings(self, interaction: discord.Interaction) -> None:
        panel = await self.services.preferences.panel(interaction.user.id, interaction.guild_id)
        embed, view = settings_panel(panel, member_locale(interaction))
        await interaction.response.send_message(
            embed=embed, view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )
