"""Server styles: what /wan-admin style changes, and what the style option of /imagine, /edit and
/imageset offers and applies. Discord-free: it works on server ids and names.

Styles belong to a server; in DMs there are none (the option offers nothing, a typed name is
refused). A request carries the style it was made with (name and text), so follow-ups (Reroll,
Vary, Upscale) keep it whatever happens to the style afterwards.
"""

from __future__ import annotations

import dataclasses

from bot.domain.models import GenerationRequest, Style
from bot.domain.styles import MAX_STYLES, make_style, style_name
from bot.domain.text import t
from bot.errors import InvalidInput
from bot.store.styles import PutOutcome, StyleRepository

AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 choices

NO_STYLES_IN_DMS = t(
    "Styles belong to a server, so there are none in DMs. Leave the style option empty."
)


def _names(styles: list[Style]) -> str:
    return ", ".join(f"`{s.name}`" for s in styles)


class StyleService:
    def __init__(self, styles: StyleRepository) -> None:
        self._styles = styles

    # --- members --------------------------------------------------------------------------------

    async def matching(self, guild_id: int | None, typed: str) -> list[Style]:
        """The server's styles whose name contains what the member typed so far (all of them
        when nothing is typed); none in DMs."""
        if guild_id is None:
            return []
        wanted = " ".join(typed.split()).lower()
        styles = await self._styles.in_guild(guild_id)
        return [s for s in styles if wanted in s.name][:AUTOCOMPLETE_LIMIT]

    async def apply(
        self, guild_id: int | None, name: str | None, request: GenerationRequest
    ) -> GenerationRequest:
        """``request`` with the named style, or unchanged without a name. An unknown name is
        refused with the styles the server has."""
        if name is None:
            return request
        if guild_id is None:
            raise InvalidInput(NO_STYLES_IN_DMS)
        style = await self._find(guild_id, name)
        return dataclasses.replace(request, style=style)

    async def _find(self, guild_id: int, typed: str) -> Style:
        try:
            found = await self._styles.get(guild_id, style_name(typed))
        except InvalidInput:
            found = None  # not even a possible name: certainly not one of the server's
        if found is not None:
            return found
        styles = await self._styles.in_guild(guild_id)
        shown = " ".join(typed.split()).replace("`", "'")[:40]
        if not styles:
            raise InvalidInput(
                t(
                    "There is no style `{name}`: this server has no styles yet. Leave the style "
                    "option empty (admins add styles with `/wan-admin style add`).",
                    name=shown,
                )
            )
        raise InvalidInput(
            t(
                "There is no style `{name}` on this server. Pick one of: {names}.",
                name=shown,
                names=_names(styles),
            )
        )

    # --- admins ---------------------------------------------------------------------------------

    async def of_server(self, guild_id: int) -> list[Style]:
        return await self._styles.in_guild(guild_id)

    async def add(self, guild_id: int, name: str, text: str, *, by: int) -> tuple[Style, bool]:
        """(the style as stored, whether it replaced one of the same name). Refused when the name
        or text breaks a rule or when the server already has ``MAX_STYLES`` styles."""
        style = make_style(name, text)
        outcome: PutOutcome = await self._styles.put(guild_id, style, by=by, limit=MAX_STYLES)
        if outcome == "full":
            raise InvalidInput(
                t(
                    "This server already has {most} styles, the most it can have. Remove one "
                    "with `/wan-admin style remove` first, or give an existing name a new text.",
                    most=MAX_STYLES,
                )
            )
        return style, outcome == "replaced"

    async def remove(self, guild_id: int, name: str) -> Style:
        """The removed style; an unknown name is refused with the styles the server has."""
        style = await self._find(guild_id, name)
        if not await self._styles.remove(guild_id, style.name):
            raise InvalidInput(t("The style `{name}` was already removed.", name=style.name))
        return style
