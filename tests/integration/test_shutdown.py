"""Graceful shutdown: SIGTERM with a job in flight, the next start finishes it; new commands
during shutdown are turned away politely."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.jobs.engine import RESTARTING_MESSAGE
from tests.fakes.crun_server import FakeCrun
from tests.fakes.discord_fake import CB_MESSAGE, DiscordFake
from tests.helpers import wait_until
from tests.processes import Running, cli_env, start
from tests.world import WanWorld, button, click, discord_fake, ephemeral_text, wan

__all__ = ["discord_fake", "wan"]  # the e2e world's fixtures, used here too

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sigterm_with_a_job_in_flight_then_the_next_run_delivers_it_once(
    crun: FakeCrun, tmp_path: Path
) -> None:
    crun.task_latency = None  # the task stays pending at crun until we finish it
    async with DiscordFake() as fake:
        guild = fake.add_guild("Wan Lab")
        channel = fake.add_channel(guild, "art")
        alice = fake.add_member(guild, username="alice")
        env = cli_env(
            crun, tmp_path, DISCORD_TOKEN=fake.token, LOG_LEVEL="DEBUG", LOG_FORMAT="json"
        )

        first = Running(await start(env, tmp_path, "run", discord=fake))
        await wait_until(lambda: fake.command_syncs == 1, timeout=30, what="command sync")
        await fake.wait_ready(timeout=30)
        handle = await fake.slash(alice, guild, channel, "imagine", {"prompt": "a lighthouse"})
        await handle.wait_response(timeout=15)
        await wait_until(lambda: len(crun.tasks) == 1, timeout=30, what="the task at crun")
        assert await first.stop() == 0, first.err.decode()
        assert first.logged("not accepting new commands (shutting down)")
        assert not any(m.attachments for m in fake.messages.get(channel.id, []))
        # Logs are JSON lines, and the job's lines carry its ids.
        queued = [d for d in first.logs() if " queued for user " in str(d["message"])]
        assert len(queued) == 1
        job_id = queued[0]["job_id"]
        assert queued[0]["guild_id"] == guild.id

        (task_id,) = crun.tasks
        crun.finish(task_id)
        second = Running(await start(env, tmp_path, "run", discord=fake))
        await fake.wait_message(channel, lambda m: bool(m.attachments), timeout=30)
        await wait_until(
            lambda: second.logged(f"job {job_id} delivered"), timeout=30, what="delivery log"
        )
        assert await second.stop() == 0, second.err.decode()

    results = [m for m in fake.messages.get(channel.id, []) if m.attachments]
    assert len(results) == 1  # delivered exactly once
    assert crun.calls["create"] == 1  # resumed, never resubmitted

    second_logs = second.logs()
    assert any(str(d["message"]).startswith("resumed 1 unfinished job") for d in second_logs)
    delivered = [d for d in second_logs if d["message"] == f"job {job_id} delivered"]
    assert [(d["job_id"], d["guild_id"]) for d in delivered] == [(job_id, guild.id)]
    for run in (first, second):
        assert crun.api_key.encode() not in run.err + run.out
        assert fake.token.encode() not in run.err + run.out
        assert b"Traceback" not in run.err


# --- turning new commands away (in process: the same calls the signal handler makes) ----------


async def test_new_commands_and_buttons_during_shutdown_get_a_restart_notice(
    wan: WanWorld,
) -> None:
    wan.crun.image_size = (256, 256)
    bot = wan.bot()
    async with wan.fake.running(bot):
        result = await wan.imagine_result("a red fox", user=wan.alice)
        bot.stop_accepting()  # what SIGTERM does first

        command = await wan.fake.slash(
            wan.bob, wan.guild, wan.channel, "imagine", {"prompt": "a blue fox"}
        )
        response = await command.wait_response()
        assert response.type == CB_MESSAGE
        assert command.ephemeral
        assert command.original is not None
        assert command.original.content == RESTARTING_MESSAGE.english()

        quota = await wan.fake.slash(wan.bob, wan.guild, wan.channel, "quota")
        assert await ephemeral_text(quota) == RESTARTING_MESSAGE.english()

        # A button that would start a job meets the engine's closed intake.
        reroll = await click(wan, wan.alice, result, button(result, "rr"))
        assert await ephemeral_text(reroll) == RESTARTING_MESSAGE.english()
        # Info starts nothing: it still works while the bot finishes up.
        info = await click(wan, wan.alice, result, button(result, "in"))
        assert (await info.wait_response()).type == CB_MESSAGE
        assert info.original is not None and info.original.embeds
        assert await bot.runtime.jobs.recent_for_user(wan.bob.id) == []  # nothing stored

    assert wan.crun.calls["create"] == 1  # only the first job was ever sent
