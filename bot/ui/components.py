"""Buttons and menus under results (persistent DynamicItems). Filled in by the buttons work."""

from __future__ import annotations

import discord
from discord.ext import commands

from bot.domain.models import Job
from bot.ui.flow import JobContext


def result_view(job: Job, image_count: int) -> discord.ui.View | None:
    return None


def register(bot: commands.Bot, ctx: JobContext) -> None:
    return None
