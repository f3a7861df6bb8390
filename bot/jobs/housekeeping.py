"""Periodic clean-up: old prompts and job records go after the retention period."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.jobs.background import TaskGroup
from bot.store.jobs import JobRepository
from bot.store.quotas import QuotaRepository

log = logging.getLogger(__name__)

DAY = 86_400.0
MIN_LEDGER_DAYS = 62  # monthly quota windows need at least the last month of usage


class Housekeeping:
    def __init__(
        self,
        jobs: JobRepository,
        quotas: QuotaRepository,
        *,
        retention_days: int,
        interval: float = 6 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.quotas = quotas
        self.retention_days = retention_days
        self.interval = interval
        self.clock = clock
        self._tasks = TaskGroup("housekeeping")

    async def run_once(self) -> tuple[int, int]:
        now = self.clock()
        jobs = await self.jobs.purge_finished_before(now - self.retention_days * DAY)
        ledger_days = max(self.retention_days, MIN_LEDGER_DAYS)
        ledger = await self.quotas.purge_ledger_before(now - ledger_days * DAY)
        if jobs or ledger:
            log.info("retention: removed %d job(s) and %d ledger row(s)", jobs, ledger)
        return jobs, ledger

    def start(self) -> None:
        self._tasks.spawn(self._loop(), name="purge")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention purge failed")
            await asyncio.sleep(self.interval)
