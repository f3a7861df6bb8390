"""/wan-admin: server administration (Manage Server, or a bot owner).

Discord's default_member_permissions hides the group from other members, but server admins can
change that, so every command below it is checked again on the server side (cogs/admin_group.py).
"""

from __future__ import annotations

from discord.ext import commands

from bot.services import Services
from cogs.admin_config import ConfigCommands
from cogs.admin_group import AdminGroup
from cogs.admin_quota import MemberCommands, QuotaCommands
from cogs.admin_styles import StyleCommands


class AdminCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services
        self.group = AdminGroup(services.owner_ids)
        self.group.add_command(QuotaCommands(services))
        for cmd in MemberCommands(services).commands():
            self.group.add_command(cmd)
        self.group.add_command(ConfigCommands(services))
        self.group.add_command(StyleCommands(services))
        self.group.protect()
        self.__cog_app_commands__ = [*self.__cog_app_commands__, self.group]
