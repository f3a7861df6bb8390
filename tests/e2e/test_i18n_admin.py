"""/wan-admin answers the admin who ran it in their own language (interaction.locale): quotas,
blocks, usage, balance, styles and the admin check itself, through the real discord.py, the fake
Discord and the fake crun. Mentions, style names and style texts stay as typed; numbers follow
the language; en-US reads today's English."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.styles import MAX_STYLE_NAME_CHARS
from bot.domain.text import t
from bot.i18n.replies import render
from cogs.admin_group import NOT_ADMIN
from tests.fakes.discord_fake import FakeMember, InteractionHandle
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(90)

BAD_NAME_DE = (
    f"Ein Stilname besteht aus 1 bis {MAX_STYLE_NAME_CHARS} Buchstaben oder Ziffern, dazwischen "
    "Leerzeichen, Bindestriche oder Unterstriche, z. B. `watercolor` oder `film-noir`."
)
BAD_NAME_EN = (
    f"A style name is 1 to {MAX_STYLE_NAME_CHARS} letters or digits, with spaces, hyphens or "
    "underscores between them, e.g. `watercolor` or `film-noir`."
)


async def admin(
    wan: WanWorld, who: FakeMember, command: str, locale: str, /, **options: Any
) -> InteractionHandle:
    """``who`` runs ``/wan-admin command`` from a client in ``locale``; returns once answered."""
    handle = await wan.fake.slash(
        who, wan.guild, wan.channel, f"wan-admin {command}", options, locale=locale
    )
    await handle.wait_response()
    await handle.wait_until(
        lambda h: (h.original is not None and not h.original.loading) or bool(h.followups)
    )
    await wan.fake.wait_bot_idle()
    return handle


def private_text(handle: InteractionHandle) -> str:
    """The private answer's text: a followup (after a deferral), else the immediate reply."""
    texts = [f.content for f in handle.followups if f.ephemeral]
    if not texts and handle.original is not None and handle.original.ephemeral:
        texts.append(handle.original.content)
    assert len(texts) == 1, texts
    return texts[0]


async def test_quota_replies_follow_the_admins_language(wan: WanWorld) -> None:
    boss = wan.add_admin("boss")
    alice = f"<@{wan.alice.id}>"
    async with wan.fake.running(wan.bot()):
        german = await admin(wan, boss, "quota set-user", "de", member=wan.alice, daily=2.5)
        assert private_text(german) == f"{alice}: täglich 2,5, monatlich unbegrenzt."
        english = await admin(wan, boss, "quota set-user", "en-US", member=wan.alice, daily=2.5)
        assert private_text(english) == f"{alice}: daily 2.5, monthly unlimited."

        shown = await admin(wan, boss, "quota show", "de", member=wan.alice)
        assert shown.original is not None and shown.ephemeral
        assert shown.original.content == f"{alice}:"  # the member's mention, as it is
        [embed] = shown.original.embeds
        # The /quota embed (cogs/quota.py, its own catalog entries) in the admin's language.
        assert embed["title"] == render(t("Your image credits"), "de")
        assert embed["fields"][0]["name"] == render(t("Today"), "de")
        assert "2,5" in embed["fields"][0]["value"]  # German decimals
        shown_en = await admin(wan, boss, "quota show", "en-US", member=wan.alice)
        assert shown_en.original is not None
        assert shown_en.original.embeds[0]["title"] == "Your image credits"
        assert "of 2.5 used" in shown_en.original.embeds[0]["fields"][0]["value"]

        granted = await admin(
            wan, boss, "quota grant", "de", member=wan.alice, credits=1.5, period="month"
        )
        assert private_text(granted) == (
            f"{alice} hat für diesen Monat 1,5 zusätzliche Credits bekommen."
        )
        listed = await admin(wan, boss, "quota list", "de")
        assert private_text(listed) == f"{alice}: täglich 2,5, monatlich unbegrenzt"
        cleared = await admin(wan, boss, "quota clear", "de", member=wan.alice)
        assert private_text(cleared) == "Sonderregel entfernt."
        neither = await admin(wan, boss, "quota clear", "de")
        assert private_text(neither) == "Wähl entweder ein Mitglied oder eine Rolle."
        empty = await admin(wan, boss, "quota list", "ja")
        assert private_text(empty) != "No limits set here: the bot's defaults apply."


async def test_member_commands_follow_the_admins_language(wan: WanWorld) -> None:
    boss = wan.add_admin("boss")
    bob = f"<@{wan.bob.id}>"
    async with wan.fake.running(wan.bot()):
        blocked = await admin(wan, boss, "block", "de", member=wan.bob, reason="spam")
        assert private_text(blocked) == f"{bob} kann den Bot hier nicht mehr benutzen."
        unblocked = await admin(wan, boss, "unblock", "de", member=wan.bob)
        assert private_text(unblocked) == f"{bob} wurde entsperrt."
        again = await admin(wan, boss, "unblock", "en-US", member=wan.bob)
        assert private_text(again) == "Not blocked."

        balance = await admin(wan, boss, "balance", "de")
        assert private_text(balance) == "crun.ai-Guthaben: **1.000** Credits."  # German 1,000
        refused = await admin(wan, boss, "forget", "de", member=wan.alice)
        assert private_text(refused).startswith("Das löscht die Daten dieses Mitglieds endgültig.")

        usage = await admin(wan, boss, "usage", "de", days=7)
        report = private_text(usage)
        assert report.startswith("**Top-Mitglieder, letzte 7 Tage**\n```\n")
        assert "keine Nutzung in diesem Zeitraum" in report
        usage_en = await admin(wan, boss, "usage", "en-US", days=7)
        assert private_text(usage_en).startswith("**Top members, last 7 days**")


async def test_style_replies_follow_the_admins_language(wan: WanWorld) -> None:
    boss = wan.add_admin("boss")
    async with wan.fake.running(wan.bot()):
        bad = await admin(wan, boss, "style add", "de", name="!!!", text="film noir")
        assert private_text(bad) == BAD_NAME_DE
        bad_en = await admin(wan, boss, "style add", "en-US", name="!!!", text="film noir")
        assert private_text(bad_en) == BAD_NAME_EN

        none_yet = await admin(wan, boss, "style list", "de")
        assert private_text(none_yet) == (
            "Dieser Server hat noch keine Stile. Füg einen mit `/wan-admin stil hinzufügen` hinzu."
        )
        added = await admin(wan, boss, "style add", "de", name="Noir", text="film noir, grain")
        text = private_text(added)
        assert text.startswith("Stil `noir` hinzugefügt.")  # the name as stored, not translated
        assert "/bild-erstellen" in text
        added_en = await admin(wan, boss, "style add", "en-US", name="noir", text="film noir")
        assert private_text(added_en) == "Style `noir` has a new text."
        listed = await admin(wan, boss, "style list", "de")
        assert private_text(listed) == "**Stile (1 von 25)**\n```\nnoir: film noir\n```"
        unknown = await admin(wan, boss, "style remove", "fr", name="pixel")
        assert private_text(unknown) == (
            "Il n'y a pas de style `pixel` sur ce serveur. Choisis parmi : `noir`."
        )


async def test_the_admin_check_refuses_in_the_members_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        german = await admin(wan, wan.alice, "quota set-user", "de", member=wan.bob, daily=0)
        text = private_text(german)
        assert "„Server verwalten“" in text and text != NOT_ADMIN
        english = await admin(wan, wan.alice, "style list", "en-US")
        assert private_text(english) == NOT_ADMIN
