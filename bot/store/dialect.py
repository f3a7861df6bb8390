"""The repositories' SQL, written for sqlite3, in the form PostgreSQL's protocol takes.

The statements themselves are portable (the repositories stick to SQL both engines read); what
differs is how parameters are marked. sqlite3 takes ``?`` with a sequence or ``:name`` with a
mapping; PostgreSQL takes ``$1..$n`` with a list. ``translate`` rewrites the marks once per
distinct statement (cached) and remembers how to order a call's parameters. Text inside quotes
and comments is left alone, and so is PostgreSQL's ``::type`` cast.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.store.protocol import Params

# Statements that answer with rows (read with ``fetch``); the others report a row count.
_ROW_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "SHOW", "TABLE", "EXPLAIN"})


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement in PostgreSQL's form and how to lay out its parameters."""

    sql: str
    names: tuple[str, ...] | None  # :name parameters in $n order; None: positional ``?``
    count: int  # how many parameters it takes
    returns_rows: bool  # run with fetch, not execute
    returning: bool  # a write that answers with rows: its row count is the rows'

    def args(self, params: Params) -> list[Any]:
        """The parameters as ``$1..$n`` take them; sqlite3's errors for a mismatch."""
        if self.names is None:
            if isinstance(params, Mapping):
                if self.count == 0 and not params:
                    return []
                raise sqlite3.ProgrammingError("this statement takes ? parameters, not a mapping")
            if len(params) != self.count:
                raise sqlite3.ProgrammingError(
                    f"Incorrect number of bindings supplied. The current statement uses "
                    f"{self.count}, and there are {len(params)} supplied."
                )
            return list(params)
        if not isinstance(params, Mapping):
            raise sqlite3.ProgrammingError("this statement takes :name parameters, a mapping")
        missing = [n for n in self.names if n not in params]
        if missing:
            raise sqlite3.ProgrammingError(f"You did not supply a value for binding :{missing[0]}")
        return [params[n] for n in self.names]


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> Statement:
    """``sql`` with ``?`` / ``:name`` marks turned into ``$n`` (cached per statement text)."""
    return _Scanner(sql).run()


class _Scanner:
    """One pass over the text: copies it, replacing parameter marks outside quotes/comments."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.out: list[str] = []
        self.words: list[str] = []  # upper-cased words outside quotes (statement kind)
        self.positional = 0
        self.names: dict[str, int] = {}

    def run(self) -> Statement:
        sql, i, n = self.sql, 0, len(self.sql)
        while i < n:
            c = sql[i]
            if c in "'\"":
                i = self._copy_until(i, sql.find(c, i + 1), 1)
            elif sql.startswith("--", i):
                i = self._copy_until(i, sql.find("\n", i), 1)
            elif sql.startswith("/*", i):
                i = self._copy_until(i, sql.find("*/", i + 2), 2)
            elif c == "?":
                self.positional += 1
                self.out.append(f"${self.positional}")
                i += 1
            elif c == ":" and sql.startswith("::", i):
                self.out.append("::")
                i += 2
            elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
                i = self._named(i + 1)
            elif c.isalpha() or c == "_":
                i = self._word(i)
            else:
                self.out.append(c)
                i += 1
        if self.positional and self.names:
            raise sqlite3.ProgrammingError("a statement mixes ? and :name parameters")
        first = self.words[0] if self.words else ""
        return Statement(
            sql="".join(self.out),
            names=tuple(self.names) if self.names else None,
            count=len(self.names) or self.positional,
            returns_rows=first in _ROW_KEYWORDS or "RETURNING" in self.words,
            returning="RETURNING" in self.words,
        )

    def _copy_until(self, start: int, end: int, closer: int) -> int:
        """Copy a quoted string or comment whole (to the end of the text when unclosed)."""
        stop = len(self.sql) if end < 0 else end + closer
        self.out.append(self.sql[start:stop])
        return stop

    def _identifier_end(self, i: int) -> int:
        while i < len(self.sql) and (self.sql[i].isalnum() or self.sql[i] in "_$"):
            i += 1
        return i

    def _named(self, start: int) -> int:
        end = self._identifier_end(start)
        name = self.sql[start:end]
        number = self.names.setdefault(name, len(self.names) + 1)
        self.out.append(f"${number}")
        return end

    def _word(self, start: int) -> int:
        end = self._identifier_end(start)
        word = self.sql[start:end]
        self.words.append(word.upper())
        self.out.append(word)
        return end


def parse_rowcount(status: str) -> int:
    """The row count in a command tag (``UPDATE 3``, ``INSERT 0 1``); -1 when it has none,
    as sqlite3's ``rowcount`` is for statements that change no rows."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1
