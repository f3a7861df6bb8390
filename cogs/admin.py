"""/wan-admin: server administration (Manage Server, or a bot owner).

Discord's default_member_permissions hides the group from other members, but server admins can
change that, so every command below it is checked again on the server side (cogs/admin_group.py).
"""

from __future__ import annotations

from discord.ext import commands

from bot.ui.flow import JobContext
from cogs.admin_config import ConfigCommands
from cogs.admin_group import AdminGroup
from cogs.admin_quota import admin_commands


class AdminCog(commands.Cog):
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.group = AdminGroup(ctx.owner_ids)
        for cmd in admin_commands(ctx):
            self.group.add_command(cmd)
        self.group.add_command(ConfigCommands(ctx))
        self.group.protect()
        self.__cog_app_commands__ = [*self.__cog_app_commands__, self.group]
