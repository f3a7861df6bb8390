"""The ``style`` option of /imagine, /edit and /imageset: what its autocomplete offers."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.services import Services
from bot.ui.embeds import clip

STYLE_OPTION = "One of this server's styles: its text is added to your prompt"


async def style_choices(
    services: Services, interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The server's styles matching what the member typed, each with the start of its text;
    nothing in DMs."""
    styles = await services.styles.matching(interaction.guild_id, current)
    return [
        app_commands.Choice(name=clip(f"{s.name} · {' '.join(s.text.split())}", 100), value=s.name)
        for s in styles
    ]
