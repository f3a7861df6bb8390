"""A member-facing ``Text`` (bot.domain.text) in a member's language: the catalog's "reply"
entries, numbers and plural forms by Babel's data for that locale, English when there is none.

A value that is not a number or a ``Text`` (a prompt, a name, a Discord timestamp) is inserted
as it is: prompts are never translated.
"""

from __future__ import annotations

from babel.numbers import format_decimal

from bot.domain.text import Text, english_value, is_number
from bot.i18n import rules
from bot.i18n.catalogs import Catalogs, fill, shared

FRACTION = "#,##0.##"  # credits and other non-whole numbers: at most two decimals, as in English


def render(message: Text | str, locale: str | None, catalogs: Catalogs | None = None) -> str:
    """``message`` for a reader whose Discord locale is ``locale`` (``"de"``, ``"pt-BR"``); a
    locale without a catalog (or None) reads English. A plain string is not translated yet."""
    if isinstance(message, str):
        return message
    catalogs = catalogs if catalogs is not None else shared()
    folder = catalogs.locales.get(locale) if locale is not None else None
    if locale is None or folder is None:
        return message.english()
    values = {name: _value(v, locale, folder, catalogs) for name, v in message.values.items()}
    translated = _lookup(message, locale, catalogs)
    return fill(translated, message.source(), values, where=f"catalog {locale} (reply)")


def _lookup(message: Text, locale: str, catalogs: Catalogs) -> str | None:
    if message.plural is None:
        return catalogs.lookup(locale, rules.REPLY, message.msgid)
    count = message.values.get("count")
    if not isinstance(count, int):
        return None
    return catalogs.plural(locale, rules.REPLY, message.msgid, count)


def _value(value: object, locale: str, folder: str, catalogs: Catalogs) -> str:
    if isinstance(value, Text):
        return render(value, locale, catalogs)
    if not is_number(value):
        return english_value(value)
    if isinstance(value, int):
        return format_decimal(value, locale=folder)
    return format_decimal(value, format=FRACTION, locale=folder)  # type: ignore[arg-type]
