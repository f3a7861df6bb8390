"""The long-running process. Until the Discord layer lands, ``run`` drives the engine alone:
it resumes unfinished jobs (including ones started by ``wanbot generate``) and serves callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.jobs.delivery import FileSink
from bot.runtime import Runtime
from bot.settings import Settings

log = logging.getLogger(__name__)


async def run_bot(settings: Settings, *, ready: asyncio.Event | None = None) -> int:
    settings.require("wan_api_key", "discord_token")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Runtime(settings, sinks={FileSink.kind: FileSink()}) as runtime:
        log.info(
            "wanbot engine running (instance %s); waiting for SIGTERM", runtime.engine.instance_id
        )
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("shutting down")
    return 0
