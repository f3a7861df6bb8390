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
from bot.domain.text import Text, t, tn
from bot.domain.validation import ASPECT_RATIOS, MAX_N
from bot.i18n.replies import render
from bot.services.preferences import SettingsPanel
from bot.ui import embeds
from bot.ui.errors import handle_error
from bot.ui.language import for_member, member_locale
from bot.ui.presses import PREFIX, guarded, services_of
from bot.ui.sink import NO_PINGS

SUFFIX_FIELD_ID = "suffix"
SUFFIX_FORM_TIMEOUT = 15 * 60  # an open suffix form is held in memory this long (seconds)

RESET = t("Back to the defaults: your settings are cleared.")
RESET_DONE = RESET.english()  # what an English member reads (tests compare it)
HOW_IT_WORKS = t(
    "Your defaults for /imagine, /edit and /imageset, in every server. An option you give in a "
    "command wins over them, and each server's limits still apply. Aspect ratio and thinking "
    "apply to /imagine only; the count to /imagine and /edit. Private results come to your DMs "
    "instead of the channel."
)
ON, OFF = t("on"), t("off")

# The toggles' names on the panel (buttons and fields).
_TOGGLE_NAMES = {
    "thinking": t("Thinking"),
    "watermark": t("Watermark"),
    "private": t("Private results"),
}

# Each option names its setting: a menu shows its chosen option, not its placeholder.
_RESOLUTION_LABELS = {
    Resolution.R1K: t("Resolution 1K (faster)"),
    Resolution.R2K: t("Resolution 2K"),
    Resolution.R4K: t("Resolution 4K (/imagine; edits and sets are made at 2K)"),
}


def setting_id(name: str) -> str:
    return f"{PREFIX}:st:{name}"


def _shown(prefs: Preferences, name: str) -> Text:
    """The value in effect and where it comes from."""
    mine = getattr(prefs, name)
    value = getattr(DEFAULTS, name) if mine is None else mine
    if isinstance(value, bool):
        value = ON if value else OFF
    if mine is not None:
        return t("**{value}** · your choice", value=value)
    return t("**{value}** · default", value=value)


def settings_embed(panel: SettingsPanel, locale: str | None = None) -> discord.Embed:
    """What is in effect, in the member's ``locale``."""

    def say(text: Text) -> str:
        return render(text, locale)

    prefs = panel.prefs
    embed = discord.Embed(
        title=say(t("Your settings")), colour=embeds.BRAND, description=say(HOW_IT_WORKS)
    )
    for name, field in (
        ("resolution", t("Resolution")),
        ("aspect_ratio", t("Aspect ratio")),
        ("count", t("Pictures per request")),
        *_TOGGLE_NAMES.items(),
    ):
        embed.add_field(name=say(field), value=say(_shown(prefs, name)))
    suffix = (
        t(
            "> {suffix}\n(added to the end of every prompt)",
            suffix=embeds.safe_prompt(prefs.suffix, 300),
        )
        if prefs.suffix
        else t("none")
    )
    embed.add_field(name=say(t("Prompt suffix")), value=say(suffix), inline=False)
    if panel.server_max is not None:
        most = t(
            "This server allows at most {max}: a higher choice is made at {max} here.",
            max=panel.server_max,
        )
        embed.set_footer(text=say(most))
    return embed


def settings_panel(
    panel: SettingsPanel, locale: str | None = None
) -> tuple[discord.Embed, discord.ui.View]:
    """The private /settings answer in the member's ``locale``: what is in effect, and the
    controls to change it. Labels are translated; custom_ids and option values never are."""
    prefs = panel.prefs
    view = discord.ui.View(timeout=None)
    current_res = prefs.resolution or DEFAULTS.resolution
    resolutions = [
        discord.SelectOption(label=render(label, locale), value=r.value, default=r is current_res)
        for r, label in _RESOLUTION_LABELS.items()
    ]
    view.add_item(SettingsMenu("resolution", resolutions, row=0, locale=locale))
    ratio = prefs.aspect_ratio or DEFAULTS.aspect_ratio
    ratios = [
        discord.SelectOption(
            label=render(t("Aspect ratio {ratio} (/imagine)", ratio=r), locale),
            value=r,
            default=r == ratio,
        )
        for r in ASPECT_RATIOS
    ]
    view.add_item(SettingsMenu("aspect_ratio", ratios, row=1, locale=locale))
    count = prefs.count or DEFAULTS.count
    counts = [
        discord.SelectOption(
            label=render(
                tn("{count} picture per request", "{count} pictures per request", count=n), locale
            ),
            value=str(n),
            default=n == count,
        )
        for n in range(1, MAX_N + 1)
    ]
    view.add_item(SettingsMenu("count", counts, row=2, locale=locale))
    for name, shown in _TOGGLE_NAMES.items():
        on = getattr(prefs, name)
        on = getattr(DEFAULTS, name) if on is None else on
        label = t("{setting}: {state}", setting=shown, state=ON if on else OFF)
        view.add_item(SettingsButton(name, render(label, locale), on))
    view.add_item(SettingsButton("suffix", render(t("Prompt suffix…"), locale), None))
    view.add_item(SettingsButton("reset", render(t("Reset"), locale), None))
    return settings_embed(panel, locale), view


