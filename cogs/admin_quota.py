"""/wan-admin quota, block, unblock, usage, balance, forget: credits administration.

Permissions are checked here on every call (Manage Server, or a bot owner), not only through
Discord's default_member_permissions, which server admins can change.
"""

from __future__ import annotations

import io
import time
from typing import Any, Literal

import discord
from discord import app_commands

from bot.domain.quota import Limits, day_window
from bot.domain.text import Text, t, tn
from bot.errors import InvalidInput
from bot.services import Services
from bot.ui import embeds
from bot.ui.language import for_member, member_locale
from bot.ui.sink import NO_PINGS
from bot.usage_report import chart_png, fill_days, top_table
from cogs.admin_group import AdminSubgroup, require_admin
from cogs.quota import quota_embed

Credits = app_commands.Range[float, 0.0, 1_000_000.0]


UNLIMITED = t("unlimited")


def _amount(v: float | None) -> Text | float:
    return UNLIMITED if v is None else v


def _limits_line(subject: Text | str, limits: Limits) -> Text:
    """One line of ``quota list``: who, then the limits (``unlimited`` where none)."""
    return t(
        "{subject}: daily {daily}, monthly {monthly}",
        subject=subject,
        daily=_amount(limits.daily),
        monthly=_amount(limits.monthly),
    )


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


def _subject(scope: str, subject_id: int) -> Text | str:
    if scope == "role":
        return f"<@&{subject_id}>"
    if scope == "user":
        return f"<@{subject_id}>"
    return t("server default")


async def _reply(interaction: discord.Interaction, text: Text | str, **kwargs: Any) -> None:
    """A private answer in the admin's own language."""
    await interaction.response.send_message(
        for_member(interaction, text), ephemeral=True, allowed_mentions=NO_PINGS, **kwargs
    )


