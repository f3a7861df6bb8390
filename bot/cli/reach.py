"""Before the command line sends anything: does crun answer, and could its results be fetched?

Both are named in seconds, before a job is stored or a credit is spent, instead of after minutes
of retries.
"""

from __future__ import annotations

import asyncio
import sys

from bot.errors import WanApiError, WanConnectionError, WanTimeout
from bot.settings import Settings
from bot.wan.client import WanClient

__all__ = ["http_base_problem", "probe_crun", "say"]

PROBE_PAUSES = (1.0, 2.0)  # reaching crun before anything is stored: three tries, ~3 s
PROBE_CONNECT_TIMEOUT = 5.0


def say(text: str) -> None:
    print(f"wanbot: {text}", file=sys.stderr)


async def probe_crun(settings: Settings, *, tell: bool) -> str | None:
    """Ask crun for the balance (three quick tries): None when it answers, else why not.
    A wrong or unreachable WAN_API_BASE is named in seconds, before anything is stored."""
    client = WanClient(
        settings.api_key(),
        base_url=settings.wan_api_base,
        request_timeout=settings.wan_request_timeout,
        connect_timeout=min(settings.wan_connect_timeout, PROBE_CONNECT_TIMEOUT),
        get_retries=0,
    )
    problem: str | None = None
    async with client:
        for pause in (0.0, *PROBE_PAUSES):
            await asyncio.sleep(pause)
            try:
                await client.balance()
            except (WanConnectionError, WanTimeout) as exc:
                if tell and problem is None:
                    say(f"{exc}; trying again for a few seconds")
                problem = str(exc)
            except WanApiError:
                return None  # it answered: the command itself reports what it said
            else:
                return None
    return problem


def http_base_problem(settings: Settings) -> str | None:
    """Why the images from this API base would be refused (it reads after "WAN_API_BASE is"),
    or None.

    A plain-http base is a local fake or proxy, whose result links are plain http too; the media
    downloader refuses those unless ALLOW_HTTP_RESULTS is on (bot/media/fetch.py). Without this
    check crun would make (and bill) the images before the download is refused.
    """
    base = settings.wan_api_base
    if settings.allow_http_results or not base.lower().startswith("http://"):
        return None
    return (
        f"plain http ({base}) and ALLOW_HTTP_RESULTS is off: the images such a base (a local "
        "fake or proxy) hands back are plain-http links, and the media downloader refuses them "
        "(scheme 'http' not allowed). Set ALLOW_HTTP_RESULTS=true to accept plain http from a "
        "local fake or proxy you trust (local testing only), or use https://api.crun.ai"
    )
