"""bot.domain stays plain Python: importing it must not pull in discord, aiohttp or aiosqlite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bot.domain

FORBIDDEN = ("discord", "aiohttp", "aiosqlite")
ROOT = Path(__file__).resolve().parents[2]

# Imports every module under bot.domain (so new modules are covered automatically) and reports
# which of the watched top-level packages ended up in sys.modules.
PROBE = """
import importlib, json, pkgutil, sys
import bot.domain
names = [m.name for m in pkgutil.walk_packages(bot.domain.__path__, "bot.domain.")]
for name in names:
    importlib.import_module(name)
watched = json.loads(sys.argv[1])
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(watched))
print(json.dumps({"modules": names, "loaded": loaded}))
"""


def probe(watched: list[str]) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(watched)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_domain_imports_no_io_libraries() -> None:
    result = probe(list(FORBIDDEN))
    assert "bot.domain.models" in result["modules"]
    assert "bot.domain.validation" in result["modules"]
    assert result["loaded"] == []


def test_probe_would_notice_a_loaded_library() -> None:
    # The same probe must see packages the domain does import; otherwise the test above is blind.
    result = probe(["decimal", "bot", *FORBIDDEN])
    assert result["loaded"] == ["bot", "decimal"]


def test_probe_covers_every_domain_module() -> None:
    on_disk = {
        f"bot.domain.{p.stem}"
        for p in Path(bot.domain.__file__).parent.glob("*.py")
        if p.stem != "__init__"
    }
    assert on_disk <= set(probe([])["modules"])
