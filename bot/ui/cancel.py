"""Cancel a job while it waits in line: the Cancel button on its status message, and the /queue
panel with a menu of the member's waiting jobs.

Both are persistent DynamicItems (``wan:1:cx:<job>`` and ``wan:1:cq``), like the result buttons:
nothing is held in memory and they keep working after a restart. The requester or a member with
Manage Messages in the job's channel may cancel; the service decides, this only reports
Discord's permissions. Every answer is private.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Self

import discord

from bot.domain.models import Job
from bot.domain.text import Text, t, tn
from bot.errors import InvalidInput
from bot.i18n.replies import render
from bot.services.queue import QueueStanding, WaitingJob
from bot.ui import embeds
from bot.ui.language import for_member, member_locale
from bot.ui.presses import JOB, PREFIX, guarded, job_here, services_of
from bot.ui.result_messages import discord_target
from bot.ui.sink import NO_PINGS

log = logging.getLogger(__name__)

LISTED = 10  # waiting jobs written out in the /queue embed (the menu offers up to 25)
EXCERPT = 60  # characters of a prompt shown per waiting job

CANCEL = t("Cancel")
MENU_PLACEHOLDER = t("✖️ Cancel one of your waiting jobs…")


def cancel_id(job_id: str) -> str:
    return f"{PREFIX}:cx:{job_id}"


QUEUE_MENU_ID = f"{PREFIX}:cq"


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:cx:{JOB}"),
):
    """On the status message of a waiting job; the sink adds it and takes it away."""

    def __init__(self, job_id: str, *, locale: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=render(CANCEL, locale),
                emoji="✖️",
                style=discord.ButtonStyle.secondary,
                custom_id=cancel_id(job_id),
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        services = services_of(interaction)
        job = await job_here(interaction, services, self.job_id)
        # The answer is private and may take a moment (the status edit rides along).
        await interaction.response.defer()
        answer = await services.queue.cancel(
            job.id, user_id=interaction.user.id, can_manage=may_manage(interaction, job)
        )
        if answer.control_stale:
            # A late press: the job moved on and this button should have gone with it.
            try:
                await interaction.edit_original_response(view=None)
            except discord.HTTPException as exc:
                log.info("job %s: stale Cancel button not removed (%s)", job.id, exc)
        await interaction.followup.send(
            for_member(interaction, answer.text), ephemeral=True, allowed_mentions=NO_PINGS
        )


class QueueMenu(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:cq"),
):
    """The menu on a member's private /queue answer: pick a waiting job to cancel it."""

    def __init__(self, options: list[discord.SelectOption], *, locale: str | None = None) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=QUEUE_MENU_ID,
                placeholder=render(MENU_PLACEHOLDER, locale),
                options=options,
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        options = list(item.options) if isinstance(item, discord.ui.Select) else []
        return cls(options or [discord.SelectOption(label="-", value="-")])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        values = self.item.values
        if not values:
            raise InvalidInput(t("Pick one of your waiting jobs in the menu."))
        services = services_of(interaction)
        await interaction.response.defer()  # the /queue answer itself is updated below
        # Only the member's own jobs: the menu is theirs, and its values are client data.
        answer = await services.queue.cancel(
            values[0], user_id=interaction.user.id, can_manage=False
        )
        locale = member_locale(interaction)
        standing = await services.queue.standing(interaction.user.id)
        embed, view = queue_panel(standing, locale=locale)
        await interaction.edit_original_response(
            content=render(answer.text, locale), embed=embed, view=view, allowed_mentions=NO_PINGS
        )


DYNAMIC_ITEMS = (CancelButton, QueueMenu)


def may_manage(interaction: discord.Interaction[Any], job: Job) -> bool:
    """Manage Messages where the job was asked for: ``interaction.permissions`` are the presser's
    in the channel of the press, so they count only in the job's own channel."""
    target = discord_target(job)
    return (
        interaction.guild_id is not None
        and target is not None
        and target.channel_id == interaction.channel_id
        and interaction.permissions.manage_messages
    )


def cancel_view(job_id: str, locale: str | None = None) -> discord.ui.View:
    """The controls of a waiting job's status message, in the job's channel ``locale``, as the
    status text that names the button."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, locale=locale))
    return view


# --- /queue ---------------------------------------------------------------------------------------


def queue_panel(
    standing: QueueStanding, *, now: float | None = None, locale: str | None = None
) -> tuple[discord.Embed, discord.ui.View]:
    """The private /queue answer in the member's ``locale``: counts, the member's waiting jobs,
    and a menu to cancel one."""
    now = time.time() if now is None else now

    def say(text: Text) -> str:
        return render(text, locale)

    embed = discord.Embed(title=say(t("Queue")), colour=embeds.BRAND)
    embed.add_field(name=say(t("Rendering now")), value=str(standing.rendering), inline=True)
    embed.add_field(name=say(t("Waiting")), value=str(standing.waiting), inline=True)
    mine = standing.mine
    lines = [say(_line(w, now)) for w in mine[:LISTED]]
    if len(mine) > LISTED:
        more = tn(
            "…and {count} more (in the menu below)",
            "…and {count} more (in the menu below)",
            count=len(mine) - LISTED,
        )
        lines.append(say(more))
    embed.add_field(
        name=say(t("Your waiting jobs")),
        value=embeds.clip("\n".join(lines) or say(t("none")), 1024),
        inline=False,
    )
    view = discord.ui.View(timeout=None)
    if mine:
        embed.set_footer(
            text=say(t("Cancelling a waiting job releases its credits: nothing is charged."))
        )
        view.add_item(QueueMenu([_option(w, locale) for w in mine], locale=locale))
    return embed, view


def _line(waiting: WaitingJob, now: float) -> Text:
    starts = waiting.starts_at
    prompt = embeds.safe_prompt(" ".join(waiting.prompt.split()), EXCERPT)
    # The place stays a plain number (``#1234``), as in the menu's labels.
    place, job = str(waiting.place), waiting.job_id
    if starts and starts > now:
        return t(
            "**#{place} in line**, should start {when} · `{job}` {prompt}",
            place=place,
            when=embeds.ts(starts),
            job=job,
            prompt=prompt,
        )
    return t("**#{place} in line** · `{job}` {prompt}", place=place, job=job, prompt=prompt)


def _option(waiting: WaitingJob, locale: str | None) -> discord.SelectOption:
    prompt = embeds.clip(" ".join(waiting.prompt.split()), 80)
    return discord.SelectOption(
        label=f"#{waiting.place}: {prompt}",
        value=waiting.job_id,
        description=render(t("job {job}", job=waiting.job_id), locale),
        emoji="✖️",
    )
