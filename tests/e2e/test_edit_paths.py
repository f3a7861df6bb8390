"""/edit, /imageset, the "Edit with Wan" context menu and the reply+mention path, end to end:
the real discord.py against the fake Discord and the fake crun."""

from __future__ import annotations

from typing import cast

import pytest
from PIL import Image

from bot.app import WanBot
from bot.ui import doors
from bot.ui.target import DiscordTarget
from tests.fakes.discord_fake import (
    CB_DEFERRED_MESSAGE,
    CB_MODAL,
    FakeMessage,
)
from tests.helpers import encode, png, sent_input, uploaded
from tests.world import WanWorld, ephemeral_reply, job_id_of

pytestmark = pytest.mark.timeout(60)

MENU = "Edit with Wan"


def gif(width: int, height: int) -> bytes:
    return encode(Image.new("P", (width, height), 3), "GIF")


def nothing_spent(wan: WanWorld) -> None:
    assert wan.crun.calls["create"] == 0
    assert wan.crun.calls["upload_url"] == 0
    assert not wan.crun.uploads


def bot_replies_to(wan: WanWorld, message: FakeMessage) -> list[FakeMessage]:
    return [
        m
        for m in wan.fake.messages[wan.channel.id] + wan.fake.deleted_messages
        if wan.from_bot(m) and m.referenced is not None and m.referenced.id == message.id
    ]


# --- /edit ---------------------------------------------------------------------------------------


async def test_edit_uploads_both_images_in_option_order(wan: WanWorld) -> None:
    first, second = png(300, 260, (255, 0, 0)), png(320, 240, (0, 0, 255))
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit(
            {"image": ("first.png", first), "image2": ("second.png", second)},
            "put the blue of image 2 into image 1",
            count=2,
        )
        assert (await handle.wait_response()).type == CB_DEFERRED_MESSAGE
        result = await wan.fake.wait_message(wan.channel, wan.is_result, timeout=15)
        await handle.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "done" in m.embeds[0]["title"]
        )
    sent = sent_input(wan.crun)
    assert [uploaded(wan.crun, url) for url in sent["img_urls"]] == [first, second]
    assert sent["prompt"] == "put the blue of image 2 into image 1"
    assert sent["n"] == 2
    assert len(result.attachments) == 2


