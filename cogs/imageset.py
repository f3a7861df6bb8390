"""/imageset: a coherent series of 2-12 images from one prompt."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.models import GenerationRequest, Mode
from bot.domain.preferences import given
from bot.domain.validation import MAX_N_SET, SEED_MAX
from bot.services import Services
from bot.ui.doors import InteractionDoor
from bot.ui.flow import begin_job
from bot.ui.private import PRIVATE_OPTION
from bot.ui.styles import STYLE_OPTION, style_choices
from cogs.edit import RESOLUTION_CHOICES, resolution_of

DEFAULT_SET_SIZE = 4


class ImageSetCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="imageset", description="A coherent series of 2-12 pictures")
    @app_commands.describe(
        prompt="The series, e.g. four-panel comic: a cat learns to ski",
        count=f"How many pictures (2-{MAX_N_SET}, default {DEFAULT_SET_SIZE})",
        resolution="1K or 2K (default)",
        seed="Same seed + same prompt = similar series",
        style=STYLE_OPTION,
        private=PRIVATE_OPTION,
    )
    @app_commands.choices(resolution=RESOLUTION_CHOICES)
    async def imageset(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 5000],
        count: app_commands.Range[int, 2, MAX_N_SET] = DEFAULT_SET_SIZE,
        resolution: app_commands.Choice[str] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        style: str | None = None,
        private: bool | None = None,
    ) -> None:
        request = GenerationRequest(
            prompt=prompt,
            mode=Mode.IMAGE_SET,
            resolution=resolution_of(resolution),
            n=count,
            seed=seed,
        )
        # The set's own count is always given; the rest comes from the member's /settings.
        options = given(resolution=resolution, n=count, private=private)
        await begin_job(
            InteractionDoor(interaction),
            self.services,
            request,
            given=options,
            style=style,
            private=private,
        )

    @imageset.autocomplete("style")
    async def imageset_style(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await style_choices(self.services, interaction, current)
