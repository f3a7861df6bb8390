"""Hostile attachments and prompts, end to end: a member sends the slash command through the fake
Discord, the real bot answers, and nothing reaches crun (or the quota ledger) unless the input is
usable. Accepted odd images must reach crun as valid, opaque images."""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from bot.store.jobs import JobRepository
from bot.store.quotas import QuotaRepository
from tests.fakes.discord_fake import (
    CB_DEFERRED_MESSAGE,
    CB_MESSAGE,
    FakeAttachment,
    InteractionHandle,
)
from tests.helpers import (
    encode,
    patch_jpeg_size,
    png,
    png_chunk,
    raw_png,
    sent_input,
    uploaded,
)
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(60)

# --- image builders ------------------------------------------------------------------------------

BLUE = (40, 90, 200)  # the plain, opaque input images


def noisy_jpeg(width: int = 320, height: int = 320) -> bytes:
    """Noise, so the entropy-coded scan is long and a cut lands well inside it."""
    return encode(Image.effect_noise((width, height), 60).convert("RGB"), "JPEG", quality=90)


def decompression_bomb() -> bytes:
    """A 30000x30000 PNG header on a few bytes of data: 2.7 GB once decoded."""
    return raw_png(30_000, 30_000, zlib.compress(b"\x00" * 30_001))


def jpeg_bomb() -> bytes:
    """A small JPEG whose frame header claims 65000x65000."""
    return patch_jpeg_size(noisy_jpeg(64, 64), 65_000, 65_000)


def text_chunk_bomb() -> bytes:
    """A 300x300 PNG whose zTXt chunk inflates 8 MB of text from a few KB."""
    bomb = zlib.compress(b"a" * 8_000_000, 9)
    image = zlib.compress(b"".join(b"\x00" + b"\x80" * 900 for _ in range(300)))
    return raw_png(300, 300, image, before_idat=png_chunk(b"zTXt", b"Comment\x00\x00" + bomb))


def animated_gif() -> bytes:
    frames = [Image.new("P", (300, 300), i) for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)


def truncated_png() -> bytes:
    data = png(300, 300, BLUE)
    return data[: len(data) // 2]


def truncated_jpeg() -> bytes:
    """Header and frame intact, the scan cut in half: only a full decode notices."""
    data = noisy_jpeg()
    return data[: len(data) // 2]


def truncated_bmp() -> bytes:
    data = encode(Image.effect_noise((320, 320), 60).convert("RGB"), "BMP")
    return data[: len(data) // 2]


def rgba16_png() -> bytes:
    """16-bit RGBA (Pillow cannot write it): left half opaque blue, right half transparent."""
    opaque = struct.pack(">HHHH", 0, 0, 65535, 65535)
    clear = struct.pack(">HHHH", 0, 0, 0, 0)
    row = b"\x00" + opaque * 150 + clear * 150
    return raw_png(300, 300, zlib.compress(row * 300), bit_depth=16, colour_type=6)


def palette_png_with_transparency() -> bytes:
    im = Image.new("P", (300, 300), 0)
    im.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    im.paste(1, (0, 0, 150, 300))  # left half red, right half palette entry 0 = transparent
    return encode(im, "PNG", transparency=0)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (300, 300), (0, 200, 200, 0)), "JPEG", quality=90)


def grey16_png() -> bytes:
    return encode(Image.new("I;16", (300, 300), 40_000), "PNG")


def animated(fmt: str) -> bytes:
    first = Image.new("RGB", (300, 300), (200, 30, 30))
    second = Image.new("RGB", (300, 300), (30, 30, 200))
    return encode(first, fmt, save_all=True, append_images=[second], duration=100, loop=0)


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">'
    b'<rect width="400" height="400" fill="red"/><script>alert(1)</script></svg>'
)
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(300)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(200)
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)
TOO_BIG = 20_000_001


class DeclaredSize(FakeAttachment):
    """An attachment whose payload reports a size that is not len(data): Discord's numbers are
    only a hint, and a hostile or buggy client should not be able to talk its way past a cap."""

    declared: int = 0

    @property
    def size(self) -> int:
        return self.declared


def declared(wan: WanWorld, name: str, data: bytes, size: int) -> FakeAttachment:
    real = wan.fake.make_attachment(name, data, channel_id=wan.channel.id, ephemeral=True)
    lying = DeclaredSize(**{f.name: getattr(real, f.name) for f in dataclasses.fields(real)})
    lying.declared = size
    wan.fake.attachments[real.id] = lying  # the CDN serves the real bytes either way
    return lying


