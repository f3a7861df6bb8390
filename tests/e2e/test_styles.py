"""Server styles through the real command tree, the fake Discord and the fake crun: admins define
them with /wan-admin style, members pick one (autocomplete) on /imagine, /edit and /imageset, and
its text reaches crun, Info and the follow-ups of the result."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.styles import MAX_STYLES
from bot.domain.validation import MAX_PROMPT_CHARS
from cogs.admin_group import NOT_ADMIN
from tests.fakes.discord_fake import (
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_MESSAGE,
    FakeMember,
    InteractionHandle,
)
from tests.world import WanWorld, button, click, ephemeral_reply

pytestmark = pytest.mark.timeout(120)

WATERCOLOR = "watercolor, soft pastel colors, visible paper texture"


async def style_cmd(wan: WanWorld, who: FakeMember, sub: str, **options: Any) -> str:
    """``who`` runs /wan-admin style ``sub``; the private answer's text (or a file's title)."""
    handle = await wan.fake.slash(who, wan.guild, wan.channel, f"wan-admin style {sub}", options)
    return await ephemeral_reply(handle)


async def choices(
    wan: WanWorld,
    command: str,
    typed: str,
    *,
    user: Any = None,
    dm: bool = False,
    option: str = "style",
) -> list[dict[str, Any]]:
    """What the autocomplete of ``option`` (the style option) offers while ``typed`` is in it."""
    options = {option: typed} if option != "style" else {"prompt": "a fox", "style": typed}
    if dm:
        channel = wan.fake.dm_channel(wan.alice.user)
        handle = await wan.fake.autocomplete(
            wan.alice.user, None, channel, command, options, focused=option
        )
    else:
        handle = await wan.fake.autocomplete(
            user or wan.alice, wan.guild, wan.channel, command, options, focused=option
        )
    assert (await handle.wait_response()).type == CB_AUTOCOMPLETE
    assert handle.autocomplete_choices is not None
    return handle.autocomplete_choices


def prompts_sent(wan: WanWorld) -> list[str]:
    return [str(body["input"]["prompt"]) for body in wan.crun.requests_for("create")]


async def nothing_stored(wan: WanWorld) -> None:
    assert wan.crun.calls["create"] == 0
    async with wan.database() as db:
        jobs = await db.fetchone("SELECT COUNT(*) FROM jobs")
        ledger = await db.fetchone("SELECT COUNT(*) FROM ledger")
    assert jobs is not None and ledger is not None
    assert (int(jobs[0]), int(ledger[0])) == (0, 0)


def refused(handle: InteractionHandle) -> str:
    assert handle.response_type == CB_MESSAGE
    assert handle.ephemeral
    assert handle.original is not None
    return handle.original.content


# --- the member's side ------------------------------------------------------------------------


async def test_a_picked_style_reaches_crun_info_and_reroll(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        added = await style_cmd(wan, admin, "add", name="Watercolor", text=f"  {WATERCOLOR}\n")
        assert "Style `watercolor` added" in added
        offered = await choices(wan, "imagine", "WAT")
        assert [c["value"] for c in offered] == ["watercolor"]
        assert offered[0]["name"].startswith("watercolor · watercolor, soft pastel")
        assert all(len(c["name"]) <= 100 for c in offered)

        first = await wan.imagine_result("a red fox in snow", style="watercolor", seed=3)
        assert prompts_sent(wan) == [f"a red fox in snow, {WATERCOLOR}"]

        info = await click(wan, wan.bob, first, button(first, "in"))
        assert (await info.wait_response()).type == CB_MESSAGE
        await wan.settle()
        assert info.ephemeral and info.original is not None
        embed = info.original.embeds[0]
        assert embed["description"] == "a red fox in snow"  # the member's own words
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert "watercolor" in fields["Style"]
        assert "soft pastel colors" in fields["Style"]

        before = wan.result_ids()
        reroll = await click(wan, wan.bob, first, button(first, "rr"))
        assert (await reroll.wait_response()).type == CB_DEFERRED_MESSAGE
        await wan.next_result(before)
        await wan.settle()
        # The admin changes the style afterwards: the result's follow-ups keep what it was made
        # with (the request stores the style's name and text).
        await style_cmd(wan, admin, "add", name="watercolor", text="oil paint")
        before = wan.result_ids()
        upscale = await click(wan, wan.alice, first, button(first, "up"))
        await upscale.wait_response()
        await wan.next_result(before)
        await wan.settle()
    original, rerolled, upscaled = prompts_sent(wan)
    assert rerolled == upscaled == original == f"a red fox in snow, {WATERCOLOR}"
    rows = await wan.job_rows()
    assert {job.request.style.name for job in rows if job.request.style} == {"watercolor"}
    assert len(rows) == 3


async def test_vary_keeps_the_style_and_imageset_and_edit_offer_it(wan: WanWorld) -> None:
    wan.crun.image_size = (256, 256)  # big enough to be fed back in by Vary
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await style_cmd(wan, admin, "add", name="noir", text="black and white film noir")
        assert [c["value"] for c in await choices(wan, "imageset", "")] == ["noir"]
        assert [c["value"] for c in await choices(wan, "imagine", "zzz")] == []
        first = await wan.imagine_result("a detective.", style="noir")
        before = wan.result_ids()
        vary = await click(wan, wan.bob, first, button(first, "va"))
        await vary.wait_response()
        await wan.next_result(before)
        await wan.settle()
    # After a full stop the style follows with a space, not a comma.
    assert prompts_sent(wan) == ["a detective. black and white film noir"] * 2
    for command in ("imagine", "edit", "imageset"):
        options = {o["name"]: o for o in wan.fake.find_command(command)["options"]}
        assert options["style"].get("autocomplete") is True, command
        assert not options["style"].get("required")


async def test_an_unknown_style_is_refused_naming_the_servers_styles(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        none_yet = await wan.imagine("a fox", style="watercolor")
        assert "this server has no styles yet" in refused(none_yet)
        await style_cmd(wan, admin, "add", name="noir", text="film noir")
        await style_cmd(wan, admin, "add", name="pixel art", text="16-bit pixel art")
        unknown = await wan.imagine("a fox", style="watercolour")
        text = refused(unknown)
        assert "There is no style `watercolour` on this server." in text
        assert "`noir`, `pixel art`" in text
    await nothing_stored(wan)


async def test_a_prompt_too_long_with_its_style_is_refused_and_nothing_is_charged(
    wan: WanWorld,
) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await style_cmd(wan, admin, "add", name="noir", text="black and white film noir")
        handle = await wan.imagine("a" * (MAX_PROMPT_CHARS - 10), style="noir")
        text = refused(handle)
        assert f"the limit is {MAX_PROMPT_CHARS:,}" in text
        assert "Your prompt plus the style 'noir' is 5,017 characters" in text
    await nothing_stored(wan)


async def test_in_dms_there_are_no_styles(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot(allow_dms=True)):
        await style_cmd(wan, admin, "add", name="noir", text="film noir")
        assert await choices(wan, "imagine", "", dm=True) == []
        dm = wan.fake.dm_channel(wan.alice.user)
        handle = await wan.fake.slash(
            wan.alice.user, None, dm, "imagine", {"prompt": "a fox", "style": "noir"}
        )
        await handle.wait_response()
        assert "there are none in DMs" in refused(handle)
    await nothing_stored(wan)


# --- the admin's side --------------------------------------------------------------------------


async def test_styles_are_listed_replaced_and_removed(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        assert "no styles yet" in await style_cmd(wan, admin, "list")
        await style_cmd(wan, admin, "add", name="noir", text="film noir")
        await style_cmd(wan, admin, "add", name="Pixel  Art", text="16-bit pixel art")
        replaced = await style_cmd(wan, admin, "add", name="NOIR", text="black and white")
        assert replaced == "Style `noir` has a new text."
        listed = await style_cmd(wan, admin, "list")
        assert f"Styles (2 of {MAX_STYLES})" in listed
        assert "noir: black and white" in listed
        assert "pixel art: 16-bit pixel art" in listed
        offered = await choices(wan, "wan-admin style remove", "pix", user=admin, option="name")
        assert [c["value"] for c in offered] == ["pixel art"]
        removed = await style_cmd(wan, admin, "remove", name="Pixel Art")
        assert removed.startswith("Style `pixel art` removed.")
        again = await style_cmd(wan, admin, "remove", name="pixel art")
        assert again == "There is no style `pixel art` on this server. Pick one of: `noir`."
        assert [c["value"] for c in await choices(wan, "imagine", "")] == ["noir"]


async def test_the_26th_style_is_refused(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        for i in range(MAX_STYLES):
            assert "added" in await style_cmd(wan, admin, "add", name=f"style {i}", text=f"t{i}")
        full = await style_cmd(wan, admin, "add", name="one more", text="too many")
        assert f"already has {MAX_STYLES} styles" in full
        # A new text for a known name is still fine.
        assert "new text" in await style_cmd(wan, admin, "add", name="style 3", text="other")
        offered = await choices(wan, "imagine", "")
        assert len(offered) == MAX_STYLES
    async with wan.database() as db:
        row = await db.fetchone("SELECT COUNT(*) FROM styles WHERE guild_id = ?", (wan.guild.id,))
    assert row is not None and int(row[0]) == MAX_STYLES


async def test_bad_names_and_texts_are_refused_with_the_rule(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        bad_name = await style_cmd(wan, admin, "add", name="-*-", text="film noir")
        assert "A style name is 1 to 32 letters or digits" in bad_name
        blank = await style_cmd(wan, admin, "add", name="blank", text="\u200b \u3164")
        assert "The style text is empty" in blank
        assert "no styles yet" in await style_cmd(wan, admin, "list")


async def test_members_without_manage_server_cannot_touch_styles(wan: WanWorld) -> None:
    admin = wan.add_admin()
    async with wan.fake.running(wan.bot()):
        await style_cmd(wan, admin, "add", name="noir", text="film noir")
        for who in (wan.alice, wan.mod):
            assert NOT_ADMIN in await style_cmd(wan, who, "add", name="mine", text="my style")
            assert NOT_ADMIN in await style_cmd(wan, who, "remove", name="noir")
            assert NOT_ADMIN in await style_cmd(wan, who, "list")
        listed = await style_cmd(wan, admin, "list")
    assert "noir: film noir" in listed
    assert "mine" not in listed
