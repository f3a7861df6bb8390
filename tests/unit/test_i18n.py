"""The catalogs (bot/i18n): the template matches the code (commands and replies), every language
translates all of it within Discord's rules, and whatever is missing falls back to English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.domain.text import t, tn
from bot.i18n import rules
from bot.i18n.catalogs import LOCALES, Catalogs, folder_for, locale_for
from bot.i18n.extract import (
    build_tree,
    keys,
    read,
    replies,
    template,
    update_catalogs,
    write_template,
)
from bot.i18n.replies import render
from bot.i18n.translator import WanTranslator, catalog_context, collect

REAL = Catalogs()

PO_HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


def entry(context: str, msgid: str, msgstr: str, *, fuzzy: bool = False) -> str:
    flag = "#, fuzzy\n" if fuzzy else ""
    return f'{flag}msgctxt "{context}"\nmsgid "{msgid}"\nmsgstr "{msgstr}"\n\n'


def write_po(directory: Path, folder: str, *entries: str) -> Path:
    path = directory / folder / "LC_MESSAGES" / "wanbot.po"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PO_HEADER + "".join(entries), encoding="utf-8")
    return path


@pytest.fixture
def small(tmp_path: Path) -> Catalogs:
    """A German catalog with one good translation, one empty, one fuzzy, one bad name."""
    write_po(
        tmp_path,
        "de",
        entry("command name", "imagine", "bild"),
        entry("command description", "Make pictures from a text prompt", ""),
        entry("option name", "prompt", "eingabe", fuzzy=True),
        entry("option name", "count", "Anzahl Bilder"),
        entry("option description", "How many pictures (1-4)", "Wie viele Bilder (1-4)"),
        entry("choice", "1K", "1K-Bild"),
    )
    return Catalogs(tmp_path)


# --- the catalogs and the translator ------------------------------------------------------------


def test_lookup_finds_a_translation_and_falls_back_to_english(small: Catalogs) -> None:
    assert small.lookup("de", "command name", "imagine") == "bild"
    assert small.lookup("de", "choice", "imagine") is None  # another context
    assert small.lookup("de", "command description", "Make pictures from a text prompt") is None
    assert small.lookup("de", "option name", "prompt") is None  # fuzzy: not yet checked
    assert small.lookup("de", "option name", "seed") is None  # missing
    assert small.lookup("ja", "command name", "imagine") is None  # no ja catalog here
    assert small.lookup("xx", "command name", "imagine") is None  # not a locale of ours
    assert small.text("de", "option name", "prompt") == "prompt"  # English, never a key
    assert small.text("de", "command name", "imagine") == "bild"


def test_text_fills_placeholders_and_survives_a_broken_translation(tmp_path: Path) -> None:
    write_po(
        tmp_path,
        "fr",
        entry("reply", "Hello {name}", "Bonjour {name}"),
        entry("reply", "Bye {name}", "Au revoir {nom}"),
    )
    catalogs = Catalogs(tmp_path)
    assert catalogs.text("fr", "reply", "Hello {name}", name="Ada") == "Bonjour Ada"
    assert catalogs.text("fr", "reply", "Bye {name}", name="Ada") == "Bye Ada"
    assert catalogs.text("de", "reply", "Hello {name}", name="Ada") == "Hello Ada"


def test_a_catalog_is_read_once_and_a_broken_one_counts_as_empty(tmp_path: Path) -> None:
    path = write_po(tmp_path, "ko", entry("command name", "imagine", "그림"))
    catalogs = Catalogs(tmp_path)
    catalogs.load_all()
    path.unlink()
    assert catalogs.lookup("ko", "command name", "imagine") == "그림"  # cached
    write_po(tmp_path, "ja", 'msgid "unterminated\n')
    assert Catalogs(tmp_path).lookup("ja", "command name", "imagine") is None


def test_locale_codes_and_folders_map_both_ways() -> None:
    assert set(LOCALES) == {"de", "es-ES", "fr", "ja", "ko", "pt-BR", "zh-CN"}
    for code in LOCALES:
        assert discord.Locale(code).value == code  # a real Discord locale
        folder = folder_for(code)
        assert folder is not None
        assert locale_for(folder) == code
    assert folder_for("en-US") is None
    assert locale_for("xx") is None


def context_of(location: app_commands.TranslationContextLocation, data: Any) -> Any:
    return app_commands.TranslationContext(location, data)


async def test_the_translator_answers_from_the_catalog_or_none(small: Catalogs) -> None:
    translator = WanTranslator(small)
    await translator.load()
    where = app_commands.TranslationContextLocation
    name = context_of(where.command_name, None)
    de, ja = discord.Locale.german, discord.Locale.japanese
    assert await translator.translate(app_commands.locale_str("imagine"), de, name) == "bild"
    assert await translator.translate(app_commands.locale_str("imagine"), ja, name) is None
    seed = context_of(where.parameter_name, None)
    assert await translator.translate(app_commands.locale_str("seed"), de, seed) is None
    # "Anzahl Bilder" has a space and a capital: Discord would refuse the whole sync.
    count = app_commands.locale_str("count")
    assert await translator.translate(count, de, seed) is None
    described = context_of(where.parameter_description, None)
    text = app_commands.locale_str("How many pictures (1-4)")
    assert await translator.translate(text, de, described) == "Wie viele Bilder (1-4)"
    us = discord.Locale.american_english
    assert await translator.translate(app_commands.locale_str("imagine"), us, name) is None


async def test_the_bots_payload_carries_the_translations(small: Catalogs) -> None:
    tree = await build_tree()
    await tree.set_translator(WanTranslator(small))
    imagine = tree.get_command("imagine")
    assert imagine is not None and tree.translator is not None
    payload = await imagine.get_translated_payload(tree, tree.translator)
    assert payload["name"] == "imagine"
    assert payload["name_localizations"] == {"de": "bild"}
    assert payload["description_localizations"] == {}  # empty translation: English
    options = {o["name"]: o for o in payload["options"]}
    assert "name_localizations" not in options["count"]  # the invalid name is left out
    assert options["count"]["description_localizations"] == {"de": "Wie viele Bilder (1-4)"}
    choices = {c["name"]: c for c in options["resolution"]["choices"]}
    assert choices["1K"]["name_localizations"] == {"de": "1K-Bild"}


# --- Discord's rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("imagine", True),
        ("bild-erstellen", True),
        ("seitenverhältnis", True),
        ("画像", True),
        ("이미지", True),
        ("चित्र", True),  # Devanagari vowel signs are marks, allowed by script
        ("ภาพ", True),
        ("aspect_ratio", True),
        ("Bild", False),
        ("two words", False),
        ("emoji🙂", False),
        ("a.b", False),
        ("", False),
        ("x" * 32, True),
        ("x" * 33, False),
    ],
)
def test_name_rule(name: str, valid: bool) -> None:
    assert rules.valid_name(name) is valid


def test_text_and_menu_rules() -> None:
    assert rules.valid_text("x" * 100) and not rules.valid_text("x" * 101)
    assert not rules.valid_text("")
    assert rules.valid_menu_name("Mit Wan bearbeiten")
    assert not rules.valid_menu_name("x" * 33)
    assert rules.valid_for("option name", "anzahl") and not rules.valid_for("option name", "An")
    assert rules.valid_for("context menu name", "Mit Wan bearbeiten")


def test_placeholders() -> None:
    assert rules.placeholders("Hello {name}, {count} left") == ["count", "name"]
    assert rules.placeholders("{{literal}} braces") == []
    assert rules.placeholders("a {broken") == ["<malformed>"]
    assert rules.placeholders("no fields") == []


# --- the template and the real catalogs --------------------------------------------------------


async def test_the_template_is_up_to_date_with_the_command_tree() -> None:
    """A command string or a reply (``t("…")``) added or changed in the code without
    re-extracting fails here."""
    found = await collect(await build_tree())
    said = replies()
    assert len(said) >= 40  # validation, quota refusals, /wan help
    in_code = set(keys(template(found, said)))
    in_pot = set(keys(read(REAL.template_path)))
    assert in_code == in_pot, (
        "bot/i18n/locales/wanbot.pot is stale: run `python -m bot.i18n.extract --update`\n"
        f"missing: {sorted(in_code - in_pot, key=str)}\n"
        f"removed: {sorted(in_pot - in_code, key=str)}"
    )
    assert all(context in rules.CONTEXTS for context, _ in in_code)


def real_catalog(locale: str) -> Any:
    path = REAL.path(locale)
    assert path is not None and path.is_file(), f"no catalog for {locale} at {path}"
    return read(path)


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_every_catalog_translates_every_template_entry(locale: str) -> None:
    po = real_catalog(locale)
    problems = []
    for context, msgid in keys(read(REAL.template_path)):
        message = po.get(msgid, context=context)
        if message is None:
            problems.append(f"missing: {context} / {msgid!r}")
        elif message.fuzzy or not all(forms(message.string)):
            problems.append(f"{'fuzzy' if message.fuzzy else 'empty'}: {context} / {msgid!r}")
    assert problems == [], f"{locale}:\n" + "\n".join(problems)


def forms(string: Any) -> list[str]:
    """The translation's forms: one, or one per plural form of a plural entry."""
    return [str(f) for f in string] if isinstance(string, tuple | list) else [str(string or "")]


