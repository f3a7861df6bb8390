"""What Discord accepts as a localized name or text, and the placeholders a text carries.

Plain Python (no I/O): the translator refuses a translation that breaks a rule (English is
synced instead of a payload Discord would reject), and the tests hold every catalog to them.
"""

from __future__ import annotations

import string
import unicodedata

NAME_MAX = 32  # command, group, subcommand and option names; context menu names
TEXT_MAX = 100  # descriptions and choice names
REPLY_MAX = 2000  # a message's content; a reply is at most one message

# The catalog contexts (msgctxt). Names and texts of the command tree; replies get their own.
COMMAND_NAME = "command name"
COMMAND_DESCRIPTION = "command description"
OPTION_NAME = "option name"
OPTION_DESCRIPTION = "option description"
CHOICE = "choice"
CONTEXT_MENU_NAME = "context menu name"
REPLY = "reply"  # what the bot tells a member: errors, refusals, help (bot.domain.text)
CONTEXTS = (
    COMMAND_NAME,
    COMMAND_DESCRIPTION,
    OPTION_NAME,
    OPTION_DESCRIPTION,
    CHOICE,
    CONTEXT_MENU_NAME,
    REPLY,
)
NAME_CONTEXTS = (COMMAND_NAME, OPTION_NAME)

# For translators, written above each entry of the template.
HINTS = {
    COMMAND_NAME: "Typed after /: 1-32 characters, lower case, letters, digits, - and _ only.",
    OPTION_NAME: "An option's name: 1-32 characters, lower case, letters, digits, - and _ only.",
    COMMAND_DESCRIPTION: "At most 100 characters.",
    OPTION_DESCRIPTION: "At most 100 characters.",
    CHOICE: "A value offered in a list: at most 100 characters.",
    CONTEXT_MENU_NAME: "Shown in the Apps menu of a message: 1-32 characters, spaces allowed.",
    REPLY: "A message to a member: 1-2000 characters; keep {placeholders}, **bold** and `code`.",
}


def _name_char(char: str) -> bool:
    """One character of ``^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]$`` (Discord's name pattern)."""
    if char in "-_" or unicodedata.category(char)[0] in "LN":
        return True
    # Devanagari and Thai marks (vowel signs, viramas) are not letters: the script decides.
    return unicodedata.name(char, "").startswith(("DEVANAGARI ", "THAI "))


def valid_name(name: str) -> bool:
    """A chat command, group, subcommand or option name Discord accepts (in any locale)."""
    return 1 <= len(name) <= NAME_MAX and name == name.lower() and all(_name_char(c) for c in name)


def valid_text(text: str) -> bool:
    """A description or a choice name."""
    return 1 <= len(text) <= TEXT_MAX


def valid_menu_name(name: str) -> bool:
    """A context menu's name: any characters, spaces and capitals included."""
    return 1 <= len(name) <= NAME_MAX and name.strip() == name


def valid_reply(text: str) -> bool:
    """A text the bot sends a member (it must fit one message)."""
    return 1 <= len(text) <= REPLY_MAX


def valid_for(context: str, text: str) -> bool:
    """Whether ``text`` may stand for a string of ``context`` in Discord's payload."""
    if context == REPLY:
        return valid_reply(text)
    if context in NAME_CONTEXTS:
        return valid_name(text)
    if context == CONTEXT_MENU_NAME:
        return valid_menu_name(text)
    return valid_text(text)


def placeholders(text: str) -> list[str]:
    """The ``{name}`` fields of a python-format text, sorted (``{{`` is a literal brace).

    A text the formatter cannot parse (a lone ``{``) has the placeholder ``"<malformed>"``, so it
    never matches a well-formed source text.
    """
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError:
        return ["<malformed>"]
    return sorted(fields)
