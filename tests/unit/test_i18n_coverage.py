"""No member-facing English left in the code: every text a member reads comes from a ``t()`` or
``tn()`` call (bot.domain.text), so it is in the catalogs and rendered in their language.

The scan reads the source (ast) of ``bot/`` and ``cogs/`` and flags a string literal, or an
f-string, with letters in it that goes straight into something Discord shows: message content,
an embed's title, description, fields or footer, a button's or menu's label and placeholder, a
form's title, or a member-facing error (``UserFacingError`` and its subclasses). Command names
and descriptions are left to the translator (app_commands' ``locale_str``), logs to English.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot
import cogs
from bot.errors import UserFacingError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("bot", "cogs")
SKIP = ("bot/i18n", "bot/cli")  # the catalogs' own tooling; the operator's English CLI

# Calls whose keyword (or first positional) argument a member reads.
SHOWN_KEYWORDS = {
    "content",
    "label",
    "placeholder",
    "title",
    "description",
    "text",
    "name",
    "value",
    "message",
}
SHOWN_CALLS = {
    # sending and editing
    "send",
    "send_message",
    "edit_message",
    "edit_original_response",
    "reply",
    "edit",
    "reply_ephemeral",
    "answer",
    # embeds, components, forms
    "Embed",
    "add_field",
    "set_field_at",
    "insert_field_at",
    "set_footer",
    "set_author",
    "Button",
    "button",
    "select",
    "Select",
    "SelectOption",
    "TextInput",
    "Modal",
}
# Keywords that are Discord ids or app command metadata, not text a member reads here.
NOT_SHOWN_CALLS = {
    "command",
    "describe",
    "Choice",
    "context_menu",
    "Group",
    "rename",
    "locale_str",
    "getLogger",
}


def _errors() -> set[str]:
    """Every UserFacingError subclass's name (the modules imported first so all are defined)."""
    for package in (bot, cogs):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.startswith(("bot.cli", "bot.__main__")):
                importlib.import_module(module.name)
    found: set[str] = set()
    todo: list[type] = [UserFacingError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _words(node: ast.expr) -> str | None:
    """The English of a literal (or the literal part of an f-string) when it has letters."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _words(node.left) or _words(node.right)
    elif isinstance(node, ast.IfExp):
        return _words(node.body) or _words(node.orelse)
    else:
        return None
    return text if any(ch.isalpha() for ch in text) else None


def _shown(call: ast.Call, errors: set[str]) -> Iterator[ast.expr]:
    name = _name(call.func)
    if name is None or name in NOT_SHOWN_CALLS:
        return
    if name in errors:
        yield from call.args[:1]
        yield from (k.value for k in call.keywords if k.arg in {"message", "user_message"})
        return
    if name not in SHOWN_CALLS:
        return
    if name in {"send", "send_message", "reply", "reply_ephemeral", "answer"}:
        yield from call.args[:1]
    if name == "reply_ephemeral":
        yield from call.args[1:2]
    yield from (k.value for k in call.keywords if k.arg in SHOWN_KEYWORDS)


def _class_titles(tree: ast.Module) -> Iterator[ast.expr]:
    """``class Form(discord.ui.Modal, title="…")``: a form's title given in the class line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            yield from (k.value for k in node.keywords if k.arg == "title")


def untranslated(root: Path = ROOT) -> list[str]:
    errors = _errors()
    found = []
    for folder in SOURCES:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(SKIP):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            nodes = [
                shown
                for call in ast.walk(tree)
                if isinstance(call, ast.Call)
                for shown in _shown(call, errors)
            ]
            for node in sorted([*nodes, *_class_titles(tree)], key=lambda n: n.lineno):
                words = _words(node)
                if words is not None:
                    found.append(f"{relative}:{node.lineno}: {words.strip()[:60]!r}")
    return found


def test_every_member_facing_text_comes_from_the_catalogs() -> None:
    leftovers = untranslated()
    assert not leftovers, "wrap these in t()/tn() (bot.domain.text):\n" + "\n".join(leftovers)


def test_the_scan_catches_an_english_reply(tmp_path: Path) -> None:
    (tmp_path / "cogs").mkdir()
    (tmp_path / "bot").mkdir()
    (tmp_path / "cogs" / "x.py").write_text(
        "async def f(i, n):\n"
        "    await i.response.send_message('Done!', ephemeral=True)\n"
        "    await i.response.send_message(render(t('Done!'), 'de'))\n"
        "    b = discord.ui.Button(label=f'Page {n}', custom_id='wan:x')\n"
        "    raise QuotaExceeded('No more today.')\n"
        "    log.info('Done %s', n)\n"
    )
    assert untranslated(tmp_path) == [
        "cogs/x.py:2: 'Done!'",
        "cogs/x.py:4: 'Page'",
        "cogs/x.py:5: 'No more today.'",
    ]


@pytest.mark.parametrize("snippet", ["Embed(title='Queue')", "add_field(name='Seed', value='1')"])
def test_the_scan_knows_embeds(tmp_path: Path, snippet: str) -> None:
    (tmp_path / "bot").mkdir()
    (tmp_path / "cogs").mkdir()
    (tmp_path / "bot" / "y.py").write_text(f"e = {snippet}\n")
    assert len(untranslated(tmp_path)) >= 1
