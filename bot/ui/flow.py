"""The one path from any door (command, context menu, button, form, mention) to a running job.

check the door (DMs, the server's channels, the bot's permissions) -> check what Discord reported
about input images -> validate the request and apply the server's rules -> acknowledge -> status
message -> download and check the input images -> submit. Everything that needs no I/O is refused
before the acknowledgement, so most mistakes get an immediate private answer. Any
``UserFacingError`` raised here reaches ``doors.report`` (or the tree's handler), which answers the
member through the same door.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence

from bot.domain.config import (
    GuildConfig,
    PromptBlocked,
    apply_rules,
    dms_allowed,
    require_channel,
)
from bot.domain.models import GenerationRequest, Job
from bot.domain.preferences import Personalised
from bot.domain.text import Text, t, tn
from bot.domain.validation import validate_request
from bot.errors import InvalidInput
from bot.i18n.replies import render
from bot.services import Services
from bot.ui import embeds
from bot.ui.doors import PERMISSION_NAMES, Door, MessageDoor, Origin
from bot.ui.inputs import Candidate, precheck, verify
from bot.ui.language import server_locale
from bot.ui.private import PrivateDoor, private_door
from bot.ui.target import DiscordTarget, supported

log = logging.getLogger(__name__)

DM_REFUSED = t("This bot does not take requests in DMs here. Use it in a server.")


async def check_door(door: Door, services: Services) -> GuildConfig:
    """Refuse early, before anything is fetched or spent, when the result could not be posted
    here or the request may not come from here. Returns the rules that apply."""
    origin = door.origin
    generation = services.generation
    config = await generation.rules(origin.guild_id)
    if isinstance(door, MessageDoor) and not origin.in_dm:
        # A mention has no member language: the server's, which its admins may have chosen.
        origin = door.origin = dataclasses.replace(
            origin, locale=server_locale(config.language, origin.guild_locale)
        )
    if origin.in_dm and not dms_allowed(config, generation.allow_dms_default):
        raise InvalidInput(DM_REFUSED)
    require_channel(config, origin.channel_id, origin.parent_channel_id)
    if origin.missing:
        raise InvalidInput(_missing(origin))
    return config


def _missing(origin: Origin) -> Text:
    """The refusal naming the permissions as the reader's Discord client shows them."""
    names = [render(PERMISSION_NAMES.get(m, m), origin.locale) for m in origin.missing]
    return tn(
        "I can't post images in this channel: I'm missing the {permissions} permission. "
        "Ask a server admin to grant them, or use me in another channel.",
        "I can't post images in this channel: I'm missing the {permissions} permissions. "
        "Ask a server admin to grant them, or use me in another channel.",
        count=len(names),
        permissions=", ".join(names),
    )


async def begin_job(
    door: Door,
    services: Services,
    request: GenerationRequest,
    *,
    candidates: Sequence[Candidate] = (),
    parent_job_id: str | None = None,
    config: GuildConfig | None = None,
    given: Iterable[str] | None = None,
    style: str | None = None,
    private: bool | None = None,
) -> Job:
    """Check, acknowledge, show a status message, check the inputs, submit. Returns the job.

    ``candidates`` are input images Discord told us about; their refs replace the request's.
    ``config`` is the result of ``check_door`` when the caller already ran it. ``given``: the
    options a command was given; when set, the member's /settings fill in the others (follow-ups
    of a result pass nothing: their request already has them). ``style``: the name of a server
    style the member picked; its text joins the request (an unknown name is refused).
    ``private``: the result goes to the member's DMs (``bot/ui/private.py``); None: their
    /settings decide when ``given`` is set, else it is not private.
    """
    if config is None:
        config = await check_door(door, services)
    request = await services.styles.apply(door.origin.guild_id, style, request)
    if candidates:
        precheck(candidates)
        request = dataclasses.replace(request, images=tuple(c.ref() for c in candidates))
    personal = await _personalise(door, services, request, given, config)
    validate_request(personal.request)  # the edge: instant feedback (the engine checks again)
    request = _apply_rules(door.origin, services, config, personal.request)
    services.generation.check(request)  # what crun's live schema cannot take, before any wait
    if personal.private if private is None else private:
        door = private_door(door)
    await door.acknowledge()
    # A private request's status goes to the DMs first: closed DMs refuse it here, unspent.
    locale = channel_locale(door.origin, config)
    status_id = await door.show_status(embeds.preparing_embed(request, locale))
    try:
        return await _start(
            door,
            services,
            request,
            status_id,
            candidates=candidates,
            notes=personal.notes,
            parent_job_id=parent_job_id,
            spoiler=config.spoiler,
            locale=locale,
        )
    except Exception:
        if isinstance(door, PrivateDoor):
            await door.withdraw()  # refused after all: no status left in the DMs
        raise


