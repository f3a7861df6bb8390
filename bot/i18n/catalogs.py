"""The translators' catalogs: one gettext ``.po`` per language, read with babel once, lazily.

A lookup is ``(Discord locale, context, English source) -> translation or None``. A translation
that is missing, empty or marked fuzzy is None: the caller shows the English source (the
msgid), never a key. A catalog that is missing or cannot be read counts as empty (logged once).
"""

from __future__ import annotations

import gettext
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import PoFileError, read_po

log = logging.getLogger(__name__)

DOMAIN = "wanbot"
SOURCE_LOCALE = "en-US"  # the msgids: what the code says, synced as the default

# Discord locale code -> the catalog's folder under locales/. To add a language, add it here and
# create locales/<folder>/LC_MESSAGES/wanbot.po (docs/translating.md).
LOCALES: Mapping[str, str] = {
    "de": "de",
    "es-ES": "es_ES",
    "fr": "fr",
    "ja": "ja",
    "ko": "ko",
    "pt-BR": "pt_BR",
    "zh-CN": "zh_CN",
}

LOCALE_DIR = Path(__file__).resolve().with_name("locales")


def folder_for(locale: str) -> str | None:
    """The catalog folder of a Discord locale code (``"pt-BR"`` -> ``"pt_BR"``), or None."""
    return LOCALES.get(locale)


def locale_for(folder: str) -> str | None:
    """The Discord locale code of a catalog folder (``"pt_BR"`` -> ``"pt-BR"``), or None."""
    return next((code for code, name in LOCALES.items() if name == folder), None)


class Catalogs:
    """Every language's catalog under ``directory`` (``LOCALE_DIR`` unless a test gives one)."""

    def __init__(
        self, directory: Path | None = None, locales: Mapping[str, str] | None = None
    ) -> None:
        self.directory = directory if directory is not None else LOCALE_DIR
        self.locales: Mapping[str, str] = LOCALES if locales is None else locales
        self._loaded: dict[str, Catalog | None] = {}
        self._lock = threading.Lock()  # load_all runs in a thread; lookups on the event loop

    @property
    def template_path(self) -> Path:
        return self.directory / f"{DOMAIN}.pot"

    def path(self, locale: str) -> Path | None:
        folder = self.locales.get(locale)
        if folder is None:
            return None
        return self.directory / folder / "LC_MESSAGES" / f"{DOMAIN}.po"

    def catalog(self, locale: str) -> Catalog | None:
        """The locale's catalog, read on first use; None for an unknown locale or a missing file."""
        if locale in self._loaded:
            return self._loaded[locale]
        with self._lock:
            if locale not in self._loaded:
                self._loaded[locale] = self._read(locale)
            return self._loaded[locale]

    def load_all(self) -> None:
        """Read every catalog now (blocking file reads: call it in a thread)."""
        for locale in self.locales:
            self.catalog(locale)

    def lookup(self, locale: str, context: str, msgid: str) -> str | None:
        """The translation of ``msgid`` in ``context``, or None (English applies)."""
        catalog = self.catalog(locale)
        if catalog is None:
            return None
        message = catalog.get(msgid, context=context)
        if message is None or message.fuzzy or not isinstance(message.string, str):
            return None
        return message.string or None

    def plural(self, locale: str, context: str, msgid: str, count: int) -> str | None:
        """The form of a plural entry (``msgid`` is its singular) that ``count`` takes in the
        locale's plural rule (the catalog's Plural-Forms), or None (English applies)."""
        catalog = self.catalog(locale)
        if catalog is None:
            return None
        message = catalog.get(msgid, context=context)
        if message is None or message.fuzzy or not isinstance(message.string, tuple | list):
            return None
        forms = [str(form) for form in message.string]
        if len(forms) != catalog.num_plurals or not all(forms):
            return None
        try:
            index = gettext.c2py(catalog.plural_expr)(count)
        except (ValueError, SyntaxError):
            log.warning("catalog %s: unusable Plural-Forms %r", locale, catalog.plural_expr)
            return None
        return forms[index] if 0 <= index < len(forms) else None

    def text(self, locale: str, context: str, msgid: str, **values: Any) -> str:
        """The text to show: the translation, else the English source; ``{name}`` fields filled
        when ``values`` are given.

        A translation whose fields do not match the source's (a catalog mistake the tests
        catch) falls back to the English text rather than failing the reply.
        """
        translated = self.lookup(locale, context, msgid)
        if not values:
            return msgid if translated is None else translated
        return fill(translated, msgid, values, where=f"catalog {locale} ({context})")

    def _read(self, locale: str) -> Catalog | None:
        path = self.path(locale)
        if path is None:
            return None
        try:
            with path.open("rb") as file:
                return read_po(file, locale=self.locales[locale], domain=DOMAIN)
        except FileNotFoundError:
            log.warning("no catalog for %s at %s: commands stay in English there", locale, path)
        except (OSError, ValueError, LookupError, PoFileError) as exc:  # babel <2.15: IndexError
            log.error("catalog %s cannot be read (%s): commands stay in English there", path, exc)
        return None


def fill(translated: str | None, source: str, values: Mapping[str, Any], *, where: str) -> str:
    """``translated`` with its ``{name}`` fields filled; the English ``source`` when there is no
    translation, or when its fields do not match (a catalog mistake the tests catch: the reply
    still goes out, in English)."""
    if translated is not None:
        try:
            return translated.format(**values)
        except (KeyError, IndexError, ValueError):
            log.warning("%s: bad placeholders in %r", where, source)
    return source.format(**values)


_shared: Catalogs | None = None


def shared() -> Catalogs:
    """The bot's one set of catalogs (``LOCALE_DIR``): the command translator preloads it, the
    replies read it."""
    global _shared  # noqa: PLW0603 - one lazily made instance per process
    if _shared is None or _shared.directory != LOCALE_DIR:  # tests point LOCALE_DIR elsewhere
        _shared = Catalogs()
    return _shared
