"""What a prompt looks like to a member: its edges trimmed of blanks and invisible characters.

Plain Python. ``bot.domain.validation`` re-exports these; a prompt is never translated or
otherwise rewritten inside.
"""

from __future__ import annotations

import unicodedata

# Characters that render as nothing. A prompt made only of these looks empty to the member and is
# empty to the model, so they are stripped from the edges along with whitespace.
_INVISIBLE = frozenset(
    "\u00ad\u180e"
    "\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069"
    "\ufeff"
)


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): they render as
# nothing. Some of them attach to the character before (U+FE0F makes a heart an emoji, tag
# characters make a flag), so they are not stripped from the edges; but a prompt made only of
# them (a lone Hangul filler is the classic "blank" Discord trick) is still empty.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _is_blank(ch: str) -> bool:
    return ch.isspace() or ch in _INVISIBLE or unicodedata.category(ch) == "Cc"


def _renders_nothing(ch: str) -> bool:
    cp = ord(ch)
    return _is_blank(ch) or any(lo <= cp <= hi for lo, hi in _IGNORABLE_RANGES)


def normalise_prompt(text: str) -> str:
    """Strip whitespace and invisible characters from both ends; the inside is left alone."""
    start, end = 0, len(text)
    while start < end and _is_blank(text[start]):
        start += 1
    while end > start and _is_blank(text[end - 1]):
        end -= 1
    return text[start:end]


def renders_nothing(text: str) -> bool:
    """True when ``text`` would look empty to a member and be empty to the model."""
    return all(_renders_nothing(ch) for ch in text)


def append_to_prompt(prompt: str, tail: str) -> str:
    """``tail`` (a style's text, a member's suffix) after the prompt: a comma between them unless
    the prompt already ends a clause."""
    head = normalise_prompt(prompt)
    joiner = " " if head.endswith((".", ",", ";", ":", "!", "?")) else ", "
    return f"{head}{joiner}{tail}"
