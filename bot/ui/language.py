"""Which language a text is written in, decided here once.

- A reply to an interaction (ephemeral or not, a button's answer, a form): the member's client
  language, ``interaction.locale`` (``for_member``).
- A post in a server's channel that is not an answer to one member (a job's status and result,
  alerts, the mod log): the server's language, ``/wan-admin config language`` when an admin set
  it, else the server's Discord language (``server_locale``). A job keeps the language it was
  made with on its target (bot.ui.target.job_locale), so a restart posts in the same one.
- A DM: the member's own.

A locale without a catalog reads English (None).
"""

from __future__ import annotations

from typing import Any

import discord

from bot.domain.text import Text
from bot.i18n.replies import render
from bot.ui.target import supported


def member_locale(interaction: discord.Interaction[Any]) -> str:
    """The Discord locale of the member's client (``"de"``, ``"pt-BR"``): replies use it."""
    return interaction.locale.value


def for_member(interaction: discord.Interaction[Any], text: Text | str) -> str:
    """``text`` in the language of the member who used ``interaction``."""
    return render(text, member_locale(interaction))


def server_locale(configured: str | None, discord_locale: object | None) -> str | None:
    """A server's language: its admins' choice (``configured``), else its Discord language
    (``guild.preferred_locale`` or ``interaction.guild_locale``, a ``discord.Locale`` or its
    code); None (English) when neither has a catalog."""
    if configured:
        return supported(configured)
    if isinstance(discord_locale, discord.Locale):
        return supported(discord_locale.value)
    return supported(discord_locale if isinstance(discord_locale, str) else None)


def in_server_language(
    text: Text | str, configured: str | None, discord_locale: object | None
) -> str:
    """``text`` in a server's language (``server_locale``)."""
    return render(text, server_locale(configured, discord_locale))
