"""The private /settings panel: a member's own defaults, changed with menus and buttons.

The menus and buttons are persistent DynamicItems (``wan:1:st:<setting>``), like the result
buttons: nothing is held in memory and an open panel keeps working after a restart. A press
always changes the presser's own preferences (the panel is ephemeral, and the store is keyed by
the presser's user id, never by anything in the custom_id). The prompt-suffix form is an ordinary
modal: one sent before a restart cannot be submitted after it (open /settings again).
"""

from __future__ import annotations

import re
from typing import Any, Self

import discord

from bot.domain.models import Resolution
from bot.domain.preferences import DEFAULTS, MAX_SUFFIX_CHARS, Preferences
from bot.domain.validation import ASPECT_RATIOS, MAX_N
from bot.services.preferences import SettingsPanel
from bot.ui import embeds
from bot.ui.errors import handle_error
from bot.ui.presses import PREFIX, guarded, services_of
from bot.ui.sink import NO_PINGS

SUFFIX_FIELD_ID = "suffix"
SUFFIX_FORM_TIMEOUT = 15 * 60  # an open suffix form is held in memory this long (seconds)

RESET_DONE = "Back to the defaults: your settings are cleared."
HOW_IT_WORKS = (
    "Your defaults for /imagine, /edit and /imageset, in every server. An option you give in a "
    "command wins over them, and each server's limits still apply. Aspect ratio and thinking "
    "apply to /imagine only; the count to /imagine and /edit. Private results come to your DMs "
    "instead of the channel."
)

# The toggles' names on the panel (buttons, fields and the "Saved" line).
_TOGGLE_NAMES = {"thinking": "Thinking", "watermark": "Watermark", "private": "Private results"}

# Each option names its setting: a menu shows its chosen option, not its placeholder.
_RESOLUTION_LABELS = {
    Resolution.R1K: "Resolution 1K (faster)",
    Resolution.R2K: "Resolution 2K",
    Resolution.R4K: "Resolution 4K (/imagine; edits and sets are made at 2K)",
}


def setting_id(name: str) -> str:
    return f"{PREFIX}:st:{name}"


def _shown(prefs: Preferences, name: str) -> str:
    """The value in effect and where it comes from."""
    mine = getattr(prefs, name)
    value = getattr(DEFAULTS, name) if mine is None else mine
    if isinstance(value, bool):
        value = "on" if value else "off"
    return f"**{value}** · {'your choice' if mine is not None else 'default'}"


def settings_embed(panel: SettingsPanel) -> discord.Embed:
    prefs = panel.prefs
    embed = discord.Embed(title="Your settings", colour=embeds.BRAND, description=HOW_IT_WORKS)
    embed.add_field(name="Resolution", value=_shown(prefs, "resolution"))
    embed.add_field(name="Aspect ratio", value=_shown(prefs, "aspect_ratio"))
    embed.add_field(name="Pictures per request", value=_shown(prefs, "count"))
    embed.add_field(name="Thinking", value=_shown(prefs, "thinking"))
    embed.add_field(name="Watermark", value=_shown(prefs, "watermark"))
    embed.add_field(name="Private results", value=_shown(prefs, "private"))
    suffix = (
        f"> {embeds.safe_prompt(prefs.suffix, 300)}\n(added to the end of every prompt)"
        if prefs.suffix
        else "none"
    )
    embed.add_field(name="Prompt suffix", value=suffix, inline=False)
    if panel.server_max is not None:
        embed.set_footer(
            text=f"This server allows at most {panel.server_max}: a higher choice is made at "
            f"{panel.server_max} here."
        )
    return embed


def settings_panel(panel: SettingsPanel) -> tuple[discord.Embed, discord.ui.View]:
    """The private /settings answer: what is in effect, and the controls to change it."""
    prefs = panel.prefs
    view = discord.ui.View(timeout=None)
    current_res = prefs.resolution or DEFAULTS.resolution
    view.add_item(
        SettingsMenu(
            "resolution",
            [
                discord.SelectOption(label=label, value=r.value, default=r is current_res)
                for r, label in _RESOLUTION_LABELS.items()
            ],
            row=0,
        )
    )
    ratio = prefs.aspect_ratio or DEFAULTS.aspect_ratio
    view.add_item(
        SettingsMenu(
            "aspect_ratio",
            [
                discord.SelectOption(
                    label=f"Aspect ratio {r} (/imagine)", value=r, default=r == ratio
                )
                for r in ASPECT_RATIOS
            ],
            row=1,
        )
    )
    count = prefs.count or DEFAULTS.count
    view.add_item(
        SettingsMenu(
            "count",
            [
                discord.SelectOption(
                    label=f"{n} picture{'s' if n > 1 else ''} per request",
                    value=str(n),
                    default=n == count,
                )
                for n in range(1, MAX_N + 1)
            ],
            row=2,
        )
    )
    for name, shown in _TOGGLE_NAMES.items():
        on = getattr(prefs, name)
        on = getattr(DEFAULTS, name) if on is None else on
        view.add_item(SettingsButton(name, f"{shown}: {'on' if on else 'off'}", on))
    view.add_item(SettingsButton("suffix", "Prompt suffix…", None))
    view.add_item(SettingsButton("reset", "Reset", None))
    return settings_embed(panel), view


