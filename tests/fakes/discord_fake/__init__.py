"""A fake Discord (REST + gateway) on 127.0.0.1 that the real discord.py client talks to.

Why: end-to-end tests should run discord.py's own parsing of gateway events, interaction payloads
and REST replies instead of ``MagicMock`` shapes. Every hook into discord.py internals lives in
``hooks`` (pyproject pins discord.py because of them) and is undone on exit.

Typical use::

    async with DiscordFake() as fake:
        guild = fake.add_guild("Test")
        channel = fake.add_channel(guild, "general")
        alice = fake.add_member(guild, username="alice")
        async with fake.running(MyBot()) as bot:
            handle = await fake.slash(alice, guild, channel, "imagine", {"prompt": "a cat"})
            await handle.wait_response()

Modules: ``fake`` (the ``DiscordFake`` facade), ``world`` and ``model`` (users, guilds, channels,
members, roles, messages, attachments, permissions), ``payloads`` (the world as Discord JSON),
``gateway`` (sessions, dispatch, resume/reconnect), ``rest`` (route table, request log, injected
failures) with ``routes_app``, ``routes_channels``, ``routes_interactions`` and ``messages``,
``validators`` (Discord's limits and form errors), ``interactions`` (slash/context/click/modal
and ``InteractionHandle``), ``protocol`` (Discord's numbers) and ``hooks``. A constant is read in
the module that defines it: monkeypatch it there (e.g. ``routes_channels.NONCE_WINDOW_S``).
"""

from tests.fakes.discord_fake.fake import DiscordFake
from tests.fakes.discord_fake.hooks import _DiscordPatches
from tests.fakes.discord_fake.interactions import CallbackRecord, InteractionHandle
from tests.fakes.discord_fake.model import (
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
)
from tests.fakes.discord_fake.protocol import (
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_LAUNCH_ACTIVITY,
    CB_MESSAGE,
    CB_MODAL,
    CB_PONG,
    CB_UPDATE,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    IT_AUTOCOMPLETE,
    IT_COMMAND,
    IT_COMPONENT,
    IT_MODAL,
    IT_PING,
    PERM_ADD_REACTIONS,
    PERM_ADMINISTRATOR,
    PERM_ATTACH_FILES,
    PERM_MANAGE_MESSAGES,
    PERM_READ_HISTORY,
    PERM_SEND_MESSAGES,
    PERM_VIEW_CHANNEL,
    ApiError,
)
from tests.fakes.discord_fake.rest import FailRule, RecordedRequest, UploadedFile

__all__ = [
    "CB_AUTOCOMPLETE",
    "CB_DEFERRED_MESSAGE",
    "CB_DEFERRED_UPDATE",
    "CB_LAUNCH_ACTIVITY",
    "CB_MESSAGE",
    "CB_MODAL",
    "CB_PONG",
    "CB_UPDATE",
    "FLAG_COMPONENTS_V2",
    "FLAG_EPHEMERAL",
    "FLAG_LOADING",
    "FLAG_SUPPRESS_EMBEDS",
    "FLAG_SUPPRESS_NOTIFICATIONS",
    "IT_AUTOCOMPLETE",
    "IT_COMMAND",
    "IT_COMPONENT",
    "IT_MODAL",
    "IT_PING",
    "PERM_ADD_REACTIONS",
    "PERM_ADMINISTRATOR",
    "PERM_ATTACH_FILES",
    "PERM_MANAGE_MESSAGES",
    "PERM_READ_HISTORY",
    "PERM_SEND_MESSAGES",
    "PERM_VIEW_CHANNEL",
    "ApiError",
    "CallbackRecord",
    "DiscordFake",
    "FailRule",
    "FakeAttachment",
    "FakeChannel",
    "FakeGuild",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "InteractionHandle",
    "RecordedRequest",
    "UploadedFile",
    "_DiscordPatches",
]
