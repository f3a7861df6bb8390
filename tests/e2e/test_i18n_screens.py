"""The member's own screens in the member's language (interaction.locale), through the real
discord.py, the fake Discord and the fake crun: /quota, /queue, /history with its Show here and
Re-run, /settings with its menus, buttons, form and "Saved" lines. English for en-US; custom_ids
and menu values never change with the language, and the member's prompt is never translated."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.domain.quota import Limits
from bot.store.quotas import QuotaRepository
from bot.ui.settings import SUFFIX_FIELD_ID, setting_id
from tests.fakes.discord_fake import CB_MODAL, CB_UPDATE, FakeMessage, InteractionHandle
from tests.fakes.discord_fake.model import walk_components
from tests.helpers import wait_until
from tests.world import WanWorld, click

pytestmark = pytest.mark.timeout(120)


async def private_screen(wan: WanWorld, command: str, locale: str) -> FakeMessage:
    """Alice runs ``command`` in ``locale``; its private answer."""
    handle = await wan.fake.slash(wan.alice, wan.guild, wan.channel, command, {}, locale=locale)
    await handle.wait_response()
    assert handle.ephemeral and handle.original is not None
    await wan.settle()
    return handle.original


def embed_of(message: FakeMessage) -> dict[str, Any]:
    embed: dict[str, Any] = message.embeds[0]
    return embed


def fields_of(message: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed_of(message)["fields"]}


def labels(message: FakeMessage) -> dict[str, str]:
    """Each button's label and each menu's placeholder, by custom_id."""
    return {
        c["custom_id"]: c.get("label") or c.get("placeholder") or ""
        for c in walk_components(message.components)
        if "custom_id" in c
    }


async def test_quota_in_german_and_in_english(wan: WanWorld) -> None:
    async with wan.database() as db:
        await QuotaRepository(db, wan.settings().quota_policy()).set_limits(
            wan.guild.id, "guild", 0, Limits(daily=2.5)
        )
    async with wan.fake.running(wan.bot()):
        german = await private_screen(wan, "quota", "de")
        english = await private_screen(wan, "quota", "en-US")
    assert embed_of(german)["title"] == "Deine Bild-Credits"
    today = fields_of(german)["Heute"]
    assert today.startswith("0 von 2,5 verbraucht · **2,5 übrig** · wird <t:"), today
    assert today.endswith(":R> zurückgesetzt")
    assert "Diesen Monat" in fields_of(german)
    assert embed_of(german)["footer"]["text"] != embed_of(english)["footer"]["text"]
    assert embed_of(english)["title"] == "Your image credits"
    assert fields_of(english)["Today"].startswith("0 of 2.5 used · **2.5 left** · resets <t:")
    assert fields_of(english)["This month"] == "0 used · no limit"


async def test_queue_and_its_cancel_menu_in_german(wan: WanWorld) -> None:
    wan.crun.task_latency = None
    async with wan.fake.running(wan.bot(engine={"max_concurrent_jobs": 1})):
        for prompt in ("eins", "ein Fuchs im Schnee"):
            await wan.imagine(prompt)
        await wait_until(lambda: len(wan.crun.tasks) == 1, what="the first task")
        german = await private_screen(wan, "queue", "de")
        english = await private_screen(wan, "queue", "en-US")

        assert embed_of(german)["title"] == "Warteschlange"
        fields = fields_of(german)
        assert fields["Wird gerade erstellt"] == "1"
        mine = fields["Deine wartenden Aufträge"]
        assert mine.startswith("**Platz 1 in der Warteschlange**"), mine
        assert "ein Fuchs im Schnee" in mine  # the prompt as written
        [menu] = [c for c in walk_components(german.components) if c.get("type") == 3]
        assert menu["custom_id"] == "wan:1:cq"
        assert menu["placeholder"] == "✖️ Einen deiner wartenden Aufträge abbrechen…"
        assert menu["options"][0]["description"].startswith("Auftrag ")
        job_id = menu["options"][0]["value"]

        assert embed_of(english)["title"] == "Queue"
        assert "#1 in line" in fields_of(english)["Your waiting jobs"]

        # Cancelling from the menu answers in German, and the panel is redrawn in German.
        chosen = await click(wan, wan.alice, german, "wan:1:cq", values=[job_id], locale="de")
        await chosen.wait_response()
        await wan.fake.wait_for(lambda: bool(german.content), 5, "the panel to update")
        assert german.content == "Abgebrochen; es wurde nichts berechnet."
        assert fields_of(german)["Deine wartenden Aufträge"] == "keine"
        for task_id in list(wan.crun.tasks):
            wan.crun.finish(task_id)
        await wan.settle()


async def history_press(
    wan: WanWorld, panel: FakeMessage, custom_id: str, *, locale: str, **kw: Any
) -> InteractionHandle:
    before = list(panel.custom_ids()), panel.content
    handle = await click(wan, wan.alice, panel, custom_id, locale=locale, **kw)
    await wan.fake.wait_for(
        lambda: (list(panel.custom_ids()), panel.content) != before, 5, "the panel to update"
    )
    await wan.settle()
    return handle


async def test_history_with_show_here_and_re_run_in_german(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        await wan.imagine_result("ein Leuchtturm bei Nacht")
        german = await private_screen(wan, "history", "de")
        english = await private_screen(wan, "history", "en-US")

        embed = embed_of(german)
        assert embed["title"] == "Dein Verlauf"
        assert embed["footer"]["text"] == "Seite 1 · neueste zuerst · nur du siehst das"
        assert "ein Leuchtturm bei Nacht" in embed["description"]
        assert "[Ergebnis](https://discord.com/channels/" in embed["description"]
        assert embed_of(english)["title"] == "Your history"
        assert "[result](https://discord.com/channels/" in embed_of(english)["description"]

        [menu_id] = [c for c in german.custom_ids() if c.split(":")[2] == "hs"]
        assert labels(german)[menu_id] == "Wähl einen Auftrag zum Anzeigen oder erneut Ausführen…"
        job_id = re.findall(r"`([a-z0-9]{10})`", embed["description"])[0]
        await history_press(wan, german, menu_id, values=[job_id], locale="de")
        assert german.content.startswith(f"Ausgewählt: `{job_id}`: ein Leuchtturm bei Nacht.")
        shown = {c.split(":")[2]: labels(german)[c] for c in german.custom_ids()}
        assert shown["hx"] == "Hier zeigen"
        assert shown["hr"] == "Erneut ausführen"
        assert f"**{shown['hx']}**" in german.content  # the reply names the buttons as shown

        # The English panel still reads as before.
        await history_press(wan, english, menu_id, values=[job_id], locale="en-US")
        assert "**Show here** posts its result again" in english.content
        assert {labels(english)[c] for c in english.custom_ids() if ":h" in c} >= {
            "Show here",
            "Re-run",
        }


async def test_settings_panel_menus_buttons_and_form_in_german(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        german = await private_screen(wan, "settings", "de")
        english = await private_screen(wan, "settings", "en-US")
        assert german.custom_ids() == english.custom_ids()  # only the words differ

        assert embed_of(german)["title"] == "Deine Einstellungen"
        assert fields_of(german)["Auflösung"] == "**2K** · Standard"
        assert fields_of(german)["Nachdenken"] == "**aus** · Standard"
        assert fields_of(german)["Prompt-Suffix"] == "keine"
        assert "/bild-erstellen" in embed_of(german)["description"]
        shown = labels(german)
        assert shown[setting_id("thinking")] == "Nachdenken: aus"
        assert shown[setting_id("reset")] == "Zurücksetzen"
        assert shown[setting_id("count")] == "Bilder pro Anfrage"
        menu = german.find_component(setting_id("count"))
        assert menu is not None
        assert [o["label"] for o in menu["options"][:2]] == [
            "1 Bild pro Anfrage",
            "2 Bilder pro Anfrage",
        ]
        assert [o["value"] for o in menu["options"][:2]] == ["1", "2"]  # values never change

        # A menu choice and a toggle: "Saved" lines and the redrawn panel in German.
        chosen = await click(wan, wan.alice, german, setting_id("count"), values=["2"], locale="de")
        assert (await chosen.wait_response()).type == CB_UPDATE
        await wan.settle()
        assert german.content == "Gespeichert: Bilder pro Anfrage 2."
        assert fields_of(german)["Bilder pro Anfrage"] == "**2** · deine Wahl"
        pressed = await click(wan, wan.alice, german, setting_id("thinking"), locale="de")
        assert (await pressed.wait_response()).type == CB_UPDATE
        await wan.settle()
        assert german.content == "Gespeichert: Nachdenken an."
        assert labels(german)[setting_id("thinking")] == "Nachdenken: an"

        # The form's title and field.
        opener = await click(wan, wan.alice, german, setting_id("suffix"), locale="de")
        assert (await opener.wait_response()).type == CB_MODAL
        assert opener.modal is not None and opener.modal["title"] == "Prompt-Suffix"
        assert "Wird ans Ende jedes Prompts angehängt" in str(opener.modal["components"])
        await wan.settle()  # discord.py keeps the form once Discord acknowledged it
        sent = await wan.fake.submit_modal(
            wan.alice, opener.modal["custom_id"], {SUFFIX_FIELD_ID: "Aquarell"}, locale="de"
        )
        assert (await sent.wait_response()).type == CB_UPDATE
        await wan.settle()
        assert german.content == "Gespeichert: Prompt-Suffix."
        assert fields_of(german)["Prompt-Suffix"].startswith("> Aquarell\n(wird ans Ende")

        # An English member's panel and "Saved" line read as before.
        pressed = await click(wan, wan.alice, english, setting_id("watermark"))
        assert (await pressed.wait_response()).type == CB_UPDATE
        await wan.settle()
        assert english.content == "Saved: watermark on."
        assert embed_of(english)["title"] == "Your settings"
        assert labels(english)[setting_id("thinking")] == "Thinking: on"
