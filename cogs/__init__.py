"""Thin Discord cogs: parse the interaction, call the core, render the answer."""

from __future__ import annotations

from discord.ext import commands

from cogs.admin import AdminCog
from cogs.context_menu import ContextMenuCog
from cogs.edit import EditCog
from cogs.history import HistoryCog
from cogs.imageset import ImageSetCog
from cogs.imagine import ImagineCog
from cogs.mentions import MentionsCog
from cogs.quota import QuotaCog
from cogs.settings import SettingsCog
from cogs.wan import WanCog

COGS: list[type[commands.Cog]] = [
    ImagineCog,
    EditCog,
    ImageSetCog,
    ContextMenuCog,
    MentionsCog,
    QuotaCog,
    HistoryCog,
    SettingsCog,
    WanCog,
    AdminCog,
]
