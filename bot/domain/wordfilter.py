"""Blocked words: matched whole-word and case-insensitively on a normalised copy of the prompt.

The usual tricks (zero-width characters, look-alike letters, accents, "b a d", "b@d", "baaad")
do not get around them: the prompt and each blocked word are brought to one canonical form, and
the prompt also in a few variants (spaced-out letters joined, long runs of one letter shortened).
Pure: plain Python and the standard library.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from bot.domain.text import t
from bot.errors import InvalidInput

__all__ = [
    "MAX_WORD_CHARS",
    "check_word",
    "normalise_text",
    "split_words",
    "word_key",
    "words_blocked",
]

MAX_WORD_CHARS = 64

# Letters that look like Latin ones (after casefolding): Cyrillic and Greek.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "і": "i", "ї": "i", "ј": "j", "к": "k",
        "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s",
        "ԁ": "d", "ӏ": "l", "ɑ": "a", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k",
        "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    }
)  # fmt: skip

# Leetspeak and look-alikes, folded into one letter on both sides (prompt and blocked word).
# "l" and "i" share one form because "1" and "|" stand for either.
_LEET = str.maketrans("4@8391!|l05$7+2", "aabegiiiiossttz")
_MIN_LEET_TOKEN = 3  # "4k", "3d", "2x" stay as written: prompts are full of them
# A token: letters and digits, with leetspeak symbols inside ("sh!t") or at the edges ("@ss"),
# or a run of the symbols that stand for letters ("@$$").
_TOKEN = re.compile(r"[@$]*[^\W_]+(?:[@$!|+]+[^\W_]+)*[@$]*|[@$]{3,}")
_RUN3 = re.compile(r"(\S)\1{2,}")  # "baaad"
# Accents and other combining marks, zero-width and formatting characters, control characters.
_DROPPED = frozenset({"Mn", "Me", "Cf", "Cc"})


def words_blocked(words: tuple[str, ...], prompt: str) -> bool:
    """True when the prompt contains one of ``words`` (in any spelling the filter folds)."""
    if not words:
        return False
    keys = _word_keys(words)
    return any(key in form for form in _variants(prompt) for key in keys)


def normalise_text(text: str) -> str:
    """The form prompts and blocked words are compared in: compatibility characters folded
    (fullwidth, ligatures), case folded, accents and invisible characters removed, look-alike
    letters mapped to Latin, underscores as spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if ch in "\n\r\t" or unicodedata.category(ch) not in _DROPPED)
    text = unicodedata.normalize("NFKC", text).casefold().translate(_CONFUSABLES)
    return text.replace("_", " ")


def _tokens(text: str) -> list[str]:
    return [
        t.translate(_LEET) if len(t) >= _MIN_LEET_TOKEN else t
        for t in _TOKEN.findall(normalise_text(text))
    ]


def _variants(prompt: str) -> list[str]:
    """The prompt's words in canonical form, space-separated and padded, plus versions with
    spaced-out letters joined ("b a d") and long runs of one letter shortened to one and to two
    ("baaad" -> "bad", "asssss" -> "ass")."""
    tokens = _tokens(prompt)
    forms = [f" {' '.join(tokens)} "]
    joined: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        if len(run) >= _MIN_LEET_TOKEN:
            joined.append("".join(run).translate(_LEET))
        else:
            joined.extend(run)
        run = []
        if token:
            joined.append(token)
    if joined != tokens:
        forms.append(f" {' '.join(joined)} ")
    for form in list(forms):
        if _RUN3.search(form):
            forms.append(_RUN3.sub(r"\1", form))
            forms.append(_RUN3.sub(r"\1\1", form))
    return forms


def _is_unspaced_script(ch: str) -> bool:
    """Scripts written without spaces between words: a blocked word there matches anywhere."""
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER"))


def word_key(word: str) -> str | None:
    """What ``word`` looks like in ``_variants``: canonical, padded to match whole words only
    (except in scripts without spaces). Two spellings of one word have the same key."""
    key = _RUN3.sub(r"\1\1", " ".join(_tokens(word)))
    if not key:
        return None
    if any(_is_unspaced_script(ch) for ch in key):
        return key
    return f" {key} "


@functools.lru_cache(maxsize=256)
def _word_keys(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in (word_key(w) for w in words) if k)


# --- an admin's input -----------------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """Words and phrases from an admin's input: separated by commas or new lines."""
    return [" ".join(w.split()) for w in re.split(r"[,\n]", text) if w.strip()]


def check_word(word: str) -> str:
    """The word as stored (spacing tidied), or ``InvalidInput``."""
    tidy = " ".join(word.split())
    if len(tidy) > MAX_WORD_CHARS:
        raise InvalidInput(
            t(
                "A blocked word or phrase can have at most {limit} characters. "
                "Use a blocked pattern for longer rules.",
                limit=MAX_WORD_CHARS,
            )
        )
    if word_key(tidy) is None:
        raise InvalidInput(
            t(
                "A blocked word needs at least one letter or digit. Separate several words "
                "with commas."
            )
        )
    return tidy
