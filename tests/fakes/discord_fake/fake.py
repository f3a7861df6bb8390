"""``DiscordFake``: the one object tests use. It owns the world, the gateway and REST servers on
127.0.0.1 and the discord.py hooks, and forwards each test-facing call to the part that does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

import discord
from aiohttp import web

from tests.fakes.discord_fake import hooks, payloads
from tests.fakes.discord_fake.gateway import Gateway, GatewaySession
from tests.fakes.discord_fake.interactions import InteractionDriver, InteractionHandle
from tests.fakes.discord_fake.messages import MessageBuilder
from tests.fakes.discord_fake.model import (
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeUser,
    id_of,
)
from tests.fakes.discord_fake.protocol import JSON
from tests.fakes.discord_fake.rest import FailRule, RecordedRequest, RestApi, build_routes
from tests.fakes.discord_fake.routes_app import AppRoutes
from tests.fakes.discord_fake.routes_channels import ChannelRoutes
from tests.fakes.discord_fake.routes_interactions import InteractionRoutes
from tests.fakes.discord_fake.world import Knobs, World

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_C = TypeVar("_C")


def _forward(
    part: str, func: Callable[Concatenate[_C, _P], _R]
) -> Callable[Concatenate[DiscordFake, _P], _R]:
    """A facade method that calls ``func`` on the part held in ``self.<part>``; it keeps the
    signature and docstring of ``func`` (``help(fake.add_guild)`` shows World's)."""

    @functools.wraps(func)
    def method(self: DiscordFake, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return func(getattr(self, part), *args, **kwargs)

    return method


class DiscordFake:
    """Fake Discord REST + gateway on 127.0.0.1. Use as ``async with DiscordFake() as fake``."""

    _active: ClassVar[DiscordFake | None] = None

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "wanbot",
        application_id: int | None = None,
        interaction_ack_deadline: float | None = 3.0,
        echo_bot_messages: bool = True,
        allow_privileged_intents: bool = True,
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self._knobs = Knobs(
            token=token,
            interaction_ack_deadline=interaction_ack_deadline,
            echo_bot_messages=echo_bot_messages,
            allow_privileged_intents=allow_privileged_intents,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self.counters: Counter[str] = Counter()  # per route key and gateway op, plus nonce.dedup
        self._world = World(
            bot_name=bot_name, application_id=application_id, base_url=lambda: self.base_url
        )
        self._gateway = Gateway(
            self._world,
            self._knobs,
            url=lambda: self.gateway_url,
            counters=self.counters,
            notify=self._notify,
        )
        self._driver = InteractionDriver(self._world, self._gateway, self.wait_for)
        builder = MessageBuilder(self._world)
        self._channels = ChannelRoutes(self._world, self._gateway, builder, counters=self.counters)
        routes = build_routes(
            AppRoutes(self._world, gateway_url=lambda: self.gateway_url),
            self._channels,
            InteractionRoutes(self._world, self._knobs, self._gateway, self._driver, builder),
        )
        self._rest = RestApi(
            self._world, self._knobs, routes, counters=self.counters, notify=self._notify
        )

        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._patches: hooks._DiscordPatches | None = None
        self.port = 0

    # ---------------------------------------------------------------- knobs

    @property
    def token(self) -> str:
        return self._knobs.token

    @token.setter
    def token(self, value: str) -> None:
        self._knobs.token = value

    @property
    def interaction_ack_deadline(self) -> float | None:
        return self._knobs.interaction_ack_deadline

    @interaction_ack_deadline.setter
    def interaction_ack_deadline(self, value: float | None) -> None:
        self._knobs.interaction_ack_deadline = value

    @property
    def echo_bot_messages(self) -> bool:
        return self._knobs.echo_bot_messages

    @echo_bot_messages.setter
    def echo_bot_messages(self, value: bool) -> None:
        self._knobs.echo_bot_messages = value

    @property
    def allow_privileged_intents(self) -> bool:
        return self._knobs.allow_privileged_intents

    @allow_privileged_intents.setter
    def allow_privileged_intents(self, value: bool) -> None:
        self._knobs.allow_privileged_intents = value

    @property
    def heartbeat_interval_ms(self) -> int:
        return self._knobs.heartbeat_interval_ms

    @heartbeat_interval_ms.setter
    def heartbeat_interval_ms(self, value: int) -> None:
        self._knobs.heartbeat_interval_ms = value

    fail = _forward("_rest", RestApi.fail)
    expire_token = _forward("_driver", InteractionDriver.expire_token)

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v{hooks.API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> DiscordFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if DiscordFake._active is not None:
            raise RuntimeError("another DiscordFake is active; discord.py's hooks are global")
        self._cond = asyncio.Condition()
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._rest.handle)
        app.router.add_get("/gateway", self._gateway.handle)
        serve_file = self._rest.serve_file
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", serve_file)
        app.router.add_get("/media/attachments/{channel_id}/{attachment_id}/{filename}", serve_file)
        app.router.add_get("/cdn/{tail:.*}", self._rest.serve_cdn)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._patches = hooks._DiscordPatches(self.base_url, self.gateway_url)
        self._patches.apply()
        DiscordFake._active = self
        log.debug("discord fake listening on %s", self.base_url)

    async def stop(self) -> None:
        try:
            await self._gateway.close_all()
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            if self._patches is not None:
                self._patches.restore()
            if DiscordFake._active is self:
                DiscordFake._active = None

    def running(
        self,
        client: discord.Client,
        *,
        ready_timeout: float = 5.0,
        close_timeout: float = 5.0,
        guild_ready_timeout: float | None = 0.05,
        reconnect: bool = False,
    ) -> contextlib.AbstractAsyncContextManager[discord.Client]:
        """Log ``client`` in against the fake, wait for on_ready, close it cleanly on exit.

        ``guild_ready_timeout`` shortens discord.py's wait after the last GUILD_CREATE before
        on_ready (2 s by default); see ``hooks.run_client``.
        """
        return hooks.run_client(
            client,
            self.token,
            ready_timeout=ready_timeout,
            close_timeout=close_timeout,
            guild_ready_timeout=guild_ready_timeout,
            reconnect=reconnect,
        )

    # ---------------------------------------------------------------- waiting

    async def _notify(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - test API asks for timeouts
        what: str = "condition",
    ) -> None:
        """Wait until ``predicate()`` is true. It is re-checked after every request/event the
        fake handles and every 20 ms (so predicates on bot-side state work too).
        """
        assert self._cond is not None, "fake not started"
        cond = self._cond
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    while not predicate():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(cond.wait(), 0.02)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}") from None

    wait_bot_idle = staticmethod(hooks.wait_bot_idle)

    async def wait_message(
        self,
        channel: FakeChannel | int,
        predicate: Callable[[FakeMessage], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - test API asks for timeouts
    ) -> FakeMessage:
        """Wait for a (non-deleted) message in ``channel`` matching ``predicate``."""
        cid = id_of(channel)
        found: list[FakeMessage] = []

        def check() -> bool:
            for msg in self._world.messages.get(cid, []):
                if predicate is None or predicate(msg):
                    found.append(msg)
                    return True
            return False

        await self.wait_for(check, timeout, f"a message in channel {cid}")
        return found[0]

    async def wait_ready(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - test API asks for timeouts
        """Wait until a gateway session has identified (READY and GUILD_CREATEs sent)."""
        await self.wait_for(self._gateway.identified, timeout, "a gateway IDENTIFY")

    # ---------------------------------------------------------------- world model

    @property
    def bot_user(self) -> FakeUser:
        return self._world.bot_user

    @property
    def owner_user(self) -> FakeUser:
        return self._world.owner_user

    @property
    def application_id(self) -> int:
        return self._world.application_id

    @property
    def users(self) -> dict[int, FakeUser]:
        return self._world.users

    @property
    def guilds(self) -> dict[int, FakeGuild]:
        return self._world.guilds

    @property
    def channels(self) -> dict[int, FakeChannel]:
        return self._world.channels

    @property
    def messages(self) -> defaultdict[int, list[FakeMessage]]:
        return self._world.messages

    @property
    def deleted_messages(self) -> list[FakeMessage]:
        return self._world.deleted_messages

    @property
    def attachments(self) -> dict[int, FakeAttachment]:
        return self._world.attachments

    @property
    def attachment_downloads(self) -> Counter[int]:
        return self._world.attachment_downloads

    @property
    def global_commands(self) -> list[JSON]:
        return self._world.global_commands

    @property
    def guild_commands(self) -> dict[int, list[JSON]]:
        return self._world.guild_commands

    snowflake = _forward("_world", World.snowflake)
    add_user = _forward("_world", World.add_user)
    add_guild = _forward("_world", World.add_guild)
    bot_role = _forward("_world", World.bot_role)
    add_role = _forward("_world", World.add_role)
    add_channel = _forward("_world", World.add_channel)
    set_overwrite = _forward("_world", World.set_overwrite)
    add_member = _forward("_world", World.add_member)
    dm_channel = _forward("_world", World.dm_channel)
    make_attachment = _forward("_world", World.make_attachment)
    permissions_for = _forward("_world", World.permissions_for)
    bot_permissions = _forward("_world", World.bot_permissions)
    upload_limit = _forward("_world", World.upload_limit)
    get_message = _forward("_world", World.get_message)
    find_command = _forward("_world", World.find_command)

    # ---------------------------------------------------------------- gateway

    @property
    def sessions(self) -> list[GatewaySession]:
        return list(self._gateway.sessions.values())

    @property
    def gateway_log(self) -> list[tuple[str, JSON]]:
        return self._gateway.log

    dispatch = _forward("_gateway", Gateway.dispatch)
    announce_guild = _forward("_gateway", Gateway.announce_guild)
    request_reconnect = _forward("_gateway", Gateway.request_reconnect)
    invalidate_session = _forward("_gateway", Gateway.invalidate_session)

    # ---------------------------------------------------------------- payload builders

    user_payload_with_member = _forward("_world", payloads.user_payload_with_member)
    message_payload = _forward("_world", payloads.message_payload)

    # ---------------------------------------------------------------- interactions

    @property
    def interactions(self) -> dict[int, InteractionHandle]:
        return self._driver.handles

    slash = _forward("_driver", InteractionDriver.slash)
    autocomplete = _forward("_driver", InteractionDriver.autocomplete)
    message_context = _forward("_driver", InteractionDriver.message_context)
    user_context = _forward("_driver", InteractionDriver.user_context)
    click = _forward("_driver", InteractionDriver.click)
    submit_modal = _forward("_driver", InteractionDriver.submit_modal)

    # ---------------------------------------------------------------- user-side actions

    async def post_user_message(
        self,
        channel: FakeChannel | int,
        author: FakeUser | FakeMember,
        content: str = "",
        *,
        attachments: Sequence[Any] = (),
        mentions: Sequence[FakeUser | FakeMember] | None = None,
        reference: FakeMessage | int | None = None,
        embeds: Sequence[JSON] = (),
    ) -> FakeMessage:
        """A user posts a message: stored, then MESSAGE_CREATE is dispatched.

        ``mentions`` defaults to the users written as <@id> in ``content``. Without the
        MESSAGE_CONTENT intent the bot receives empty content unless it is mentioned or the
        message is a DM (Discord's rule).
        """
        msg = self._world.add_user_message(
            channel,
            author,
            content,
            attachments=attachments,
            mentions=mentions,
            reference=reference,
            embeds=embeds,
        )
        await self._gateway.dispatch_message("MESSAGE_CREATE", msg)
        return msg

    async def delete_message(self, message: FakeMessage, *, dispatch: bool = True) -> None:
        """A user/moderator deletes a message (later bot calls on it get 404 10008)."""
        self._world.remove_message(message)
        if dispatch:
            await self._gateway.dispatch_message_delete(message)

    async def delete_channel(self, channel: FakeChannel, *, dispatch: bool = True) -> None:
        """Delete a channel (later bot calls on it get 404 10003)."""
        self._world.remove_channel(channel)
        if dispatch:
            await self.dispatch("CHANNEL_DELETE", channel.payload(), guild_id=channel.guild_id)

    async def add_reaction(self, message: FakeMessage, user: FakeUser, emoji: str) -> None:
        message.reactions.setdefault(emoji, set()).add(user.id)
        payload = payloads.reaction_add(self._world, message, user, emoji)
        await self.dispatch("MESSAGE_REACTION_ADD", payload)

    # ---------------------------------------------------------------- REST log

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._rest.requests

    @property
    def unhandled(self) -> list[RecordedRequest]:
        return self._rest.unhandled

    @property
    def fail_rules(self) -> list[FailRule]:
        return self._rest.fail_rules

    @property
    def typing(self) -> list[int]:
        """Channel ids, one per POST /typing."""
        return self._channels.typing

    @property
    def command_syncs(self) -> int:
        """How many bulk command PUTs (global + guild) the bot made."""
        return self._rest.command_syncs

    requests_to = _forward("_rest", RestApi.requests_to)
