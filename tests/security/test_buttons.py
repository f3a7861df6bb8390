"""Result buttons pressed by the wrong people or with forged custom_ids.

Design (bot/ui/components.py): anyone who can see a result may Reroll, Upscale, Vary, Edit (the
new job is theirs, charged to them) and view Info; Delete is for the requester and Manage
Messages. Already proven in tests/e2e/test_buttons.py: a stranger's Delete is refused with an
ephemeral message (::test_delete_by_a_stranger_is_refused_and_by_a_moderator_works), a
stranger's Reroll/Vary/Edit makes *their* job (::test_reroll_..._charged_to_the_presser,
::test_edit_opens_a_form_...), and a forged Upscale on an edit is refused (::test_upscale_is_
absent_on_edits_and_refused_if_pressed_anyway). Here: garbled ids, unknown jobs, out-of-range
images, and another server's job.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
import pytest

from bot.app import WanBot
from tests.fakes.discord_fake import (
    CB_MESSAGE,
    FakeGuild,
    FakeMember,
    FakeMessage,
    InteractionHandle,
)
from tests.world import WanWorld, job_id_of

pytestmark = pytest.mark.timeout(90)


def forge(message: FakeMessage, custom_id: str, *, select: bool = False) -> None:
    """Add a component the bot never sent (a modified client can send any custom_id)."""
    comp: dict[str, Any]
    if select:
        comp = {
            "type": 3,
            "custom_id": custom_id,
            "options": [{"label": "x", "value": "1"}],
        }
    else:
        comp = {"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}
    # One forged row in place of any earlier one: Discord allows at most 5 rows.
    real = [r for r in message.components if not r.get("forged")]
    message.components = [*real[:4], {"type": 1, "components": [comp], "forged": True}]


async def press(
    wan: WanWorld,
    who: FakeMember,
    message: FakeMessage,
    custom_id: str,
    values: list[str] | None = None,
    *,
    expect_answer: bool = True,
) -> InteractionHandle:
    forge(message, custom_id, select=values is not None)
    handle = await wan.fake.click(who, message, custom_id, values=values)
    if expect_answer:
        await handle.wait_response()
    await wan.settle()
    return handle


def answer(handle: InteractionHandle) -> str | None:
    """The ephemeral answer, or None when the bot (rightly) ignored an id it does not own."""
    if handle.response is None:
        return None
    if handle.response.type != CB_MESSAGE:  # deferred, then a followup
        followup = handle.followups[0] if handle.followups else None
        assert followup is None or followup.ephemeral
        return followup.content if followup else None
    assert handle.response.type == CB_MESSAGE, handle.response
    assert handle.ephemeral
    assert handle.original is not None
    return handle.original.content


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    caplog.set_level(logging.INFO)
    return caplog.records


def no_tracebacks(records: list[logging.LogRecord]) -> None:
    bad = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [(r.name, r.getMessage()) for r in bad]


async def test_garbled_and_forged_custom_ids_are_refused_gracefully(
    wan: WanWorld, errors: list[logging.LogRecord]
) -> None:
    wan.crun.image_size = (256, 256)
    async with wan.fake.running(wan.bot()) as client:
        assert isinstance(client, WanBot)
        result = await wan.imagine_result("a quiet pond")
        jid = job_id_of(result)
        creates = wan.crun.calls["create"]
        messages = len(wan.fake.messages[wan.channel.id])

        # Well-formed ids the bot owns, with a bad job or image: a private, friendly "no".
        refused = {
            f"wan:1:in:{'q' * 10}": "There is no job",
            f"wan:1:rm:{'0' * 32}": "There is no job",
            f"wan:1:rr:{'z' * 32}": "There is no job",
            f"wan:1:va:{jid}:99": "no image 99",
            f"wan:1:ed:{jid}:42": "no image 42",
        }
        for cid, expected in refused.items():
            text = answer(await press(wan, wan.bob, result, cid))
            assert text is not None and expected in text, (cid, text)
        menus = {("999",): "no image 999", ("abc",): "Pick one", ("-1",): "Pick one"}
        for values, expected in menus.items():
            text = answer(await press(wan, wan.bob, result, f"wan:1:vas:{jid}", list(values)))
            assert text is not None and expected in text, (values, text)

        # Ids outside the bot's grammar: not routed to any handler; nothing happens.
        ignored = [
            f"wan:1:in:{jid.upper()}",  # upper case is not a job id
            f"wan:1:rm:{jid}'; DROP TABLE jobs; --",
            f"wan:1:rr:{'a' * 90}",  # 100-character custom_id, job id too long
            f"wan:1:va:{jid}:{'9' * 80}",  # huge image number
            f"wan:1:va:{jid}:-1",
            f"wan:2:rm:{jid}",  # another format version
            f"wan:1:xx:{jid}",  # unknown action
            "wan:1:rm:",
            "wan:1",
            "\u0000\u202e",
        ]
        for cid in ignored:
            handle = await press(wan, wan.bob, result, cid, expect_answer=False)
            # A known id behind it: once that is answered, the bot has seen (and dropped) this
            # one, since the gateway delivers interactions in order.
            await press(wan, wan.bob, result, f"wan:1:in:{jid}")
            text = answer(handle)
            assert text is None or "Traceback" not in text, (cid, text)

        assert wan.crun.calls["create"] == creates  # nothing new was generated
        assert not result.deleted
        public = [m for m in wan.fake.messages[wan.channel.id][messages:] if not m.ephemeral]
        assert public == [], [m.content for m in public]  # nothing public was posted
    no_tracebacks(errors)


async def test_a_strangers_delete_changes_nothing(wan: WanWorld) -> None:
    """The stranger's refused Delete sends no DELETE to Discord at all (the existing e2e test
    checks the message survives and the moderator's works)."""
    async with wan.fake.running(wan.bot()):
        result = await wan.imagine_result("a secret garden")
        mark = len(wan.fake.requests)
        handle = await wan.fake.click(wan.bob, result, f"wan:1:rm:{job_id_of(result)}")
        await handle.wait_response()
        await wan.settle()
        text = answer(handle)
        assert text is not None and "Only" in text
        deletes = [r for r in wan.fake.requests[mark:] if r.method == "DELETE"]
    assert deletes == []
    assert not result.deleted


