"""A result posted in a channel speaks the server's language (issue 22): the server's Discord
language (guild_locale), or the one its admins chose with ``/wan-admin config language``, never
the language of the member who asked; private replies keep following the member. The language
is decided when the job is made and kept on its target."""

from __future__ import annotations

import pytest

from bot.domain.config import GuildConfig
from bot.ui.target import DiscordTarget
from tests.e2e.test_i18n_replies import allow_long_prompts, too_long
from tests.fakes.discord_fake import CB_MESSAGE, FakeMember, FakeMessage, InteractionHandle
from tests.fakes.discord_fake.model import walk_components
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)


def labels(message: FakeMessage) -> list[str]:
    return [c["label"] for c in walk_components(message.components) if c.get("label")]


def look(message: FakeMessage) -> tuple[str, list[str], list[str]]:
    """The result's title, its field names and its button labels."""
    [embed] = message.embeds
    fields = [str(f["name"]) for f in embed.get("fields", [])]
    return str(embed["title"]), fields, labels(message)


async def result_for(wan: WanWorld, prompt: str, *, locale: str = "en-US") -> FakeMessage:
    before = wan.result_ids()
    await wan.fake.slash(
        wan.alice, wan.guild, wan.channel, "imagine", {"prompt": prompt, "seed": 7}, locale=locale
    )
    result = await wan.next_result(before)
    await wan.settle()
    return result


async def config_language(wan: WanWorld, who: FakeMember, language: str) -> InteractionHandle:
    handle = await wan.fake.slash(
        who, wan.guild, wan.channel, "wan-admin config language", {"language": language}
    )
    response = await handle.wait_response()
    assert response.type == CB_MESSAGE
    assert handle.ephemeral
    return handle


GERMAN = (
    "Bild erstellen ✓",
    ["Angefordert von", "Seed", "Größe", "Dauer"],
    ["Neu würfeln", "Variieren", "Bearbeiten", "Hochskalieren 4K", "Info", "Löschen"],
)
ENGLISH = (
    "Imagine ✓",
    ["Requested by", "Seed", "Size", "Took"],
    ["Reroll", "Vary", "Edit", "Upscale 4K", "Info", "Delete"],
)


async def test_a_result_follows_the_servers_language_not_the_members(wan: WanWorld) -> None:
    wan.guild.locale = "de"
    async with wan.fake.running(wan.bot()):
        result = await result_for(wan, "a fox", locale="en-US")
    title, fields, buttons = look(result)
    assert (title, fields[: len(GERMAN[1])], buttons) == GERMAN
    assert result.embeds[0]["description"] == "a fox"  # the prompt is never translated
    assert result.embeds[0]["footer"]["text"].endswith("· result")  # crash recovery reads it


async def test_an_english_server_gets_english_results_but_german_private_replies(
    wan: WanWorld,
) -> None:
    async with wan.fake.running(wan.bot()):
        allow_long_prompts(wan)
        result = await result_for(wan, "a fox", locale="de")
        refused = await too_long(wan, "de")
    title, fields, buttons = look(result)
    assert (title, fields[: len(ENGLISH[1])], buttons) == ENGLISH
    assert refused.startswith("Dein Prompt hat 5.001 Zeichen")


async def test_the_servers_language_setting_wins_and_default_goes_back(wan: WanWorld) -> None:
    wan.guild.locale = "de"
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        refused = await config_language(wan, wan.alice, "fr")
        assert "Manage Server" in (refused.original.content if refused.original else ""), (
            refused.original
        )
        changed = await config_language(wan, admin, "fr")
        assert changed.original is not None and "`fr`" in changed.original.content
        show = await wan.fake.slash(admin, wan.guild, wan.channel, "wan-admin config show", {})
        await show.wait_response()
        assert show.original is not None
        shown = {f["name"]: f["value"] for f in show.original.embeds[0]["fields"]}
        assert shown["Language"] == "fr"
        french = await result_for(wan, "a fox")
        await config_language(wan, admin, "default")
        german = await result_for(wan, "a fox")
    title, fields, buttons = look(french)
    assert title == "Imaginer ✓"
    assert "Demandé par" in fields
    assert buttons[:3] == ["Relancer", "Varier", "Modifier"]
    assert look(german)[0] == GERMAN[0]


async def test_a_several_image_result_labels_its_per_image_buttons(wan: WanWorld) -> None:
    wan.guild.locale = "de"
    async with wan.fake.running(wan.bot()):
        before = wan.result_ids()
        await wan.imagine("two foxes", wait="sent", count=2)
        result = await wan.next_result(before)
        await wan.settle()
    buttons = labels(result)
    assert "Bild 1 variieren" not in buttons  # buttons read "<verb> <k>"
    assert {"Variieren 1", "Variieren 2", "Bearbeiten 1", "Bearbeiten 2"} <= set(buttons)


def test_the_language_is_kept_on_the_target_and_left_out_when_english() -> None:
    """What a delivery after a restart reads: the stored target (English targets unchanged)."""
    target = DiscordTarget(channel_id=1, user_id=2, guild_id=3, locale="de")
    stored = target.to_target()
    assert stored.data["locale"] == "de"
    assert DiscordTarget.from_target(stored).locale == "de"
    assert "locale" not in DiscordTarget(channel_id=1, user_id=2).to_target().data
    assert GuildConfig.from_json(GuildConfig(language="fr").to_json()).language == "fr"
    assert GuildConfig.from_json("{}").language is None
