"""Settings come from the environment and .env, and bad ones are named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("WAN_API_KEY", "DISCORD_TOKEN", "WAN_API_BASE", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    s = load_settings()
    assert s.wan_api_base == "https://api.crun.ai"
    assert s.database_path == Path("data/wanbot.sqlite3")
    assert s.callback_host_port == ("127.0.0.1", 8080)
    assert s.poll_interval_min == 5.0


def test_require_names_every_missing_variable() -> None:
    s = load_settings()
    with pytest.raises(ConfigError) as err:
        s.require("wan_api_key", "discord_token")
    assert "WAN_API_KEY" in str(err.value)
    assert "DISCORD_TOKEN" in str(err.value)
    assert ".env" in str(err.value)


def test_blank_secret_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAN_API_KEY", "   ")
    with pytest.raises(ConfigError, match="WAN_API_KEY"):
        load_settings().api_key()


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "ak_" + "s" * 32
    monkeypatch.setenv("WAN_API_KEY", key)
    monkeypatch.setenv("DISCORD_TOKEN", "tok.en.secret")
    s = load_settings()
    assert s.api_key() == key
    assert key not in repr(s)
    assert "tok.en.secret" not in repr(s)
    assert key not in str(s.model_dump())


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WAN_API_KEY=ak_fromdotenv\nPOLL_INTERVAL_MAX=30\n")
    s = load_settings()
    assert s.api_key() == "ak_fromdotenv"
    assert s.poll_interval_max == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLL_INTERVAL_MIN", "soon"),
        ("POLL_INTERVAL_MIN", "-1"),
        ("WAN_API_BASE", "api.crun.ai"),
        ("WAN_API_BASE", "https://"),  # no host: a prefix test let this through
        ("WAN_API_BASE", "ftp://api.crun.ai"),
        ("HEALTH_LISTEN", "0.0.0.0:70000"),
        ("DATABASE_URL", "mysql://x"),
        ("CALLBACK_LISTEN", "8080"),
        ("CALLBACK_LISTEN", "127.0.0.1:0"),  # the receiver's address must be known to crun
        ("CALLBACK_PUBLIC_URL", "bot.example.net"),
        ("MAX_CONCURRENT_JOBS", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("DEV_GUILD_ID", "abc"),
    ],
)
def test_malformed_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert name in str(err.value)
    assert value not in ("soon",) or "valid number" in str(err.value)


def test_poll_interval_order_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLL_INTERVAL_MIN", "20")
    monkeypatch.setenv("POLL_INTERVAL_MAX", "10")
    with pytest.raises(ConfigError, match="POLL_INTERVAL_MAX"):
        load_settings()


def test_urls_levels_and_addresses_are_tidied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAN_API_BASE", "http://127.0.0.1:8000/")
    monkeypatch.setenv("CALLBACK_PUBLIC_URL", "")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("HEALTH_LISTEN", " [::]:0 ")
    s = load_settings()
    assert s.wan_api_base == "http://127.0.0.1:8000"
    assert s.callback_public_url is None
    assert s.log_level == "DEBUG"
    assert s.health_listen == "[::]:0"
