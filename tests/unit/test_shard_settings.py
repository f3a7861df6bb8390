"""SHARD_COUNT, SHARD_IDS, SYNC_COMMANDS and DISCORD_API_BASE: what a process owns, who syncs the
commands, and clear words for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, load_settings

NAMES = ("SHARD_COUNT", "SHARD_IDS", "SYNC_COMMANDS", "DISCORD_API_BASE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def settings_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ConfigError) as err:
        settings_from(monkeypatch, **env)
    return str(err.value)


def test_unset_is_one_unsharded_process_that_syncs() -> None:
    s = load_settings()
    assert (s.shard_count, s.shard_ids) == (None, None)
    assert s.owned_shards == (0,)
    assert s.syncs_commands
    assert s.discord_api_base is None


def test_a_count_alone_owns_every_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from(monkeypatch, SHARD_COUNT="3")
    assert s.owned_shards == (0, 1, 2)
    assert s.syncs_commands


def test_only_the_process_with_shard_0_syncs(monkeypatch: pytest.MonkeyPatch) -> None:
    first = settings_from(monkeypatch, SHARD_COUNT="4", SHARD_IDS="2, 0")
    assert first.owned_shards == (2, 0)
    assert first.syncs_commands
    second = settings_from(monkeypatch, SHARD_IDS="1,3")
    assert second.owned_shards == (1, 3)
    assert not second.syncs_commands


def test_sync_commands_overrides_the_automatic_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = settings_from(monkeypatch, SHARD_COUNT="2", SHARD_IDS="1", SYNC_COMMANDS="true")
    assert chosen.syncs_commands
    kept_out = settings_from(monkeypatch, SHARD_IDS="0", SYNC_COMMANDS="false")
    assert not kept_out.syncs_commands


def test_shard_ids_without_a_count_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, SHARD_IDS="0")
    assert "SHARD_IDS needs SHARD_COUNT" in message


def test_an_id_at_or_past_the_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, SHARD_COUNT="2", SHARD_IDS="0,2,5")
    assert "SHARD_IDS: 2,5 is not below SHARD_COUNT=2" in message
    assert "0 to 1" in message


def test_a_shard_listed_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, SHARD_COUNT="4", SHARD_IDS="1,3,1")
    assert "SHARD_IDS lists shard 1 more than once" in message


@pytest.mark.parametrize("garbage", ["a,b", "0;1", "-1", "1.5", "0,,x"])
def test_garbage_ids_are_refused(monkeypatch: pytest.MonkeyPatch, garbage: str) -> None:
    message = refusal(monkeypatch, SHARD_COUNT="4", SHARD_IDS=garbage)
    assert "SHARD_IDS: must be comma-separated shard numbers, e.g. 0,1" in message


@pytest.mark.parametrize("count", ["0", "-2", "two"])
def test_a_count_below_one_or_not_a_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, count: str
) -> None:
    assert "SHARD_COUNT:" in refusal(monkeypatch, SHARD_COUNT=count)


def test_blank_ids_mean_every_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(monkeypatch, SHARD_COUNT="2", SHARD_IDS=" ").owned_shards == (0, 1)


def test_the_rest_proxy_url_must_name_the_api_version(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from(monkeypatch, DISCORD_API_BASE="http://nirn-proxy:8080/api/v10/")
    assert s.discord_api_base == "http://nirn-proxy:8080/api/v10"
    message = refusal(monkeypatch, DISCORD_API_BASE="http://nirn-proxy:8080")
    assert "DISCORD_API_BASE: must end with /api/v10" in message
    assert "DISCORD_API_BASE: must be an http" in refusal(
        monkeypatch, DISCORD_API_BASE="nirn-proxy:8080/api/v10"
    )
    assert settings_from(monkeypatch, DISCORD_API_BASE="").discord_api_base is None
