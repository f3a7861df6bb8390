"""The shared path from a Discord interaction to a running job, used by every command and button.

defer (within 3 s) -> check permissions -> status message -> submit. Any UserFacingError raised
here reaches the tree's error handler, which turns it into an ephemeral reply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import discord

from bot.domain.config import BOT_WIDE, GuildConfig, apply_rules, dms_allowed
from bot.domain.models import GenerationRequest, Job
from bot.domain.validation import validate_request
from bot.errors import InvalidInput
from bot.generation import GenerationService
from bot.jobs.credits import CreditMonitor
from bot.media import MediaFetcher
from bot.store.guild_config import GuildConfigRepository
from bot.store.jobs import JobRepository
from bot.store.quotas import QuotaRepository
from bot.ui import embeds
from bot.ui.sink import NO_PINGS
from bot.ui.target import DiscordTarget

log = logging.getLogger(__name__)

# What the bot needs in a channel to post results there.
NEEDED = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
}

STATUS_MESSAGE = "status_message"  # interaction.extras key: a public status message exists


@dataclass
class JobContext:
    """What the flow needs besides the interaction: the core services."""

    service: GenerationService
    jobs: JobRepository
    allow_dms: bool = True
    # Downloads input images for checking (the runtime's fetcher). None: the engine's fetcher.
    fetcher: MediaFetcher | None = None
    quotas: QuotaRepository | None = None  # /quota and the admin commands
    credits: CreditMonitor | None = None  # /wan-admin balance
    owner_ids: frozenset[int] = frozenset()  # bot owners: admin everywhere
    configs: GuildConfigRepository | None = None  # per-server rules; None: no rules apply


async def server_config(ctx: JobContext, guild_id: int | None) -> GuildConfig:
    """The rules for a request: its server's, or the bot-wide ones (guild 0) in DMs."""
    if ctx.configs is None:
        return GuildConfig()
    return await ctx.configs.get(BOT_WIDE if guild_id is None else guild_id)


def parent_channel_id(channel: object) -> int | None:
    """The channel a thread belongs to: a thread of an enabled channel is enabled too."""
    parent = getattr(channel, "parent_id", None)
    return parent if isinstance(parent, int) else None


def role_ids(user: discord.User | discord.Member) -> tuple[int, ...]:
    """Role ids for quota overrides (members only; DMs have none)."""
    return tuple(r.id for r in getattr(user, "roles", ()) if not r.is_default())


def missing_permissions(perms: discord.Permissions, in_dm: bool) -> list[str]:
    if in_dm:
        return []
    return [label for attr, label in NEEDED.items() if not getattr(perms, attr)]


def check_channel(interaction: discord.Interaction, *, allow_dms: bool) -> None:
    """Refuse early, before anything is spent, when results could not be posted."""
    in_dm = interaction.guild_id is None
    if in_dm and not allow_dms:
        raise InvalidInput("This bot does not take requests in DMs here. Use it in a server.")
    missing = missing_permissions(interaction.app_permissions, in_dm)
    if missing:
        raise InvalidInput(
            "I can't post images in this channel: I'm missing the "
            f"{', '.join(missing)} permission{'s' if len(missing) > 1 else ''}. "
            "Ask a server admin to grant them, or use me in another channel."
        )


async def defer(interaction: discord.Interaction) -> None:
    """Acknowledge within Discord's 3 seconds; the public status message follows."""
    if not interaction.response.is_done():
        await interaction.response.defer(thinking=True)
        interaction.extras[STATUS_MESSAGE] = True


async def admit(
    interaction: discord.Interaction, ctx: JobContext, request: GenerationRequest
) -> tuple[GenerationRequest, GuildConfig]:
    """The checks that need no download: the model's rules, the server's rules, the channel."""
    validate_request(request)
    config = await server_config(ctx, interaction.guild_id)
    request = apply_rules(
        config,
        channel_id=interaction.channel_id,
        parent_channel_id=parent_channel_id(interaction.channel),
        request=request,
    )
    check_channel(interaction, allow_dms=dms_allowed(config, ctx.allow_dms))
    return request, config


async def check_channel_for(interaction: discord.Interaction, ctx: JobContext) -> None:
    """check_channel with the bot-wide DM switch applied."""
    config = await server_config(ctx, interaction.guild_id)
    check_channel(interaction, allow_dms=dms_allowed(config, ctx.allow_dms))


async def begin_job(
    interaction: discord.Interaction,
    ctx: JobContext,
    request: GenerationRequest,
    *,
    parent_job_id: str | None = None,
    reply_to_message_id: int | None = None,
) -> Job:
    """Validate, apply the server's rules, defer, show a status message, submit. Returns the
    stored job."""
    # Cheap checks first: refuse before deferring so the answer can be ephemeral.
    request, config = await admit(interaction, ctx, request)
    await defer(interaction)
    status = await interaction.edit_original_response(
        embed=embeds.preparing_embed(request), allowed_mentions=NO_PINGS
    )
    assert interaction.channel_id is not None
    target = DiscordTarget(
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        application_id=interaction.application_id,
        interaction_token=interaction.token,
        interaction_at=interaction.created_at.timestamp(),
        status_message_id=status.id,
        reply_to_message_id=reply_to_message_id,
        upload_limit=interaction.filesize_limit,
        spoiler=config.spoiler,
    )
    # From here on the engine's progress updates keep the status message current.
    return await ctx.service.submit(
        request,
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        target=target.to_target(),
        parent_job_id=parent_job_id,
        role_ids=role_ids(interaction.user),
    )
