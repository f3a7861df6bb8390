"""/settings: a member's own defaults, through the real discord.py, the fake Discord and the fake
crun: the private panel, its menus, buttons and form, and their effect on the next request."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.preferences import MAX_SUFFIX_CHARS
from bot.domain.validation import MAX_PROMPT_CHARS
from bot.ui.settings import RESET_DONE, SUFFIX_FIELD_ID, setting_id
from tests.fakes.discord_fake import CB_MESSAGE, CB_MODAL, CB_UPDATE, FakeMember, FakeMessage
from tests.fakes.discord_fake.model import walk_components
from tests.world import WanWorld, click, ephemeral_reply, submit

pytestmark = pytest.mark.timeout(60)

DEFAULT_FIELDS = {
    "Resolution": "**2K** · default",
    "Aspect ratio": "**1:1** · default",
    "Pictures per request": "**1** · default",
    "Thinking": "**off** · default",
    "Watermark": "**off** · default",
    "Private results": "**off** · default",
    "Prompt suffix": "none",
}


async def panel_of(wan: WanWorld, user: FakeMember | None = None) -> FakeMessage:
    """``user`` (alice) runs /settings; the private panel it answers with."""
    handle = await wan.fake.slash(user or wan.alice, wan.guild, wan.channel, "settings", {})
    assert (await handle.wait_response()).type == CB_MESSAGE
    assert handle.ephemeral
    assert handle.original is not None
    return handle.original


def fields_of(panel: FakeMessage) -> dict[str, Any]:
    return {f["name"]: f["value"] for f in panel.embeds[0]["fields"]}


async def pick(wan: WanWorld, panel: FakeMessage, name: str, value: str) -> None:
    """Alice chooses ``value`` in the panel's ``name`` menu; the panel redraws in place."""
    chosen = await click(wan, wan.alice, panel, setting_id(name), values=[value])
    assert (await chosen.wait_response()).type == CB_UPDATE
    await wan.settle()


async def press(wan: WanWorld, panel: FakeMessage, name: str) -> None:
    pressed = await click(wan, wan.alice, panel, setting_id(name))
    assert (await pressed.wait_response()).type == CB_UPDATE
    await wan.settle()


async def set_suffix(wan: WanWorld, panel: FakeMessage, text: str) -> None:
    opener = await click(wan, wan.alice, panel, setting_id("suffix"))
    assert (await opener.wait_response()).type == CB_MODAL
    sent = await submit(wan, wan.alice, opener, {SUFFIX_FIELD_ID: text})
    assert (await sent.wait_response()).type == CB_UPDATE
    await wan.settle()


def last_input(wan: WanWorld) -> dict[str, Any]:
    return dict(wan.crun.requests_for("create")[-1]["input"])