async def test_edit_4k_is_explained_and_nothing_is_downloaded(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit({"image": ("cat.png", png(400, 400))}, "sharper", resolution="4K")
        text = await ephemeral_reply(handle)
    assert "4K" in text
    assert "1K or 2K" in text
    assert not wan.fake.attachment_downloads
    nothing_spent(wan)


# Refused from what Discord reports about the file: answered at once, nothing downloaded.
METADATA_REFUSALS = [
    ("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(30_000_000), "20 MB"),
    ("tiny.png", png(100, 100), "at least 240 px"),
    ("wide.png", png(9000, 100), "at most 8000 px; the sides may differ by at most 8:1"),
    ("strip.png", png(2400, 250), "8:1"),
]


@pytest.mark.parametrize(("name", "data", "reason"), METADATA_REFUSALS)
async def test_bad_attachment_refused_before_download(
    wan: WanWorld, name: str, data: bytes, reason: str
) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit({"image": (name, data)})
        text = await ephemeral_reply(handle)
    assert name in text
    assert reason in text
    assert not wan.fake.attachment_downloads
    nothing_spent(wan)


# Only the bytes tell: refused after the (deferred) download, still privately.
CONTENT_REFUSALS = [
    ("anim.gif", gif(300, 300), "is a GIF"),
    ("notes.png", b"shopping list: eggs, milk, bread\n" * 40, "not an image"),
]


@pytest.mark.parametrize(("name", "data", "reason"), CONTENT_REFUSALS)
async def test_bad_content_refused_privately_after_download(
    wan: WanWorld, name: str, data: bytes, reason: str
) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit({"image": (name, data)})
        followup = await handle.wait_followup()
    assert followup.ephemeral
    assert name in followup.content
    assert reason in followup.content
    assert "PNG, JPEG, WEBP or BMP" in followup.content
    assert handle.original_deleted  # the public "thinking…" message is gone
    assert sum(wan.fake.attachment_downloads.values()) == 1
    nothing_spent(wan)


async def test_every_bad_file_is_named_in_one_answer(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit(
            {
                "image": ("good.png", png(300, 300)),
                "image2": ("small_one.png", png(100, 300)),
                "image3": ("long.png", png(4000, 300)),
            },
            "combine",
        )
        text = await ephemeral_reply(handle)
    assert "good.png" not in text
    assert "small\\_one.png" in text  # markdown-escaped, shows as small_one.png
    assert "long.png" in text
    nothing_spent(wan)


# --- /imageset -----------------------------------------------------------------------------------


async def test_imageset_of_twelve_is_posted_as_two_messages_of_six(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.fake.slash(
            wan.alice,
            wan.guild,
            wan.channel,
            "imageset",
            {"prompt": "twelve months of a lighthouse", "count": 12},
        )
        assert (await handle.wait_response()).type == CB_DEFERRED_MESSAGE
        await wan.fake.wait_for(
            lambda: len(wan.results(bot_only=True)) >= 2, 15, "two result messages"
        )
    sent = sent_input(wan.crun)
    assert sent["n"] == 12
    assert sent["enable_sequential"] is True
    assert "img_urls" not in sent
    assert [len(m.attachments) for m in wan.results(bot_only=True)] == [6, 6]


async def test_imageset_4k_is_explained(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.fake.slash(
            wan.alice,
            wan.guild,
            wan.channel,
            "imageset",
            {"prompt": "a series", "resolution": "4K"},
        )
        text = await ephemeral_reply(handle)
    assert "4K is only available for text-to-image" in text
    nothing_spent(wan)


# --- "Edit with Wan" -----------------------------------------------------------------------------


async def test_context_menu_uses_attachments_and_embed_images(wan: WanWorld) -> None:
    a, b, c = png(300, 300, (255, 0, 0)), png(300, 300, (0, 255, 0)), png(300, 300, (0, 0, 255))
    elsewhere = wan.fake.make_attachment("c.png", c, channel_id=wan.channel.id)
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel,
            wan.bob,
            "my pictures",
            attachments=[("a.png", a), ("b.png", b)],
            embeds=[
                {"image": {"url": elsewhere.url}},
                {"thumbnail": {"url": "attachment://a.png"}},  # a.png again: used once
            ],
        )
        opened = await wan.fake.message_context(wan.alice, source, MENU)
        assert (await opened.wait_response()).type == CB_MODAL
        assert opened.modal is not None
        custom_id = opened.modal["custom_id"]
        assert str(source.id) in custom_id
        await wan.fake.wait_bot_idle()
        submitted = await wan.fake.submit_modal(
            wan.alice, custom_id, {"prompt": "blend image 1, 2 and 3", "count": ["2"]}
        )
        assert (await submitted.wait_response()).type == CB_DEFERRED_MESSAGE
        result = await wan.fake.wait_message(wan.channel, wan.is_result, timeout=15)
    sent = sent_input(wan.crun)
    assert [uploaded(wan.crun, url) for url in sent["img_urls"]] == [a, b, c]
    assert sent["n"] == 2
    assert sent["prompt"] == "blend image 1, 2 and 3"
    assert len(result.attachments) == 2


async def test_context_menu_on_a_message_without_images_explains(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "just words", attachments=[("notes.txt", b"hello")]
        )
        handle = await wan.fake.message_context(wan.alice, source, MENU)
        text = await ephemeral_reply(handle)
    assert "no images" in text
    assert handle.modal is None
    nothing_spent(wan)


async def test_context_menu_refuses_more_than_nine_images(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel,
            wan.bob,
            "ten",
            attachments=[(f"p{i}.png", png(250, 250, (i * 20, 0, 0))) for i in range(10)],
        )
        handle = await wan.fake.message_context(wan.alice, source, MENU)
        text = await ephemeral_reply(handle)
    assert "10 images" in text
    assert "at most 9" in text
    assert handle.modal is None
    assert not wan.fake.attachment_downloads
    nothing_spent(wan)


async def test_context_menu_names_a_bad_file_before_the_modal(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel,
            wan.bob,
            "two",
            attachments=[("ok.png", png(300, 300)), ("thumb.png", png(120, 120))],
        )
        handle = await wan.fake.message_context(wan.alice, source, MENU)
        text = await ephemeral_reply(handle)
    assert "thumb.png" in text
    assert "at least 240 px" in text
    assert handle.modal is None


async def test_modal_submitted_after_a_restart_refetches_the_message(wan: WanWorld) -> None:
    a = png(300, 300, (10, 200, 10))
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "one", attachments=[("leaf.png", a)]
        )
        opened = await wan.fake.message_context(wan.alice, source, MENU)
        await opened.wait_response()
        assert opened.modal is not None
        custom_id = opened.modal["custom_id"]
    async with wan.fake.running(wan.bot()):
        submitted = await wan.fake.submit_modal(wan.alice, custom_id, {"prompt": "autumn colours"})
        assert (await submitted.wait_response()).type == CB_DEFERRED_MESSAGE
        await wan.fake.wait_message(wan.channel, wan.is_result, timeout=15)
    assert [uploaded(wan.crun, url) for url in sent_input(wan.crun)["img_urls"]] == [a]


async def test_modal_after_a_restart_for_a_deleted_message_explains(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "one", attachments=[("leaf.png", png(300, 300))]
        )
        opened = await wan.fake.message_context(wan.alice, source, MENU)
        await opened.wait_response()
        assert opened.modal is not None
        custom_id = opened.modal["custom_id"]
    await wan.fake.delete_message(source, dispatch=False)
    async with wan.fake.running(wan.bot()):
        submitted = await wan.fake.submit_modal(wan.alice, custom_id, {"prompt": "autumn"})
        text = await ephemeral_reply(submitted)
    assert "deleted" in text
    nothing_spent(wan)


# --- reply + mention -----------------------------------------------------------------------------


async def test_reply_with_mention_edits_the_replied_images(wan: WanWorld) -> None:
    a = png(300, 300, (120, 60, 30))
    bot_id = wan.fake.bot_user.id
    async with wan.fake.running(wan.bot()) as client:
        bot = cast(WanBot, client)
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "my cat", attachments=[("cat.png", a)]
        )
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{bot_id}> give the cat a tiny hat", reference=source
        )
        result = await wan.fake.wait_message(wan.channel, wan.is_result, timeout=15)
        [status] = [m for m in bot_replies_to(wan, ask) if not m.attachments]
        await wan.fake.wait_for(
            lambda: bool(status.embeds) and "done" in status.embeds[0]["title"], 5, "done status"
        )
        job = await bot.runtime.jobs.get(job_id_of(result))
    assert job is not None
    target = DiscordTarget.of(job)
    assert target.status_message_id == status.id
    assert target.reply_to_message_id == ask.id
    assert target.interaction_token is None
    assert status.allowed_mentions is not None
    assert status.allowed_mentions.get("parse") == []
    assert result.referenced is not None and result.referenced.id == status.id
    sent = sent_input(wan.crun)
    assert sent["prompt"] == "give the cat a tiny hat"
    assert [uploaded(wan.crun, url) for url in sent["img_urls"]] == [a]


async def test_mention_error_pings_only_the_author_and_goes_away(
    wan: WanWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doors, "ERROR_TTL", 0.2)
    bot_id = wan.fake.bot_user.id
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "@everyone look", attachments=[("party.gif", gif(300, 300))]
        )
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{bot_id}> make it sparkle", reference=source
        )
        error = await wan.fake.wait_message(
            wan.channel, lambda m: m in bot_replies_to(wan, ask) and "party.gif" in m.content
        )
        assert "is a GIF" in error.content
        assert error.allowed_mentions == {"parse": [], "replied_user": True}
        assert error.mentions == [wan.alice.user]  # pinged: the author, nobody else
        await wan.fake.wait_for(lambda: error.deleted, 5, "the error reply to delete itself")
        # The status message posted while checking is gone too.
        assert all(m.deleted for m in bot_replies_to(wan, ask))
    nothing_spent(wan)


