"""Discord attachments and message images -> checked ``ImageRef``s, before anything is spent.

Two stages, because an interaction must be acknowledged within 3 seconds:

1. ``precheck``: only what Discord already reported (count, byte size, pixel size). No I/O, so
   it runs before the acknowledgement and most mistakes get an immediate ephemeral answer.
2. ``verify``: the input checker service downloads each image and checks the real bytes: the
   type is sniffed from the content (a text file named ``.png`` is caught, a PNG named ``.jpg``
   passes), then size, sides and ratio again, because Discord's numbers are only a hint.

Every refusal is an ``InvalidInput`` that names the file and says what to do instead.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

import discord
from yarl import URL

from bot.domain.models import ImageRef, ImageSource
from bot.domain.text import Text, t
from bot.domain.validation import MAX_INPUT_IMAGES
from bot.errors import InvalidInput
from bot.media import INPUT_MAX_ASPECT, INPUT_MAX_BYTES, INPUT_MAX_SIDE, INPUT_MIN_SIDE
from bot.media.inputs import too_large, too_many_bytes, too_small
from bot.services.inputs import InputChecker

log = logging.getLogger(__name__)

MAX_IMAGES: Final = MAX_INPUT_IMAGES
# Discord allows 2000 characters: the English list of bad files stays under this, so that a
# language up to a third longer still fits.
_LIST_BUDGET: Final = 1400


@dataclass(frozen=True, slots=True)
class Candidate:
    """An image Discord told us about, not yet checked."""

    url: str  # what we download (and what the engine downloads again to re-upload)
    name: str  # the file name the member knows it by
    size: int | None = None  # bytes, as Discord reported them
    width: int | None = None
    height: int | None = None
    aliases: tuple[str, ...] = ()  # other URLs of the same file (proxy), for de-duplication
    number: int | None = None  # an embedded image without a file name: its number

    @property
    def label(self) -> Text | str:
        """The name as shown in messages: markdown escaped so ``my_cat_.png`` stays literal."""
        if self.number is not None:
            return t("embedded image {number}", number=self.number)
        return discord.utils.escape_markdown(self.name) or t("the image")

    def ref(self) -> ImageRef:
        return ImageRef(ImageSource.UPLOAD_URL, self.url, name=self.name)


def from_attachment(attachment: discord.Attachment) -> Candidate:
    return Candidate(
        url=attachment.url,
        name=attachment.filename,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        aliases=(attachment.proxy_url,) if attachment.proxy_url else (),
    )


def _looks_like_image(attachment: discord.Attachment) -> bool:
    """Which attachments of a message count as "its images". A PDF or a video next to the
    pictures is skipped rather than refused; anything Discord calls an image is included and
    then judged by its bytes (so a text file named .png still gets a clear refusal)."""
    content_type = (attachment.content_type or "").lower()
    return content_type.startswith("image/") or bool(attachment.width and attachment.height)


def _file_name(url: str) -> str | None:
    """The file name at the end of ``url``, None when it has none."""
    try:
        tail = posixpath.basename(unquote(URL(url).path))
    except (ValueError, TypeError):
        tail = ""
    return tail if "." in tail.strip(".") else None


def message_candidates(message: discord.Message) -> list[Candidate]:
    """Every image of a message, in order: attachments, then embed images and thumbnails.

    The same file often appears twice (an embed showing ``attachment://x.png``, or a link to an
    uploaded image); it is kept once, at its first position.
    """
    found: list[Candidate] = [
        from_attachment(a) for a in message.attachments if _looks_like_image(a)
    ]
    number = 0
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            if not media.url:
                continue
            number += 1
            name = _file_name(media.url)
            # Discord's media proxy is a stable, public https host; the original URL can be any
            # server on the internet. Download from the proxy when there is one.
            found.append(
                Candidate(
                    url=media.proxy_url or media.url,
                    name=name or f"embedded image {number}",  # the stored ref's name
                    width=media.width,
                    height=media.height,
                    aliases=(media.url, media.proxy_url) if media.proxy_url else (media.url,),
                    number=None if name else number,  # messages name it in their language
                )
            )
    return dedupe(found)


def _key(url: str) -> str:
    """Signed CDN URLs of one file differ only in their query string."""
    try:
        u = URL(url)
    except (ValueError, TypeError):
        return url
    return f"{(u.host or '').lower()}{u.path}"


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out: list[Candidate] = []
    for c in candidates:
        keys = {_key(u) for u in (c.url, *c.aliases)}
        if keys & seen:
            continue
        seen |= keys
        out.append(c)
    return out


# --- checks ------------------------------------------------------------------------------------


def _size_problem(c: Candidate) -> Text | None:
    if c.size is not None and c.size > INPUT_MAX_BYTES:
        return too_many_bytes(c.label, c.size)
    return None


def _dimension_problem(c: Candidate) -> Text | None:
    """Every rule the size breaks, in one message (a 9000x100 strip breaks all three)."""
    if not c.width or not c.height:
        return None  # Discord did not measure it: the download will tell
    short, long = sorted((c.width, c.height))
    # Pixel sizes as strings: written as today (8000, not 8,000) in every language.
    ratio = float(f"{long / short:.3g}")
    rules: list[Text] = []
    if short < INPUT_MIN_SIDE:
        rules.append(t("each side must be at least {limit} px", limit=str(INPUT_MIN_SIDE)))
    if long > INPUT_MAX_SIDE:
        rules.append(t("each side must be at most {limit} px", limit=str(INPUT_MAX_SIDE)))
    if long > INPUT_MAX_ASPECT * short:
        rules.append(
            t(
                "the sides may differ by at most {limit}:1 (this one is {ratio}:1)",
                limit=INPUT_MAX_ASPECT,
                ratio=ratio,
            )
        )
    if not rules:
        return None
    if len(rules) == 1 and short < INPUT_MIN_SIDE:
        return too_small(c.label, c.width, c.height)
    if len(rules) == 1 and long > INPUT_MAX_SIDE:
        return too_large(c.label, c.width, c.height)
    size = {"name": c.label, "width": str(c.width), "height": str(c.height)}
    if len(rules) == 1:
        return t(
            "{name} is {width}×{height} px; the sides may differ by at most {limit}:1 (this one "
            "is {ratio}:1). Crop it and send it again.",
            limit=INPUT_MAX_ASPECT,
            ratio=ratio,
            **size,
        )
    broken = rules[0]
    for rule in rules[1:]:
        broken = t("{first}; {second}", first=broken, second=rule)
    return t(
        "{name} is {width}×{height} px; {rules}. Resize or crop it and send it again.",
        rules=broken,
        **size,
    )


def _refusal(problems: Sequence[Text | str]) -> InvalidInput:
    if len(problems) == 1:
        return InvalidInput(problems[0])
    # Whole lines only, with room for languages longer than English (the English decides).
    lines = t("• {problem}", problem=problems[0])
    for problem in problems[1:]:
        longer = t("{lines}\n• {problem}", lines=lines, problem=problem)
        if len(longer.english()) > _LIST_BUDGET:
            lines = t("{lines}\n• …", lines=lines)
            break
        lines = longer
    text = t("These images can't be used:\n{problems}", problems=lines)
    return InvalidInput(text, detail=" | ".join(str(p) for p in problems))


def precheck(candidates: Sequence[Candidate]) -> None:
    """What Discord already reported: count, bytes, pixels. Raises InvalidInput; no I/O."""
    if len(candidates) > MAX_IMAGES:
        raise InvalidInput(
            t(
                "That's {count} images; the model takes at most {limit} at a time. Post the ones "
                "you want to use (up to {limit}) in a message of their own and try again.",
                count=len(candidates),
                limit=MAX_IMAGES,
            )
        )
    problems = [p for c in candidates if (p := _size_problem(c) or _dimension_problem(c))]
    if problems:
        raise _refusal(problems)


async def verify(candidates: Sequence[Candidate], checker: InputChecker) -> list[ImageRef]:
    """Download every image and check its real content. Raises InvalidInput naming each bad
    file; returns the refs in the given order when all are fine."""
    bad = await checker.problems([(c.url, c.label) for c in candidates])
    if bad:
        raise _refusal(bad)
    return [c.ref() for c in candidates]


async def check_images(candidates: Sequence[Candidate], checker: InputChecker) -> list[ImageRef]:
    """Both stages, for callers without a 3-second deadline between them."""
    precheck(candidates)
    return await verify(candidates, checker)
