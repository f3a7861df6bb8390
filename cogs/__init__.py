"""Thin Discord cogs: parse the interaction, call the core, render the answer."""

from __future__ import annotations

from discord.ext import commands

from cogs.imagine import ImagineCog
from cogs.wan import WanCog

COGS: list[type[commands.Cog]] = [ImagineCog, WanCog]