async def test_the_panel_is_private_and_shows_the_defaults(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        panel = await panel_of(wan)
    assert panel.embeds[0]["title"] == "Your settings"
    assert fields_of(panel) == DEFAULT_FIELDS
    assert "footer" not in panel.embeds[0]  # this server allows 4K: nothing to say
    assert panel.custom_ids() == [
        setting_id(n)
        for n in (
            "resolution",
            "aspect_ratio",
            "count",
            "thinking",
            "watermark",
            "private",
            "suffix",
            "reset",
        )
    ]
    menu = panel.find_component(setting_id("resolution"))
    assert menu is not None
    assert [o["value"] for o in menu["options"] if o.get("default")] == ["2K"]
    assert wan.crun.calls["create"] == 0


async def test_choices_change_the_next_imagine(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        panel = await panel_of(wan)
        await pick(wan, panel, "resolution", "2K")
        assert panel.content == "Saved: resolution 2K."
        await pick(wan, panel, "aspect_ratio", "16:9")
        await pick(wan, panel, "count", "2")
        await press(wan, panel, "thinking")
        await press(wan, panel, "watermark")
        fields = fields_of(panel)
        assert fields["Resolution"] == "**2K** · your choice"
        assert fields["Aspect ratio"] == "**16:9** · your choice"
        assert fields["Pictures per request"] == "**2** · your choice"
        assert fields["Thinking"] == fields["Watermark"] == "**on** · your choice"
        ratio = panel.find_component(setting_id("aspect_ratio"))
        assert ratio is not None
        assert [o["value"] for o in ratio["options"] if o.get("default")] == ["16:9"]

        result = await wan.imagine_result("a lighthouse")
        assert len(result.attachments) == 2
        sent = last_input(wan)
        assert sent["resolution"] == "2K"
        assert sent["aspect_ratio"] == "16:9"
        assert sent["n"] == 2
        assert sent["thinking_mode"] is True
        [job] = await wan.job_rows()
        assert job.request.watermark is True
        # Another member's requests are not touched.
        await wan.imagine_result("bob's lighthouse", user=wan.bob)
    assert last_input(wan).get("n", 1) == 1
    assert last_input(wan).get("aspect_ratio") != "16:9"


async def test_an_option_given_in_the_command_wins(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        panel = await panel_of(wan)
        await pick(wan, panel, "resolution", "2K")
        await pick(wan, panel, "aspect_ratio", "16:9")
        await pick(wan, panel, "count", "2")
        await press(wan, panel, "thinking")
        await wan.imagine_result(
            "a lighthouse", resolution="1K", aspect_ratio="1:1", count=1, thinking=False
        )
    sent = last_input(wan)
    assert sent["resolution"] == "1K"
    assert sent["aspect_ratio"] == "1:1"
    assert sent.get("n", 1) == 1
    assert sent.get("thinking_mode") is False


async def test_a_preference_above_the_servers_maximum_is_capped_and_explained(
    wan: WanWorld,
) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await wan.command(admin, "wan-admin config resolution-max", resolution="2K")
        panel = await panel_of(wan)
        await pick(wan, panel, "resolution", "4K")
        assert "at most 2K" in panel.embeds[0]["footer"]["text"]
        handle = await wan.imagine("a lighthouse")
        await wan.next_result(set())
        await wan.settle()
    assert last_input(wan)["resolution"] == "2K"
    notes = [m for m in handle.followups if "preferred" in (m.content or "")]
    assert [m.content for m in notes] == [
        "Your preferred 4K is above this server's limit; made at 2K."
    ]
    assert notes[0].ephemeral


async def test_the_suffix_is_appended_and_counted(wan: WanWorld) -> None:
    suffix = "watercolor, soft morning light"
    async with wan.fake.running(wan.bot()):
        panel = await panel_of(wan)
        await set_suffix(wan, panel, f"  {suffix}\n")
        assert panel.content == "Saved: prompt suffix."
        assert suffix in fields_of(panel)["Prompt suffix"]
        await wan.imagine_result("a red fox")
        assert last_input(wan)["prompt"] == f"a red fox, {suffix}"
        await wan.imagine_result("a red fox at dawn.")
        assert last_input(wan)["prompt"] == f"a red fox at dawn. {suffix}"

        # The prompt alone fits; with the suffix it does not: refused, nothing spent.
        long_prompt = "x" * (MAX_PROMPT_CHARS - len(suffix))
        text = await ephemeral_reply(await wan.imagine(long_prompt))
        assert text.startswith("With your prompt suffix from /settings your prompt is 5,0")
        assert "Shorten the prompt, or the suffix in /settings" in text
        assert wan.crun.calls["create"] == 2

        # The form caps the suffix itself; an empty one removes it.
        opener = await click(wan, wan.alice, panel, setting_id("suffix"))
        await opener.wait_response()
        assert opener.modal is not None
        [field] = [
            c
            for c in walk_components(opener.modal["components"])
            if c.get("custom_id") == SUFFIX_FIELD_ID
        ]
        assert field["max_length"] == MAX_SUFFIX_CHARS
        assert field["value"] == suffix  # the current one, ready to edit
        cleared = await submit(wan, wan.alice, opener, {SUFFIX_FIELD_ID: "   "})
        assert (await cleared.wait_response()).type == CB_UPDATE
        await wan.settle()
        assert panel.content == "Prompt suffix removed."
        assert fields_of(panel)["Prompt suffix"] == "none"


async def test_reset_restores_the_defaults(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        panel = await panel_of(wan)
        await pick(wan, panel, "aspect_ratio", "16:9")
        await pick(wan, panel, "count", "3")
        await set_suffix(wan, panel, "in the style of a woodcut")
        await press(wan, panel, "reset")
        assert panel.content == RESET_DONE
        assert fields_of(panel) == DEFAULT_FIELDS
        assert fields_of(await panel_of(wan)) == DEFAULT_FIELDS  # also in a new panel
        await wan.imagine_result("a red fox")
    sent = last_input(wan)
    assert sent["prompt"] == "a red fox"
    assert sent.get("n", 1) == 1
    assert sent.get("aspect_ratio") != "16:9"


async def test_forget_removes_the_preferences(wan: WanWorld) -> None:
    boss = wan.add_admin("owner")
    async with wan.fake.running(wan.bot()):
        panel = await panel_of(wan)
        await pick(wan, panel, "count", "4")
        forgot = await wan.command(boss, "wan-admin forget", member=wan.alice, confirm=True)
        assert forgot.original is not None
        assert "the /settings of" in forgot.original.content
        assert fields_of(await panel_of(wan)) == DEFAULT_FIELDS
    async with wan.database() as db:
        assert await db.fetchall("SELECT user_id FROM preferences") == []