# --- what a refusal must look like ---------------------------------------------------------------

# Words a member should never see: Python exception names and internals.
LEAKS = re.compile(
    r"Traceback|Exception|Error\b|\w+Error|Warning\b|File \"|line \d+|"
    r"\bPIL\b|Pillow|\bstruct\b|zlib|\bNone\b|\b0x[0-9a-f]+",
)
ADVICE = re.compile(r"\b(send|try again|resize|crop|remove|shorten|describe|attach)\b", re.I)
GENERIC = "Something went wrong on our side"


def assert_friendly(text: str) -> None:
    assert text, "empty refusal"
    assert len(text) < 2000, len(text)
    assert not LEAKS.search(text), f"internal detail shown to a member: {text!r}"
    assert GENERIC not in text, f"a refusal came out as an unexpected error: {text!r}"
    assert ADVICE.search(text), f"the refusal does not say what to do: {text!r}"


async def refusal(wan: WanWorld, handle: InteractionHandle) -> str:
    """The private answer to a refused request, whichever way it came: an immediate ephemeral
    reply, or (after a download) an ephemeral followup with the public "thinking…" removed."""
    response = await handle.wait_response()
    if response.type == CB_MESSAGE:
        assert handle.ephemeral
        assert handle.original is not None
        text = handle.original.content
    else:
        assert response.type == CB_DEFERRED_MESSAGE
        # Either the refusal arrives or the job gets going: don't wait out a timeout for the latter.
        await wan.fake.wait_for(
            lambda: bool(handle.followups) or wan.crun.calls["upload_url"] > 0,
            10,
            "a refusal (or the job starting)",
        )
        assert handle.followups, "accepted: the input was uploaded to crun instead of refused"
        followup = handle.followups[0]
        assert followup.ephemeral
        await wan.fake.wait_for(lambda: handle.original_deleted, 5, "the public status to go")
        text = followup.content
    await wan.fake.wait_bot_idle()
    visible = [m for m in wan.fake.messages[wan.channel.id] if wan.from_bot(m) and not m.ephemeral]
    assert not visible, f"the refusal left public messages: {[m.content for m in visible]}"
    assert_pings_nobody_but(wan, set())
    return text


async def stored(wan: WanWorld) -> tuple[int, float]:
    """(jobs stored, credits alice used this month), read through the bot's own repositories."""
    async with wan.database() as db:
        jobs = sum((await JobRepository(db).count_by_status()).values())
        quotas = QuotaRepository(db, wan.settings().quota_policy())
        usage = await quotas.usage(wan.guild.id, wan.alice.id)
    return jobs, usage.monthly_used


async def assert_nothing_spent(wan: WanWorld) -> None:
    assert wan.crun.calls["create"] == 0
    assert wan.crun.calls["upload_url"] == 0
    assert wan.crun.calls["upload_put"] == 0
    assert not wan.crun.uploads
    assert await stored(wan) == (0, 0.0)


async def run_edit(wan: WanWorld, attachments: dict[str, Any], prompt: str = "make it nice") -> str:
    """/edit with these attachments; returns the private refusal."""
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit(attachments, prompt)
        return await refusal(wan, handle)


# --- 1. hostile attachments that must be refused -------------------------------------------------

# (file name, bytes, content type Discord reports or None to guess from the name, phrase)
REFUSED: list[Any] = [
    ("bomb.png", decompression_bomb(), None, "30000×30000 px; each side must be at most 8000 px"),
    ("bomb.jpg", jpeg_bomb(), None, "65000×65000 px; each side must be at most 8000 px"),
    ("comment_bomb.png", text_chunk_bomb(), None, "could not be read (it may be damaged)"),
    ("archive.png", ZIP, None, "is not an image the bot can read"),
    ("report.jpg", PDF, None, "is a PDF document"),
    ("page.webp", HTML, None, "is not an image the bot can read"),
    ("iphone.jpg", HEIC, None, "is a HEIC"),
    ("empty.png", b"", None, "is not an image the bot can read"),
    ("half.png", truncated_png(), None, "could not be read (it may be damaged)"),
    ("header_only.jpg", noisy_jpeg()[:120], None, "could not be read (it may be damaged)"),
    # Discord measured it: refused before the download.
    ("dot.png", png(1, 1, BLUE), None, "1×1 px; each side must be at least 240 px"),
    # Discord did not measure it (no image content type): the downloaded header tells.
    ("dot", png(1, 1, BLUE), "application/octet-stream", "1×1 px; each side must be at least 240"),
    ("drawing.svg", SVG, None, "is not an image the bot can read"),
    ("drawing.png", SVG, "image/png", "is not an image the bot can read"),
    ("dance.gif", animated_gif(), None, "is a GIF"),
    # Regression: verify() checks nothing for JPEG or BMP, so these were accepted and billed.
    ("half.jpg", truncated_jpeg(), None, "could not be read (it may be damaged)"),
    ("half.bmp", truncated_bmp(), None, "could not be read (it may be damaged)"),
]


