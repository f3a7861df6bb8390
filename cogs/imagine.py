"""/imagine: text-to-image."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.models import GenerationRequest, Mode, Resolution
from bot.domain.preferences import given
from bot.domain.validation import MAX_N, SEED_MAX
from bot.services import Services
from bot.ui.doors import InteractionDoor
from bot.ui.flow import begin_job
from bot.ui.private import PRIVATE_OPTION
from bot.ui.styles import STYLE_OPTION, style_choices

AspectRatio = Literal["1:1", "16:9", "4:3", "21:9", "3:4", "9:16", "8:1", "1:8"]


class ImagineCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="imagine", description="Make pictures from a text prompt")
    @app_commands.describe(
        prompt="What to draw (up to 5,000 characters)",
        resolution="1K, 2K (default) or 4K",
        aspect_ratio="Shape of the picture",
        count="How many pictures (1-4)",
        thinking="Let the model plan the composition first (slower, often better)",
        seed="Same seed + same prompt = similar picture",
        watermark="Add an 'AI generated' mark",
        style=STYLE_OPTION,
        private=PRIVATE_OPTION,
    )
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 5000],
        resolution: Literal["1K", "2K", "4K"] | None = None,
        aspect_ratio: AspectRatio | None = None,
        count: app_commands.Range[int, 1, MAX_N] | None = None,
        thinking: bool | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        watermark: bool | None = None,
        style: str | None = None,
        private: bool | None = None,
    ) -> None:
        request = GenerationRequest(
            prompt=prompt,
            mode=Mode.TEXT_TO_IMAGE,
            resolution=Resolution(resolution) if resolution else None,
            aspect_ratio=aspect_ratio,
            n=count or 1,
            thinking=thinking,
            seed=seed,
            watermark=bool(watermark),
        )
        # What the command was not given comes from the member's /settings.
        options = given(
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            n=count,
            thinking=thinking,
            watermark=watermark,
            private=private,
        )
        await begin_job(
            InteractionDoor(interaction),
            self.services,
            request,
            given=options,
            style=style,
            private=private,
        )

    @imagine.autocomplete("style")
    async def imagine_style(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await style_choices(self.services, interaction, current)
