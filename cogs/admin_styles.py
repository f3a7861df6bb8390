"""/wan-admin style ...: the server's named styles, which members add to their prompts with the
style option of /imagine, /edit and /imageset. Every reply is private."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.domain.styles import MAX_STYLE_CHARS, MAX_STYLE_NAME_CHARS, MAX_STYLES
from bot.domain.text import Text, t
from bot.ui.language import for_member
from bot.ui.styles import style_choices
from cogs.admin_config_view import reply, reply_long
from cogs.admin_group import AdminSubgroup, require_admin


async def _answer(interaction: discord.Interaction, text: Text) -> None:
    """A private answer in the admin's own language; style names and texts stay as typed."""
    await reply(interaction, for_member(interaction, text))


class StyleCommands(
    AdminSubgroup, name="style", description="Named styles members can add to their prompts"
):
    @app_commands.command(name="add", description="Add a style, or give a style a new text")
    @app_commands.describe(
        name="What members pick, e.g. watercolor",
        text="Added to the end of the prompt, e.g. watercolor, soft pastel colors",
    )
    async def add(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, MAX_STYLE_NAME_CHARS],
        text: app_commands.Range[str, 1, MAX_STYLE_CHARS],
    ) -> None:
        guild_id = require_admin(interaction, self.services.owner_ids)
        style, replaced = await self.services.styles.add(
            guild_id, name, text, by=interaction.user.id
        )
        if replaced:
            await _answer(interaction, t("Style `{name}` has a new text.", name=style.name))
            return
        await _answer(
            interaction,
            t(
                "Style `{name}` added. Members pick it with the style option of /imagine, "
                "/edit and /imageset; its text is added to the end of their prompt.",
                name=style.name,
            ),
        )

    @app_commands.command(name="remove", description="Remove a style")
    @app_commands.describe(name="The style's name, as listed by /wan-admin style list")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        guild_id = require_admin(interaction, self.services.owner_ids)
        style = await self.services.styles.remove(guild_id, name)
        await _answer(
            interaction,
            t(
                "Style `{name}` removed. Results already made with it keep it for Reroll, "
                "Vary and Upscale.",
                name=style.name,
            ),
        )

    @remove.autocomplete("name")
    async def remove_name(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await style_choices(self.services, interaction, current)

    @app_commands.command(name="list", description="This server's styles")
    async def list_styles(self, interaction: discord.Interaction) -> None:
        guild_id = require_admin(interaction, self.services.owner_ids)
        styles = await self.services.styles.of_server(guild_id)
        if not styles:
            await _answer(
                interaction,
                t("This server has no styles yet. Add one with `/wan-admin style add`."),
            )
            return
        await reply_long(
            interaction,
            for_member(
                interaction, t("Styles ({have} of {most})", have=len(styles), most=MAX_STYLES)
            ),
            "\n".join(f"{s.name}: {s.text}" for s in styles),
            "styles.txt",
        )
