"""The layers of bot/ and cogs/, read from the source: imports only ever point down.

    bot.app, bot.__main__, bot.cli  the processes: the bot loads the cogs, the CLI needs none
    bot.i18n.extract       a process too: loads the cogs to list their strings for translators
    cogs                   thin Discord faces
    bot.ui                 Discord-facing core: doors, the one job flow, sink, embeds, buttons
    bot.runtime            opens the resources and builds the services
    bot.services           the one door into the core (generation, inputs, admin, queue)
    bot.jobs               the engine and what it needs
    bot.store, bot.wan, bot.media   SQL, the crun client, images
    bot.settings, bot.observability, bot.logging_setup, bot.i18n (the translators' catalogs)
    bot.domain, bot.errors plain types and rules

A module may import its own layer and the ones below. On top of that: the domain imports no I/O
library and no other layer; cogs and bot.ui never reach the store or the crun client; the job
engine never imports Discord-facing code or the settings. Every import statement counts, also
the ones inside functions (a late import is still a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Highest first; the first prefix that matches a module decides its layer.
LAYERS: list[tuple[str, int]] = [
    ("bot.app", 9),
    ("bot.__main__", 9),
    ("bot.cli", 9),
    ("bot.i18n.extract", 9),  # before "bot.i18n": the first matching prefix decides
    ("cogs", 8),
    ("bot.ui", 7),
    ("bot.runtime", 6),
    ("bot.services", 5),
    ("bot.usage_report", 5),
    ("bot.jobs", 4),
    ("bot.store", 3),
    ("bot.wan", 3),
    ("bot.media", 3),
    ("bot.settings", 2),
    ("bot.observability", 2),
    ("bot.logging_setup", 2),
    ("bot.i18n", 2),  # reads the catalogs: used by bot.app (commands), later bot.ui (replies)
    ("bot.domain", 1),
    ("bot.errors", 1),
    ("bot", 1),  # bot/__init__.py
]

IO_LIBRARIES = ("discord", "aiohttp", "sqlite3", "aiosqlite", "asyncpg", "PIL", "yarl")

# (importer prefix, forbidden prefixes, why)
FORBIDDEN: list[tuple[str, tuple[str, ...], str]] = [
    ("bot.domain", IO_LIBRARIES, "the domain is plain Python"),
    (
        "bot.domain",
        (
            "bot.jobs",
            "bot.store",
            "bot.wan",
            "bot.media",
            "bot.services",
            "bot.ui",
            "bot.i18n",
            "cogs",
        ),
        "the domain imports no other layer",
    ),
    ("cogs", ("bot.store", "bot.wan", "bot.runtime"), "cogs call services"),
    ("bot.ui", ("bot.store", "bot.wan", "bot.runtime"), "bot/ui calls services"),
    (
        "bot.jobs",
        ("cogs", "bot.ui", "bot.settings"),
        "the engine knows no Discord face or Settings",
    ),
]


def layer(module: str) -> int | None:
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, str]:
    found = {}
    for package in ("bot", "cogs"):
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path.read_text(encoding="utf-8")
    return found


def imports(module: str, source: str) -> Iterator[str]:
    """Absolute names of everything ``module`` imports (``from x import y`` yields x and x.y)."""
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def violations(modules: Mapping[str, str]) -> list[str]:
    found = []
    for module, source in modules.items():
        mine = layer(module)
        for target in set(imports(module, source)):
            theirs = layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{module} imports {target}: upward (layer {mine} -> {theirs})")
            for importer, banned, why in FORBIDDEN:
                if under(module, importer) and any(under(target, b) for b in banned):
                    found.append(f"{module} imports {target}: {why}")
    return sorted(set(found))


def test_every_import_in_bot_and_cogs_points_down() -> None:
    modules = sources()
    assert "bot.jobs.engine" in modules
    assert "cogs.imagine" in modules
    assert violations(modules) == []


def test_every_module_has_a_layer() -> None:
    assert [m for m in sources() if layer(m) is None] == []


def test_the_checker_catches_each_kind_of_violation() -> None:
    """Fed violating imports, the checker must say so: otherwise the test above proves nothing."""
    bad = {
        "bot.domain.extra": "import aiohttp\nfrom bot.store.jobs import JobRepository\n",
        "cogs.extra": "from bot.store import quotas\n",
        "bot.ui.extra": "def late():\n    from bot.wan.client import WanClient\n",
        "bot.jobs.extra": "from bot.ui.sink import DiscordSink\nimport bot.settings\n",
        "bot.store.extra": "from bot.services import Services\n",
        "bot.services.extra": "from . import generation\nfrom ..ui import embeds\n",
        "bot.i18n.extra": "from cogs import COGS\n",
        "bot.domain.words": "from bot.i18n.catalogs import Catalogs\n",
    }
    found = "\n".join(violations(bad))
    assert "bot.domain.extra imports aiohttp: the domain is plain Python" in found
    assert "bot.domain.extra imports bot.store.jobs: the domain imports no other layer" in found
    assert "cogs.extra imports bot.store: cogs call services" in found
    assert "bot.ui.extra imports bot.wan.client: bot/ui calls services" in found
    assert "bot.jobs.extra imports bot.ui.sink: the engine knows no Discord face" in found
    assert "bot.jobs.extra imports bot.settings" in found
    assert "bot.store.extra imports bot.services: upward" in found
    assert "bot.services.extra imports bot.ui: upward" in found  # a relative import counts too
    assert "bot.services.extra imports bot.services.generation" not in found  # same layer
    assert "bot.i18n.extra imports cogs: upward" in found  # only the extractor may load cogs
    assert "bot.domain.words imports bot.i18n.catalogs: the domain imports no other layer" in found
