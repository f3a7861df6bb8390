"""The one ``/wan-admin`` command every admin subcommand hangs off, and its server-side checks.

Discord allows one top-level command per name, so every admin feature adds its subcommands or
subgroups to one ``AdminGroup``. Its ``default_permissions`` (Manage Server) only decides who sees
the command: a server's admins can hand it to anyone under Integrations, and a client can send any
command it knows. So every command below it is also checked here, on every call: Manage Server in
that server, or a bot owner (BOT_OWNER_IDS).

Use::

    group = AdminGroup(services.owner_ids)
    group.add_command(ConfigCommands(services))      # an AdminSubgroup: commands are its methods
    group.add_command(some_group_or_command)    # anything else
    group.protect()                             # after the last add_command
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import discord
from discord import app_commands

from bot.domain.text import t
from bot.errors import UserFacingError
from bot.services import Services

NAME = "wan-admin"
MANAGE_SERVER = discord.Permissions(manage_guild=True)

# Texts (rendered in the caller's language by the shared error handler); the English strings
# stay for code and tests that look for them.
NOT_IN_SERVER_TEXT = t("Admin commands work only in a server.")
NOT_ADMIN_TEXT = t(
    "Only members with the Manage Server permission can use admin commands. "
    "Ask a server admin if something should change."
)
NOT_OWNER_TEXT = t(
    "Only the bot's owner can change this setting: it applies to every server. "
    "Owners are listed in the bot's BOT_OWNER_IDS setting."
)
NOT_IN_SERVER = NOT_IN_SERVER_TEXT.english()
NOT_ADMIN = NOT_ADMIN_TEXT.english()
NOT_OWNER = NOT_OWNER_TEXT.english()


class NotAllowed(app_commands.CheckFailure, UserFacingError):
    """The caller may not run this command.

    A ``CheckFailure`` so discord.py routes it to the tree's error handler when a check raises
    it, and a ``UserFacingError`` so that handler shows its text (privately, in the caller's
    language). Its ``__init__`` is UserFacingError's: the discord.py classes define none.
    """


def is_bot_owner(user_id: int, owner_ids: Collection[int]) -> bool:
    return user_id in owner_ids


def is_admin(interaction: discord.Interaction[Any], owner_ids: Collection[int]) -> bool:
    """Manage Server in this server (Administrator includes it), or a bot owner."""
    if is_bot_owner(interaction.user.id, owner_ids):
        return True
    if interaction.guild_id is None:
        return False
    perms = interaction.permissions  # the caller's, as Discord computed them for this call
    return perms.manage_guild or perms.administrator


def require_admin(interaction: discord.Interaction[Any], owner_ids: Collection[int]) -> int:
    """The server's id, after proving the caller may administer it; else ``NotAllowed``."""
    if interaction.guild_id is None:
        raise NotAllowed(NOT_IN_SERVER_TEXT)
    if not is_admin(interaction, owner_ids):
        raise NotAllowed(NOT_ADMIN_TEXT)
    return interaction.guild_id


def require_owner(interaction: discord.Interaction[Any], owner_ids: Collection[int]) -> None:
    """For bot-wide settings: only a bot owner."""
    if not is_bot_owner(interaction.user.id, owner_ids):
        raise NotAllowed(NOT_OWNER_TEXT)


def admin_check(owner_ids: Collection[int]) -> Callable[[discord.Interaction[Any]], bool]:
    """A command check (``Command.add_check``) that raises ``NotAllowed`` for non-admins."""

    def check(interaction: discord.Interaction[Any]) -> bool:
        require_admin(interaction, owner_ids)
        return True

    check.__wanbot_admin_check__ = True  # type: ignore[attr-defined]  # see AdminGroup.protect
    return check


class AdminGroup(app_commands.Group):
    """``/wan-admin``: server-only, shown to Manage Server by default, checked on every call."""

    def __init__(self, owner_ids: Collection[int] = frozenset()) -> None:
        super().__init__(
            name=NAME,
            description="Image bot administration (Manage Server)",
            guild_only=True,
            default_permissions=MANAGE_SERVER,
        )
        self.owner_ids = frozenset(owner_ids)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        # discord.py runs this for commands directly under the group whose callback lives
        # elsewhere (a cog); deeper commands get the check from protect().
        require_admin(interaction, self.owner_ids)
        return True

    def protect(self) -> None:
        """Attach the admin check to every command below this group, however deep.

        discord.py consults only a command's direct parent and its binding, never the
        grandparent, so the group's own ``interaction_check`` does not cover
        ``/wan-admin config show``. Idempotent; call it after the last ``add_command``.
        """
        check = admin_check(self.owner_ids)
        for command in self.walk_commands():
            if isinstance(command, app_commands.Command):
                # A new list: commands copied from a class share the class's list, and another
                # bot (another owner list) may be built from the same class.
                kept = [c for c in command.checks if not getattr(c, "__wanbot_admin_check__", 0)]
                command.checks = [*kept, check]


class AdminSubgroup(app_commands.Group):
    """Base for a ``/wan-admin`` subgroup whose commands are its methods.

    Subclass with ``name=`` and ``description=`` class arguments. The caller is checked before
    each command (discord.py calls the binding's ``interaction_check``), wherever the subgroup is
    mounted.
    """

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        require_admin(interaction, self.services.owner_ids)
        return True