async def _start(
    door: Door,
    services: Services,
    request: GenerationRequest,
    status_id: int,
    *,
    candidates: Sequence[Candidate],
    notes: Sequence[Text | str],
    parent_job_id: str | None,
    spoiler: bool,
    locale: str | None,
) -> Job:
    """After the status message: notes, input downloads, submit."""
    if notes:
        await door.tell(" ".join(render(note, door.origin.locale) for note in notes))
    if candidates:
        # Downloads can take longer than Discord's 3 seconds, so they run after the
        # acknowledgement; a refusal still reaches the member through the door.
        refs = await verify(candidates, services.inputs)
        log.info("user %s: %d input image(s) checked", door.origin.user_id, len(refs))
        request = dataclasses.replace(request, images=tuple(refs))
    if isinstance(door, PrivateDoor):
        target = door.target(status_id, spoiler=spoiler)
    else:
        target = _target(door.origin, status_id, spoiler=spoiler, locale=locale)
    # From here on the engine's progress updates keep the status message current.
    return await services.generation.submit(
        request,
        user_id=door.origin.user_id,
        guild_id=door.origin.guild_id,
        target=target.to_target(),
        parent_job_id=parent_job_id,
        role_ids=door.origin.role_ids,
    )


async def _personalise(
    door: Door,
    services: Services,
    request: GenerationRequest,
    given: Iterable[str] | None,
    config: GuildConfig,
) -> Personalised:
    """The member's /settings where the command said nothing (``given`` None: none apply), and
    the notes to tell them (a preference this server capped)."""
    if given is None:
        return Personalised(request)
    return await services.preferences.personalise(door.origin.user_id, request, given, config)


def _apply_rules(
    origin: Origin, services: Services, config: GuildConfig, request: GenerationRequest
) -> GenerationRequest:
    """The server's rules; a prompt a blocked word or pattern refused goes to the mod log."""
    try:
        return apply_rules(
            config,
            channel_id=origin.channel_id,
            parent_channel_id=origin.parent_channel_id,
            request=request,
        )
    except PromptBlocked as exc:
        services.modlog.blocked_prompt(
            origin.guild_id, origin.user_id, origin.channel_id, exc.rule, request.prompt
        )
        raise


def channel_locale(origin: Origin, config: GuildConfig) -> str | None:
    """The language of a job's posts in a channel, decided once when the job is made: the
    server's setting, else the server's Discord language, else English (None); in a DM the
    member's own. A private result (``PrivateDoor.target``) uses the member's language."""
    if origin.in_dm:
        return supported(origin.locale)
    return server_locale(config.language, origin.guild_locale)


def _target(origin: Origin, status_id: int, *, spoiler: bool, locale: str | None) -> DiscordTarget:
    return DiscordTarget(
        channel_id=origin.channel_id,
        user_id=origin.user_id,
        guild_id=origin.guild_id,
        application_id=origin.application_id,
        interaction_token=origin.interaction_token,
        interaction_at=origin.interaction_at,
        status_message_id=status_id,
        reply_to_message_id=origin.reply_to_message_id,
        upload_limit=origin.upload_limit,
        spoiler=spoiler,
        locale=locale,
    )
