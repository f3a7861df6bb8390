"""Members' input images, downloaded and checked before anything is spent.

Discord's numbers about an attachment are only a hint: this reads the real bytes (the type is
sniffed from the content, then size, sides and ratio are checked again) and names each problem.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

from bot.domain.text import Text, t
from bot.errors import MediaError
from bot.media import MediaFetcher, check_input_image_async
from bot.media.decode import Label

log = logging.getLogger(__name__)

#: Parallel downloads per request: fast enough for 9 images, and at most this many 20 MB
#: bodies are held in memory at once.
DOWNLOAD_CONCURRENCY: Final = 3


class InputChecker:
    def __init__(self, fetcher: MediaFetcher, *, concurrency: int = DOWNLOAD_CONCURRENCY) -> None:
        self._fetcher = fetcher
        self._concurrency = concurrency

    async def problems(self, files: Sequence[tuple[str, Label]]) -> list[Text | str]:
        """Download each ``(url, label)`` and check it; one sentence per bad file, in order."""
        gate = asyncio.Semaphore(self._concurrency)
        found = await asyncio.gather(*(self._problem(url, label, gate) for url, label in files))
        return [p for p in found if p]

    async def _problem(self, url: str, label: Label, gate: asyncio.Semaphore) -> Text | str | None:
        async with gate:
            try:
                fetched = await self._fetcher.fetch(url)
            except MediaError as exc:
                return t("I couldn't download {name}: {reason}", name=label, reason=exc.text)
            try:
                await check_input_image_async(fetched.data, name=label)
            except MediaError as exc:
                # The member gets the friendly reason; the operator gets Pillow's.
                log.info("input image refused: %s", exc.detail)
                return exc.text
        return None
