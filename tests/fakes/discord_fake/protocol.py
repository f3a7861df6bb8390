"""Discord's vocabulary as the fake speaks it: limits, permission bits, intents, message flags,
interaction and callback types, JSON error codes, and the error shape (``ApiError``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import discord

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # non-boosted guilds and DMs since 2024
MAX_FILES = 10

# Permission bits (named through discord.py so they cannot drift).
P = discord.Permissions
ALL_PERMISSIONS = P.all().value
PERM_ADMINISTRATOR = P(administrator=True).value
PERM_VIEW_CHANNEL = P(view_channel=True).value
PERM_SEND_MESSAGES = P(send_messages=True).value
PERM_ATTACH_FILES = P(attach_files=True).value
PERM_MANAGE_MESSAGES = P(manage_messages=True).value
PERM_READ_HISTORY = P(read_message_history=True).value
PERM_ADD_REACTIONS = P(add_reactions=True).value
DEFAULT_EVERYONE_PERMISSIONS = P(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
).value
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS

# Gateway intents we gate events on.
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

# Interaction and callback types.
IT_PING, IT_COMMAND, IT_COMPONENT, IT_AUTOCOMPLETE, IT_MODAL = 1, 2, 3, 4, 5
CB_PONG, CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE = 1, 4, 5, 6, 7
CB_AUTOCOMPLETE, CB_MODAL, CB_LAUNCH_ACTIVITY = 8, 9, 12

# Discord JSON error codes used by the fake.
E_UNKNOWN_CHANNEL = 10003
E_UNKNOWN_MESSAGE = 10008
E_UNKNOWN_USER = 10013
E_UNKNOWN_WEBHOOK = 10015
E_UNKNOWN_COMMAND = 10063
E_UNKNOWN_INTERACTION = 10062
E_TOO_LARGE = 40005
E_ALREADY_ACKNOWLEDGED = 40060
E_MISSING_ACCESS = 50001
E_CANNOT_EDIT_OTHERS = 50005
E_EMPTY_MESSAGE = 50006
E_CANNOT_DM = 50007
E_MISSING_PERMISSIONS = 50013
E_INVALID_WEBHOOK_TOKEN = 50027
E_INVALID_FORM_BODY = 50035

USER_MENTION = re.compile(r"<@!?(\d{15,20})>")
ROLE_MENTION = re.compile(r"<@&(\d{15,20})>")


class ApiError(Exception):
    """Raised inside handlers; becomes a Discord-shaped JSON error response."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body
