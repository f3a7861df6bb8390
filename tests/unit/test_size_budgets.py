"""Size budgets for bot/ and cogs/: a module owns one thing (at most 400 lines) and a function
does one step (at most 60 lines). A file or function that outgrows them is split, not excused."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def product_files() -> list[Path]:
    return sorted(p for package in ("bot", "cogs") for p in (ROOT / package).rglob("*.py"))


def long_modules(files: list[Path]) -> list[str]:
    out = []
    for path in files:
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_MODULE_LINES:
            out.append(f"{path.relative_to(ROOT)}: {lines} lines")
    return out


def long_functions(source: str, name: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                out.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
    return out


def test_no_module_is_over_the_budget() -> None:
    files = product_files()
    assert len(files) > 40
    assert long_modules(files) == []


def test_no_function_is_over_the_budget() -> None:
    found = []
    for path in product_files():
        found += long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_budget_check_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}\n", "probe") == ["probe:1 f: 61 lines"]
    assert long_functions("async def g():\n    return 1\n", "probe") == []