async def test_mention_with_more_than_nine_images_is_refused(wan: WanWorld) -> None:
    bot_id = wan.fake.bot_user.id
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel,
            wan.bob,
            "ten",
            attachments=[(f"p{i}.png", png(250, 250)) for i in range(10)],
        )
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{bot_id}> make them blue", reference=source
        )
        await wan.fake.wait_for(lambda: bool(bot_replies_to(wan, ask)), 10, "an error reply")
        [error] = bot_replies_to(wan, ask)
    assert "10 images" in error.content
    assert not wan.fake.attachment_downloads
    nothing_spent(wan)


async def test_mention_without_attach_permission_is_explained(wan: WanWorld) -> None:
    wan.fake.set_overwrite(wan.channel, wan.fake.bot_role(wan.guild), allow=0, deny=1 << 15)
    bot_id = wan.fake.bot_user.id
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "pic", attachments=[("a.png", png(300, 300))]
        )
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{bot_id}> make it blue", reference=source
        )
        await wan.fake.wait_for(lambda: bool(bot_replies_to(wan, ask)), 10, "an error reply")
        [error] = bot_replies_to(wan, ask)
    assert "Attach Files" in error.content
    nothing_spent(wan)


async def test_messages_that_are_not_edit_requests_are_ignored(wan: WanWorld) -> None:
    bot_id = wan.fake.bot_user.id
    other_bot = wan.fake.add_user("otherbot", bot=True)
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "pic", attachments=[("a.png", png(300, 300))]
        )
        ignored = [
            # another bot, even with mention and reply
            await wan.fake.post_user_message(
                wan.channel, other_bot, f"<@{bot_id}> edit", reference=source
            ),
            # a mention that is not a reply
            await wan.fake.post_user_message(wan.channel, wan.alice, f"<@{bot_id}> make it blue"),
            # a reply that pings the bot without mentioning it in the text
            await wan.fake.post_user_message(
                wan.channel, wan.alice, "nice", reference=source, mentions=[wan.fake.bot_user]
            ),
        ]
        # A real request afterwards: once it is answered, the ones before it were handled.
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"<@{bot_id}> make it blue", reference=source
        )
        await wan.fake.wait_message(wan.channel, wan.is_result, timeout=15)
        await wan.fake.wait_bot_idle()
        for message in ignored:
            assert not bot_replies_to(wan, message)
        assert len([m for m in bot_replies_to(wan, ask) if not m.attachments]) == 1
    assert wan.crun.calls["create"] == 1