@pytest.fixture
def other_server(wan: WanWorld) -> tuple[FakeGuild, Any, FakeMember]:
    """A second server with the bot, where mallory (also a plain member of the first) is a
    moderator."""
    guild = wan.fake.add_guild("Mallory's place")
    channel = wan.fake.add_channel(guild, "general")
    role = wan.fake.add_role(
        guild, "mods", discord.Permissions(manage_messages=True, manage_guild=True).value
    )
    mallory = wan.fake.add_member(guild, username="mallory", roles=[role])
    wan.fake.add_member(wan.guild, mallory.user)
    return guild, channel, mallory


async def test_another_servers_job_cannot_be_reached_from_a_forged_button(
    wan: WanWorld, other_server: tuple[FakeGuild, Any, FakeMember]
) -> None:
    guild_b, channel_b, mallory = other_server
    async with wan.fake.running(wan.bot()):
        victim = await wan.imagine_result("alice's private sketch")
        own = await wan.imagine_result("anything", user=mallory, guild=guild_b, channel=channel_b)
        jid = job_id_of(victim)
        creates = wan.crun.calls["create"]
        texts = {}
        shown = []
        for action in ("rm", "in", "rr"):
            handle = await press(wan, mallory, own, f"wan:1:{action}:{jid}")
            texts[action] = answer(handle)
            shown += [str(m.embeds) for m in (handle.original, *handle.followups) if m]
        leaked = [t for t in shown if "alice's private sketch" in t]
        await wan.settle()
    problems = []
    if victim.deleted:
        problems.append("another server's moderator deleted this server's result")
    if wan.crun.calls["create"] != creates:
        problems.append("a forged Reroll ran another server's prompt")
    if leaked:
        problems.append(f"Info showed another server's prompt: {leaked}")
    if any(not text for text in texts.values()):
        problems.append(f"not every press was refused with a private message: {texts}")
    assert not problems, "; ".join(problems)