_PLACEHOLDERS = {
    "resolution": "Resolution",
    "aspect_ratio": "Aspect ratio (/imagine)",
    "count": "Pictures per request",
}


class SettingsMenu(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:st:(?P<name>resolution|aspect_ratio|count)"),
):
    def __init__(self, name: str, options: list[discord.SelectOption], *, row: int = 0) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=setting_id(name),
                placeholder=_PLACEHOLDERS[name],
                options=options,
                row=row,
            )
        )
        self.name = name

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        options = list(item.options) if isinstance(item, discord.ui.Select) else []
        return cls(match["name"], options or [discord.SelectOption(label="-", value="-")])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        values = self.item.values
        value = values[0] if values else ""
        services = services_of(interaction)
        # A menu value is client data: the service accepts only what the menu offers.
        await services.preferences.choose(interaction.user.id, self.name, value)
        what = _PLACEHOLDERS[self.name].split(" (")[0].lower()
        await show(interaction, f"Saved: {what} {value}.")


class SettingsButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:st:(?P<name>thinking|watermark|private|suffix|reset)"),
):
    def __init__(self, name: str, label: str, on: bool | None) -> None:
        style = {
            "reset": discord.ButtonStyle.danger,
            "suffix": discord.ButtonStyle.primary,
        }.get(name, discord.ButtonStyle.success if on else discord.ButtonStyle.secondary)
        super().__init__(
            discord.ui.Button(label=label, style=style, custom_id=setting_id(name), row=3)
        )
        self.name = name

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        label = item.label if isinstance(item, discord.ui.Button) and item.label else "-"
        return cls(match["name"], label, None)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._run(interaction))

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        services = services_of(interaction)
        user_id = interaction.user.id
        if self.name == "suffix":
            prefs = await services.preferences.get(user_id)
            await interaction.response.send_modal(SuffixForm(prefs.suffix))
            return
        if self.name == "reset":
            await services.preferences.reset(user_id)
            await show(interaction, RESET_DONE)
            return
        prefs = await services.preferences.toggle(user_id, self.name)
        state = "on" if getattr(prefs, self.name) else "off"
        await show(interaction, f"Saved: {_TOGGLE_NAMES[self.name].lower()} {state}.")


class SuffixForm(discord.ui.Modal):
    """Asks for the text added to the end of every prompt (empty: none)."""

    def __init__(self, current: str | None) -> None:
        # discord.py's own random custom_id: one form per opening (forms are found by it).
        super().__init__(title="Prompt suffix", timeout=SUFFIX_FORM_TIMEOUT)
        self.suffix: discord.ui.TextInput[SuffixForm] = discord.ui.TextInput(
            label="Added to the end of every prompt",
            custom_id=SUFFIX_FIELD_ID,
            style=discord.TextStyle.paragraph,
            placeholder="e.g. watercolor, soft morning light (leave empty for none)",
            default=current,
            required=False,
            max_length=MAX_SUFFIX_CHARS,
        )
        self.add_item(self.suffix)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        services = services_of(interaction)
        prefs = await services.preferences.set_suffix(interaction.user.id, self.suffix.value)
        await show(
            interaction, "Saved: prompt suffix." if prefs.suffix else "Prompt suffix removed."
        )

    # Modal.on_error has no ``item`` argument, unlike BaseView's: discord.py's own typing clash.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await handle_error(interaction, error)


async def show(interaction: discord.Interaction[Any], note: str) -> None:
    """Redraw the panel the press came from with what is in effect now, and ``note`` above."""
    services = services_of(interaction)
    panel = await services.preferences.panel(interaction.user.id, interaction.guild_id)
    embed, view = settings_panel(panel)
    await interaction.response.edit_message(
        content=note, embed=embed, view=view, allowed_mentions=NO_PINGS
    )


DYNAMIC_ITEMS = (SettingsMenu, SettingsButton)
