"""The shape of a regular expression, read with plain string handling (no private ``re`` modules).

The blocked-pattern rules (``bot.domain.patterns``) need to know how an admin's pattern is built:
its repeats (their bounds, and where each is written so that an open-ended one can be capped),
its choices, groups and lookarounds, and any reference back to a group. This reader follows the
syntax of Python's ``re`` for patterns that ``re.compile`` has already accepted, and folds
choices the way ``re`` itself does (``ab|ac`` is ``a[bc]``, ``a|b`` is ``[ab]``), so a choice
is only seen where ``re`` really has to try several branches.

Anything it does not follow raises ``Unsupported``: a pattern the bot cannot read is refused,
never waved through. Verbose mode (``(?x)``) is not read at all, since whitespace and ``#``
would change the meaning of every character after it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TypeAlias

from bot.domain.text import Text, t

__all__ = ["BackRef", "Choice", "Group", "Leaf", "Node", "Repeat", "Seq", "Unsupported", "parse"]

_DIGITS = "0123456789"
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"
_SIMPLE_ESCAPES = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}
_CATEGORIES = "dDsSwW"
_FLAGS = "aiLmsux-"
_BOUNDS = re.compile(r"\{([0-9]*)(?:(,)([0-9]*))?\}")  # {m}, {m,}, {,n}, {m,n}, {,}


class Unsupported(Exception):
    """The reader cannot follow this pattern; ``reason`` says why, in words for an admin (a
    clause: bot.domain.patterns puts it into a whole sentence)."""

    def __init__(self, reason: Text) -> None:
        super().__init__(reason.english())
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Leaf:
    """One character or one position. ``kind`` is ``"char"`` (the character ``key``), ``"set"``
    (a class such as ``[a-z]`` or ``\\d``) or ``"other"`` (``.``, anchors, negated classes).
    Leaves compare by value, as ``re`` compares its own items when it folds choices."""

    kind: str
    key: str


@dataclass(frozen=True, slots=True, eq=False)
class Group:
    """A parenthesised part: capturing or not, atomic, scoped flags, lookahead or lookbehind."""

    body: Seq


@dataclass(frozen=True, slots=True, eq=False)
class Repeat:
    """``body`` repeated ``low`` to ``high`` times (``None``: no upper bound). The quantifier is
    written at ``pattern[start:end]``, not counting a lazy ``?`` or possessive ``+`` after it."""

    low: int
    high: int | None
    body: Node
    start: int
    end: int


@dataclass(frozen=True, slots=True, eq=False)
class Choice:
    """Alternatives that remain a real choice once common prefixes and single characters are
    folded."""

    options: tuple[Seq, ...]


@dataclass(frozen=True, slots=True, eq=False)
class BackRef:
    """``\\1``, ``(?P=name)`` or ``(?(1)yes|no)``: what matches depends on an earlier group."""


Node: TypeAlias = Leaf | Group | Repeat | Choice | BackRef
Seq: TypeAlias = tuple[Node, ...]


def parse(pattern: str) -> Seq:
    """The shape of ``pattern``, which ``re.compile`` must already have accepted."""
    reader = _Reader(pattern)
    try:
        shape = _alternatives(reader)
    except (ValueError, KeyError, RecursionError):
        raise reader.unsupported() from None
    if reader.pos != len(pattern):
        raise reader.unsupported()
    return shape


def children(node: Node) -> tuple[Seq, ...]:
    """The sequences directly inside ``node``."""
    if isinstance(node, Repeat):
        return ((node.body,),)
    if isinstance(node, Group):
        return (node.body,)
    if isinstance(node, Choice):
        return node.options
    return ()


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, ahead: int = 0) -> str:
        at = self.pos + ahead
        return self.text[at] if at < len(self.text) else ""

    def next_in(self, chars: str, ahead: int = 0) -> bool:
        ch = self.peek(ahead)
        return bool(ch) and ch in chars

    def take(self) -> str:
        ch = self.peek()
        if not ch:
            raise self.unsupported()
        self.pos += 1
        return ch

    def match(self, text: str) -> bool:
        if self.text.startswith(text, self.pos):
            self.pos += len(text)
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.match(text):
            raise self.unsupported()

    def take_while(self, chars: str, limit: int) -> str:
        start = self.pos
        while self.pos - start < limit and self.next_in(chars):
            self.pos += 1
        return self.text[start : self.pos]

    def take_until(self, end: str) -> str:
        at = self.text.find(end, self.pos)
        if at < 0:
            raise self.unsupported()
        found, self.pos = self.text[self.pos : at], at + len(end)
        return found

    def unsupported(self) -> Unsupported:
        return Unsupported(
            t(
                "its syntax is not followed at character {position}; simplify it",
                position=self.pos + 1,
            )
        )


# --- sequences and choices ------------------------------------------------------------------


def _alternatives(reader: _Reader) -> Seq:
    options = [_sequence(reader)]
    while reader.match("|"):
        options.append(_sequence(reader))
    return _fold(options)


def _sequence(reader: _Reader) -> list[Node]:
    items: list[Node] = []
    while reader.peek() and not reader.next_in("|)"):
        start = reader.pos
        bounds = _quantifier(reader)
        if bounds is None:
            node = _atom(reader)
            if node is not None:  # comments and global flags match nothing
                items.append(node)
            continue
        end = reader.pos
        if not reader.match("?"):
            reader.match("+")
        if not items or isinstance(items[-1], Repeat):
            raise reader.unsupported()
        items[-1] = Repeat(bounds[0], bounds[1], items[-1], start, end)
    return items


def _quantifier(reader: _Reader) -> tuple[int, int | None] | None:
    ch = reader.peek()
    if ch in ("*", "+", "?"):
        reader.pos += 1
        return {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
    found = _BOUNDS.match(reader.text, reader.pos) if ch == "{" else None
    if found is None or found[0] == "{}":
        return None  # not a quantifier: "{" is then a plain character
    reader.pos = found.end()
    low = int(found[1] or 0)
    if found[2] is None:
        return low, low
    return low, int(found[3]) if found[3] else None


def _fold(options: list[list[Node]]) -> Seq:
    """Alternatives as ``re`` keeps them: a common first item is taken out of every branch,
    and branches of one character or class each become one class."""
    if len(options) == 1:
        return tuple(options[0])
    folded: list[Node] = []
    while all(options) and all(option[0] == options[0][0] for option in options[1:]):
        folded.append(options[0][0])
        for option in options:
            del option[0]
    leaves = [o[0] for o in options if len(o) == 1 and isinstance(o[0], Leaf)]
    if len(leaves) == len(options) and all(leaf.kind in ("char", "set") for leaf in leaves):
        keys = (f"c:{leaf.key}" if leaf.kind == "char" else leaf.key for leaf in leaves)
        folded.append(Leaf("set", "|".join(dict.fromkeys(keys))))
    else:
        folded.append(Choice(tuple(tuple(option) for option in options)))
    return tuple(folded)


# --- atoms ----------------------------------------------------------------------------------


def _atom(reader: _Reader) -> Node | None:
    ch = reader.take()
    if ch == "\\":
        return _escape(reader)
    if ch == "[":
        return _class(reader)
    if ch == "(":
        return _group(reader)
    if ch in ".^$":
        return Leaf("other", ch)
    return Leaf("char", ch)


def _escape(reader: _Reader) -> Node:
    ch = reader.take()
    if ch in "AZbB":
        return Leaf("other", "\\" + ch)
    if ch in _CATEGORIES:
        return Leaf("set", "k:" + ch)
    if ch == "0":
        return Leaf("char", chr(int(ch + reader.take_while(_OCTAL, 2), 8)))
    if ch in _DIGITS:
        # Three octal digits are a character; otherwise one or two digits name a group.
        if reader.next_in(_DIGITS):
            if ch in _OCTAL and reader.next_in(_OCTAL) and reader.next_in(_OCTAL, 1):
                return Leaf("char", chr(int(ch + reader.take() + reader.take(), 8)))
            reader.pos += 1
        return BackRef()
    return Leaf("char", _escaped_char(reader, ch))


def _escaped_char(reader: _Reader, ch: str) -> str:
    """The character written as ``\\`` + ``ch`` (and what follows), in or out of a class."""
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch]
    if ch in _HEX_WIDTH:
        return chr(int(reader.take_while(_HEX, _HEX_WIDTH[ch]), 16))
    if ch == "N":
        reader.expect("{")
        return unicodedata.lookup(reader.take_until("}"))
    if ch.isascii() and ch.isalnum():
        raise reader.unsupported()
    return ch


def _class(reader: _Reader) -> Leaf:
    """``[...]``: one character (``[a]``), or a set; negated ones are "other"."""
    negate = reader.match("^")
    members: list[str] = []
    while True:
        ch = reader.take()
        if ch == "]" and members:
            break
        first = _class_member(reader, ch)
        if not reader.match("-"):
            members.append(first)
        elif reader.match("]"):
            members += [first, "c:-"]
            break
        else:
            members.append(f"r:{first}-{_class_member(reader, reader.take())}")
    unique = list(dict.fromkeys(members))
    if len(unique) == 1 and unique[0].startswith("c:"):
        char = unique[0][2:]
        return Leaf("other", "not:" + char) if negate else Leaf("char", char)
    return Leaf("other", "^" + "|".join(unique)) if negate else Leaf("set", "|".join(unique))


def _class_member(reader: _Reader, ch: str) -> str:
    if ch != "\\":
        return "c:" + ch
    ch = reader.take()
    if ch in _CATEGORIES:
        return "k:" + ch
    if ch == "b":
        return "c:\b"
    if ch in _OCTAL:
        return "c:" + chr(int(ch + reader.take_while(_OCTAL, 2), 8))
    return "c:" + _escaped_char(reader, ch)


# --- groups ---------------------------------------------------------------------------------


def _group(reader: _Reader) -> Node | None:
    """After ``(``: a group, a reference back, or nothing (a comment, global flags)."""
    if not reader.match("?"):
        return _group_body(reader)
    ch = reader.take()
    if ch == "P":
        if reader.match("="):
            reader.take_until(")")
            return BackRef()
        reader.expect("<")
        reader.take_until(">")
        return _group_body(reader)
    if ch == "#":
        while (ch := reader.take()) != ")":
            if ch == "\\":  # "\)" does not end a comment
                reader.take()
        return None
    if ch == "(":
        reader.take_until(")")
        _sequence(reader)
        if reader.match("|"):
            _sequence(reader)
        reader.expect(")")
        return BackRef()
    if ch == "<" and reader.next_in("=!"):
        reader.pos += 1
        return _group_body(reader)
    if ch in ":>=!":
        return _group_body(reader)
    if ch in _FLAGS:
        return _flags(reader, ch)
    raise reader.unsupported()


def _flags(reader: _Reader, first: str) -> Node | None:
    flags = first + reader.take_while(_FLAGS, len(reader.text))
    if "x" in flags.partition("-")[0]:
        raise Unsupported(t("it uses verbose mode `(?x)`; write the pattern without it"))
    if reader.match(")"):
        return None  # global flags: they apply to the whole pattern and match nothing
    reader.expect(":")
    return _group_body(reader)


def _group_body(reader: _Reader) -> Group:
    body = _alternatives(reader)
    reader.expect(")")
    return Group(body)