async def test_mention_without_an_instruction_asks_for_one(wan: WanWorld) -> None:
    bot_id = wan.fake.bot_user.id
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "pic", attachments=[("a.png", png(300, 300))]
        )
        ask = await wan.fake.post_user_message(
            wan.channel, wan.alice, f"  <@!{bot_id}>  ", reference=source
        )
        await wan.fake.wait_for(lambda: bool(bot_replies_to(wan, ask)), 10, "an error reply")
        [error] = bot_replies_to(wan, ask)
    assert "Tell me what to change" in error.content
    assert "@wanbot make it night time" in error.content
    assert not wan.fake.attachment_downloads
    nothing_spent(wan)


async def test_error_is_posted_plainly_when_a_reply_is_refused(wan: WanWorld) -> None:
    bot_id = wan.fake.bot_user.id
    async with wan.fake.running(wan.bot()):
        source = await wan.fake.post_user_message(
            wan.channel, wan.bob, "pic", attachments=[("a.png", png(300, 300))]
        )
        wan.fake.fail("POST", rf"^/channels/{wan.channel.id}/messages$", 403, times=1)
        await wan.fake.post_user_message(wan.channel, wan.alice, f"<@{bot_id}>", reference=source)
        error = await wan.fake.wait_message(
            wan.channel, lambda m: m.author.id == bot_id and "Tell me what" in m.content
        )
    assert error.referenced is None
    assert error.content.startswith(f"<@{wan.alice.id}> ")
    assert error.allowed_mentions is not None
    assert [int(u) for u in error.allowed_mentions["users"]] == [wan.alice.id]
    assert error.allowed_mentions["parse"] == []
    assert error.mentions == [wan.alice.user]
