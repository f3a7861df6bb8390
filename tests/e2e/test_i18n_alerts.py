"""Admin-channel posts speak the server's language (issue 22): the credit and field-map alerts
each server's alerts channel gets, and the mod log. The language is the one the server's admins
chose with ``/wan-admin config language``, else the server's Discord language, else English;
numbers are written the way that language writes them, and what members typed stays verbatim."""

from __future__ import annotations

import dataclasses

import pytest

from bot.app import WanBot
from bot.domain.modlog import ModLogLimiter
from bot.services.modlog import ModLogService
from tests.e2e.test_i18n_channel import config_language
from tests.fakes.crun_server import DEFAULT_SCHEMA_FIELDS
from tests.fakes.discord_fake import FakeChannel, FakeGuild, FakeMember, FakeMessage
from tests.world import WanWorld, ephemeral_reply

pytestmark = pytest.mark.timeout(60)

LOW_ENGLISH = (
    "⚠️ The crun.ai balance is low (balance: 1,234.5 credits), below the alert threshold of "
    "2,000. Top it up to avoid a pause."
)
LOW_GERMAN = (
    "⚠️ Das crun.ai-Guthaben ist niedrig (Guthaben: 1.234,5 Credits) und liegt unter der "
    "Warnschwelle von 2.000. Lade es auf, damit es keine Pause gibt."
)


async def alerts_to(
    bot: WanBot, guild: FakeGuild, channel: FakeChannel, language: str | None = None
) -> None:
    """The server's alerts go to ``channel`` (and its admins chose ``language``)."""
    assert bot.services is not None
    await bot.services.admin.change_config(
        guild.id,
        lambda c: dataclasses.replace(c, alerts_channel_id=channel.id, language=language),
    )


def bot_posts(wan: WanWorld, channel: FakeChannel) -> list[FakeMessage]:
    return [m for m in wan.fake.messages[channel.id] if wan.from_bot(m)]


async def test_a_low_balance_alert_comes_in_each_servers_language(wan: WanWorld) -> None:
    wan.guild.locale = "de"  # German by its Discord language
    german = wan.fake.add_channel(wan.guild, "bot-alerts")
    english_server = wan.fake.add_guild("English Lab")
    english = wan.fake.add_channel(english_server, "bot-alerts")
    french_server = wan.fake.add_guild("Chosen French")  # en-US on Discord, French by choice
    french = wan.fake.add_channel(french_server, "bot-alerts")
    wan.crun.balance = 5000  # fine at start-up: the alert comes once the channels are set
    async with wan.fake.running(wan.bot(low_balance_threshold=2000)) as bot:
        assert isinstance(bot, WanBot)
        await alerts_to(bot, wan.guild, german)
        await alerts_to(bot, english_server, english)
        await alerts_to(bot, french_server, french, language="fr")
        wan.crun.balance = 1234.5
        await bot.runtime.credits.check()
        for channel in (german, english, french):
            await wan.fake.wait_message(channel, lambda m: "crun.ai" in m.content, timeout=10)
    [in_german] = bot_posts(wan, german)
    [in_english] = bot_posts(wan, english)
    [in_french] = bot_posts(wan, french)
    assert in_german.content == LOW_GERMAN
    assert in_english.content == LOW_ENGLISH
    assert in_french.content.startswith("⚠️ Le solde crun.ai est bas")
    assert "1\u202f234,5" in in_french.content  # French groups with a narrow no-break space
    for message in (in_german, in_english, in_french):
        assert message.allowed_mentions == {"parse": []}


async def test_out_of_credits_and_the_recovery_are_posted_in_german(wan: WanWorld) -> None:
    wan.guild.locale = "de"
    alerts = wan.fake.add_channel(wan.guild, "bot-alerts")
    async with wan.fake.running(wan.bot()) as bot:
        assert isinstance(bot, WanBot)
        await alerts_to(bot, wan.guild, alerts)
        wan.crun.balance = 0
        await bot.runtime.credits.check()
        await wan.fake.wait_message(alerts, lambda m: m.content.startswith("⛔"), timeout=10)
        wan.crun.balance = 5000
        await bot.runtime.credits.check()
        await wan.fake.wait_message(alerts, lambda m: m.content.startswith("✅"), timeout=10)
    out, recovered = bot_posts(wan, alerts)
    assert out.content.startswith("⛔ Das crun.ai-Konto hat keine Credits mehr (Guthaben: 0 ")
    assert recovered.content == (
        "✅ Das crun.ai-Guthaben ist wieder aufgefüllt (Guthaben: 5.000 Credits). "
        "Anfragen laufen wieder."
    )


