"""What every persistent control shares: its custom_id prefix, the services a press reaches, the
job a press names, and one ephemeral answer for any failure.

Result buttons (``components``) and the Cancel controls (``cancel``) are DynamicItems: discord.py
builds them from a custom_id with no constructor arguments, so they find everything here.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import discord

from bot.domain.models import Job
from bot.domain.text import t
from bot.errors import UserFacingError
from bot.services import Services
from bot.services.generation import no_such_job
from bot.ui.errors import handle_error
from bot.ui.result_messages import discord_target

PREFIX = "wan:1"  # "wan", then the custom_id format version
JOB = r"(?P<job>[a-z0-9]{1,32})"


def services_of(interaction: discord.Interaction[Any]) -> Services:
    """The bot that received the press carries the services (set once, when it started)."""
    services = getattr(interaction.client, "services", None)
    if not isinstance(services, Services):
        raise UserFacingError(t("I'm still starting up. Try again in a few seconds."))
    return services


async def job_here(interaction: discord.Interaction[Any], services: Services, job_id: str) -> Job:
    """The job a button or form names, only where it was made: a custom id is client data, and
    a forged one must not reach (delete, read, re-run, cancel) another server's or DM's job."""
    job = await services.generation.get(job_id)
    if not answers_here(job, interaction):
        raise no_such_job(job_id)
    return job


def answers_here(job: Job, interaction: discord.Interaction[Any]) -> bool:
    """Do the job's buttons answer this interaction? In the job's server; a DM job in its DM;
    a private result in its member's DM, and only for them."""
    target = discord_target(job)
    if target is not None and target.private:
        return target.channel_id == interaction.channel_id and interaction.user.id == job.user_id
    if job.guild_id is not None:
        return job.guild_id == interaction.guild_id
    return target is not None and target.channel_id == interaction.channel_id


async def guarded(interaction: discord.Interaction[Any], action: Coroutine[Any, Any, None]) -> None:
    """discord.py only logs errors from DynamicItem callbacks; answer the member instead."""
    try:
        await action
    except Exception as exc:  # every failure gets an ephemeral answer
        await handle_error(interaction, exc)