@pytest.mark.parametrize(
    ("name", "data", "content_type", "phrase"),
    [pytest.param(*c, id=c[0]) for c in REFUSED],
)
async def test_hostile_attachment_is_refused_privately_and_costs_nothing(
    wan: WanWorld, name: str, data: bytes, content_type: str | None, phrase: str
) -> None:
    attachment = (name, data, content_type) if content_type else (name, data)
    text = await run_edit(wan, {"image": attachment})
    assert_friendly(text)
    assert name.replace("_", "\\_") in text  # names the file (markdown-escaped)
    assert phrase in text
    await assert_nothing_spent(wan)


async def test_the_operator_log_gets_the_technical_reason(
    wan: WanWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.services.inputs")
    text = await run_edit(wan, {"image": ("half.jpg", truncated_jpeg())})
    assert "truncated" not in text  # the member gets the friendly version ...
    refused = [r.getMessage() for r in caplog.records if "input image refused" in r.getMessage()]
    assert len(refused) == 1
    assert "half.jpg" in refused[0] and "image file is truncated" in refused[0]  # ... not this


async def test_hostile_file_name_is_shown_inert(wan: WanWorld) -> None:
    """The refusal quotes the file name: mentions and markdown in it must stay text."""
    [role_id] = wan.mod.roles
    name = f"@everyone <@&{role_id}> <@{wan.bob.id}> ||**`{'x' * 150}`**||.png"
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit({"image": (name, ZIP)}, "hi")
        text = await refusal(wan, handle)
    assert_friendly(text)
    assert "is not an image the bot can read" in text
    [reply] = handle.followups
    assert not reply.mention_everyone and reply.mention_roles == [] and reply.mentions == []
    assert "\\|\\|" in text and "\\*\\*" in text  # markdown escaped
    await assert_nothing_spent(wan)


async def test_size_cap_holds_when_discord_under_reports_the_size(wan: WanWorld) -> None:
    """Discord says 1 KB; the CDN serves 20 MB + 1 byte. The real bytes decide."""
    lying = declared(wan, "small_honest.jpg", noisy_jpeg() + bytes(TOO_BIG), 1_000)
    text = await run_edit(wan, {"image": lying})
    assert_friendly(text)
    assert "at most 20 MB" in text
    assert sum(wan.fake.attachment_downloads.values()) == 1
    await assert_nothing_spent(wan)


async def test_size_cap_is_applied_to_what_discord_reports_before_downloading(
    wan: WanWorld,
) -> None:
    """Discord says 25 MB: refused at once, without fetching a byte."""
    lying = declared(wan, "big.png", png(300, 300, BLUE), 25_000_000)
    text = await run_edit(wan, {"image": lying})
    assert_friendly(text)
    assert "25.0 MB" in text and "at most 20 MB" in text
    assert not wan.fake.attachment_downloads
    await assert_nothing_spent(wan)


async def test_one_hostile_file_among_nine_refuses_the_whole_request(wan: WanWorld) -> None:
    files: dict[str, Any] = {
        ("image" if i == 1 else f"image{i}"): (f"ok{i}.png", png(250, 250, (i * 20, 0, 0)))
        for i in range(1, 9)
    }
    files["image9"] = ("notes.png", ZIP)
    text = await run_edit(wan, files)
    assert_friendly(text)
    assert "notes.png" in text
    assert "ok1.png" not in text
    await assert_nothing_spent(wan)


async def test_more_than_nine_attachments_cannot_be_sent(wan: WanWorld) -> None:
    """/edit declares exactly nine attachment options, so Discord itself refuses a tenth; the
    context menu and mention paths (which can carry ten) are covered in test_edit_paths."""
    files = {
        ("image" if i == 1 else f"image{i}"): (f"p{i}.png", png(300, 300, BLUE))
        for i in range(1, 11)
    }
    async with wan.fake.running(wan.bot()):
        options = wan.fake.find_command("edit")["options"]
        assert sum(1 for o in options if o["type"] == 11) == 9
        with pytest.raises(ValueError, match="image10"):
            await wan.edit(files, "ten")
    assert not wan.fake.attachment_downloads
    await assert_nothing_spent(wan)


# --- 1b. odd images that must be accepted and arrive at crun as valid, opaque images ------------

# (file name, bytes, how the upload must look)
ACCEPTED = [
    ("print.jpg", cmyk_jpeg(), "passthrough"),
    ("scan16.png", grey16_png(), "passthrough"),
    ("moving.png", animated("PNG"), "passthrough"),
    ("moving.webp", animated("WEBP"), "passthrough"),
    ("sticker.png", palette_png_with_transparency(), "flattened"),
    ("deep.png", rgba16_png(), "flattened"),
]


@pytest.mark.parametrize(("name", "data", "expect"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
async def test_odd_but_valid_image_reaches_crun_as_a_valid_opaque_image(
    wan: WanWorld, name: str, data: bytes, expect: str
) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.edit({"image": (name, data)})
        assert (await handle.wait_response()).type == CB_DEFERRED_MESSAGE
        await wan.fake.wait_message(wan.channel, wan.is_result, timeout=15)
    [url] = sent_input(wan.crun)["img_urls"]
    sent = uploaded(wan.crun, url)
    with Image.open(io.BytesIO(sent)) as im:
        im.load()  # decodes completely: a valid image, not just a valid header
        assert im.format in {"PNG", "JPEG", "WEBP", "BMP"}
        assert im.size == (300, 300)
        assert not im.has_transparency_data
        if expect == "flattened":
            assert im.mode == "RGB"
            assert im.getpixel((299, 150)) == (255, 255, 255)  # transparent -> white
            assert im.getpixel((0, 150)) != (255, 255, 255)  # the opaque half is kept
    if expect == "passthrough":
        assert sent == data  # opaque inputs are not re-encoded
    jobs, used = await stored(wan)
    assert jobs == 1 and used > 0  # the store counts what the refusals must not add


# --- 2. hostile prompts -------------------------------------------------------------------------

# (id, what the member types, what crun must receive). {user}, {nick} and {role} become real
# mentions of bob and of the mods role; {flood} is 5,000 characters of mentions.
PROMPTS = [
    ("everyone", "@everyone look at this castle", None),
    ("here", "@here a lighthouse at dusk", None),
    ("user", "{user} as a medieval knight", None),
    ("nickname", "{nick} riding a horse", None),
    ("role", "{role} in a group photo, @everyone too", None),
    ("code-block", "```py\nprint('hi')\n```\na poster of this code", None),
    ("spoiler", "||a hidden dragon|| in the clouds", None),
    ("heading", "# HUGE TITLE\n-# tiny print\n> a quote\n1. a list", None),
    ("links", "[free nitro](https://evil.example/claim) next to https://evil.example/a_b", None),
    ("rtl-override", "a cat \u202ewalking backwards\u202c on a roof", None),
    ("newlines", "line one\nline two\n\n\nline five", None),
    ("rtl-override-leading", "\u202ea mirrored title", "a mirrored title"),
    ("padded", " \n\t a fox in the snow \u200b\n ", "a fox in the snow"),
    ("5000-mentions", "{flood}", None),
]

PINGS = re.compile(r"@(everyone|here)|<@[!&]?\d")


def typed_prompt(wan: WanWorld, template: str) -> str:
    [role_id] = wan.mod.roles
    mention = f"@everyone <@{wan.bob.id}> <@&{role_id}> @here "
    flood = (mention * (5000 // len(mention) + 1))[:4999] + "!"
    return template.format(
        user=f"<@{wan.bob.id}>", nick=f"<@!{wan.bob.id}>", role=f"<@&{role_id}>", flood=flood
    )


def message_bodies(wan: WanWorld) -> list[dict[str, Any]]:
    """Every message the bot created or edited, as sent: interaction responses, channel
    messages, the interaction's @original and followups."""
    bodies = []
    for r in wan.fake.requests:
        if r.method not in ("POST", "PATCH") or not isinstance(r.json, dict):
            continue
        body = r.json.get("data") if r.path.endswith("/callback") else r.json
        if isinstance(body, dict) and ("content" in body or "embeds" in body):
            bodies.append(body)
    return bodies


def assert_pings_nobody_but(wan: WanWorld, allowed_user_ids: set[int]) -> None:
    bodies = message_bodies(wan)
    assert bodies
    for body in bodies:
        allowed = body.get("allowed_mentions")
        assert allowed is not None, f"Discord would parse every mention in {body}"
        assert allowed.get("parse", []) == [], allowed
        assert not allowed.get("roles"), allowed
        assert {int(u) for u in allowed.get("users", [])} <= allowed_user_ids, allowed


@pytest.mark.parametrize(
    ("template", "expected"), [p[1:] for p in PROMPTS], ids=[p[0] for p in PROMPTS]
)
async def test_hostile_prompt_pings_nobody_and_reaches_crun_unchanged(
    wan: WanWorld, template: str, expected: str | None
) -> None:
    prompt = typed_prompt(wan, template)
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(prompt)
        assert handle.response_type == CB_DEFERRED_MESSAGE
        result = await wan.fake.wait_message(wan.channel, wan.is_result, timeout=15)
        await handle.wait_original_edit(
            predicate=lambda m: bool(m.embeds) and "done" in m.embeds[0]["title"]
        )
        await wan.fake.wait_bot_idle()
    assert sent_input(wan.crun)["prompt"] == (prompt.strip() if expected is None else expected)

    assert len(message_bodies(wan)) >= 3  # status, its updates, the result
    assert_pings_nobody_but(wan, {wan.alice.id})  # the result pings the member who asked

    shown = [m for m in wan.fake.messages[wan.channel.id] if wan.from_bot(m)]
    assert result in shown
    for message in shown + wan.fake.deleted_messages:
        if not wan.from_bot(message):
            continue
        assert not message.mention_everyone
        assert message.mention_roles == []
        assert {u.id for u in message.mentions} <= {wan.alice.id}
        # The only mention text the bot writes itself is the requester's, on the result.
        content = message.content.replace(f"<@{wan.alice.id}>", "")
        assert not PINGS.search(content), message.content
        for embed in message.embeds:
            assert not PINGS.search(embed.get("description") or ""), embed["description"]
    description = result.embeds[0]["description"]
    assert 0 < len(description) <= 4096


EMPTY_PROMPTS = [
    ("zero-width", "\u200b\u200c\u200d\u2060\ufeff"),
    ("hangul-filler", "\u3164\u3164"),
    ("rtl-override-only", "\u202e"),
    ("newlines-only", "\n\n\n"),
    ("space", " "),
]


@pytest.mark.parametrize("prompt", [p[1] for p in EMPTY_PROMPTS], ids=[p[0] for p in EMPTY_PROMPTS])
async def test_prompt_that_shows_nothing_is_refused(wan: WanWorld, prompt: str) -> None:
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine(prompt, wait="sent")
        text = await refusal(wan, handle)
    assert_friendly(text)
    assert "Your prompt is empty" in text
    await assert_nothing_spent(wan)


async def test_ten_thousand_character_prompt_is_stopped_by_discord(wan: WanWorld) -> None:
    """The synced command carries the limit, so Discord refuses before the bot hears of it."""
    async with wan.fake.running(wan.bot()):
        [option] = [o for o in wan.fake.find_command("imagine")["options"] if o["name"] == "prompt"]
        assert (option.get("min_length"), option.get("max_length")) == (1, 5000)
        with pytest.raises(ValueError, match="length"):
            await wan.imagine("a" * 10_000, wait="sent")
    assert not [r for r in wan.fake.requests if "/interactions/" in r.path]
    await assert_nothing_spent(wan)


async def test_over_long_prompt_is_refused_by_the_bot_too(wan: WanWorld) -> None:
    """Defence in depth: commands synced by an older build without max_length let Discord pass
    up to its own cap of 6,000 characters; the bot must still refuse before spending."""
    async with wan.fake.running(wan.bot()):
        [option] = [o for o in wan.fake.find_command("imagine")["options"] if o["name"] == "prompt"]
        option.pop("max_length")
        handle = await wan.imagine("@everyone " * 600, wait="sent")
        text = await refusal(wan, handle)
    assert_friendly(text)
    assert "5,999 characters; the limit is 5,000" in text
    await assert_nothing_spent(wan)
