"""The operator docs are checked against the code, so they cannot quietly fall behind it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.domain.config import BLOCKED_MESSAGE
from bot.errors import (
    AuthError,
    FeatureDisabled,
    GenerationError,
    InsufficientCredits,
    Maintenance,
    RateLimited,
    ServerError,
    ValidationError,
    WanApiError,
)
from bot.jobs.engine import RESTARTING_MESSAGE
from bot.jobs.messages import failure_message, user_message_for_api_error
from bot.settings import Settings
from bot.store.database import Database
from bot.store.meta import MetaRepository

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| (unset|`[^`]*`) \| `([^`]*)` \| (.+) \|$")


def doc_rows() -> dict[str, tuple[str, str, str]]:
    """``{VARIABLE: (default, example, meaning)}`` from every table in configuration.md."""
    rows: dict[str, tuple[str, str, str]] = {}
    for line in (DOCS / "configuration.md").read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            name, default, example, meaning = match.groups()
            assert name not in rows, f"{name} is listed twice"
            rows[name] = (default.strip("`"), example, meaning)
    return rows


def shown_default(field: Any) -> str:
    """The default as the doc shows it: unset (None or empty), plain numbers, lower-case bools."""
    value = field.get_default(call_default_factory=True)
    if value is None or value == []:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def model_rows() -> dict[str, str]:
    return {name.upper(): shown_default(f) for name, f in Settings.model_fields.items()}


def test_configuration_lists_every_setting_with_its_default() -> None:
    documented = {name: row[0] for name, row in doc_rows().items()}
    expected = model_rows()
    missing = sorted(set(expected) - set(documented))
    assert not missing, "add to docs/configuration.md:\n" + "\n".join(
        f"| `{n}` | {'unset' if expected[n] == 'unset' else f'`{expected[n]}`'} | `EXAMPLE` | "
        "MEANING |"
        for n in missing
    )
    assert not sorted(set(documented) - set(expected)), "documented settings that do not exist"
    wrong = {n: (documented[n], expected[n]) for n in expected if documented[n] != expected[n]}
    assert not wrong, f"defaults differ (doc, code): {wrong}"
    assert all(meaning.strip() for _, _, meaning in doc_rows().values())


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# Settings whose example only makes sense beside another one (the doc says so in its row).
COMPANIONS = {"SHARD_IDS": {"SHARD_COUNT": "4"}}


def test_every_example_is_a_valid_non_default_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example, given as an environment variable the way an owner would, is accepted."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, (_, example, _) in doc_rows().items():
        field = name.lower()
        with monkeypatch.context() as env:
            for companion, value in COMPANIONS.get(name, {}).items():
                env.setenv(companion, value)
            env.setenv(name, example)
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        default = Settings.model_fields[field].get_default(call_default_factory=True)
        assert _plain(getattr(settings, field)) != _plain(default), f"{name}: example = default"


def _normalized(text: object) -> str:
    """A message's English (a ``Text`` or a string) on one line."""
    return " ".join(str(text).split())


def _without_ref(message: object) -> str:
    return str(message).removesuffix(" (job `JOB`)")


def test_troubleshooting_explains_every_job_message() -> None:
    doc = _normalized((DOCS / "troubleshooting.md").read_text(encoding="utf-8"))
    messages = [
        _without_ref(failure_message(kind, "JOB"))
        for kind in ("generation-failed", "uncertain", "expired", "lost", "empty", "download")
    ]
    messages.append(_without_ref(failure_message("internal", "JOB")))
    messages.append(_without_ref(failure_message("generation-failed", "JOB", reason="nsfw")))
    errors: list[WanApiError] = [
        InsufficientCredits(402, 402, ""),
        AuthError(401, 401, ""),
        ValidationError(422, 422, ""),
        RateLimited(429, 429, ""),
        Maintenance(455, 455, ""),
        FeatureDisabled(505, 505, ""),
        GenerationError(501, 501, ""),
        ServerError(500, 500, ""),
    ]
    messages += [user_message_for_api_error(e) for e in errors]
    messages += [RESTARTING_MESSAGE, BLOCKED_MESSAGE]
    missing = [m for m in messages if _normalized(m) not in doc]
    assert not missing, f"docs/troubleshooting.md does not quote: {missing}"


def test_readme_points_to_the_operator_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("operations.md", "configuration.md", "troubleshooting.md"):
        assert f"(docs/{name})" in readme
        assert (DOCS / name).is_file()


def test_docs_link_to_sections_that_exist() -> None:
    headings: dict[str, set[str]] = {}
    for path in DOCS.glob("*.md"):
        text = path.read_text(encoding="utf-8")
        slugs = {
            re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
        }
        headings[path.name] = slugs
    for path in DOCS.glob("*.md"):
        for target, anchor in re.findall(r"\]\(([a-z]+\.md)#([a-z0-9-]+)\)", path.read_text()):
            assert anchor in headings[target], f"{path.name} links to {target}#{anchor}"


async def test_the_documented_backup_copies_a_live_wal_database(tmp_path: Path) -> None:
    """The backup one-liner in operations.md, run while the bot's connection is open and recent
    writes still sit in the WAL file, gives a complete and consistent copy."""
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    after = text.split("<!-- backup-command -->", 1)[1]
    command = after.split("```", 2)[1].strip()
    assert command.startswith('python3 -c "') and command.endswith('"')
    code = command.removeprefix('python3 -c "').removesuffix('"')

    db = await Database.open(tmp_path / "data" / "wanbot.sqlite3")
    try:
        await db.execute("PRAGMA wal_autocheckpoint = 0")  # keep the writes in the WAL
        meta = MetaRepository(db)
        for i in range(50):
            await meta.set(f"key-{i}", f"value-{i}")
        assert (tmp_path / "data" / "wanbot.sqlite3-wal").stat().st_size > 0
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=tmp_path)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        version = await db.schema_version()
    finally:
        await db.close()

    backup = sqlite3.connect(tmp_path / "wanbot-backup.sqlite3")
    try:
        assert backup.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert backup.execute("PRAGMA user_version").fetchone() == (version,)
        assert backup.execute("SELECT value FROM meta WHERE key = 'key-49'").fetchone() == (
            "value-49",
        )
    finally:
        backup.close()
