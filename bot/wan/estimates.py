"""Cost estimates from crun's (unbilled) estimate endpoint, cached by request shape."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.domain.models import GenerationRequest, ImageSource
from bot.errors import WanbotError
from bot.wan.client import WanClient
from bot.wan.contract import Contract

log = logging.getLogger(__name__)

_PLACEHOLDER = "https://example.invalid/estimate.png"  # never fetched: estimates need no images


class CostEstimator:
    """Asks crun what a request would cost; None when it cannot tell (the table then decides).

    Prices depend on the request's shape, not its prompt, so answers are cached by shape.
    """

    def __init__(
        self,
        client: WanClient,
        contract: Contract,
        *,
        ttl: float = 3600.0,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.contract = contract
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self._cache: dict[tuple[object, ...], tuple[float, float | None]] = {}

    @staticmethod
    def shape(request: GenerationRequest) -> tuple[object, ...]:
        return (
            request.mode,
            request.resolution,
            request.n,
            bool(request.thinking),
            len(request.images),
            request.aspect_ratio,
        )

    async def __call__(self, request: GenerationRequest) -> float | None:
        key = self.shape(request)
        hit = self._cache.get(key)
        now = self.clock()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        urls = [
            ref.location if ref.source is ImageSource.URL else _PLACEHOLDER
            for ref in request.images
        ]
        try:
            payload = self.contract.build_input(request, urls)
            async with asyncio.timeout(self.timeout):
                estimate = await self.client.estimate(payload)
            credits = estimate.credits
        except (WanbotError, TimeoutError) as exc:
            log.info("cost estimate unavailable (%s); using the local table", exc)
            credits = None
        self._cache[key] = (now, credits)
        return credits
