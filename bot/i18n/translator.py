"""discord.py's ``app_commands.Translator`` over the catalogs, and the list of strings it is asked.

discord.py asks the translator, at sync time, for every command, group, option and choice name
and description in every Discord locale; ``catalog_context`` says which catalog context
(msgctxt) a request belongs to. ``collect`` asks the same questions of a command tree with a
recording translator: the extractor writes what it records into the template.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import rules
from bot.i18n.catalogs import Catalogs, shared

log = logging.getLogger(__name__)

_CONTEXTS = {
    Where.command_name: rules.COMMAND_NAME,
    Where.group_name: rules.COMMAND_NAME,
    Where.command_description: rules.COMMAND_DESCRIPTION,
    Where.group_description: rules.COMMAND_DESCRIPTION,
    Where.parameter_name: rules.OPTION_NAME,
    Where.parameter_description: rules.OPTION_DESCRIPTION,
    Where.choice_name: rules.CHOICE,
    Where.other: rules.CONTEXT_MENU_NAME,
}


def catalog_context(context: app_commands.TranslationContextTypes) -> str:
    """The msgctxt of a string discord.py wants translated. A context menu's name comes as a
    ``command_name`` whose data is the menu; its rules differ, so it has a context of its own."""
    if isinstance(context.data, app_commands.ContextMenu):
        return rules.CONTEXT_MENU_NAME
    return _CONTEXTS[context.location]


class WanTranslator(app_commands.Translator):
    """Translations from the catalogs; None (Discord shows the English) when there is none, or
    when the catalog's text would break Discord's rules (a rejected sync would drop every
    command, so English is synced for that one string and the mistake is logged)."""

    def __init__(self, catalogs: Catalogs | None = None) -> None:
        self.catalogs = catalogs if catalogs is not None else Catalogs()
        self._warned: set[tuple[str, str, str]] = set()

    async def load(self) -> None:
        await asyncio.to_thread(self.catalogs.load_all)  # file reads off the event loop
        await asyncio.to_thread(shared().load_all)  # the replies' catalogs (bot.i18n.replies)

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        msgctxt = catalog_context(context)
        translated = self.catalogs.lookup(locale.value, msgctxt, string.message)
        if translated is None or rules.valid_for(msgctxt, translated):
            return translated
        key = (locale.value, msgctxt, string.message)
        if key not in self._warned:
            self._warned.add(key)
            log.warning(
                "catalog %s: %r is not a valid %s for Discord; syncing the English %r",
                locale.value,
                translated,
                msgctxt,
                string.message,
            )
        return None


@dataclass
class Found:
    """One string of the command tree: its context, its English text, and where it is used."""

    context: str
    msgid: str
    used_by: list[str] = field(default_factory=list)


class _Recorder(app_commands.Translator):
    """Answers nothing and writes down every question, in the order discord.py asks them."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Found] = {}
        self._option = ""  # discord.py translates an option's choices right after the option

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        msgctxt = catalog_context(context)
        entry = self.found.setdefault((msgctxt, string.message), Found(msgctxt, string.message))
        place = _place(context.data)
        if isinstance(context.data, app_commands.Parameter):
            self._option = place
        elif context.location is Where.choice_name:
            place = self._option
        if place and place not in entry.used_by:
            entry.used_by.append(place)
        return None


def _place(data: Any) -> str:
    """Where a string is used, for the translator: ``/imagine``, ``/imagine resolution``."""
    if isinstance(data, app_commands.Parameter):
        return f"/{data.command.qualified_name} {data.name}"
    if isinstance(data, app_commands.Command | app_commands.Group):
        return f"/{data.qualified_name}"
    if isinstance(data, app_commands.ContextMenu):
        return f"message menu: {data.name}"
    return ""  # a choice: the recorder names the option it belongs to


async def collect(tree: app_commands.CommandTree[Any]) -> list[Found]:
    """Every translatable string of ``tree``'s commands, in a stable order: slash commands by
    name, then context menus by name; within one, in the order discord.py translates them."""
    recorder = _Recorder()
    for command in _sorted(tree.get_commands()):
        await command.get_translated_payload(tree, recorder)
    return list(recorder.found.values())


def _sorted(commands: Iterable[Any]) -> list[Any]:
    return sorted(commands, key=lambda c: (isinstance(c, app_commands.ContextMenu), c.name))
