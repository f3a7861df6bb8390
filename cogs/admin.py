"""/wan-admin: server administration (Manage Server, or a bot owner).

Discord's default_member_permissions hides the group from other members, but server admins can
change that, so every command checks permissions again on the server side.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.ui.flow import JobContext
from cogs.admin_quota import admin_commands


class AdminCog(commands.Cog):
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.group = app_commands.Group(
            name="wan-admin",
            description="Image bot administration",
            default_permissions=discord.Permissions(manage_guild=True),
            guild_only=True,
        )
        for cmd in admin_commands(ctx, ctx.owner_ids):
            self.group.add_command(cmd)
        self.__cog_app_commands__ = [*self.__cog_app_commands__, self.group]
