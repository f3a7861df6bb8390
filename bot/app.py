"""The Discord bot process: opens the core in ``setup_hook``, loads the cogs, closes it all."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import sys
from typing import Any

import aiohttp
import discord
import discord.http
from discord import app_commands
from discord.ext import commands

from bot.domain.text import Text
from bot.i18n.translator import WanTranslator
from bot.jobs.delivery import FileSink
from bot.jobs.engine import RESTARTING_MESSAGE, EngineConfig
from bot.logging_setup import quiet_irrelevant_discord_warnings
from bot.runtime import Runtime
from bot.services import Services
from bot.settings import Settings
from bot.ui import components, history, modlog
from bot.ui.cancel import cancel_view
from bot.ui.errors import handle_error
from bot.ui.language import for_member, in_server_language
from bot.ui.sink import NO_PINGS, DiscordSink

log = logging.getLogger(__name__)

SYNC_HASH_KEY = "command_tree_hash"


class WanTree(app_commands.CommandTree["WanBot"]):
    async def interaction_check(self, interaction: discord.Interaction[WanBot], /) -> bool:
        """While shutting down, commands get a friendly "restarting" answer and do nothing.

        Buttons, forms and mentions that would start a job meet the same message from the engine
        (its intake is closed); the rest of them (Info, Delete) still work until the bot is gone.
        """
        if not self.client.draining:
            return True
        if interaction.type is discord.InteractionType.application_command:
            try:
                await interaction.response.send_message(
                    for_member(interaction, RESTARTING_MESSAGE),
                    ephemeral=True,
                    allowed_mentions=NO_PINGS,
                )
            except discord.HTTPException as exc:
                log.warning("restart notice to user %s failed: %s", interaction.user.id, exc)
        return False  # autocomplete: no choices


class WanBot(commands.AutoShardedBot):
    """Always discord.py's sharded bot: unsharded it owns shard 0 of 1 (one connection, as a
    plain ``Bot`` makes), with SHARD_COUNT/SHARD_IDS the shards this process owns."""

    def __init__(
        self, settings: Settings, *, engine_config: EngineConfig | None = None, **options: Any
    ) -> None:
        quiet_irrelevant_discord_warnings()  # before discord.py's constructor warns about voice
        use_rest_proxy(settings.discord_api_base)
        # No privileged intents: mentions of the bot still carry their content.
        intents = discord.Intents.default()
        intents.message_content = False
        intents.members = False
        intents.presences = False
        super().__init__(
            # No prefix commands: mentions are handled by cogs/mentions.py, and a prefix that
            # never matches keeps discord.py from parsing every mention as an unknown command.
            command_prefix=_no_prefix,
            intents=intents,
            help_command=None,
            allowed_mentions=NO_PINGS,
            tree_cls=WanTree,
            **_sharding(settings),
            **options,
        )
        self.settings = settings
        self.draining = False  # shutdown has begun: new commands are turned away
        self.runtime = Runtime(
            settings,
            sinks={
                DiscordSink.kind: self._discord_sink,
                FileSink.kind: lambda _runtime: FileSink(),  # jobs left by `wanbot generate`
            },
            engine_config=engine_config,
            alert=self.post_alert,
            gateway=self.shard_states,
            modlog=modlog.discord_send(self),
        )
        # What the cogs and the result buttons use; set once, when setup_hook opened the core.
        self.services: Services | None = None

    def _discord_sink(self, runtime: Runtime) -> DiscordSink:
        return DiscordSink(
            self,
            runtime.jobs.save_partial_receipt,
            view_factory=components.result_view,
            cancel_factory=cancel_view,
        )

    async def setup_hook(self) -> None:
        runtime = await self.runtime.open(start_engine=False)
        self.services = runtime.services
        await load_cogs(self, runtime.services)
        components.register(self)
        self.add_dynamic_items(*history.DYNAMIC_ITEMS)  # /history panels, after restarts too
        self.tree.error(handle_error)
        await runtime.start()
        s = self.settings
        runtime.metrics.watch_shards(
            self.shard_states,
            instance=runtime.engine.instance_id,
            owned=s.owned_shards,
            shard_count=s.shard_count or 1,
        )
        log.info("gateway shards %s of %d", _ids(s.owned_shards), s.shard_count or 1)
        await self.tree.set_translator(WanTranslator())  # reads the catalogs (bot/i18n)
        if s.syncs_commands:
            await self.sync_commands_if_changed()
        else:
            log.info("not syncing commands: the process that owns shard 0 does (SYNC_COMMANDS)")

    async def sync_commands_if_changed(self) -> bool:
        """Syncing is rate limited by Discord: only when the command definitions changed, their
        translations included (the hash covers the payload as synced, localizations and all)."""
        guild_id = self.settings.dev_guild_id
        payload = await self.command_payload()
        digest = hashlib.sha256(
            json.dumps({"guild": guild_id, "commands": payload}, sort_keys=True).encode()
        ).hexdigest()
        if await self.runtime.meta.get(SYNC_HASH_KEY) == digest:
            log.info("command definitions unchanged; not syncing")
            return False
        if guild_id:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        await self.runtime.meta.set(SYNC_HASH_KEY, digest)
        log.info("synced %d commands%s", len(payload), f" to guild {guild_id}" if guild_id else "")
        return True

    async def command_payload(self) -> list[dict[str, Any]]:
        """The commands as ``tree.sync`` sends them: translated when a translator is set."""
        translator = self.tree.translator
        commands = self.tree.get_commands()
        if translator is None:
            return [c.to_dict(self.tree) for c in commands]
        return [await c.get_translated_payload(self.tree, translator) for c in commands]

    async def post_alert(self, topic: str, message: Text) -> None:
        """Alerts (credits, the field map) go to every server's alerts channel: the crun account
        and the model are shared. Each server reads it in its language (the admins' choice, else
        its Discord language); ``topic`` says what the alert is about, for the log (English)."""
        if self.services is None:
            return
        admin = self.services.admin
        for guild_id, channel_id in await admin.alert_channels():
            configured = (await admin.config(guild_id)).language
            guild = self.get_guild(guild_id)  # None when not cached: the admins' choice or English
            discord_locale = guild.preferred_locale if guild else None
            shown = in_server_language(message, configured, discord_locale)
            channel = self.get_partial_messageable(channel_id, guild_id=guild_id)
            try:
                await channel.send(shown, allowed_mentions=NO_PINGS)
            except discord.HTTPException as exc:
                log.warning("alert to channel %s failed: %s", channel_id, exc)
        log.warning("alert (%s) posted: %s", topic, message.english())

    def shard_states(self) -> dict[int, bool]:
        """For /healthz and /metrics: each shard this process owns -> connected, i.e. the bot
        is ready, not closing, and that shard's websocket is open right now."""
        up = self.is_ready() and not self.is_closed()
        states = {}
        for shard_id in self.settings.owned_shards:
            shard = self.get_shard(shard_id)  # None until discord.py launched it
            states[shard_id] = up and shard is not None and not shard.is_closed()
        return states

    def stop_accepting(self) -> None:
        """First step of a shutdown: turn new commands away, let accepted work carry on."""
        if not self.draining:
            log.info("not accepting new commands (shutting down)")
        self.draining = True
        engine = getattr(self.runtime, "engine", None)  # absent before setup_hook ran
        if engine is not None:
            engine.close_intake()

    async def close(self) -> None:
        self.stop_accepting()
        # The engine goes first: its last deliveries still need Discord's HTTP client.
        await self.runtime.close()
        await super().close()


