"""Message context menu "Edit with Wan": a modal asks what to change; every image of the message
(attachments and embedded images) is a reference.

Where the images come from when the modal is submitted: the context-menu interaction carries the
complete target message, even without the message-content intent, while a REST re-fetch of
someone else's message comes back with attachments and embeds blanked. So the checked image
list is kept on the modal object. Its custom_id carries the channel id, the message id and a
nonce: the nonce keeps two members editing the same message apart (discord.py files open
modals by custom_id), and the ids let a submission that arrives after a restart (the modal
object is gone) re-fetch the message. That works for messages the bot may read in full (its
own results, DMs, messages that mention it); anything else gets an explanation instead of
Discord's "This interaction failed".
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.models import GenerationRequest, Mode, Resolution
from bot.domain.text import t
from bot.domain.validation import MAX_N
from bot.errors import InvalidInput
from bot.i18n.replies import render
from bot.services import Services
from bot.ui.doors import InteractionDoor
from bot.ui.errors import handle_error
from bot.ui.flow import begin_job, check_door
from bot.ui.inputs import Candidate, message_candidates, precheck
from bot.ui.language import member_locale

log = logging.getLogger(__name__)

MENU_NAME: Final = "Edit with Wan"  # the menu entry (its translations: "context menu name")
PREFIX: Final = "wan:edit-msg:"
MODAL_TTL: Final = 30 * 60.0  # seconds a member may spend typing
PROMPT, RESOLUTION, COUNT = "prompt", "resolution", "count"
PROMPT_MAX: Final = 4000  # Discord's limit for a text input


def modal_id(channel_id: int, message_id: int) -> str:
    return f"{PREFIX}{channel_id}:{message_id}:{secrets.token_hex(4)}"


def parse_modal_id(custom_id: str) -> tuple[int, int] | None:
    if not custom_id.startswith(PREFIX):
        return None
    parts = custom_id[len(PREFIX) :].split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def submitted_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{custom_id: value or values}`` from a raw modal submission (the restart path)."""
    out: dict[str, Any] = {}

    def walk(components: Iterable[Mapping[str, Any]]) -> None:
        for comp in components:
            if comp.get("type") == 1:
                walk(comp.get("components") or [])
            elif comp.get("type") == 18 and isinstance(comp.get("component"), Mapping):
                walk([comp["component"]])
            elif isinstance(comp.get("custom_id"), str):
                out[comp["custom_id"]] = comp.get("value", comp.get("values"))

    walk(data.get("components") or [])
    return out


def build_request(
    prompt: str, resolution: Sequence[str], count: Sequence[str]
) -> GenerationRequest:
    if resolution and resolution[0] not in (Resolution.R1K.value, Resolution.R2K.value):
        raise InvalidInput(t("Edits come in 1K or 2K. Choose one of them and try again."))
    try:
        n = int(count[0]) if count else 1
    except ValueError:
        raise InvalidInput(t("Choose how many pictures: 1 to {limit}.", limit=MAX_N)) from None
    return GenerationRequest(
        prompt=prompt,
        mode=Mode.EDIT,
        resolution=Resolution(resolution[0]) if resolution else None,
        n=n,
    )


class EditModal(discord.ui.Modal):
    def __init__(
        self,
        cog: ContextMenuCog,
        candidates: Sequence[Candidate],
        channel_id: int,
        message_id: int,
        *,
        locale: str | None = None,
    ) -> None:
        """``locale``: the member's, the form's language."""
        super().__init__(
            title=render(t("Edit with Wan"), locale),
            timeout=MODAL_TTL,
            custom_id=modal_id(channel_id, message_id),
        )
        self.cog = cog
        self.candidates = list(candidates)
        self.message_id = message_id
        n = len(self.candidates)
        self.prompt: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            custom_id=PROMPT,
            style=discord.TextStyle.paragraph,
            max_length=PROMPT_MAX,
            placeholder=render(
                t("e.g. make it night time, with warm light in the windows"), locale
            ),
        )
        self.resolution: discord.ui.Select[EditModal] = discord.ui.Select(
            custom_id=RESOLUTION,
            required=False,
            placeholder=render(t("2K (default)"), locale),
            # 1K and 2K read the same in every language; their descriptions do not.
            options=[
                discord.SelectOption(
                    label=size.value, value=size.value, description=render(about, locale)
                )
                for size, about in (
                    (Resolution.R2K, t("Default, sharper")),
                    (Resolution.R1K, t("Faster")),
                )
            ],
        )
        self.count: discord.ui.Select[EditModal] = discord.ui.Select(
            custom_id=COUNT,
            required=False,
            placeholder=render(t("1 (default)"), locale),
            options=[discord.SelectOption(label=str(i), value=str(i)) for i in range(1, MAX_N + 1)],
        )
        self._add_labels(n, locale)

    def _add_labels(self, images: int, locale: str | None) -> None:
        hint = (
            t('Refer to the images as "image 1", "image 2"… in message order.')
            if images > 1
            else t("The image of that message is the reference.")
        )
        self.add_item(
            discord.ui.Label(
                text=render(t("What should change?"), locale),
                description=render(hint, locale),
                component=self.prompt,
            )
        )
        self.add_item(
            discord.ui.Label(text=render(t("Resolution"), locale), component=self.resolution)
        )
        self.add_item(
            discord.ui.Label(text=render(t("How many pictures"), locale), component=self.count)
        )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        request = build_request(self.prompt.value, self.resolution.values, self.count.values)
        await self.cog.start(interaction, request, self.candidates, self.message_id)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await handle_error(interaction, error)

    async def on_timeout(self) -> None:
        self.cog.forget(self.custom_id)


