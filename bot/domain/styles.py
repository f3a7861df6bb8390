"""Server styles: named texts a server's admins define, which members add to their prompts.

The rules for a style's name and text live here; the text is checked like a prompt (it becomes
part of one), and the prompt plus the style must still fit the prompt limit
(``validation._check_style``).
"""

from __future__ import annotations

import re

from bot.domain.models import Style
from bot.domain.text import t
from bot.domain.validation import normalise_prompt, renders_nothing
from bot.errors import InvalidInput

__all__ = [
    "MAX_STYLES",
    "MAX_STYLE_CHARS",
    "MAX_STYLE_NAME_CHARS",
    "make_style",
    "style_name",
    "style_text",
]

MAX_STYLES = 25  # per server: Discord shows at most 25 autocomplete choices
MAX_STYLE_NAME_CHARS = 32
MAX_STYLE_CHARS = 1000  # leaves most of the prompt limit (5,000) to the member's own words

# Letters and digits of any script, with spaces, hyphens and underscores between them.
_NAME_RE = re.compile(r"\w(?:[\w -]*\w)?")


def style_name(raw: str) -> str:
    """A style's name as members pick it: trimmed, single-spaced, lower case. Names are compared
    in this form, so "Watercolor" and "watercolor " are the same style."""
    name = " ".join(raw.split()).lower()
    if not name or len(name) > MAX_STYLE_NAME_CHARS or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            t(
                "A style name is 1 to {most} letters or digits, with spaces, hyphens or "
                "underscores between them, e.g. `watercolor` or `film-noir`.",
                most=MAX_STYLE_NAME_CHARS,
            )
        )
    return name


def style_text(raw: str) -> str:
    """A style's text, checked like a prompt and stored as it will be sent."""
    text = normalise_prompt(raw)
    if renders_nothing(text):
        raise InvalidInput(
            t(
                "The style text is empty. Describe the look it adds to prompts, e.g. "
                "`watercolor, soft pastel colors, visible paper texture`."
            )
        )
    if len(text) > MAX_STYLE_CHARS:
        raise InvalidInput(
            t(
                "The style text is {length} characters; the limit is {limit}. "
                "Shorten it and try again.",
                length=len(text),
                limit=MAX_STYLE_CHARS,
            )
        )
    return text


def make_style(name: str, text: str) -> Style:
    """A style from what an admin typed; ``InvalidInput`` says what to change."""
    return Style(style_name(name), style_text(text))
