"""Buttons and menus under results: persistent DynamicItems that carry the job id.

Nothing about a result is kept in memory. The custom_id says what to do and to which job
(``wan:1:<action>:<job_id>[:<image>]``, ``1`` being the format version); a press reads the job from
the store. So buttons keep working after a restart, and any number of results cost no memory.

Who may press: anyone who can see the result may Reroll, Upscale, Vary or Edit (the new job is
theirs and charged to them) and view Info. Delete is for the requester and for members with
Manage Messages, checked here on every press, not by hiding the button. A private result (in its
member's DM) answers only that member, and its follow-ups are private too (``bot/ui/private``).
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from typing import Any, Self

import discord

from bot.domain.models import GenerationRequest, Job
from bot.domain.text import Text, t
from bot.domain.validation import MAX_PROMPT_CHARS, upscale_refusal
from bot.errors import InvalidInput
from bot.i18n.replies import render
from bot.services import Services
from bot.ui import cancel, embeds, settings
from bot.ui.errors import handle_error
from bot.ui.flow import begin_job
from bot.ui.language import member_locale
from bot.ui.presses import JOB, PREFIX, guarded, job_here, services_of
from bot.ui.private import is_private, press_door
from bot.ui.result_messages import delete_result, no_image, result_image_url
from bot.ui.sink import NO_PINGS
from bot.ui.target import job_locale

log = logging.getLogger(__name__)

PER_IMAGE_BUTTONS_MAX = 5  # one row of "Vary k" and one of "Edit k"; more images get a menu
EDIT_MODAL_TIMEOUT = 30 * 60  # an open Edit form is held in memory this long (seconds)


class Action(enum.StrEnum):
    REROLL = "rr"
    UPSCALE = "up"
    VARY = "va"
    EDIT = "ed"
    INFO = "in"
    DELETE = "rm"


@dataclass(frozen=True, slots=True)
class _Look:
    label: Text
    emoji: str
    style: discord.ButtonStyle


_LOOKS = {
    Action.REROLL: _Look(t("Reroll"), "🎲", discord.ButtonStyle.secondary),
    Action.UPSCALE: _Look(t("Upscale 4K"), "⬆️", discord.ButtonStyle.secondary),
    Action.VARY: _Look(t("Vary"), "✨", discord.ButtonStyle.secondary),
    Action.EDIT: _Look(t("Edit"), "✏️", discord.ButtonStyle.secondary),
    Action.INFO: _Look(t("Info"), "ℹ️", discord.ButtonStyle.secondary),
    Action.DELETE: _Look(t("Delete"), "🗑️", discord.ButtonStyle.danger),
}


def custom_id(action: Action, job_id: str, image: int | None = None) -> str:
    tail = f":{image}" if image is not None else ""
    return f"{PREFIX}:{action.value}:{job_id}{tail}"


def picker_id(action: Action, job_id: str) -> str:
    return f"{PREFIX}:{action.value}s:{job_id}"


# --- the items --------------------------------------------------------------------------------


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(
        rf"{PREFIX}:(?P<action>rr|up|va|ed|in|rm):{JOB}(?::(?P<image>[0-9]{{1,2}}))?"
    ),
):
    def __init__(
        self,
        action: Action,
        job_id: str,
        image: int | None = None,
        *,
        row: int | None = None,
        locale: str | None = None,
    ) -> None:
        look = _LOOKS[action]
        # Per-image buttons on multi-image results are "Vary 2", "Edit 2", ...
        name = render(look.label, locale)
        label = name if image is None else f"{name} {image}"
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=look.emoji,
                style=look.style,
                custom_id=custom_id(action, job_id, image),
            ),
            row=row,
        )
        self.action = action
        self.job_id = job_id
        self.image = image

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        image = match["image"]
        return cls(Action(match["action"]), match["job"], int(image) if image else None)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        services = services_of(interaction)
        generation = services.generation
        job = await job_here(interaction, services, self.job_id)
        if self.action is Action.REROLL:
            await _begin(interaction, services, generation.reroll(job), job)
        elif self.action is Action.UPSCALE:
            await _begin(interaction, services, generation.upscale(job), job)
        elif self.action is Action.VARY:
            await vary(interaction, services, job, self.image or 1)
        elif self.action is Action.EDIT:
            await open_edit_form(interaction, services, job, self.image or 1)
        elif self.action is Action.INFO:
            info = embeds.info_embed(job, member_locale(interaction))  # for the presser only
            await interaction.response.send_message(
                embed=info, ephemeral=True, allowed_mentions=NO_PINGS
            )
        elif self.action is Action.DELETE:
            await delete_result(interaction, job)


class ImagePicker(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:(?P<action>va|ed)s:{JOB}"),
):
    """A menu "Vary image k" / "Edit image k" for results with more images than fit as buttons."""

    def __init__(
        self,
        action: Action,
        job_id: str,
        count: int,
        *,
        row: int | None = None,
        locale: str | None = None,
    ) -> None:
        look = _LOOKS[action]
        vary = action is Action.VARY
        which = t("Vary one of the images…") if vary else t("Edit one of the images…")
        options = [
            discord.SelectOption(
                label=render(
                    t("Vary image {k}", k=k) if vary else t("Edit image {k}", k=k), locale
                ),
                value=str(k),
                emoji=look.emoji,
            )
            for k in range(1, max(1, min(count, 25)) + 1)
        ]
        super().__init__(
            discord.ui.Select(
                custom_id=picker_id(action, job_id),
                placeholder=f"{look.emoji} {render(which, locale)}",
                options=options,
            ),
            row=row,
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        count = len(item.options) if isinstance(item, discord.ui.Select) else 1
        return cls(Action(match["action"]), match["job"], count)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        values = self.item.values
        if not values or not values[0].isdigit():
            raise InvalidInput(t("Pick one of the images in the menu."))
        services = services_of(interaction)
        job = await job_here(interaction, services, self.job_id)
        if self.action is Action.VARY:
            await vary(interaction, services, job, int(values[0]))
        else:
            await open_edit_form(interaction, services, job, int(values[0]))


class EditForm(discord.ui.Modal):
    """The instruction for Edit. Lives in memory only while the form is open.

    Written in the language of the member who opened it (``locale``), not the channel's: only
    they see it. Discord's limits: title and label ≤ 45 characters, placeholder ≤ 100.
    """

    def __init__(
        self, services: Services, job_id: str, image: int, count: int, locale: str | None = None
    ) -> None:
        title = t("Edit the image") if count == 1 else t("Edit image {k}", k=image)
        super().__init__(title=render(title, locale), timeout=EDIT_MODAL_TIMEOUT)
        self.instruction: discord.ui.TextInput[EditForm] = discord.ui.TextInput(
            label=render(t("What should change?"), locale),
            custom_id="instruction",
            style=discord.TextStyle.paragraph,
            placeholder=render(t("e.g. make it night time and add falling snow"), locale),
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
        )
        self.add_item(self.instruction)
        self.services = services
        self.job_id = job_id
        self.image = image

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        # Re-read the job: the form may have been open for a while.
        job = await job_here(interaction, self.services, self.job_id)
        url = await result_image_url(interaction, job, self.image)
        request = self.services.generation.edit(job, url, self.image, self.instruction.value)
        await _begin(interaction, self.services, request, job)

    # Modal.on_error has no ``item`` argument, unlike BaseView's: discord.py's own typing clash.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await handle_error(interaction, error)


# --- what the sink and the bot call -----------------------------------------------------------


def result_view(job: Job, image_count: int) -> discord.ui.View | None:
    """The controls under the last message of a result, labelled in the job's channel language
    (its target's locale)."""
    view = discord.ui.View(timeout=None)
    locale = job_locale(job)

    def button(action: Action, image: int | None = None, *, row: int) -> ResultButton:
        return ResultButton(action, jid, image, row=row, locale=locale)

    jid = job.id
    upscale = upscale_refusal(job.request) is None  # the rule GenerationService.upscale applies
    if image_count == 1:
        # Row 0 makes something new, row 1 is about this result.
        view.add_item(button(Action.REROLL, row=0))
        view.add_item(button(Action.VARY, row=0))  # no image number: the only one
        view.add_item(button(Action.EDIT, row=0))
        if upscale:
            view.add_item(button(Action.UPSCALE, row=0))
        view.add_item(button(Action.INFO, row=1))
        view.add_item(button(Action.DELETE, row=1))
        return view
    view.add_item(button(Action.REROLL, row=0))
    if upscale:
        view.add_item(button(Action.UPSCALE, row=0))
    view.add_item(button(Action.INFO, row=0))
    view.add_item(button(Action.DELETE, row=0))
    if image_count <= 0:
        return view
    if image_count <= PER_IMAGE_BUTTONS_MAX:
        for k in range(1, image_count + 1):
            view.add_item(button(Action.VARY, k, row=1))
        for k in range(1, image_count + 1):
            view.add_item(button(Action.EDIT, k, row=2))
    else:
        view.add_item(ImagePicker(Action.VARY, jid, image_count, row=1, locale=locale))
        view.add_item(ImagePicker(Action.EDIT, jid, image_count, row=2, locale=locale))
    return view


def register(bot: discord.Client) -> None:
    """Route presses on every result ever posted, including those from before a restart. The
    items find the bot's services through the interaction's client (``presses.services_of``);
    the Cancel controls of waiting jobs and the /settings panel are routed here too."""
    bot.add_dynamic_items(ResultButton, ImagePicker, *cancel.DYNAMIC_ITEMS, *settings.DYNAMIC_ITEMS)


# --- the actions ------------------------------------------------------------------------------


async def _begin(
    interaction: discord.Interaction[Any],
    services: Services,
    request: GenerationRequest,
    parent: Job,
) -> None:
    # A private result's follow-up stays private (bot/ui/private.py).
    door = press_door(interaction, parent)
    await begin_job(door, services, request, parent_job_id=parent.id, private=is_private(parent))


async def vary(
    interaction: discord.Interaction[Any], services: Services, job: Job, image: int
) -> None:
    url = await result_image_url(interaction, job, image)
    await _begin(interaction, services, services.generation.vary(job, url, image), job)


async def open_edit_form(
    interaction: discord.Interaction[Any], services: Services, job: Job, image: int
) -> None:
    count = len(job.result_urls)
    if not 1 <= image <= max(count, 1):
        raise InvalidInput(no_image(image))
    form = EditForm(services, job.id, image, count, member_locale(interaction))
    await interaction.response.send_modal(form)


__all__ = [
    "Action",
    "EditForm",
    "ImagePicker",
    "ResultButton",
    "custom_id",
    "picker_id",
    "register",
    "result_view",
]
