"""docker-compose.yml is read as compose reads it (YAML, merge keys, ``${VAR:-default}``) and
checked against the settings, so its scale profile cannot quietly stop being a valid deployment.
Where a Docker client with the compose plugin exists, compose itself checks the file too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCALE_BOTS = ("wanbot-0", "wanbot-1")
PROXY_API_BASE = "http://nirn-proxy:8080/api/v10"

# `$$` (a literal dollar) or `${VAR:-default}`: the forms the file uses.
_VARIABLE = re.compile(r"\$\$|\$\{([A-Z0-9_]+):-([^}]*)\}")


def load() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def services() -> dict[str, dict[str, Any]]:
    return load()["services"]  # type: ignore[no-any-return]


def resolved(value: object, variables: dict[str, str]) -> str:
    """A value as compose gives it to the container, with ``variables`` as .env's."""

    def one(m: re.Match[str]) -> str:
        return "$" if m.group(1) is None else variables.get(m.group(1), m.group(2))

    text = _VARIABLE.sub(one, str(value))
    assert "${" not in text, f"every variable needs a ${{VAR:-default}}: {value!r}"
    return text


def environment(service: dict[str, Any], variables: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is written as a mapping"
    return {name: resolved(value, variables or {}) for name, value in env.items()}


def host_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """``(host address, host port, container port)`` for each published port."""
    published = []
    for spec in service.get("ports", []):
        *address, host, container = str(spec).split(":")
        published.append((":".join(address) or "every address", int(host), int(container)))
    return published


def test_the_default_service_stays_one_sqlite_process() -> None:
    bot = services()["wanbot"]
    assert "profiles" not in bot, "plain `docker compose up` must start it"
    assert "wanbot-data:/data" in bot["volumes"]
    assert "DATABASE_URL" not in bot.get("environment", {})  # the image's SQLite file on /data
    assert bot["restart"] == "unless-stopped"
    assert all(address == "127.0.0.1" for address, _, _ in host_ports(bot))
    # The default service is the only one without a profile: no scale part starts by accident.
    assert [name for name, s in services().items() if not s.get("profiles")] == ["wanbot"]


def test_postgres_is_healthchecked_and_keeps_its_data_on_a_named_volume() -> None:
    doc = load()
    pg = doc["services"]["postgres"]
    assert pg["profiles"] == ["scale"]
    assert pg["image"] == "postgres:15"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    volume, _, target = pg["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in doc["volumes"], "a named volume, kept across `docker compose down`"
    assert "ports" not in pg, "only the services of the file reach the database"
    env = environment(pg)
    assert env["POSTGRES_PASSWORD"], "a default, so a first start works; .env overrides it"


def test_the_scale_bots_split_the_shards_exactly_and_one_syncs_the_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owned: list[int] = []
    syncing = []
    for name in SCALE_BOTS:
        settings = settings_of(name, monkeypatch)
        owned += settings.owned_shards
        assert settings.shard_count == 2
        if settings.syncs_commands:
            syncing.append(name)
    assert sorted(owned) == [0, 1], "every shard owned by exactly one process"
    assert syncing == ["wanbot-0"]


def settings_of(
    name: str, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str] | None = None
) -> Settings:
    """The settings a scale bot starts with, given its environment and .env's ``variables``."""
    with monkeypatch.context() as env:
        for field in Settings.model_fields:
            env.delenv(field.upper(), raising=False)
        for variable, value in environment(services()[name], variables).items():
            env.setenv(variable, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_scale_bots_use_the_postgres_service_once_it_is_healthy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    all_services = services()
    pg = environment(all_services["postgres"])
    for name in SCALE_BOTS:
        bot = all_services[name]
        assert bot["profiles"] == ["scale"]
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        settings = settings_of(name, monkeypatch)
        assert settings.database_engine == "postgresql"
        url = urlsplit(settings.database_url)
        assert url.hostname == "postgres"
        assert (url.username, url.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
        assert url.path == f"/{pg['POSTGRES_DB']}"
        assert settings.discord_api_base is None, "straight to Discord unless .env says otherwise"


def test_each_scale_bot_is_healthchecked_on_its_own_loopback_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    all_services = services()
    used = {host for _, host, _ in host_ports(all_services["wanbot"])}
    for name in SCALE_BOTS:
        bot = all_services[name]
        assert "/healthz" in " ".join(bot["healthcheck"]["test"])
        assert bot["restart"] == "unless-stopped"
        assert bot["stop_grace_period"]
        health_port = int(str(settings_of(name, monkeypatch).health_listen).rpartition(":")[2])
        [(address, host, container)] = host_ports(bot)
        assert address == "127.0.0.1", "health and metrics are not for the internet"
        assert container == health_port
        assert host not in used, f"{name}: host port {host} is taken"
        used.add(host)


def test_every_variable_set_on_a_bot_is_a_setting() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for name in ("wanbot", *SCALE_BOTS):
        unknown = set(environment(services()[name])) - known
        assert not unknown, f"{name} sets variables wanbot does not read: {sorted(unknown)}"


def test_the_rest_proxy_is_optional_and_its_documented_address_is_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = services()["nirn-proxy"]
    assert proxy["profiles"] == ["proxy"]
    assert proxy["image"].startswith("ghcr.io/germanoeich/nirn-proxy")
    assert "ports" not in proxy, "the requests it relays carry the bot token"
    assert f":{environment(proxy)['PORT']}/" in PROXY_API_BASE
    line = f"WANBOT_DISCORD_API_BASE={PROXY_API_BASE}"
    assert line in COMPOSE.read_text(encoding="utf-8")
    assert line in (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in SCALE_BOTS:
        settings = settings_of(name, monkeypatch, {"WANBOT_DISCORD_API_BASE": PROXY_API_BASE})
        assert settings.discord_api_base == PROXY_API_BASE


def _compose_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, check=False, timeout=30
    )
    return probe.returncode == 0


def test_docker_compose_accepts_the_file_with_every_profile(tmp_path: Path) -> None:
    if not _compose_available():
        pytest.skip("no Docker client with the compose plugin (`docker compose version` fails)")
    # A copy beside an empty .env: env_file must exist, and a real .env must not be read.
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".env").write_text("", encoding="utf-8")
    result = subprocess.run(
        ["docker", "compose", "--profile", "scale", "--profile", "proxy", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