def translations(locale: str) -> Iterator[tuple[str, str, str]]:
    """(context, msgid, msgstr) of every translated, non-fuzzy entry of the real catalog; a
    plural entry gives each form (with its English singular as msgid)."""
    for message in real_catalog(locale):
        if not (message.id and message.context and not message.fuzzy):
            continue
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        for form in forms(message.string):
            if form:
                yield message.context, str(msgid), form


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_translations_keep_the_placeholders_and_discords_rules(locale: str) -> None:
    problems = []
    for context, msgid, msgstr in translations(locale):
        if rules.placeholders(msgstr) != rules.placeholders(msgid):
            problems.append(f"placeholders differ: {msgid!r} -> {msgstr!r}")
        if context in rules.CONTEXTS and not rules.valid_for(context, msgstr):
            problems.append(f"not a valid {context} for Discord: {msgid!r} -> {msgstr!r}")
    assert problems == [], f"{locale}:\n" + "\n".join(problems)


class _Unchecked(WanTranslator):
    """The catalog's text as it is, so the tests see what the bot's safety net would hide."""

    async def translate(self, string: Any, locale: discord.Locale, context: Any) -> str | None:
        return self.catalogs.lookup(locale.value, catalog_context(context), string.message)


def clashes(options: list[dict[str, Any]], locale: str, where: str) -> list[str]:
    """Names that two options (or subcommands) of one command share once translated."""
    names = [o.get("name_localizations", {}).get(locale, o["name"]) for o in options]
    found = [f"{where}: {n!r} twice" for n in sorted(set(names)) if names.count(n) > 1]
    for option in options:
        if option.get("type") in (1, 2):  # subcommands and groups: their own options
            found += clashes(option.get("options", []), locale, f"{where} {option['name']}")
    return found


