"""Pressing a result's buttons and menus answers in the presser's language (issue 22): the Edit
form and every refusal are for that member only, so they follow their Discord client, while the
buttons themselves keep the channel's language."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bot.domain.text import t
from bot.errors import UserFacingError
from bot.i18n.catalogs import LOCALES
from bot.i18n.replies import render
from bot.ui.components import EditForm
from bot.ui.errors import user_message
from bot.ui.presses import services_of
from tests.e2e.test_i18n_channel import labels
from tests.fakes.discord_fake import CB_MODAL, FakeMember, FakeMessage, InteractionHandle
from tests.fakes.discord_fake.model import walk_components
from tests.security.test_buttons import answer, forge
from tests.world import WanWorld, button, click, ephemeral_text, job_id_of

pytestmark = pytest.mark.timeout(90)

GERMAN_FORM = {
    "title": "Bild bearbeiten",
    "label": "Was soll sich ändern?",
    "placeholder": "z. B. mach eine Nachtszene daraus und lass Schnee fallen",
}
ENGLISH_FORM = {
    "title": "Edit the image",
    "label": "What should change?",
    "placeholder": "e.g. make it night time and add falling snow",
}


def form(opener: InteractionHandle) -> dict[str, str]:
    """The title of the form a press opened, and its one text field's label and placeholder."""
    assert opener.modal is not None, "the bot opened no form"
    [field] = [c for c in walk_components(opener.modal["components"]) if c.get("type") == 4]
    # A text input sits in an action row (label on the input) or in a Label component.
    label = field.get("label") or next(
        c["label"] for c in walk_components(opener.modal["components"]) if c.get("type") == 18
    )
    return {
        "title": opener.modal["title"],
        "label": label,
        "placeholder": field["placeholder"],
    }


async def press_edit(wan: WanWorld, who: FakeMember, result: FakeMessage, locale: str) -> Any:
    opener = await click(wan, who, result, button(result, "ed"), locale=locale)
    assert (await opener.wait_response()).type == CB_MODAL
    return form(opener)


async def test_a_german_member_gets_a_german_edit_form_under_an_english_result(
    wan: WanWorld,
) -> None:
    wan.crun.image_size = (256, 256)
    async with wan.fake.running(wan.bot()):
        result = await wan.imagine_result("a cabin in a forest")
        german = await press_edit(wan, wan.bob, result, "de")
        english = await press_edit(wan, wan.bob, result, "en-US")
        french = await press_edit(wan, wan.bob, result, "fr")
    assert "Edit" in labels(result)  # the buttons keep the channel's language
    assert german == GERMAN_FORM
    assert english == ENGLISH_FORM
    assert french["title"] == "Modifier l'image"
    assert french["label"] != ENGLISH_FORM["label"]


async def test_a_german_member_who_did_not_ask_is_refused_delete_in_german(
    wan: WanWorld,
) -> None:
    async with wan.fake.running(wan.bot()):
        result = await wan.imagine_result("a secret")
        german = await click(wan, wan.bob, result, button(result, "rm"), locale="de")
        german_text = await ephemeral_text(german)
        english = await click(wan, wan.bob, result, button(result, "rm"), locale="en-US")
        english_text = await ephemeral_text(english)
        japanese = await click(wan, wan.bob, result, button(result, "rm"), locale="ja")
        japanese_text = await ephemeral_text(japanese)
        await wan.settle()
    mention = f"<@{wan.alice.id}>"
    assert german_text == (
        f"Nur wer das angefordert hat ({mention}) oder Mitglieder mit der Berechtigung "
        "„Nachrichten verwalten“ können es löschen."
    )
    assert english_text == (
        f"Only {mention}, who asked for this, or members with the Manage Messages permission "
        "can delete it."
    )
    assert mention in japanese_text and japanese_text != english_text
    assert not result.deleted


async def test_info_is_shown_in_the_pressers_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        result = await wan.imagine_result("ein Fuchs im Schnee")
        german = await click(wan, wan.bob, result, button(result, "in"), locale="de")
        await german.wait_response()
        english = await click(wan, wan.bob, result, button(result, "in"), locale="en-US")
        await english.wait_response()
        await wan.settle()
    assert german.ephemeral and german.original is not None
    assert english.original is not None
    [de_embed], [en_embed] = german.original.embeds, english.original.embeds
    # The embed's wording is /wan info's (bot/ui/embeds.py): the press only picks the language.
    assert de_embed["fields"][0]["name"] == render(t("Mode"), "de")
    assert en_embed["fields"][0]["name"] == "Mode"
    assert de_embed["description"] == en_embed["description"] == "ein Fuchs im Schnee"


async def press(
    wan: WanWorld,
    message: FakeMessage,
    custom_id: str,
    values: list[str] | None = None,
    *,
    locale: str = "en-US",
) -> InteractionHandle:
    """Bob presses a control the bot never sent (a modified client can send any custom_id)."""
    forge(message, custom_id, select=values is not None)
    handle = await wan.fake.click(wan.bob, message, custom_id, values=values, locale=locale)
    await handle.wait_response()
    await wan.settle()
    return handle


async def test_forged_image_numbers_are_refused_in_the_presser_language(wan: WanWorld) -> None:
    wan.crun.image_size = (256, 256)
    async with wan.fake.running(wan.bot()):
        result = await wan.imagine_result("a quiet pond")
        jid = job_id_of(result)
        german = answer(await press(wan, result, f"wan:1:ed:{jid}:42", locale="de"))
        english = answer(await press(wan, result, f"wan:1:va:{jid}:42"))
        menu = answer(await press(wan, result, f"wan:1:vas:{jid}", ["abc"], locale="de"))
    assert german == "Dieses Ergebnis hat kein Bild 42."
    assert english == "This result has no image 42."
    assert menu == "Wähl eins der Bilder im Menü aus."


def test_still_starting_up_is_said_in_the_members_language() -> None:
    interaction: Any = SimpleNamespace(client=object())
    with pytest.raises(UserFacingError) as caught:
        services_of(interaction)
    message = user_message(caught.value)
    assert message is not None
    assert render(message, None) == "I'm still starting up. Try again in a few seconds."
    assert render(message, "de") == "Ich starte noch. Versuch es in ein paar Sekunden noch einmal."


@pytest.mark.parametrize("locale", [None, *LOCALES])
async def test_the_edit_form_fits_discords_limits_in_every_language(locale: str | None) -> None:
    """Discord refuses a form whose title or label is over 45 characters, or a placeholder over
    100; a too-long translation would break Edit for a whole language."""
    services: Any = None
    for count, image in ((1, 1), (12, 12)):
        modal = EditForm(services, "job", image, count, locale)
        assert 1 <= len(modal.title) <= 45, modal.title
        label = modal.instruction.label or ""
        assert 1 <= len(label) <= 45, label
        placeholder = modal.instruction.placeholder or ""
        assert 1 <= len(placeholder) <= 100, placeholder