_PLACEHOLDERS = {
    "resolution": t("Resolution"),
    "aspect_ratio": t("Aspect ratio (/imagine)"),
    "count": t("Pictures per request"),
}


def _choice_saved(name: str, value: str) -> Text:
    """What a menu choice answers: the setting and the value chosen (verbatim: 2K, 16:9, 3)."""
    if name == "resolution":
        return t("Saved: resolution {value}.", value=value)
    if name == "aspect_ratio":
        return t("Saved: aspect ratio {value}.", value=value)
    return t("Saved: pictures per request {value}.", value=value)


class SettingsMenu(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"{PREFIX}:st:(?P<name>resolution|aspect_ratio|count)"),
):
    def __init__(
        self,
        name: str,
        options: list[discord.SelectOption],
        *,
        row: int = 0,
        locale: str | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=setting_id(name),
                placeholder=render(_PLACEHOLDERS[name], locale),
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
        await show(interaction, _choice_saved(self.name, value))


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
            form = SuffixForm(prefs.suffix, member_locale(interaction))
            await interaction.response.send_modal(form)
            return
        if self.name == "reset":
            await services.preferences.reset(user_id)
            await show(interaction, RESET)
            return
        prefs = await services.preferences.toggle(user_id, self.name)
        await show(interaction, _toggle_saved(self.name, getattr(prefs, self.name)))


def _toggle_saved(name: str, on: bool) -> Text:
    """What a toggle answers: the setting and its new state."""
    state = ON if on else OFF
    if name == "thinking":
        return t("Saved: thinking {state}.", state=state)
    if name == "watermark":
        return t("Saved: watermark {state}.", state=state)
    return t("Saved: private results {state}.", state=state)


class SuffixForm(discord.ui.Modal):
    """Asks for the text added to the end of every prompt (empty: none)."""

    def __init__(self, current: str | None, locale: str | None = None) -> None:
        # discord.py's own random custom_id: one form per opening (forms are found by it).
        super().__init__(title=render(t("Prompt suffix"), locale), timeout=SUFFIX_FORM_TIMEOUT)
        self.suffix: discord.ui.TextInput[SuffixForm] = discord.ui.TextInput(
            label=render(t("Added to the end of every prompt"), locale),
            custom_id=SUFFIX_FIELD_ID,
            style=discord.TextStyle.paragraph,
            placeholder=render(
                t("e.g. watercolor, soft morning light (leave empty for none)"), locale
            ),
            default=current,
            required=False,
            max_length=MAX_SUFFIX_CHARS,
        )
        self.add_item(self.suffix)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        services = services_of(interaction)
        prefs = await services.preferences.set_suffix(interaction.user.id, self.suffix.value)
        saved = t("Saved: prompt suffix.") if prefs.suffix else t("Prompt suffix removed.")
        await show(interaction, saved)

    # Modal.on_error has no ``item`` argument, unlike BaseView's: discord.py's own typing clash.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await handle_error(interaction, error)


async def show(interaction: discord.Interaction[Any], note: Text) -> None:
    """Redraw the panel the press came from with what is in effect now, and ``note`` above, in
    the presser's language."""
    services = services_of(interaction)
    panel = await services.preferences.panel(interaction.user.id, interaction.guild_id)
    embed, view = settings_panel(panel, member_locale(interaction))
    await interaction.response.edit_message(
        content=for_member(interaction, note), embed=embed, view=view, allowed_mentions=NO_PINGS
    )


DYNAMIC_ITEMS = (SettingsMenu, SettingsButton)
