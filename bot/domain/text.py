"""A text a member reads, as a value: its English source (the catalog's msgid) and its values.

Plain Python, no catalogs: the domain says *what* to tell a member (``t("Your prompt is {count}
characters…", count=n)``), the Discord edge renders it in the member's language
(``bot.i18n.replies.render``). ``english()`` is the text in English, for logs and for anything
that stores or compares it.

``t`` and ``tn`` are the keywords ``python -m bot.i18n.extract`` looks for: their first
arguments must be string literals, with named ``{placeholders}`` only. Values that are numbers
are formatted for the reader's locale (``5,000`` in English, ``5.000`` in German); a value that
is a ``Text`` is rendered too; any other value (a member's prompt, a name, a Discord timestamp)
is inserted verbatim, never translated.

``dump_text``/``load_text`` keep a Text as JSON, for a message that must outlive the process
(a failed job's, delivered after a restart).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

COUNT = "count"  # the value that picks the plural form of a ``tn`` text


@dataclass(frozen=True)
class Text:
    """A member-facing text: ``msgid`` (English, with ``{name}`` fields) and its values.

    ``plural`` is the English plural of a text that depends on ``values["count"]`` (gettext's
    ``msgid_plural``); None for a text with one form.
    """

    msgid: str
    values: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    plural: str | None = None

    def source(self) -> str:
        """The English source that applies to these values (singular or plural)."""
        if self.plural is None:
            return self.msgid
        return self.msgid if self.values.get(COUNT) == 1 else self.plural

    def english(self) -> str:
        """The text in English: today's wording, numbers with thousands separators."""
        values = {name: english_value(value) for name, value in self.values.items()}
        return self.source().format(**values)

    def __str__(self) -> str:
        return self.english()


def t(msgid: str, /, **values: object) -> Text:
    """A member-facing text with one form."""
    return Text(msgid, MappingProxyType(dict(values)))


def tn(singular: str, plural: str, /, *, count: int, **values: object) -> Text:
    """A member-facing text whose wording depends on ``count`` (also a ``{count}`` value)."""
    return Text(singular, MappingProxyType({COUNT: count, **values}), plural)


def listed(items: Sequence[Text | str]) -> Text | str:
    """``a, b, c``, one item at a time, so each language writes its own separator (``、``)."""
    if not items:
        return ""
    head: Text | str = items[0]
    for item in items[1:]:
        head = t("{list}, {item}", list=head, item=item)
    return head


def either(items: Sequence[Text | str]) -> Text | str:
    """``a``, ``a or b``, ``a, b or c``: the separators are texts too."""
    if len(items) <= 1:
        return items[0] if items else ""
    return t("{list} or {last}", list=listed(items[:-1]), last=items[-1])


def is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def english_value(value: object) -> str:
    """A value as the English text shows it: ``5,000``, ``1.5``, a nested text in English."""
    if isinstance(value, Text):
        return value.english()
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def dump_text(text: Text) -> str:
    """A Text as JSON (its msgid, plural and values; numbers stay numbers)."""
    return json.dumps(_plain(text), ensure_ascii=False)


def load_text(data: str) -> Text | None:
    """The Text ``dump_text`` wrote; None for anything else."""
    try:
        return _text(json.loads(data))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _plain(text: Text) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in text.values.items():
        if isinstance(value, Text):
            values[name] = _plain(value)
        elif isinstance(value, Decimal):
            values[name] = {"decimal": str(value)}
        elif isinstance(value, bool) or not isinstance(value, int | float):
            values[name] = str(value)
        else:
            values[name] = value
    return {"msgid": text.msgid, "plural": text.plural, "values": values}


def _text(data: dict[str, Any]) -> Text:
    values: dict[str, object] = {}
    for name, value in data["values"].items():
        if isinstance(value, dict) and "decimal" in value:
            values[name] = Decimal(value["decimal"])
        elif isinstance(value, dict):
            values[name] = _text(value)
        else:
            values[name] = value
    return Text(str(data["msgid"]), MappingProxyType(values), data.get("plural"))
