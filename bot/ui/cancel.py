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
from bot.errors import InvalidInput
from bot.services.queue import QueueStanding, WaitingJob
from bot.ui import embeds
from bot.ui.presses import JOB, PREFIX, guarded, job_here, services_of
from bot.ui.result_messages import discord_target
from bot.ui.sink import NO_PINGS

log = logging.getLogger(__name__)

LISTED = 10  # waiting jobs written out in the /queue embed (the menu offers up to 25)
EXCERPT = 60  # characters of a prompt shown per waiting job


def cancel_id(job_id: str) -> str:
    return f"{PREFIX}:cx:{job_id}"


QUEUE_MENU_ID = f"{PREFIX}:cq"


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:cx:{JOB}"),
):
    """On the status message of a waiting job; the sink adds it and takes it away."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel",
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
        await interaction.followup.send(answer.text, ephemeral=True, allowed_mentions=NO_PINGS)


class QueueMenu(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:cq"),
):
    """The menu on a member's private /queue answer: pick a waiting job to cancel it."""

    def __init__(self, options: list[discord.SelectOption]) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=QUEUE_MENU_ID,
                placeholder="✖️ Cancel one of your waiting jobs…",
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
            raise InvalidInput("Pick one of your waiting jobs in the menu.")
        services = services_of(interaction)
        await interaction.response.defer()  # the /queue answer itself is updated below
        # Only the member's own jobs: the menu is theirs, and its values are client data.
        answer = await services.queue.cancel(
            values[0], user_id=interaction.user.id, can_manage=False
        )
        embed, view = queue_panel(await services.queue.standing(interaction.user.id))
        await interaction.edit_original_response(
            content=answer.text, embed=embed, view=view, allowed_mentions=NO_PINGS
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


def cancel_view(job_id: str) -> discord.ui.View:
    """The controls of a waiting job's status message."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


# --- /queue ---------------------------------------------------------------------------------------


def queue_panel(
    standing: QueueStanding, *, now: float | None = None
) -> tuple[discord.Embed, discord.ui.View]:
    """The private /queue answer: counts, the member's waiting jobs, and a menu to cancel one."""
    now = time.time() if now is None else now
    embed = discord.Embed(title="Queue", colour=embeds.BRAND)
    embed.add_field(name="Rendering now", value=str(standing.rendering), inline=True)
    embed.add_field(name="Waiting", value=str(standing.waiting), inline=True)
    mine = standing.mine
    lines = [_line(w, now) for w in mine[:LISTED]]
    if len(mine) > LISTED:
        lines.append(f"…and {len(mine) - LISTED} more (in the menu below)")
    embed.add_field(
        name="Your waiting jobs", value=embeds.clip("\n".join(lines) or "none", 1024), inline=False
    )
    view = discord.ui.View(timeout=None)
    if mine:
        embed.set_footer(text="Cancelling a waiting job releases its credits: nothing is charged.")
        view.add_item(QueueMenu([_option(w) for w in mine]))
    return embed, view


def _line(waiting: WaitingJob, now: float) -> str:
    starts = waiting.starts_at
    when = f", should start {embeds.ts(starts)}" if starts and starts > now else ""
    prompt = embeds.safe_prompt(" ".join(waiting.prompt.split()), EXCERPT)
    return f"**#{waiting.place} in line**{when} · `{waiting.job_id}` {prompt}"


def _option(waiting: WaitingJob) -> discord.SelectOption:
    prompt = embeds.clip(" ".join(waiting.prompt.split()), 80)
    return discord.SelectOption(
        label=f"#{waiting.place}: {prompt}",
        value=waiting.job_id,
        description=f"job {waiting.job_id}",
        emoji="✖️",
    )
