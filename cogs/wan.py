"""/wan help and /wan info."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.text import t
from bot.errors import InvalidInput
from bot.services import Services
from bot.ui import embeds
from bot.ui.language import member_locale
from bot.ui.private import is_private
from bot.ui.sink import NO_PINGS


class WanCog(commands.GroupCog, group_name="wan", group_description="About Wan image generation"):
    def __init__(self, services: Services) -> None:
        self.services = services
        super().__init__()

    @app_commands.command(name="help", description="What the bot can do, with examples")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            embed=embeds.help_embed(member_locale(interaction)),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    @app_commands.command(name="info", description="Full prompt and settings of a job")
    @app_commands.describe(job_id="The id in a result's footer, e.g. k7v3m2q9ta")
    async def info(
        self, interaction: discord.Interaction, job_id: app_commands.Range[str, 1, 32]
    ) -> None:
        job = await self.services.generation.get(job_id)
        # Jobs from other servers or DMs, and private results, are their requester's alone.
        if job.user_id != interaction.user.id and (
            job.guild_id is None or job.guild_id != interaction.guild_id or is_private(job)
        ):
            raise InvalidInput(t("There is no job `{job_id}` in this server.", job_id=job_id[:32]))
        await interaction.response.send_message(
            embed=embeds.info_embed(job, member_locale(interaction)),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )
