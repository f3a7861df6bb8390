"""The gateway: websocket sessions (zlib-stream), IDENTIFY/RESUME, member requests, and DISPATCH
to the shard that owns a guild, gated by the session's intents.

Keeps a replay buffer per session so op 7 RECONNECT and a RESUME replay what the client missed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_fake import payloads
from tests.fakes.discord_fake.model import FakeGuild, FakeMessage
from tests.fakes.discord_fake.protocol import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    JSON,
    PRIVILEGED_INTENTS,
)
from tests.fakes.discord_fake.world import Knobs, World


class GatewayConnection:
    """One websocket; speaks zlib-stream when discord.py asks for it."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress if compress == "zlib-stream" else None
        self._zlib = zlib.compressobj() if self.compress else None
        self._lock = asyncio.Lock()
        self.session: GatewaySession | None = None

    async def send(self, payload: JSON) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            if self._zlib is not None:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)


@dataclass(eq=False)
class GatewaySession:
    id: str
    intents: int
    shard: tuple[int, int]
    seq: int = 0
    buffer: list[JSON] = field(default_factory=list)
    conn: GatewayConnection | None = None

    def owns_guild(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return self.shard[0] == 0
        return (guild_id >> 22) % self.shard[1] == self.shard[0]


class Gateway:
    """The websocket server discord.py connects to, and every event it is sent."""

    def __init__(
        self,
        world: World,
        knobs: Knobs,
        *,
        url: Callable[[], str],
        counters: Counter[str],
        notify: Callable[[], Awaitable[None]],
    ) -> None:
        self.world = world
        self.knobs = knobs
        self._url = url  # resume_gateway_url; known once the server runs
        self.counters = counters
        self._notify = notify
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()
        self.log: list[tuple[str, JSON]] = []

    def identified(self) -> bool:
        """Whether a session has identified (READY and GUILD_CREATEs sent)."""
        return any(s.conn is not None for s in self.sessions.values())

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.ws.close(code=1001, message=b"fake shutting down")

    async def dispatch(self, event: str, payload: JSON, *, guild_id: int | None = None) -> int:
        """Send a DISPATCH (op 0) to every live session that owns the guild; returns the count."""
        gid = guild_id if guild_id is not None else _opt_int(payload.get("guild_id"))
        sent = 0
        for session in list(self.sessions.values()):
            if session.conn is None or not session.owns_guild(gid):
                continue
            if not self._intents_allow(session, event, payload):
                continue
            await self._send_dispatch(session, event, payload)
            sent += 1
        await self._notify()
        return sent

    async def _send_dispatch(self, session: GatewaySession, event: str, payload: JSON) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": payload}
        session.buffer.append(frame)
        del session.buffer[:-1000]
        self.log.append(("send", frame))
        if session.conn is not None:
            await session.conn.send(frame)

    def _intents_allow(self, session: GatewaySession, event: str, payload: JSON) -> bool:
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"):
            need = INTENT_GUILD_MESSAGES if payload.get("guild_id") else INTENT_DIRECT_MESSAGES
            return bool(session.intents & need)
        return True

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py then RESUMEs on resume_gateway_url."""
        for conn in list(self.connections):
            await conn.send({"op": 7, "d": None})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION to every connection."""
        for conn in list(self.connections):
            if not resumable and conn.session is not None:
                self.sessions.pop(conn.session.id, None)
            await conn.send({"op": 9, "d": resumable})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = GatewayConnection(ws, request.query.get("compress"))
        self.connections.add(conn)
        self.counters["gateway.connect"] += 1
        try:
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error")
                return ws
            await conn.send(
                {"op": 10, "d": {"heartbeat_interval": self.knobs.heartbeat_interval_ms}}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    self.log.append(("recv", frame))
                    await self._on_frame(conn, frame)
                    await self._notify()
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(conn)
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            await self._notify()
        return ws

    async def _on_frame(self, conn: GatewayConnection, frame: JSON) -> None:
        op = frame.get("op")
        data: Any = frame.get("d")
        if op == 1:
            self.counters["gateway.heartbeat"] += 1
            await conn.send({"op": 11})
        elif op == 2:
            self.counters["gateway.identify"] += 1
            await self._identify(conn, data)
        elif op == 6:
            self.counters["gateway.resume"] += 1
            await self._resume(conn, data)
        elif op == 8:
            await self._request_members(conn, data)
        else:
            self.counters[f"gateway.op{op}"] += 1

    async def _identify(self, conn: GatewayConnection, data: JSON) -> None:
        if data.get("token") != self.knobs.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.knobs.allow_privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = data.get("shard") or [0, 1]
        session = GatewaySession(
            id=secrets.token_hex(16),
            intents=intents,
            shard=(int(shard[0]), int(shard[1])),
            conn=conn,
        )
        self.sessions[session.id] = session
        conn.session = session
        owned = [g for g in self.world.guilds.values() if session.owns_guild(g.id)]
        ready = payloads.ready(self.world, session, owned, self._url())
        await self._send_dispatch(session, "READY", ready)
        for guild in owned:
            await self._send_dispatch(
                session, "GUILD_CREATE", payloads.guild_create(self.world, guild)
            )

    async def announce_guild(self, guild: FakeGuild) -> int:
        """Dispatch GUILD_CREATE for a guild added after the bot connected (a join)."""
        return await self.dispatch(
            "GUILD_CREATE", payloads.guild_create(self.world, guild), guild_id=guild.id
        )

    async def _resume(self, conn: GatewayConnection, data: JSON) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.knobs.token:
            await conn.send({"op": 9, "d": False})
            return
        if session.conn is not None and session.conn is not conn:
            old = session.conn
            session.conn = None
            await old.ws.close(code=4000)
        session.conn = conn
        conn.session = session
        last = int(data.get("seq") or 0)
        for frame in [f for f in session.buffer if f["s"] > last]:
            await conn.send(frame)
        await self._send_dispatch(session, "RESUMED", {})

    async def _request_members(self, conn: GatewayConnection, data: JSON) -> None:
        session = conn.session
        guild = self.world.guilds.get(int(data["guild_id"]))
        if session is None or guild is None:
            return
        members = list(guild.members.values())
        query = data.get("query")
        if data.get("user_ids"):
            wanted = {int(u) for u in data["user_ids"]}
            members = [m for m in members if m.id in wanted]
        elif query:
            members = [m for m in members if m.user.username.lower().startswith(query.lower())]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def dispatch_message(self, event: str, msg: FakeMessage) -> None:
        payload = payloads.message_payload(self.world, msg, gateway=True)
        for session in list(self.sessions.values()):
            if session.conn is None or not session.owns_guild(msg.guild_id):
                continue
            if not self._intents_allow(session, event, payload):
                continue
            out = payload
            hidden = (
                msg.guild_id is not None
                and msg.author.id != self.world.bot_user.id
                and not session.intents & INTENT_MESSAGE_CONTENT
                and all(u.id != self.world.bot_user.id for u in msg.mentions)
            )
            if hidden:
                out = {**payload, "content": "", "embeds": [], "attachments": [], "components": []}
            await self._send_dispatch(session, event, out)
        await self._notify()

    async def dispatch_message_delete(self, msg: FakeMessage) -> None:
        payload: JSON = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
        if msg.guild_id is not None:
            payload["guild_id"] = str(msg.guild_id)
        await self.dispatch("MESSAGE_DELETE", payload)

    async def echo(self, event: str, msg: FakeMessage) -> None:
        """Discord echoes the bot's own (non-ephemeral) messages over the gateway."""
        if not self.knobs.echo_bot_messages or msg.ephemeral:
            return
        if event == "MESSAGE_DELETE":
            await self.dispatch_message_delete(msg)
        else:
            await self.dispatch_message(event, msg)


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None
