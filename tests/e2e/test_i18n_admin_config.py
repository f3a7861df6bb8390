"""/wan-admin config answers the admin who ran it in their own language (interaction.locale),
through the real command tree, the fake Discord and the fake crun: setting a channel, blocking
words, the settings overview, a refused regular expression. English for en-US. Channel
mentions, words and patterns typed by admins are inserted as they are, never translated; the
refusals the settings cause a member follow that member's language."""

from __future__ import annotations

import pytest

from tests.fakes.discord_fake import CB_MESSAGE, FakeChannel, FakeMember, InteractionHandle
from tests.world import WanWorld, ephemeral_reply

pytestmark = pytest.mark.timeout(60)

MATCHING_DE = (
    "Beim Abgleich werden Groß- und Kleinschreibung, Akzente, versteckte Zeichen und gängige "
    "Tarnungen (b@d, b a d) ignoriert."
)
MATCHING_EN = "Matching ignores case, accents, hidden characters and common disguises (b@d, b a d)."


async def config_cmd(
    wan: WanWorld, who: FakeMember, name: str, locale: str, **options: object
) -> InteractionHandle:
    handle = await wan.fake.slash(
        who, wan.guild, wan.channel, f"wan-admin config {name}", options, locale=locale
    )
    response = await handle.wait_response()
    assert response.type == CB_MESSAGE
    assert handle.ephemeral
    assert handle.original is not None
    return handle


async def say(wan: WanWorld, who: FakeMember, name: str, locale: str, **options: object) -> str:
    handle = await config_cmd(wan, who, name, locale, **options)
    assert handle.original is not None
    return handle.original.content


def overview(handle: InteractionHandle) -> tuple[str, dict[str, str]]:
    """The settings embed's title and its fields (name: value)."""
    assert handle.original is not None
    [embed] = handle.original.embeds
    return str(embed["title"]), {str(f["name"]): str(f["value"]) for f in embed["fields"]}


async def imagine_in(wan: WanWorld, channel: FakeChannel, locale: str) -> str:
    handle = await wan.fake.slash(
        wan.alice, wan.guild, channel, "imagine", {"prompt": "a lighthouse"}, locale=locale
    )
    return await ephemeral_reply(handle)


async def test_a_german_admin_sets_a_channel_and_blocks_words_in_german(wan: WanWorld) -> None:
    bots = wan.fake.add_channel(wan.guild, "bots")
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        added = await say(wan, admin, "channels-add", "de", channel=bots)
        assert added == (
            f"<#{bots.id}> wurde hinzugefügt. Bildgenerierung funktioniert nur in <#{bots.id}>; "
            "anderswo wird Mitgliedern gesagt, wohin sie gehen sollen."
        )
        again = await say(wan, admin, "channels-add", "en-US", channel=bots)
        assert again == (
            f"<#{bots.id}> was already on the list. Image generation works only in "
            f"<#{bots.id}>; elsewhere members are told where to go."
        )
        # The words an admin typed stay as typed; the sentence around them is German.
        blocked = await say(wan, admin, "blocked-words-add", "de", words="zebracorn, gore")
        assert blocked == f"2 Wörter gesperrt. Dieser Server sperrt insgesamt 2. {MATCHING_DE}"
        one_more = await say(wan, admin, "blocked-words-add", "en-US", words="gore, troll")
        assert one_more == (
            f"Blocked 1 word (1 already blocked). This server blocks 3 in all. {MATCHING_EN}"
        )
        listed = await say(wan, admin, "blocked-words-list", "de")
        assert listed.startswith("**Gesperrte Wörter (3)**")
        assert "zebracorn, gore, troll" in listed
        removed = await say(wan, admin, "blocked-words-remove", "ja", words="troll")
        assert "1" in removed and "2" in removed
        assert not removed.startswith("Removed")
        # A member is refused in their own language, whatever the admin's.
        assert await imagine_in(wan, wan.channel, "de") == (
            f"Bildgenerierung ist in diesem Kanal nicht aktiviert. Versuch es in <#{bots.id}>."
        )
        assert await imagine_in(wan, wan.channel, "en-US") == (
            f"Image generation isn't enabled in this channel. Try <#{bots.id}>."
        )
    assert wan.crun.calls["create"] == 0