@pytest.mark.parametrize("locale", sorted(LOCALES))
async def test_translated_names_stay_distinct(locale: str) -> None:
    real_catalog(locale)
    tree = await build_tree()
    translator = _Unchecked()
    payloads = [await c.get_translated_payload(tree, translator) for c in tree.get_commands()]
    slash = [p for p in payloads if p.get("type", 1) == 1]
    problems = clashes(slash, locale, "top-level commands")
    for command in slash:
        problems += clashes(command.get("options", []), locale, f"/{command['name']}")
    assert problems == [], f"{locale}:\n" + "\n".join(problems)


# --- the extractor ------------------------------------------------------------------------------


async def test_extractor_writes_once_and_update_merges_new_and_removed(tmp_path: Path) -> None:
    found = await collect(await build_tree())
    pot = tmp_path / "wanbot.pot"
    assert write_template(found, pot)
    first = pot.read_bytes()
    assert not write_template(found, pot)  # unchanged: not rewritten, same date
    assert pot.read_bytes() == first
    po = write_po(
        tmp_path,
        "de",
        entry("command name", "imagine", "bild"),
        entry("command name", "gone-command", "weg"),
    )
    catalogs = Catalogs(tmp_path)
    assert update_catalogs(read(pot), catalogs) == [po]  # only de exists here
    merged = read(po)
    assert merged.get("imagine", context="command name").string == "bild"
    assert merged.get("gone-command", context="command name") is None
    assert [m.id for m in merged.obsolete.values()] == ["gone-command"]  # kept as #~
    assert set(keys(merged)) == set(keys(read(pot)))
    assert Catalogs(tmp_path).lookup("de", "command name", "imagine") == "bild"


# --- replies: what the bot tells a member ------------------------------------------------------


def test_the_extractor_finds_every_t_and_tn_call(tmp_path: Path) -> None:
    """A ``t("…")`` added to the code is a template entry: without a catalog entry for it the
    template test above fails."""
    source = tmp_path / "bot" / "feature.py"
    source.parent.mkdir()
    source.write_text(
        "from bot.domain.text import t, tn\n"
        'A = t("A brand-new reply for {name}", name="x")\n'
        'B = tn("{count} new thing", "{count} new things", count=2)\n'
        "C = t(name)  # not a literal: not a catalog entry\n",
        encoding="utf-8",
    )
    (tmp_path / "cogs").mkdir()
    found = {r.msgid: r for r in replies(tmp_path)}
    assert set(found) == {"A brand-new reply for {name}", "{count} new thing"}
    assert found["{count} new thing"].plural == "{count} new things"
    assert found["A brand-new reply for {name}"].used_by == ["bot/feature.py"]
    new_keys = set(keys(template([], list(found.values()))))
    assert ("reply", "A brand-new reply for {name}") in new_keys
    assert not new_keys & set(keys(read(REAL.template_path)))  # so the template test would fail


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_plural_entries_have_the_languages_number_of_forms(locale: str) -> None:
    po = real_catalog(locale)
    plural = [m for m in po if m.id and isinstance(m.id, tuple)]
    assert plural, "the member queue refusal is a plural entry"
    for message in plural:
        assert len(forms(message.string)) == po.num_plurals, (locale, message.id)
    assert po.num_plurals == (1 if locale in ("ja", "ko", "zh-CN") else 2)


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_every_reply_is_translated_and_names_the_localized_commands(locale: str) -> None:
    """Replies that mention a slash command use the name the member's client shows."""
    said = {r.msgid for r in replies()}
    replied = {msgid: text for context, msgid, text in translations(locale) if context == "reply"}
    assert said <= set(replied), sorted(said - set(replied))
    names = {
        REAL.lookup(locale, "command name", str(m.id)) or str(m.id)
        for m in read(REAL.template_path)
        if m.context == "command name"
    }
    problems = []
    for text in replied.values():
        for mentioned in re.findall(r"(?:^|[\s*(（])/([^\s*`.,;:)（）。，；：、]+)", text):
            if mentioned not in names:
                problems.append(f"/{mentioned} in {text!r}")
    assert problems == [], f"{locale}:\n" + "\n".join(problems)