class ContextMenuCog(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services
        self._open: dict[str, float] = {}  # modal custom_id -> opened at (monotonic)
        # discord.py has no decorator for context menus inside a cog; an instance-level app
        # command added here is registered with the tree when the cog is added, like the rest.
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.edit_with_wan)
        self.__cog_app_commands__.append(self.menu)  # type: ignore[arg-type]

    # --- opening the modal ---------------------------------------------------------------------

    async def edit_with_wan(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        await check_door(InteractionDoor(interaction), self.services)
        candidates = message_candidates(message)
        if not candidates:
            raise InvalidInput(
                t(
                    "That message has no images to edit. Use Edit with Wan on a message with "
                    "pictures (attached or embedded), or upload your own with /edit."
                )
            )
        precheck(candidates)  # a bad file is named now, before the member types a prompt
        modal = EditModal(
            self, candidates, message.channel.id, message.id, locale=member_locale(interaction)
        )
        self._remember(modal.custom_id)
        await interaction.response.send_modal(modal)

    def _remember(self, custom_id: str) -> None:
        now = time.monotonic()
        for key in [k for k, at in self._open.items() if now - at > MODAL_TTL]:
            del self._open[key]  # submitted long ago (discord.py stops them without a timeout)
        self._open[custom_id] = now

    def forget(self, custom_id: str) -> None:
        self._open.pop(custom_id, None)

    # --- the submission ------------------------------------------------------------------------

    async def start(
        self,
        interaction: discord.Interaction,
        request: GenerationRequest,
        candidates: Sequence[Candidate],
        message_id: int,
    ) -> None:
        door = InteractionDoor(interaction, reply_to_message_id=message_id)
        # No options here: every default comes from the member's /settings.
        await begin_job(door, self.services, request, candidates=candidates, given=())

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A submission for a modal this process never opened (it was restarted, or the modal
        timed out): discord.py drops those silently, so they are answered here."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Mapping[str, Any] = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        ids = parse_modal_id(custom_id)
        if ids is None or custom_id in self._open:
            return  # not ours, or the live modal object handles it
        try:
            await self._start_orphan(interaction, data, *ids)
        except Exception as exc:
            await handle_error(interaction, exc)

    async def _start_orphan(
        self,
        interaction: discord.Interaction,
        data: Mapping[str, Any],
        channel_id: int,
        message_id: int,
    ) -> None:
        values = submitted_values(data)
        prompt = values.get(PROMPT)
        if not isinstance(prompt, str):
            raise InvalidInput(t("This form has expired. Use Edit with Wan on the message again."))
        request = build_request(prompt, values.get(RESOLUTION) or [], values.get(COUNT) or [])
        channel = interaction.client.get_partial_messageable(
            channel_id, guild_id=interaction.guild_id
        )
        try:
            message = await channel.fetch_message(message_id)
        except discord.NotFound:
            raise InvalidInput(
                t("That message was deleted, so there is nothing to edit.")
            ) from None
        except discord.HTTPException as exc:
            log.info("cannot re-fetch message %s for an expired modal: %s", message_id, exc)
            message = None
        candidates = message_candidates(message) if message is not None else []
        if not candidates:
            raise InvalidInput(
                t(
                    "This form has expired (the bot restarted) and I can no longer see that "
                    "message's images. Right-click it → Apps → Edit with Wan again."
                )
            )
        log.info("a modal outlived its process; re-fetched message %s", message_id)
        await self.start(interaction, request, candidates, message_id)
