"""How a request comes in, in the reader's language (issue 22): refusals of input images, the
"Edit with Wan" form, the mention path (the server's language: its admins' choice, else its
Discord language), the permission refusal and the private-results notes. Through the real bot,
the fake Discord and the fake crun; nothing is spent on a refused request."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.e2e.test_i18n_channel import config_language
from tests.e2e.test_i18n_replies import private_answer
from tests.e2e.test_private import turn_private_on
from tests.fakes.discord_fake import CB_MODAL, FakeMessage, InteractionHandle
from tests.helpers import encode, png
from tests.world import WanWorld, ephemeral_reply, ephemeral_text

pytestmark = pytest.mark.timeout(60)

MENU = "Edit with Wan"
GIF = encode(Image.new("P", (300, 300)), "GIF")

WRONG_TYPE_DE = "anim.gif ist ein GIF; schick ein PNG-, JPEG-, WEBP- oder BMP-Bild."
WRONG_TYPE_EN = "anim.gif is a GIF; send a PNG, JPEG, WEBP or BMP image."
TEN_DE = (
    "Das sind 10 Bilder; das Modell nimmt höchstens 9 auf einmal. Poste die, die du verwenden "
    "willst (bis zu 9), in einer eigenen Nachricht und versuch es noch einmal."
)
TEN_EN = (
    "That's 10 images; the model takes at most 9 at a time. Post the ones you want to use (up "
    "to 9) in a message of their own and try again."
)
NO_IMAGES_DE = (
    "⚠️ Ich sehe keine Bilder in der Nachricht, auf die du geantwortet hast. Falls sie welche "
    "hat, nutze stattdessen Rechtsklick darauf → Apps → Mit Wan bearbeiten."
)
NO_IMAGES_EN = (
    "⚠️ I can't see any images in the message you replied to. If it has some, right-click it "
    "→ Apps → Edit with Wan instead."
)


def nothing_spent(wan: WanWorld) -> None:
    assert wan.crun.calls["create"] == 0
    assert wan.crun.calls["upload_url"] == 0


async def edit_gif(wan: WanWorld, locale: str) -> str:
    handle = await wan.fake.slash(
        wan.alice,
        wan.guild,
        wan.channel,
        "edit",
        {"prompt": "make it nice"},
        attachments={"image": ("anim.gif", GIF)},
        locale=locale,
    )
    return await private_answer(wan, handle)


async def test_a_wrong_file_type_is_refused_in_the_members_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        assert await edit_gif(wan, "de") == WRONG_TYPE_DE
        assert await edit_gif(wan, "en-US") == WRONG_TYPE_EN
        japanese = await edit_gif(wan, "ja")
    assert "anim.gif" in japanese and japanese != WRONG_TYPE_EN
    nothing_spent(wan)


async def ten_images(wan: WanWorld) -> FakeMessage:
    return await wan.fake.post_user_message(
        wan.channel,
        wan.bob,
        "ten",
        attachments=[(f"p{i}.png", png(250, 250, (i * 20, 0, 0))) for i in range(10)],
    )


async def test_too_many_images_are_refused_in_the_members_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        source = await ten_images(wan)
        german = await wan.fake.message_context(wan.alice, source, MENU, locale="de")
        assert await ephemeral_reply(german) == TEN_DE
        english = await wan.fake.message_context(wan.alice, source, MENU, locale="en-US")
        assert await ephemeral_reply(english) == TEN_EN
    assert german.modal is None and english.modal is None
    assert not wan.fake.attachment_downloads
    nothing_spent(wan)


async def test_a_bad_file_in_a_list_is_named_in_the_members_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel,
            wan.bob,
            "two",
            attachments=[("thumb.png", png(120, 120)), ("dot.png", png(100, 100))],
        )
        handle = await wan.fake.message_context(wan.alice, source, MENU, locale="de")
        text = await ephemeral_reply(handle)
    lines = text.splitlines()
    assert lines[0] == "Diese Bilder können nicht verwendet werden:"
    assert lines[1] == (
        "• thumb.png hat 120×120 px; jede Seite muss mindestens 240 px lang sein. "
        "Schick ein größeres Bild."
    )
    assert lines[2].startswith("• dot.png hat 100×100 px")


async def test_the_edit_form_is_in_the_members_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "one", attachments=[("leaf.png", png(300, 300))]
        )
        opened = await wan.fake.message_context(wan.alice, source, MENU, locale="de")
        assert (await opened.wait_response()).type == CB_MODAL
        english = await wan.fake.message_context(wan.alice, source, MENU, locale="en-US")
        assert (await english.wait_response()).type == CB_MODAL
    assert opened.modal is not None and english.modal is not None
    assert opened.modal["title"] == "Mit Wan bearbeiten"
    assert english.modal["title"] == MENU
    form = json.dumps(opened.modal, ensure_ascii=False)
    for german in ("Was soll sich ändern?", "Auflösung", "Wie viele Bilder", "2K (Standard)"):
        assert german in form
    assert "What should change?" in json.dumps(english.modal)


async def mention_without_images(wan: WanWorld) -> str:
    source = await wan.fake.post_user_message(wan.channel, wan.bob, "just words")
    await wan.fake.post_user_message(
        wan.channel, wan.alice, f"<@{wan.fake.bot_user.id}> add a hat", reference=source
    )
    reply = await wan.fake.wait_message(
        wan.channel,
        lambda m: m.author.id == wan.fake.bot_user.id and "⚠️" in (m.content or ""),
    )
    await wan.fake.wait_bot_idle()
    return str(reply.content)


async def test_a_mention_in_a_german_server_is_refused_in_german(wan: WanWorld) -> None:
    wan.guild.locale = "de"
    async with wan.fake.running(wan.bot()):
        assert await mention_without_images(wan) == NO_IMAGES_DE
    nothing_spent(wan)


async def test_a_mention_follows_the_language_the_admins_chose(wan: WanWorld) -> None:
    """The server's Discord language is German, its admins chose French: French it is."""
    wan.guild.locale = "de"
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await config_language(wan, admin, "fr")
        text = await mention_without_images(wan)
    assert text.startswith("⚠️ Je ne vois aucune image dans le message auquel tu as répondu.")
    nothing_spent(wan)