def test_a_reply_renders_in_the_members_language_with_its_numbers() -> None:
    text = t(
        "Your prompt is {length} characters; the limit is {limit}. Shorten it and try again.",
        length=5001,
        limit=5000,
    )
    english = "Your prompt is 5,001 characters; the limit is 5,000. Shorten it and try again."
    assert text.english() == english
    assert render(text, "de") == (
        "Dein Prompt hat 5.001 Zeichen; erlaubt sind 5.000. Kürze ihn und versuch es noch einmal."
    )
    assert re.search(r"5\s001", render(text, "fr"))  # French groups with a (narrow) nbsp
    assert "5,001" in render(text, "ja") and render(text, "ja") != english
    for no_catalog in ("en-US", "en-GB", "it", None):
        assert render(text, no_catalog) == english
    assert render("plain text, not yet a Text", "de") == "plain text, not yet a Text"


def test_plural_forms_follow_the_language() -> None:
    def queue(count: int) -> Any:
        return tn(
            "You already have {count} image waiting in line, the most one member may have. "
            "Wait for it to start, then try again; nothing was charged.",
            "You already have {count} images waiting in line, the most one member may have. "
            "Wait for one of them to start, then try again; nothing was charged.",
            count=count,
        )

    assert queue(1).english().startswith("You already have 1 image waiting")
    assert queue(3).english().startswith("You already have 3 images waiting")
    assert render(queue(1), "de").startswith("Du hast schon 1 Bild in der")
    assert render(queue(3), "de").startswith("Du hast schon 3 Bilder in der")
    assert render(queue(1), "ja").startswith("すでに1枚の画像")  # one form for every number
    assert render(queue(3), "ja").startswith("すでに3枚の画像")
    assert render(queue(1200), "de").startswith("Du hast schon 1.200 Bilder")


def test_a_missing_or_broken_reply_falls_back_to_english(tmp_path: Path) -> None:
    write_po(
        tmp_path,
        "de",
        entry("reply", "Hello {name}", "Hallo {nom}"),
        entry("reply", "Bye {name}", "Tschüss {name}", fuzzy=True),
        entry("reply", "{count} left", "noch {count}"),
    )
    catalogs = Catalogs(tmp_path)
    assert render(t("Hello {name}", name="Ada"), "de", catalogs) == "Hello Ada"  # bad field
    assert render(t("Bye {name}", name="Ada"), "de", catalogs) == "Bye Ada"  # fuzzy
    assert render(t("Unknown {name}", name="Ada"), "de", catalogs) == "Unknown Ada"  # missing
    assert render(t("{count} left", count=2500), "de", catalogs) == "noch 2.500"
    plural = tn("{count} file", "{count} files", count=2)
    assert render(plural, "de", catalogs) == "2 files"  # no plural entry: English plural


def test_values_are_never_translated_but_nested_texts_are() -> None:
    prompt = "edits"  # a member's value that happens to be a catalog msgid
    text = t(
        "Thinking mode only works for text-to-image, not for {mode}. Turn it off and try again.",
        mode=prompt,
    )
    assert "edits" in render(text, "de")
    nested = t(
        "Thinking mode only works for text-to-image, not for {mode}. Turn it off and try again.",
        mode=t("edits"),
    )
    assert "Bearbeitungen" in render(nested, "de")
    assert nested.english() == text.english()


def test_reply_rule() -> None:
    assert rules.valid_for("reply", "x" * 2000) and not rules.valid_for("reply", "x" * 2001)
    assert not rules.valid_for("reply", "")
    assert "reply" in rules.CONTEXTS