async def test_a_changed_field_map_is_announced_in_the_servers_language(wan: WanWorld) -> None:
    alerts = wan.fake.add_channel(wan.guild, "bot-alerts")
    async with wan.fake.running(wan.bot()) as bot:
        assert isinstance(bot, WanBot)
        await alerts_to(bot, wan.guild, alerts, language="de")  # chosen, on an en-US server
        wan.crun.schema_fields = [f for f in DEFAULT_SCHEMA_FIELDS if f != "seed"]
        await bot.runtime.schema_watch.refresh()
        await wan.fake.wait_message(alerts, lambda m: "🔁" in m.content, timeout=10)
    [posted] = bot_posts(wan, alerts)
    assert posted.content.startswith("🔁 Das Modellschema von crun für Wan 2.7 Image Pro")
    assert "seed" in posted.content  # the field map itself is code, never translated
    assert posted.content.endswith("um zu prüfen, was crun akzeptiert.")


# --- the mod log --------------------------------------------------------------------------


async def config_cmd(wan: WanWorld, who: FakeMember, name: str, **options: object) -> str:
    handle = await wan.fake.slash(who, wan.guild, wan.channel, f"wan-admin config {name}", options)
    return await ephemeral_reply(handle)


def modlog_of(bot: object) -> ModLogService:
    assert isinstance(bot, WanBot)
    return bot.runtime.modlog


async def blocked_prompt_lines(wan: WanWorld, *, language: str | None = None) -> list[str]:
    """A server with a #mod-log and "gore" blocked; Alice tries three gory prompts within one
    line's budget, so the last two are summarised. Returns what the mod log shows."""
    admin = wan.add_admin()
    modlog = wan.fake.add_channel(wan.guild, "mod-log")
    async with wan.fake.running(wan.bot()) as bot:
        service = modlog_of(bot)
        now = [5_000.0]
        service.clock = lambda: now[0]  # the test moves the rate limit's clock
        service.limiter = ModLogLimiter(limit=1)
        if language is not None:
            await config_language(wan, admin, language)
        await config_cmd(wan, admin, "modlog", channel=modlog)
        await config_cmd(wan, admin, "blocked-words-add", words="gore")
        for prompt in ("so much gore", "gore <@&1>", "more gore"):
            await ephemeral_reply(await wan.imagine(prompt))
            await service.idle()
        now[0] += 60
        assert await service.flush() == 1
    return [m.content for m in bot_posts(wan, modlog)]


async def test_a_blocked_prompt_is_logged_in_german_on_a_german_server(wan: WanWorld) -> None:
    wan.guild.locale = "de"
    line, summary = await blocked_prompt_lines(wan)
    art, alice = wan.channel.id, wan.alice.id
    assert line == (
        f"**Prompt gesperrt** · <@{alice}> in <#{art}> · gesperrtes Wort: gore · "
        "||so much gore||"  # the member's prompt, verbatim
    )
    assert summary == "…und 2 weitere gesperrte Prompts in der letzten Minute."


async def test_the_admins_language_choice_wins_over_the_servers(wan: WanWorld) -> None:
    wan.guild.locale = "fr"
    line, summary = await blocked_prompt_lines(wan, language="de")
    assert line.startswith("**Prompt gesperrt** · ")
    assert summary == "…und 2 weitere gesperrte Prompts in der letzten Minute."


async def test_an_english_server_keeps_its_english_mod_log(wan: WanWorld) -> None:
    line, summary = await blocked_prompt_lines(wan)
    assert line == (
        f"**Blocked prompt** · <@{wan.alice.id}> in <#{wan.channel.id}> · blocked word: gore · "
        "||so much gore||"
    )
    assert summary == "…and 2 more blocked prompts in the last minute."


async def test_a_block_is_logged_in_the_servers_language(wan: WanWorld) -> None:
    wan.guild.locale = "ja"
    admin = wan.add_admin()
    modlog = wan.fake.add_channel(wan.guild, "mod-log")
    async with wan.fake.running(wan.bot()) as bot:
        await config_cmd(wan, admin, "modlog", channel=modlog)
        handle = await wan.command(admin, "wan-admin block", member=wan.bob, reason="spam")
        await handle.wait_response()
        await modlog_of(bot).idle()
    [posted] = bot_posts(wan, modlog)
    assert posted.content == (
        f"**メンバーのブロック** · <@{admin.id}> がこのサーバーで <@{wan.bob.id}> をブロック"
        f"しました · 理由: spam · コマンドの使用場所: <#{wan.channel.id}>"
    )