async def test_a_mention_in_an_english_server_is_refused_in_english(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        assert await mention_without_images(wan) == NO_IMAGES_EN


async def test_a_missing_permission_is_named_in_the_members_language(wan: WanWorld) -> None:
    wan.fake.set_overwrite(wan.channel, wan.fake.bot_role(wan.guild), allow=0, deny=1 << 15)
    async with wan.fake.running(wan.bot()):
        handle = await wan.fake.slash(
            wan.alice, wan.guild, wan.channel, "imagine", {"prompt": "a fox"}, locale="de"
        )
        text = await ephemeral_reply(handle)
    assert text == (
        "Ich kann in diesem Kanal keine Bilder posten: Mir fehlt die Berechtigung Dateien "
        "anhängen. Bitte einen Server-Admin, sie zu erteilen, oder nutze mich in einem anderen "
        "Kanal."
    )
    nothing_spent(wan)


async def private_imagine(wan: WanWorld, locale: str) -> InteractionHandle:
    handle = await wan.fake.slash(
        wan.alice,
        wan.guild,
        wan.channel,
        "imagine",
        {"prompt": "a secret fox", "private": True},
        locale=locale,
    )
    await handle.wait_response()
    return handle


async def test_the_private_results_notice_is_in_the_members_language(wan: WanWorld) -> None:
    dm = wan.fake.dm_channel(wan.alice.user)
    async with wan.fake.running(wan.bot()):
        handle = await private_imagine(wan, "de")
        await wan.next_result(set(), channel=dm)
        await wan.settle()
    assert handle.original is not None and handle.original.ephemeral
    assert handle.original.content.startswith(
        "🔒 Privates Ergebnis: Ich erstelle es in unseren DMs. https://"
    ), handle.original.content


async def test_a_mentions_private_note_is_in_the_servers_language(wan: WanWorld) -> None:
    wan.guild.locale = "de"
    dm = wan.fake.dm_channel(wan.alice.user)
    async with wan.fake.running(wan.bot()):
        await turn_private_on(wan)
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "my cat", attachments=[("cat.png", png(300, 300))]
        )
        await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{wan.fake.bot_user.id}> add a hat", reference=source
        )
        await wan.next_result(set(), channel=dm)
        await wan.settle()
    notes = [
        m.content
        for m in wan.fake.messages[wan.channel.id]
        if wan.from_bot(m) and not m.ephemeral and not m.embeds
    ]
    assert notes == ["🔒 Privates Ergebnis: Es kommt per DM zu dir."]


async def test_closed_dms_are_explained_in_the_members_language(wan: WanWorld) -> None:
    wan.alice.user.dms_closed = True
    async with wan.fake.running(wan.bot()):
        german = await ephemeral_text(await private_imagine(wan, "de"))
        english = await ephemeral_text(await private_imagine(wan, "en-US"))
    assert german.startswith("Du wolltest ein privates Ergebnis, aber ich kann dir keine")
    assert "**Privatsphäre-Einstellungen**" in german and "/einstellungen" in german
    assert english.startswith("You asked for a private result, but I can't send you")
    nothing_spent(wan)
