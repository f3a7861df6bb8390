"""/wan-admin quota, block, unblock, usage, balance, forget: credits administration.

Permissions are checked here on every call (Manage Server, or a bot owner), not only through
Discord's default_member_permissions, which server admins can change.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

import discord
from discord import app_commands

from bot.domain.quota import Limits, day_window, fmt_credits
from bot.errors import InvalidInput
from bot.store.quotas import QuotaRepository
from bot.ui import embeds
from bot.ui.flow import JobContext
from bot.ui.sink import NO_PINGS
from bot.usage_report import chart_png, fill_days, top_table
from cogs.admin_group import require_admin
from cogs.quota import quota_embed

Credits = app_commands.Range[float, 0.0, 1_000_000.0]


def _limits_text(limits: Limits) -> str:
    def one(v: float | None) -> str:
        return "unlimited" if v is None else fmt_credits(v)

    return f"daily {one(limits.daily)}, monthly {one(limits.monthly)}"


async def _display_name(guild: discord.Guild | None, user_id: int) -> str:
    """Cached member, else one REST fetch (no members intent), else the raw id."""
    if guild is None:
        return str(user_id)
    member = guild.get_member(user_id)
    if member is None:
        try:
            member = await guild.fetch_member(user_id)
        except discord.HTTPException:
            return str(user_id)
    return member.display_name


def _subject(scope: str, subject_id: int) -> str:
    if scope == "role":
        return f"<@&{subject_id}>"
    if scope == "user":
        return f"<@{subject_id}>"
    return "server default"


async def _reply(interaction: discord.Interaction, text: str, **kwargs: Any) -> None:
    await interaction.response.send_message(
        text, ephemeral=True, allowed_mentions=NO_PINGS, **kwargs
    )


def admin_commands(
    ctx: JobContext,
) -> list[app_commands.Command[Any, Any, Any] | app_commands.Group]:
    """The commands to mount under the ``wan-admin`` group (which checks the caller too)."""

    def quotas() -> QuotaRepository:
        assert ctx.quotas is not None
        return ctx.quotas

    def guard(interaction: discord.Interaction) -> int:
        """The guild id, after proving the caller may administer it."""
        return require_admin(interaction, ctx.owner_ids)

    Handler = Callable[..., Coroutine[Any, Any, None]]

    def command(
        name: str, description: str
    ) -> Callable[[Handler], app_commands.Command[Any, Any, Any]]:
        return app_commands.command(name=name, description=description)

    quota = app_commands.Group(name="quota", description="Members' credit limits")

    @quota.command(name="show", description="A member's usage and limits")
    async def show(interaction: discord.Interaction, member: discord.Member) -> None:
        gid = guard(interaction)
        usage = await quotas().usage(gid, member.id, [r.id for r in member.roles[1:]])
        await interaction.response.send_message(
            f"{member.mention}:",
            embed=quota_embed(usage),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    @quota.command(name="set-user", description="Limits for one member (leave empty = unlimited)")
    async def set_user(
        interaction: discord.Interaction,
        member: discord.Member,
        daily: Credits | None = None,
        monthly: Credits | None = None,
    ) -> None:
        gid = guard(interaction)
        await quotas().set_limits(gid, "user", member.id, Limits(daily, monthly))
        await _reply(interaction, f"{member.mention}: {_limits_text(Limits(daily, monthly))}.")

    @quota.command(name="set-role", description="Limits for a role (the most generous role wins)")
    async def set_role(
        interaction: discord.Interaction,
        role: discord.Role,
        daily: Credits | None = None,
        monthly: Credits | None = None,
    ) -> None:
        gid = guard(interaction)
        await quotas().set_limits(gid, "role", role.id, Limits(daily, monthly))
        await _reply(interaction, f"{role.mention}: {_limits_text(Limits(daily, monthly))}.")

    @quota.command(name="set-default", description="The server's default limits")
    async def set_default(
        interaction: discord.Interaction,
        daily: Credits | None = None,
        monthly: Credits | None = None,
    ) -> None:
        gid = guard(interaction)
        await quotas().set_limits(gid, "guild", 0, Limits(daily, monthly))
        await _reply(interaction, f"Server default: {_limits_text(Limits(daily, monthly))}.")

    @quota.command(name="clear", description="Remove a member's or a role's override")
    async def clear(
        interaction: discord.Interaction,
        member: discord.Member | None = None,
        role: discord.Role | None = None,
    ) -> None:
        gid = guard(interaction)
        if (member is None) == (role is None):
            raise InvalidInput("Pick either a member or a role.")
        scope, subject = ("user", member.id) if member else ("role", role.id)  # type: ignore[union-attr]
        removed = await quotas().clear_limits(gid, scope, subject)
        await _reply(interaction, "Override removed." if removed else "There was no override.")

    @quota.command(name="grant", description="Give a member extra credits for today or this month")
    async def grant(
        interaction: discord.Interaction,
        member: discord.Member,
        credits: app_commands.Range[float, 0.01, 1_000_000.0],
        period: Literal["day", "month"] = "day",
    ) -> None:
        gid = guard(interaction)
        await quotas().grant(
            gid, member.id, credits, period=period, by=interaction.user.id, now=time.time()
        )
        await _reply(
            interaction,
            f"Granted {member.mention} {fmt_credits(credits)} extra credits this {period}.",
        )

    @quota.command(name="reset", description="Start a member's day and month afresh")
    async def reset(interaction: discord.Interaction, member: discord.Member) -> None:
        gid = guard(interaction)
        await quotas().reset(gid, member.id, time.time())
        await _reply(interaction, f"{member.mention}'s usage was reset.")

    @quota.command(name="list", description="Every limit set on this server")
    async def list_limits(interaction: discord.Interaction) -> None:
        gid = guard(interaction)
        rows = await quotas().list_limits(gid)
        if not rows:
            await _reply(interaction, "No limits set here: the bot's defaults apply.")
            return
        text = "\n".join(f"{_subject(scope, sid)}: {_limits_text(lim)}" for scope, sid, lim in rows)
        await _reply(interaction, embeds.clip(text, 1900))

    @command("block", "Stop a member from using the bot here")
    async def block(
        interaction: discord.Interaction, member: discord.Member, reason: str | None = None
    ) -> None:
        gid = guard(interaction)
        await quotas().block(gid, member.id, reason, by=interaction.user.id, now=time.time())
        await _reply(interaction, f"{member.mention} can no longer use the bot here.")

    @command("unblock", "Let a blocked member use the bot again")
    async def unblock(interaction: discord.Interaction, member: discord.Member) -> None:
        gid = guard(interaction)
        done = await quotas().unblock(gid, member.id)
        await _reply(interaction, f"{member.mention} was unblocked." if done else "Not blocked.")

    @command("usage", "Top members and daily spend")
    async def usage(
        interaction: discord.Interaction, days: app_commands.Range[int, 1, 90] = 30
    ) -> None:
        gid = guard(interaction)
        await interaction.response.defer(ephemeral=True)
        start = day_window(time.time() - (days - 1) * 86_400)[0]
        top = await quotas().top_users(gid, start)
        names = [(await _display_name(interaction.guild, uid), c, j) for uid, c, j in top]
        values = fill_days(await quotas().daily_spend(gid, start), start, days)
        png = await chart_png(values, start, f"Credits per day, last {days} days")
        await interaction.followup.send(
            f"**Top members, last {days} days**\n```\n{top_table(names)}\n```",
            file=discord.File(io.BytesIO(png), filename="usage.png"),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    @command("balance", "The crun.ai credit balance")
    async def balance(interaction: discord.Interaction) -> None:
        guard(interaction)
        if ctx.credits is None:
            raise InvalidInput("The balance is not available right now.")
        value = await ctx.credits.check()
        if value is None:
            raise InvalidInput("crun.ai did not answer; try again in a minute.")
        await _reply(interaction, f"crun.ai balance: **{fmt_credits(value)}** credits.")

    @command("forget", "Delete a member's stored prompts, jobs and usage")
    async def forget(
        interaction: discord.Interaction, member: discord.User, confirm: bool = False
    ) -> None:
        guard(interaction)
        if not confirm:
            raise InvalidInput("This deletes their data for good. Run it again with confirm: True.")
        removed = await ctx.jobs.forget_user(member.id)
        await _reply(
            interaction,
            f"Deleted {removed} stored job(s) and the usage history of {member.mention}.",
        )

    return [quota, block, unblock, usage, balance, forget]