class QuotaCommands(AdminSubgroup, name="quota", description="Members' credit limits"):
    """``/wan-admin quota ...``: limits, grants and resets (the subgroup checks the caller)."""

    def _guild(self, interaction: discord.Interaction) -> int:
        return require_admin(interaction, self.services.owner_ids)

    @app_commands.command(name="show", description="A member's usage and limits")
    async def show(self, interaction: discord.Interaction, member: discord.Member) -> None:
        gid = self._guild(interaction)
        usage = await self.services.admin.usage(gid, member.id, [r.id for r in member.roles[1:]])
        await interaction.response.send_message(
            f"{member.mention}:",
            embed=quota_embed(usage, member_locale(interaction)),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    @app_commands.command(
        name="set-user", description="Limits for one member (leave empty = unlimited)"
    )
    async def set_user(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        daily: Credits | None = None,
        monthly: Credits | None = None,
    ) -> None:
        await self._set(interaction, "user", member.id, Limits(daily, monthly), member.mention)

    @app_commands.command(
        name="set-role", description="Limits for a role (the most generous role wins)"
    )
    async def set_role(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        daily: Credits | None = None,
        monthly: Credits | None = None,
    ) -> None:
        await self._set(interaction, "role", role.id, Limits(daily, monthly), role.mention)

    @app_commands.command(name="set-default", description="The server's default limits")
    async def set_default(
        self,
        interaction: discord.Interaction,
        daily: Credits | None = None,
        monthly: Credits | None = None,
    ) -> None:
        await self._set(interaction, "guild", 0, Limits(daily, monthly), t("Server default"))

    async def _set(
        self,
        interaction: discord.Interaction,
        scope: str,
        subject: int,
        limits: Limits,
        who: Text | str,
    ) -> None:
        gid = self._guild(interaction)
        await self.services.admin.set_limits(gid, scope, subject, limits)
        await _reply(
            interaction,
            t(
                "{subject}: daily {daily}, monthly {monthly}.",
                subject=who,
                daily=_amount(limits.daily),
                monthly=_amount(limits.monthly),
            ),
        )

    @app_commands.command(name="clear", description="Remove a member's or a role's override")
    async def clear(
        self,
        interaction: discord.Interaction,
        member: discord.Member | None = None,
        role: discord.Role | None = None,
    ) -> None:
        gid = self._guild(interaction)
        if (member is None) == (role is None):
            raise InvalidInput(t("Pick either a member or a role."))
        scope, subject = ("user", member.id) if member else ("role", role.id)  # type: ignore[union-attr]
        removed = await self.services.admin.clear_limits(gid, scope, subject)
        await _reply(
            interaction, t("Override removed.") if removed else t("There was no override.")
        )

    @app_commands.command(
        name="grant", description="Give a member extra credits for today or this month"
    )
    async def grant(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        credits: app_commands.Range[float, 0.01, 1_000_000.0],
        period: Literal["day", "month"] = "day",
    ) -> None:
        gid = self._guild(interaction)
        await self.services.admin.grant(
            gid, member.id, credits, period=period, by=interaction.user.id
        )
        # One whole sentence per period: languages word "this day/month" each their own way.
        granted = (
            t(
                "Granted {member} {credits} extra credits this day.",
                member=member.mention,
                credits=credits,
            )
            if period == "day"
            else t(
                "Granted {member} {credits} extra credits this month.",
                member=member.mention,
                credits=credits,
            )
        )
        await _reply(interaction, granted)

    @app_commands.command(name="reset", description="Start a member's day and month afresh")
    async def reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        gid = self._guild(interaction)
        await self.services.admin.reset(gid, member.id)
        await _reply(interaction, t("{member}'s usage was reset.", member=member.mention))

    @app_commands.command(name="list", description="Every limit set on this server")
    async def list_limits(self, interaction: discord.Interaction) -> None:
        gid = self._guild(interaction)
        rows = await self.services.admin.list_limits(gid)
        if not rows:
            await _reply(interaction, t("No limits set here: the bot's defaults apply."))
            return
        text = "\n".join(
            for_member(interaction, _limits_line(_subject(scope, sid), lim))
            for scope, sid, lim in rows
        )
        await _reply(interaction, embeds.clip(text, 1900))


class MemberCommands:
    """``/wan-admin block|unblock|usage|balance|forget``: commands right under the group, which
    checks the caller (``AdminGroup.interaction_check`` and ``protect``)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def commands(self) -> list[app_commands.Command[Any, Any, Any]]:
        command = app_commands.Command
        return [
            command(
                name="block",
                description="Stop a member from using the bot here",
                callback=self.block,
            ),
            command(
                name="unblock",
                description="Let a blocked member use the bot again",
                callback=self.unblock,
            ),
            command(name="usage", description="Top members and daily spend", callback=self.usage),
            command(
                name="balance", description="The crun.ai credit balance", callback=self.balance
            ),
            command(
                name="forget",
                description="Delete a member's stored prompts, jobs and usage",
                callback=self.forget,
            ),
        ]

    def _guild(self, interaction: discord.Interaction) -> int:
        return require_admin(interaction, self.services.owner_ids)

    async def block(
        self, interaction: discord.Interaction, member: discord.Member, reason: str | None = None
    ) -> None:
        gid = self._guild(interaction)
        await self.services.admin.block(gid, member.id, reason, by=interaction.user.id)
        self.services.modlog.member_blocked(
            gid, interaction.user.id, member.id, interaction.channel_id, reason
        )
        await _reply(
            interaction, t("{member} can no longer use the bot here.", member=member.mention)
        )

    async def unblock(self, interaction: discord.Interaction, member: discord.Member) -> None:
        gid = self._guild(interaction)
        done = await self.services.admin.unblock(gid, member.id)
        if done:
            self.services.modlog.member_unblocked(
                gid, interaction.user.id, member.id, interaction.channel_id
            )
        await _reply(
            interaction,
            t("{member} was unblocked.", member=member.mention) if done else t("Not blocked."),
        )

    async def usage(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 90] = 30
    ) -> None:
        gid = self._guild(interaction)
        await interaction.response.defer(ephemeral=True)
        start = day_window(time.time() - (days - 1) * 86_400)[0]
        admin = self.services.admin
        top = await admin.top_users(gid, start)
        names = [(await _display_name(interaction.guild, uid), c, j) for uid, c, j in top]
        values = fill_days(await admin.daily_spend(gid, start), start, days)
        # The chart's title stays English (see bot.usage_report); the message is the admin's.
        png = await chart_png(values, start, f"Credits per day, last {days} days")
        title = for_member(
            interaction,
            tn(
                "**Top members, last {count} day**",
                "**Top members, last {count} days**",
                count=days,
            ),
        )
        table = top_table(names, say=lambda text: for_member(interaction, text))
        await interaction.followup.send(
            f"{title}\n```\n{table}\n```",
            file=discord.File(io.BytesIO(png), filename="usage.png"),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    async def balance(self, interaction: discord.Interaction) -> None:
        self._guild(interaction)
        value = await self.services.admin.balance()
        if value is None:
            raise InvalidInput(t("crun.ai did not answer; try again in a minute."))
        await _reply(interaction, t("crun.ai balance: **{credits}** credits.", credits=value))

    async def forget(
        self, interaction: discord.Interaction, member: discord.User, confirm: bool = False
    ) -> None:
        self._guild(interaction)
        if not confirm:
            raise InvalidInput(
                t("This deletes their data for good. Run it again with confirm: True.")
            )
        removed = await self.services.admin.forget_user(member.id)
        # "job(s)" in both English forms, as before; languages pick their plural form.
        deleted = tn(
            "Deleted {count} stored job(s), the usage history and the /settings of {member}.",
            "Deleted {count} stored job(s), the usage history and the /settings of {member}.",
            count=removed,
            member=member.mention,
        )
        await _reply(interaction, deleted)