def _sharding(settings: Settings) -> dict[str, Any]:
    """The shard count is given, never fetched: unset SHARD_COUNT keeps one connection even past
    the size at which Discord would recommend more (that is the operator's choice to make)."""
    options: dict[str, Any] = {"shard_count": settings.shard_count or 1}
    if settings.shard_ids:
        options["shard_ids"] = list(settings.shard_ids)
    return options


def use_rest_proxy(api_base: str | None) -> None:
    """Send discord.py's REST calls to DISCORD_API_BASE (a rate-limiting proxy that every
    process shares), before the client makes any.

    ``discord.http.Route.BASE`` is a public (not underscored) class attribute: every REST URL,
    interaction webhooks included, is ``Route.BASE + path``, read when a request is made. It is
    process-wide, which fits: one process runs one bot. Unset leaves it alone (discord.com, or
    the address a test's fake Discord put there).
    """
    if api_base:
        discord.http.Route.BASE = api_base
        host = api_base.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2]  # no userinfo
        log.info("Discord REST calls go through the proxy at %s", host)


def _ids(ids: tuple[int, ...]) -> str:
    return ",".join(map(str, ids))


def _no_prefix(_bot: commands.Bot, _message: discord.Message) -> list[str]:
    return []


async def load_cogs(bot: WanBot, services: Services) -> None:
    from cogs import COGS  # noqa: PLC0415 - cogs import bot.*; keep the import graph one-way

    for cog_class in COGS:
        await bot.add_cog(cog_class(services))


async def run_bot(settings: Settings) -> int:
    settings.require("wan_api_key", "discord_token")
    bot = WanBot(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord_token_value()))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            stopper.cancel()
            exc = runner.exception()
            if isinstance(exc, discord.LoginFailure):
                log.error("Discord rejected DISCORD_TOKEN; check it in the developer portal")
                return 2
            if isinstance(exc, UNREACHABLE):
                return _report_unreachable(exc)
            if exc is not None:
                raise exc
            return 0
        log.info("shutting down")
        await bot.close()  # turns new commands away first (stop_accepting)
        await runner
    return 0


# Discord could not be reached at start-up (discord.py retries by itself once connected).
UNREACHABLE = (OSError, aiohttp.ClientError, discord.GatewayNotFound, discord.DiscordServerError)


def _report_unreachable(exc: BaseException) -> int:
    """One plain line on stderr instead of a traceback; the details go to the DEBUG log."""
    log.debug("could not reach Discord", exc_info=exc)
    cause = str(exc).strip() or type(exc).__name__
    print(
        f"wanbot: cannot reach Discord ({cause}). Check this machine's internet connection, "
        "DNS, proxy and firewall (outgoing HTTPS to discord.com and its gateway), "
        "and https://discordstatus.com.",
        file=sys.stderr,
    )
    return 1
