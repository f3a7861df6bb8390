"""The repositories' sqlite3-style SQL in PostgreSQL's form (bot/store/dialect.py)."""

from __future__ import annotations

import sqlite3

import pytest

from bot.store.dialect import parse_rowcount, translate


def test_question_marks_become_numbered_parameters_in_order() -> None:
    s = translate("UPDATE jobs SET a = ?, b = ? WHERE id = ?")
    assert s.sql == "UPDATE jobs SET a = $1, b = $2 WHERE id = $3"
    assert s.args((1, "x", None)) == [1, "x", None]
    assert not s.returns_rows


def test_a_repeated_name_is_one_parameter() -> None:
    s = translate("SELECT * FROM l WHERE g = :g AND u = :u OR (g = :g AND x >= :_day)")
    assert s.sql == "SELECT * FROM l WHERE g = $1 AND u = $2 OR (g = $1 AND x >= $3)"
    assert s.args({"u": 2, "g": 1, "_day": 3.5, "unused": 0}) == [1, 2, 3.5]
    assert s.returns_rows


def test_quotes_comments_and_casts_are_left_alone() -> None:
    sql = (
        "SELECT 'a?b :c', \"odd?col\", x::bigint -- what? :no\n"
        "FROM t /* :nor ? */ WHERE y = ? AND z = 'it''s ?'"
    )
    s = translate(sql)
    assert s.sql == sql.replace("y = ?", "y = $1")
    assert s.count == 1


def test_what_answers_with_rows() -> None:
    assert translate("  WITH r AS (SELECT 1) SELECT * FROM r").returns_rows
    assert translate("select 1").returns_rows
    returning = translate("DELETE FROM jobs WHERE id = ? RETURNING id")
    assert returning.returns_rows and returning.returning
    assert not translate("INSERT INTO meta (key, value) VALUES (?, ?)").returns_rows
    assert not translate("CREATE TABLE t (x INTEGER)").returns_rows


def test_the_row_count_comes_from_the_command_tag() -> None:
    assert parse_rowcount("UPDATE 3") == 3
    assert parse_rowcount("INSERT 0 1") == 1
    assert parse_rowcount("DELETE 0") == 0
    assert parse_rowcount("CREATE TABLE") == -1


def test_wrong_parameters_fail_as_sqlite3_fails() -> None:
    with pytest.raises(sqlite3.ProgrammingError, match="Incorrect number of bindings"):
        translate("SELECT ? + ?").args((1,))
    with pytest.raises(sqlite3.ProgrammingError, match=":b"):
        translate("SELECT :a + :b").args({"a": 1})
    with pytest.raises(sqlite3.ProgrammingError, match="mixes"):
        translate("SELECT ? + :a")
    with pytest.raises(sqlite3.ProgrammingError):
        translate("SELECT :a").args((1,))
    assert translate("SELECT 1").args({}) == []


def test_each_statement_is_translated_once() -> None:
    sql = "SELECT value FROM meta WHERE key = ?"
    assert translate(sql) is translate(sql)
