"""Every hook into discord.py internals, in one place; pyproject pins discord.py because of them.

- ``_DiscordPatches`` points discord.py's REST base (``discord.http.Route.BASE``), default gateway
  (``DiscordWebSocket.DEFAULT_GATEWAY``) and CDN base (``Asset.BASE``) at the fake, and undoes it.
- ``run_client`` shortens ``client._connection.guild_ready_timeout``.
- ``API_VERSION`` is discord.py's ``INTERNAL_API_VERSION``.
- ``wait_bot_idle`` knows the names discord.py gives the tasks that run bot code.

These are not public API, so the pin in pyproject.toml ("discord.py>=2.6,<2.8") is the range they
were written against; check them here when raising it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import discord.asset
import discord.gateway
import discord.http
import yarl

# Names discord.py 2.7 gives the tasks that run bot code (tree.py, ui/view.py, ui/modal.py,
# client.py); wait_bot_idle waits for these.
BOT_TASK_PREFIXES = (
    "CommandTree-invoker",
    "discord-ui-view-dispatch",
    "discord-ui-modal-dispatch",
    "discord-ui-dynamic-item-",
    "discord.py: on_",
)

# The REST version discord.py speaks (``/api/v10``); the fake serves whatever it asks for.
API_VERSION = discord.http.INTERNAL_API_VERSION


class _DiscordPatches:
    """Points discord.py's REST base, default gateway and CDN base at the fake; undoes it.

    Interaction webhooks (followups, @original) go through ``discord.http.Route`` too, so
    ``Route.BASE`` covers them. ``Webhook.url`` stays a discord.com string (display only).
    """

    def __init__(self, base_url: str, gateway_url: str) -> None:
        self._base_url = base_url
        self._gateway_url = gateway_url
        self._saved: tuple[str, yarl.URL, str] | None = None

    def apply(self) -> None:
        self._saved = (
            discord.http.Route.BASE,
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            discord.asset.Asset.BASE,
        )
        discord.http.Route.BASE = f"{self._base_url}/api/v{API_VERSION}"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._gateway_url)
        discord.asset.Asset.BASE = f"{self._base_url}/cdn"

    def restore(self) -> None:
        if self._saved is None:
            return
        route_base, gateway, asset_base = self._saved
        discord.http.Route.BASE = route_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
        discord.asset.Asset.BASE = asset_base
        self._saved = None


@contextlib.asynccontextmanager
async def run_client(
    client: discord.Client,
    token: str,
    *,
    ready_timeout: float = 5.0,
    close_timeout: float = 5.0,
    guild_ready_timeout: float | None = 0.05,
    reconnect: bool = False,
) -> AsyncIterator[discord.Client]:
    """Log ``client`` in against the fake, wait for on_ready, close it cleanly on exit.

    ``guild_ready_timeout`` shortens discord.py's wait after the last GUILD_CREATE before
    on_ready (2 s by default) by setting ``client._connection.guild_ready_timeout``.
    """
    if guild_ready_timeout is not None:
        client._connection.guild_ready_timeout = guild_ready_timeout
    try:
        await client.login(token)  # runs setup_hook (e.g. tree.sync) in this task
    except BaseException:
        await client.close()
        raise
    connect = asyncio.create_task(client.connect(reconnect=reconnect), name="fake-connect")
    ready = asyncio.create_task(client.wait_until_ready(), name="fake-wait-ready")
    try:
        done, _ = await asyncio.wait(
            {connect, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if connect in done:
                connect.result()  # re-raise why the client stopped
                raise RuntimeError("client stopped before it became ready")
            raise TimeoutError(f"client not ready after {ready_timeout}s")
        yield client
    finally:
        await client.close()
        try:
            async with asyncio.timeout(close_timeout):
                await connect
        except TimeoutError:
            connect.cancel()
            raise


async def wait_bot_idle(timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait until discord.py's handler tasks (app commands, view/modal callbacks, on_*
    events) have finished. A response the fake recorded can precede the bot's own
    bookkeeping (e.g. ``store_view`` after a followup), so do this before "clicking"
    a component that was just sent.
    """
    current = asyncio.current_task()
    try:
        async with asyncio.timeout(timeout):
            while True:
                busy = [
                    t
                    for t in asyncio.all_tasks()
                    if t is not current
                    and not t.done()
                    and t.get_name().startswith(BOT_TASK_PREFIXES)
                ]
                if not busy:
                    return
                await asyncio.wait(busy)
    except TimeoutError:
        raise TimeoutError(f"bot handlers still running after {timeout}s") from None
