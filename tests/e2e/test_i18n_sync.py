"""Localized commands through the fake Discord: the synced payload carries the catalogs'
translations, and a catalog change alone re-syncs the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bot.i18n.catalogs as catalogs_module
from bot.i18n.catalogs import Catalogs
from tests.unit.test_i18n import entry, write_po
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)


def options_of(command: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in command["options"]}


async def test_imagine_is_synced_with_the_catalogs_translations(wan: WanWorld) -> None:
    real = Catalogs()
    for locale in ("de", "ja"):
        path = real.path(locale)
        assert path is not None and path.is_file(), f"no catalog for {locale}"
    async with wan.fake.running(wan.bot()):
        imagine = wan.fake.find_command("imagine")
    for locale in ("de", "ja"):
        assert imagine["name_localizations"][locale] == real.lookup(
            locale, "command name", "imagine"
        )
        assert imagine["description_localizations"][locale] == real.lookup(
            locale, "command description", imagine["description"]
        )
        prompt = options_of(imagine)["prompt"]
        assert prompt["name_localizations"][locale] == real.lookup(locale, "option name", "prompt")
        assert prompt["description_localizations"][locale] == real.lookup(
            locale, "option description", prompt["description"]
        )
        resolution = options_of(imagine)["resolution"]
        choices = {c["name"]: c for c in resolution["choices"]}
        assert choices["4K"]["name_localizations"][locale] == real.lookup(locale, "choice", "4K")
    assert "en-US" not in imagine["name_localizations"]  # English is the command's own name
    menu = wan.fake.find_command("Edit with Wan", type=3)
    menu_de = real.lookup("de", "context menu name", "Edit with Wan")
    assert menu["name_localizations"]["de"] == menu_de


async def test_a_catalog_change_alone_resyncs_the_commands(
    wan: WanWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locales = tmp_path / "locales"
    monkeypatch.setattr(catalogs_module, "LOCALE_DIR", locales)
    write_po(locales, "de", entry("command name", "imagine", "bild"))
    async with wan.fake.running(wan.bot()):
        assert wan.fake.find_command("imagine")["name_localizations"] == {"de": "bild"}
    async with wan.fake.running(wan.bot()):
        pass
    assert wan.fake.command_syncs == 1  # same code, same catalogs: no sync
    write_po(locales, "de", entry("command name", "imagine", "bilder"))
    async with wan.fake.running(wan.bot()):
        assert wan.fake.find_command("imagine")["name_localizations"] == {"de": "bilder"}
    assert wan.fake.command_syncs == 2