async def test_the_settings_overview_is_in_the_admins_language(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await config_cmd(wan, admin, "spoiler", "de", state="on")
        title, fields = overview(await config_cmd(wan, admin, "show", "de"))
        assert title == "Einstellungen des Bild-Bots"
        assert fields["Kanäle"] == "jeder Kanal"
        assert fields["Spoiler"] == "jedes Ergebnis"
        assert fields["Sprache"] == "die Discord-Sprache des Servers"
        assert fields["Gesperrt"] == "Wörter: 0, Muster: 0"
        assert fields["Warnkanal"] == "nicht festgelegt"
        assert set(fields) == {
            "Kanäle",
            "Auflösung",
            "Spoiler",
            "Sprache",
            "Gesperrt",
            "Warnkanal",
            "Modlog",
            "DMs (alle Server)",
        }
        title, fields = overview(await config_cmd(wan, admin, "show", "en-US"))
        assert title == "Image bot settings"
        assert fields["Channels"] == "every channel"
        assert fields["Spoilers"] == "every result"
        assert fields["Blocked"] == "0 word(s), 0 pattern(s)"
        assert fields["Alerts channel"] == "not set"
        # Another catalog: neither English nor German.
        title, fields = overview(await config_cmd(wan, admin, "show", "fr"))
        assert title not in ("Image bot settings", "Einstellungen des Bild-Bots")
        assert "Channels" not in fields


async def test_a_refused_pattern_is_explained_in_the_admins_language(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        broken = await say(wan, admin, "blocked-patterns-add", "de", pattern="(unclosed")
        # Python's own description of the syntax error stays as ``re`` words it.
        assert broken.startswith("Das ist kein gültiger regulärer Ausdruck: ")
        assert broken.endswith(" (bei Zeichen 1).")
        english = await say(wan, admin, "blocked-patterns-add", "en-US", pattern="(unclosed")
        assert english.startswith("That is not a valid regular expression: ")
        slow = await say(wan, admin, "blocked-patterns-add", "de", pattern="(a+)+$")
        assert slow == (
            "Dieses Muster könnte den Bot langsam machen: es wiederholt etwas, das sich selbst "
            "wiederholt, wie `(a+)+`."
        )
        verbose = await say(wan, admin, "blocked-patterns-add", "ko", pattern="(?x)a b")
        assert "`(?x)`" in verbose and not verbose.startswith("The bot")
        added = await say(wan, admin, "blocked-patterns-add", "de", pattern=r"\bdrag(on|ons)\b")
        assert added == (
            "Hinzugefügt; insgesamt 1 Muster. Groß- und Kleinschreibung wird ignoriert; `*` und "
            "`+` erfassen höchstens 100 Zeichen."
        )
        listed = await say(wan, admin, "blocked-patterns-list", "de")
        assert listed == "**Sperrmuster (1)**\n```\n\\bdrag(on|ons)\\b\n```"
        # The member whose prompt the pattern blocks reads the refusal in their language.
        handle = await wan.fake.slash(
            wan.alice, wan.guild, wan.channel, "imagine", {"prompt": "two DRAGONS"}, locale="de"
        )
        refused = await ephemeral_reply(handle)
        assert refused.startswith("Dein Prompt enthält ein Wort, das dieser Server nicht erlaubt.")
    assert wan.crun.calls["create"] == 0


async def test_resolution_and_dms_answers_follow_the_admin(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot(bot_owner_ids=[admin.id])):
        await config_cmd(wan, admin, "resolution-default", "en-US", resolution="4K")
        lowered = await say(wan, admin, "resolution-max", "de", resolution="2K")
        assert lowered == (
            "Mitglieder können höchstens 2K anfordern; größere Anfragen werden mit Begründung "
            "abgelehnt. Die Standardauflösung wurde auf 2K gesenkt."
        )
        refused = await say(wan, admin, "resolution-default", "de", resolution="4K")
        assert refused == (
            "Das Maximum dieses Servers ist 2K. Wähl das oder weniger, oder heb zuerst das "
            "Maximum mit `/wan-admin konfiguration auflösung-max` an."
        )
        english = await say(wan, admin, "dms", "en-US", state="off")
        assert english == "Requests in DMs are refused, for every server."
        german = await say(wan, admin, "dms", "de", state="default")
        assert german.startswith("Anfragen in DMs ")
        assert "(Einstellung ALLOW_DMS)" in german
