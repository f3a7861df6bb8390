"""Every /wan-admin subcommand, enumerated from the bot's real command tree, refused server-side
to members without Manage Server, though the fake delivers the command anyway (as Discord does
once a server loosens default_member_permissions, or a modified client sends it).

A new subcommand is covered automatically. tests/e2e/test_admin_config.py and test_admin_quota.py
check a few commands by name; this walks all of them, with every option filled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.app import WanBot
from cogs.admin_group import NOT_ADMIN, NOT_IN_SERVER
from tests.fakes.discord_fake import FakeMember, InteractionHandle
from tests.helpers import png
from tests.world import WanWorld

pytestmark = pytest.mark.timeout(120)

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def leaves(bot: WanBot) -> list[str]:
    group = bot.tree.get_command("wan-admin")
    assert isinstance(group, app_commands.Group), "no /wan-admin group in the tree"
    names = [c.qualified_name for c in group.walk_commands() if isinstance(c, app_commands.Command)]
    assert len(names) >= 5, names
    return names


def option_defs(wan: WanWorld, qualified: str) -> list[dict[str, Any]]:
    """The leaf's options as the bot synced them to Discord."""
    parts = qualified.split()
    defs: list[dict[str, Any]] = wan.fake.find_command(parts[0]).get("options") or []
    for sub in parts[1:]:
        node = next(o for o in defs if o["name"] == sub and o["type"] in (1, 2))
        defs = node.get("options") or []
    return defs


def fill(wan: WanWorld, defs: list[dict[str, Any]]) -> dict[str, Any]:
    """A plausible value for every option (required or not): the most a caller could ask for."""
    role = wan.guild.everyone
    values: dict[str, Any] = {}
    for d in defs:
        kind = int(d["type"])
        if d.get("choices"):
            values[d["name"]] = d["choices"][-1]["value"]
        elif kind == 3:
            values[d["name"]] = "x" * max(1, int(d.get("min_length", 1)))
        elif kind in (4, 10):
            lo = d.get("min_value")
            v = lo if lo is not None else 0
            values[d["name"]] = int(v) if kind == 4 else float(v)
        elif kind == 5:
            values[d["name"]] = True
        elif kind in (6, 9):
            values[d["name"]] = wan.bob
        elif kind == 7:
            values[d["name"]] = wan.channel
        elif kind == 8:
            values[d["name"]] = role
        elif kind == 11:
            values[d["name"]] = ("a.png", png(8, 8, (1, 2, 3)))
    return values


async def invoke(wan: WanWorld, who: FakeMember, name: str, guild: Any = None) -> InteractionHandle:
    handle = await wan.command(who, name, guild=guild, **fill(wan, option_defs(wan, name)))
    await wan.fake.wait_bot_idle()
    return handle


def reply(handle: InteractionHandle) -> tuple[str, bool]:
    """(text, private) of the answer, whether a reply or a followup."""
    msgs = [m for m in (handle.original, *handle.followups) if m is not None]
    text = "\n".join(m.content or "" for m in msgs)
    text += "\n".join(str(e) for m in msgs for e in m.embeds)
    return text, all(m.ephemeral for m in msgs)


async def db_state(wan: WanWorld) -> dict[str, list[tuple[Any, ...]]]:
    path = wan.tmp_path / "wanbot.sqlite3"
    return await asyncio.to_thread(_read_state, path)


def _read_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        names = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        state = {}
        for (t,) in names:
            if t == "instances":
                continue  # the engine's heartbeat, written on a timer
            rows = db.execute(f'SELECT * FROM "{t}"').fetchall()
            state[str(t)] = sorted(map(tuple, rows), key=repr)
    return state


async def test_every_admin_subcommand_is_refused_to_non_admins(wan: WanWorld) -> None:
    everything_else = discord.Permissions.all().value & ~(
        discord.Permissions(manage_guild=True, administrator=True).value
    )
    almost = wan.fake.add_role(wan.guild, "almost-admin", everything_else)
    deputy = wan.fake.add_member(wan.guild, username="deputy", roles=[almost])
    # An admin elsewhere: Manage Server in another server counts for nothing here.
    other = wan.fake.add_guild("elsewhere")
    boss_role = wan.fake.add_role(other, "boss", discord.Permissions(administrator=True).value)
    elsewhere_admin = wan.fake.add_member(other, username="boss", roles=[boss_role])
    wan.fake.add_member(wan.guild, elsewhere_admin.user)
    admin = wan.add_admin()

    async with wan.fake.running(wan.bot()) as client:
        assert isinstance(client, WanBot)
        names = leaves(client)
        await wan.fake.wait_bot_idle()
        before = await db_state(wan)
        mark = len(wan.fake.requests)
        crun_before = sum(wan.crun.calls.values())
        tried = 0
        for name in names:
            for who in (wan.bob, wan.mod, deputy, elsewhere_admin):
                handle = await invoke(wan, who, name)
                text, private = reply(handle)
                assert NOT_ADMIN in text, (name, who.user.username, text)
                assert private, (name, who.user.username)
                tried += 1
        assert await db_state(wan) == before
        writes = [
            (r.method, r.path)
            for r in wan.fake.requests[mark:]
            if r.method in WRITES and not r.path.startswith(("/interactions/", "/webhooks/"))
        ]
        assert writes == []
        assert sum(wan.crun.calls.values()) == crun_before  # not even a balance look-up

        # The control: the same calls, as an admin, are not refused (so the refusals above
        # are the check at work, not a broken command or option).
        for name in names:
            text, _ = reply(await invoke(wan, admin, name))
            assert NOT_ADMIN not in text, (name, text)
    assert tried == 4 * len(names)


async def test_admin_commands_sent_from_a_dm_are_refused(wan: WanWorld) -> None:
    """The group is guild-only; a client that sends it from a DM anyway is refused too."""
    async with wan.fake.running(wan.bot()) as client:
        assert isinstance(client, WanBot)
        names = leaves(client)
        dm = wan.fake.dm_channel(wan.bob.user)
        before = await db_state(wan)
        for name in names:
            options = fill(wan, option_defs(wan, name))
            handle = await wan.fake.slash(wan.bob.user, None, dm, name, options)
            await handle.wait_response()
            await wan.fake.wait_bot_idle()
            text, private = reply(handle)
            assert NOT_IN_SERVER in text or NOT_ADMIN in text or "only in a server" in text, (
                name,
                text,
            )
            assert private
        assert await db_state(wan) == before
