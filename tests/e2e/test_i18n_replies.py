"""Replies in the member's language (interaction.locale), through the real discord.py, the fake
Discord and the fake crun: validation errors, quota refusals and /wan help. English for en-US
and for a language without a catalog; the member's prompt is never translated."""

from __future__ import annotations

import pytest

from bot.domain.quota import Limits
from bot.store.quotas import QuotaRepository
from bot.ui import embeds
from tests.fakes.discord_fake import InteractionHandle
from tests.helpers import png
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)

TOO_LONG_DE = (
    "Dein Prompt hat 5.001 Zeichen; erlaubt sind 5.000. Kürze ihn und versuch es noch einmal."
)
TOO_LONG_EN = "Your prompt is 5,001 characters; the limit is 5,000. Shorten it and try again."


async def private_answer(wan: WanWorld, handle: InteractionHandle) -> str:
    """The ephemeral text a refused request got (an immediate reply or a followup)."""
    await handle.wait_until(lambda h: h.original is not None or bool(h.followups))
    await wan.fake.wait_bot_idle()
    texts = [f.content for f in handle.followups if f.ephemeral]
    if handle.original is not None and handle.original.ephemeral:
        texts.append(handle.original.content)
    assert len(texts) == 1, texts
    return texts[0]


async def too_long(wan: WanWorld, locale: str) -> str:
    handle = await wan.fake.slash(
        wan.alice, wan.guild, wan.channel, "imagine", {"prompt": "x" * 5001}, locale=locale
    )
    return await private_answer(wan, handle)


def allow_long_prompts(wan: WanWorld) -> None:
    """As in test_hostile_inputs: commands synced without max_length let 6,000 characters
    through, so the bot's own rule answers."""
    [option] = [o for o in wan.fake.find_command("imagine")["options"] if o["name"] == "prompt"]
    option.pop("max_length")


async def test_a_validation_error_comes_in_the_members_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        allow_long_prompts(wan)
        assert await too_long(wan, "de") == TOO_LONG_DE
        assert await too_long(wan, "en-US") == TOO_LONG_EN
        assert await too_long(wan, "it") == TOO_LONG_EN  # no Italian catalog: English
        assert "5,001" in await too_long(wan, "ja")
        assert await too_long(wan, "ja") != TOO_LONG_EN
    assert wan.crun.calls["create"] == 0


async def half_a_credit_a_day(wan: WanWorld) -> None:
    async with wan.database() as db:
        await QuotaRepository(db, wan.settings().quota_policy()).set_limits(
            wan.guild.id, "guild", 0, Limits(daily=0.5)
        )


async def test_a_quota_refusal_comes_in_the_members_language(wan: WanWorld) -> None:
    await half_a_credit_a_day(wan)
    async with wan.fake.running(wan.bot(cost_per_image=1.0)):
        wan.crun.estimate_task_enabled = False  # the local table: 1 credit per 2K image
        wan.crun.estimate_credits_enabled = False
        asks = {
            locale: await wan.fake.slash(
                wan.alice, wan.guild, wan.channel, "imagine", {"prompt": "a fox"}, locale=locale
            )
            for locale in ("de", "en-US")
        }
        german = await private_answer(wan, asks["de"])
        english = await private_answer(wan, asks["en-US"])
    assert german.startswith(
        "Das kostet 1 Credits, aber du hast von deinen 0,5 Tages-Credits nur noch 0,5 übrig. "
        "Dein Tageskontingent wird <t:"
    ), german
    assert english.startswith(
        "This needs 1 credits but you have 0.5 of your 0.5 daily credits left. Your daily quota "
        "resets <t:"
    ), english
    assert wan.crun.calls["create"] == 0


async def help_embed(wan: WanWorld, locale: str) -> dict[str, object]:
    handle = await wan.fake.slash(wan.alice, wan.guild, wan.channel, "wan help", locale=locale)
    await handle.wait_response()
    assert handle.ephemeral and handle.original is not None
    embed: dict[str, object] = handle.original.embeds[0]
    return embed


async def test_wan_help_comes_in_the_members_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        german = await help_embed(wan, "de")
        english = await help_embed(wan, "en-US")
        fallback = await help_embed(wan, "it")
        japanese = await help_embed(wan, "ja")
    description = str(german["description"])
    assert description.startswith("**/bild-erstellen** `prompt` – erstellt Bilder aus Text.")
    assert "Limits: Prompts bis 5.000 Zeichen; bis zu 9 Eingabebilder" in description
    assert german["footer"] == {
        "text": "Ergebnisse werden im Kanal gepostet; Fehlermeldungen siehst nur du."
    }
    assert german["title"] == "Wan 2.7 Image Pro"
    assert english["description"] == embeds.HELP_TEXT
    assert "prompts up to 5,000 characters" in embeds.HELP_TEXT
    assert fallback == english
    assert "**/画像生成**" in str(japanese["description"])


async def test_a_mention_is_answered_in_the_servers_language(wan: WanWorld) -> None:
    """A plain message has no member locale: the server's preferred locale applies."""
    wan.guild.locale = "de"
    await half_a_credit_a_day(wan)
    async with wan.fake.running(wan.bot(cost_per_image=1.0)):
        wan.crun.estimate_task_enabled = False
        wan.crun.estimate_credits_enabled = False
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "my cat", attachments=[("cat.png", png(300, 300, (10, 20, 30)))]
        )
        await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{wan.fake.bot_user.id}> add a hat", reference=source
        )
        reply = await wan.fake.wait_message(
            wan.channel,
            lambda m: m.author.id == wan.fake.bot_user.id and "⚠️" in (m.content or ""),
        )
    assert reply.content.startswith("⚠️ Das kostet 1 Credits, aber du hast"), reply.content
    assert wan.crun.calls["create"] == 0
