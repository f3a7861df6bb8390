"""/edit: change or combine up to 9 images with an instruction."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.models import GenerationRequest, Mode, Resolution
from bot.domain.preferences import given
from bot.domain.validation import MAX_N, SEED_MAX
from bot.services import Services
from bot.ui.doors import InteractionDoor
from bot.ui.flow import begin_job
from bot.ui.inputs import from_attachment
from bot.ui.private import PRIVATE_OPTION
from bot.ui.styles import STYLE_OPTION, style_choices

# 4K is listed so that picking it gets the reason (the model renders edits and image sets at
# 2K at most) instead of the option silently not existing.
RESOLUTION_CHOICES = [
    app_commands.Choice(name="2K (default)", value="2K"),
    app_commands.Choice(name="1K (faster)", value="1K"),
    app_commands.Choice(name="4K (only for /imagine)", value="4K"),
]


def resolution_of(choice: app_commands.Choice[str] | None) -> Resolution | None:
    return Resolution(choice.value) if choice else None


class EditCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="edit", description="Change or combine up to 9 images")
    @app_commands.describe(
        prompt='What to change. Refer to the images as "image 1", "image 2"…',
        image="Image 1",
        image2="Image 2",
        image3="Image 3",
        image4="Image 4",
        image5="Image 5",
        image6="Image 6",
        image7="Image 7",
        image8="Image 8",
        image9="Image 9",
        resolution="1K or 2K (default)",
        count="How many pictures (1-4)",
        seed="Same seed + same prompt = similar picture",
        style=STYLE_OPTION,
        private=PRIVATE_OPTION,
    )
    @app_commands.choices(resolution=RESOLUTION_CHOICES)
    async def edit(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 5000],
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        image9: discord.Attachment | None = None,
        resolution: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, MAX_N] | None = None,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        style: str | None = None,
        private: bool | None = None,
    ) -> None:
        # Option order is image order: the prompt's "image 2" is the image2 option.
        attachments = [image, image2, image3, image4, image5, image6, image7, image8, image9]
        request = GenerationRequest(
            prompt=prompt,
            mode=Mode.EDIT,
            resolution=resolution_of(resolution),
            n=count or 1,
            seed=seed,
        )
        candidates = [from_attachment(a) for a in attachments if a is not None]
        await begin_job(
            InteractionDoor(interaction),
            self.services,
            request,
            candidates=candidates,
            # The rest: the member's /settings.
            given=given(resolution=resolution, n=count, private=private),
            style=style,
            private=private,
        )

    @edit.autocomplete("style")
    async def edit_style(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await style_choices(self.services, interaction, current)
