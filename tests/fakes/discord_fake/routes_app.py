"""REST handlers for the bot's own application: users and DMs, gateway discovery, application info,
command sync (global and per guild), and guild lookups."""

from __future__ import annotations

import copy
from collections.abc import Callable

from tests.fakes.discord_fake import payloads
from tests.fakes.discord_fake.model import FakeGuild
from tests.fakes.discord_fake.protocol import (
    E_MISSING_ACCESS,
    E_UNKNOWN_COMMAND,
    E_UNKNOWN_USER,
    JSON,
    ApiError,
)
from tests.fakes.discord_fake.rest import RecordedRequest
from tests.fakes.discord_fake.validators import form_error, validate_command
from tests.fakes.discord_fake.world import World


class AppRoutes:
    """/users, /gateway, /applications and /guilds."""

    def __init__(self, world: World, *, gateway_url: Callable[[], str]) -> None:
        self.world = world
        self._gateway_url = gateway_url

    async def get_me(self, req: RecordedRequest) -> JSON:
        return payloads.me(self.world)

    async def get_user(self, req: RecordedRequest, user_id: str) -> JSON:
        user = self.world.users.get(int(user_id))
        if user is None:
            raise ApiError(404, E_UNKNOWN_USER, "Unknown User")
        return user.payload()

    async def create_dm(self, req: RecordedRequest) -> JSON:
        user = self.world.users.get(int(req.json["recipient_id"]))
        if user is None:
            raise ApiError(404, E_UNKNOWN_USER, "Unknown User")
        return self.world.dm_channel(user).payload()

    async def gateway(self, req: RecordedRequest) -> JSON:
        return {"url": self._gateway_url()}

    async def gateway_bot(self, req: RecordedRequest) -> JSON:
        return {
            "url": self._gateway_url(),
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 0,
                "max_concurrency": 1,
            },
        }

    async def app_info(self, req: RecordedRequest) -> JSON:
        return payloads.application(self.world)

    async def entitlements(self, req: RecordedRequest, application_id: str) -> list[JSON]:
        return []

    def _command_pool(self, application_id: str, guild_id: str | None) -> list[JSON]:
        if int(application_id) != self.world.application_id:
            raise ApiError(403, E_MISSING_ACCESS, "Missing Access")
        if guild_id is None:
            return self.world.global_commands
        gid = int(guild_id)
        if gid not in self.world.guilds:
            raise ApiError(403, E_MISSING_ACCESS, "Missing Access")
        return self.world.guild_commands.setdefault(gid, [])

    def _normalise_command(
        self, payload: JSON, guild_id: str | None, previous: list[JSON], index: int
    ) -> JSON:
        validate_command(payload, [index] if index >= 0 else [])
        ctype = int(payload.get("type", 1))
        name = payload.get("name", "")
        old = next((c for c in previous if c["name"] == name and int(c["type"]) == ctype), None)
        cmd: JSON = {
            "id": old["id"] if old else str(self.world.snowflake()),
            "application_id": str(self.world.application_id),
            "version": str(self.world.snowflake()),
            "type": ctype,
            "name": name,
            "description": payload.get("description", ""),
            "options": copy.deepcopy(payload.get("options") or []),
            "default_member_permissions": payload.get("default_member_permissions"),
            "dm_permission": payload.get("dm_permission", True),
            "nsfw": payload.get("nsfw", False),
            "contexts": payload.get("contexts"),
            "integration_types": payload.get("integration_types") or [0],
            "name_localizations": payload.get("name_localizations"),
            "description_localizations": payload.get("description_localizations"),
        }
        if guild_id is not None:
            cmd["guild_id"] = str(guild_id)
        return cmd

    async def get_commands(
        self, req: RecordedRequest, application_id: str, guild_id: str | None = None
    ) -> list[JSON]:
        return copy.deepcopy(self._command_pool(application_id, guild_id))

    async def put_commands(
        self, req: RecordedRequest, application_id: str, guild_id: str | None = None
    ) -> list[JSON]:
        pool = self._command_pool(application_id, guild_id)
        payload = req.json or []
        if len(payload) > 100:
            raise form_error([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()
        new = []
        for i, item in enumerate(payload):
            cmd = self._normalise_command(item, guild_id, pool, i)
            key = (cmd["name"], cmd["type"])
            if key in seen:
                raise form_error(
                    [i, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(key)
            new.append(cmd)
        pool[:] = new
        return copy.deepcopy(new)

    async def upsert_command(
        self, req: RecordedRequest, application_id: str, guild_id: str | None = None
    ) -> JSON:
        pool = self._command_pool(application_id, guild_id)
        cmd = self._normalise_command(req.json, guild_id, pool, -1)
        pool[:] = [c for c in pool if c["id"] != cmd["id"]] + [cmd]
        return copy.deepcopy(cmd)

    def _command_by_id(self, pool: list[JSON], command_id: str) -> JSON:
        for cmd in pool:
            if cmd["id"] == command_id:
                return cmd
        raise ApiError(404, E_UNKNOWN_COMMAND, "Unknown application command")

    async def get_command(
        self,
        req: RecordedRequest,
        application_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> JSON:
        return copy.deepcopy(
            self._command_by_id(self._command_pool(application_id, guild_id), command_id)
        )

    async def edit_command(
        self,
        req: RecordedRequest,
        application_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> JSON:
        pool = self._command_pool(application_id, guild_id)
        cmd = self._command_by_id(pool, command_id)
        cmd.update(copy.deepcopy(req.json or {}))
        cmd["version"] = str(self.world.snowflake())
        return copy.deepcopy(cmd)

    async def delete_command(
        self,
        req: RecordedRequest,
        application_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> None:
        pool = self._command_pool(application_id, guild_id)
        cmd = self._command_by_id(pool, command_id)
        pool.remove(cmd)

    def _guild(self, guild_id: str) -> FakeGuild:
        guild = self.world.guilds.get(int(guild_id))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    async def get_guild(self, req: RecordedRequest, guild_id: str) -> JSON:
        return self._guild(guild_id).payload()

    async def get_guild_channels(self, req: RecordedRequest, guild_id: str) -> list[JSON]:
        return [c.payload() for c in self._guild(guild_id).channels.values() if not c.deleted]

    async def get_roles(self, req: RecordedRequest, guild_id: str) -> list[JSON]:
        return [r.payload() for r in self._guild(guild_id).roles.values()]

    async def get_member(self, req: RecordedRequest, guild_id: str, user_id: str) -> JSON:
        member = self._guild(guild_id).members.get(int(user_id))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return member.payload()
