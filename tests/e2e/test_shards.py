"""Shards through the fake Discord: one process owning several, two processes splitting them (only
the one with shard 0 syncs the commands), a REST proxy address, and what /healthz and /metrics
say about each process's shards."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import WanBot
from tests.fakes.discord_fake import DiscordFake, FakeChannel, FakeGuild, FakeMember
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)

# discord.py waits 5 s before each IDENTIFY after a process's first (Discord's identify limit).
TWO_SHARDS_READY = 20.0


@dataclass
class Server:
    guild: FakeGuild
    channel: FakeChannel
    member: FakeMember


def server_on(fake: DiscordFake, shard: int, shard_count: int) -> Server:
    """A server whose id puts it on ``shard`` ((id >> 22) % shard_count, Discord's rule). The
    fake's snowflakes follow the clock, so at most a millisecond of them is skipped."""
    guild_id = fake.snowflake()
    while (guild_id >> 22) % shard_count != shard:
        guild_id = fake.snowflake()
    guild = fake.add_guild(f"Shard {shard} server", id=guild_id)
    channel = fake.add_channel(guild, "art")
    member = fake.add_member(guild, username=f"artist{shard}")
    return Server(guild, channel, member)


def identified_shards(fake: DiscordFake) -> list[list[int]]:
    return sorted(f["d"]["shard"] for way, f in fake.gateway_log if way == "recv" and f["op"] == 2)


async def imagine_in(wan: WanWorld, server: Server, prompt: str) -> None:
    """/imagine in ``server``; returns once its result (files) is posted there."""
    before = wan.result_ids(server.channel)
    await wan.imagine(prompt, user=server.member, guild=server.guild, channel=server.channel)
    await wan.next_result(before, channel=server.channel)


async def stored_jobs(bot: WanBot) -> int:
    return sum((await bot.runtime.jobs.count_by_status()).values())


async def get(bot: WanBot, path: str) -> str:
    assert bot.runtime.callback_server is not None
    url = f"http://127.0.0.1:{bot.runtime.callback_server.ports[0]}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return await resp.text()


async def healthz(bot: WanBot) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(await get(bot, "/healthz"))
    return body


async def metrics(bot: WanBot) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(await get(bot, "/metrics")):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def process_info(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, str]:
    (labels,) = [dict(k[1]) for k in samples if k[0] == "wanbot_process_info"]
    return labels


async def test_one_process_owns_two_shards_and_answers_on_both(wan: WanWorld) -> None:
    servers = [server_on(wan.fake, 0, 2), server_on(wan.fake, 1, 2)]
    bot = wan.bot(shard_count=2, shard_ids=[0, 1], health_listen="127.0.0.1:0")
    async with wan.fake.running(bot, ready_timeout=TWO_SHARDS_READY):
        assert identified_shards(wan.fake) == [[0, 2], [1, 2]]
        for server in servers:
            await imagine_in(wan, server, f"a fox on {server.guild.name}")
        assert wan.crun.calls["create"] == 2

        health = await healthz(bot)
        assert health["status"] == "ok", health
        assert health["checks"]["gateway"] == {"ok": True, "detail": "connected"}
        assert health["shards"] == {"count": 2, "ids": [0, 1], "connected": {"0": True, "1": True}}

        samples = await metrics(bot)
        assert samples[("wanbot_shards_owned", frozenset())] == 2
        for shard in ("0", "1"):
            assert samples[("wanbot_shard_connected", frozenset({("shard", shard)}))] == 1
        info = process_info(samples)
        assert info["instance"] == bot.runtime.engine.instance_id
        assert (info["shard_ids"], info["shard_count"]) == ("0,1", "2")
        assert wan.fake.command_syncs == 1


async def test_two_processes_split_the_shards_and_only_shard_0_syncs(
    wan: WanWorld, caplog: pytest.LogCaptureFixture
) -> None:
    zero, one = server_on(wan.fake, 0, 2), server_on(wan.fake, 1, 2)
    tmp = wan.tmp_path

    def process(shard: int) -> WanBot:
        return wan.bot(
            shard_count=2,
            shard_ids=[shard],
            health_listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp / f'shard{shard}.sqlite3'}",  # whose jobs are whose
        )

    second, first = process(1), process(0)
    caplog.set_level(logging.INFO, logger="bot.app")
    async with wan.fake.running(second):
        assert wan.fake.command_syncs == 0  # shard 1's process leaves it to shard 0's
        assert "the process that owns shard 0 does" in caplog.text
        async with wan.fake.running(first):
            assert wan.fake.command_syncs == 1
            assert identified_shards(wan.fake) == [[0, 2], [1, 2]]

            await imagine_in(wan, zero, "a heron")
            assert (await stored_jobs(first), await stored_jobs(second)) == (1, 0)
            await imagine_in(wan, one, "an owl")
            await imagine_in(wan, one, "a wren")
            assert (await stored_jobs(first), await stored_jobs(second)) == (1, 2)

            for bot, shard in ((first, 0), (second, 1)):
                health = await healthz(bot)
                assert health["shards"] == {
                    "count": 1,
                    "ids": [shard],
                    "connected": {str(shard): True},
                }
                samples = await metrics(bot)
                assert samples[("wanbot_shards_owned", frozenset())] == 1
                key = ("wanbot_shard_connected", frozenset({("shard", str(shard))}))
                assert samples[key] == 1
                assert process_info(samples)["shard_ids"] == str(shard)
            instances = {process_info(await metrics(b))["instance"] for b in (first, second)}
            assert len(instances) == 2  # the two processes are told apart


async def test_a_shard_that_drops_fails_health_and_is_named(wan: WanWorld) -> None:
    bot = wan.bot(shard_count=2, health_listen="127.0.0.1:0")
    async with wan.fake.running(bot, ready_timeout=TWO_SHARDS_READY):
        shard = bot.get_shard(1)
        assert shard is not None
        await shard.disconnect()
        health = await healthz(bot)
        assert health["failing"] == ["gateway"]
        assert health["checks"]["gateway"]["detail"] == "not connected: shard 1 of 2"
        assert health["shards"]["connected"] == {"0": True, "1": False}
        samples = await metrics(bot)
        assert samples[("wanbot_shard_connected", frozenset({("shard", "1")}))] == 0
        assert samples[("wanbot_shard_connected", frozenset({("shard", "0")}))] == 1


async def test_unsharded_is_one_connection_as_before(wan: WanWorld) -> None:
    bot = wan.bot(health_listen="127.0.0.1:0")
    async with wan.fake.running(bot):
        assert identified_shards(wan.fake) == [[0, 1]]
        assert len(wan.fake.sessions) == 1
        assert (await healthz(bot))["shards"] == {"count": 1, "ids": [0], "connected": {"0": True}}
        assert wan.fake.api_url == discord.http.Route.BASE  # the fake's address is left alone
        assert wan.fake.command_syncs == 1


async def test_discord_api_base_carries_every_rest_call(wan: WanWorld) -> None:
    """DISCORD_API_BASE at the fake's own address: the proxy's place in a deployment."""
    original = discord.http.Route.BASE
    bot = wan.bot(discord_api_base=wan.fake.api_url + "/")
    assert discord.http.Route.BASE == wan.fake.api_url == original
    async with wan.fake.running(bot):
        await imagine_in(wan, Server(wan.guild, wan.channel, wan.alice), "a kingfisher")
    assert wan.fake.command_syncs == 1
    assert wan.fake.unhandled == []
