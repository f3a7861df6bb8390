"""/wan-admin config ...: where the bot works on a server and what it accepts there.

Discord nests commands at most two levels below the top (``/wan-admin config show``), so the
settings are flat subcommands named noun-first (``channels-add``, ``blocked-words-list``) to sort
together in the command picker. Every reply is private and in the language of the admin who
ran the command (the sentences: cogs/admin_config_texts.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import discord
from discord import app_commands

from bot.domain import config as rules
from bot.domain.config import GuildConfig
from bot.domain.models import Resolution
from bot.domain.text import t, tn
from bot.errors import InvalidInput
from bot.ui.sink import NO_PINGS
from cogs import admin_config_texts as texts
from cogs.admin_config_view import reply, reply_long, settings_embed
from cogs.admin_group import AdminSubgroup, require_admin, require_owner

AnyChannel = app_commands.AppCommandChannel | app_commands.AppCommandThread
OnOff = Literal["on", "off"]
# The languages with a catalog (bot.i18n.catalogs.LOCALES) and English; "default" follows the
# server's Discord language.
Language = Literal["default", "de", "en-US", "es-ES", "fr", "ja", "ko", "pt-BR", "zh-CN"]

_POSTABLE = (
    discord.ChannelType.text,
    discord.ChannelType.news,
    discord.ChannelType.voice,  # text chat in voice channels
    discord.ChannelType.stage_voice,
    discord.ChannelType.forum,  # posts are threads of it
    discord.ChannelType.media,
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
)


class ConfigCommands(
    AdminSubgroup, name="config", description="Where and how the bot works on this server"
):
    async def _change(
        self, interaction: discord.Interaction, change: Callable[[GuildConfig], GuildConfig]
    ) -> tuple[GuildConfig, GuildConfig]:
        """(before, after): the change is read, checked and written in one transaction."""
        guild_id = require_admin(interaction, self.services.owner_ids)
        return await self.services.admin.change_config(guild_id, change)

    # --- overview -------------------------------------------------------------------------

    @app_commands.command(name="show", description="This server's settings")
    async def show(self, interaction: discord.Interaction) -> None:
        guild_id = require_admin(interaction, self.services.owner_ids)
        config = await self.services.admin.config(guild_id)
        bot_wide = await self.services.admin.bot_wide_config()
        await interaction.response.send_message(
            embed=settings_embed(
                interaction,
                config,
                bot_wide,
                allow_dms_default=self.services.admin.allow_dms_default,
            ),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    # --- channels ---------------------------------------------------------------------------

    @app_commands.command(
        name="channels-add", description="Allow image generation in a channel (and its threads)"
    )
    @app_commands.describe(channel="Once any channel is added, only listed channels work")
    async def channels_add(self, interaction: discord.Interaction, channel: AnyChannel) -> None:
        if channel.type not in _POSTABLE:
            raise InvalidInput(t("Pick a channel members can post in, not a category."))
        before, after = await self._change(
            interaction,
            lambda c: (
                c
                if channel.id in c.allowed_channels
                else dataclasses.replace(c, allowed_channels=(*c.allowed_channels, channel.id))
            ),
        )
        already = before == after
        await reply(interaction, texts.channel_added(channel.mention, after, already=already))

    @app_commands.command(name="channels-remove", description="Stop allowing a listed channel")
    async def channels_remove(self, interaction: discord.Interaction, channel: AnyChannel) -> None:
        before, after = await self._change(
            interaction,
            lambda c: dataclasses.replace(
                c, allowed_channels=tuple(x for x in c.allowed_channels if x != channel.id)
            ),
        )
        if before == after:
            raise InvalidInput(t("{channel} is not on the list.", channel=channel.mention))
        await reply(interaction, texts.channel_removed(channel.mention, after))

    @app_commands.command(name="channels-clear", description="Allow image generation everywhere")
    async def channels_clear(self, interaction: discord.Interaction) -> None:
        await self._change(interaction, lambda c: dataclasses.replace(c, allowed_channels=()))
        await reply(interaction, t("Image generation works in every channel again."))

    # --- resolution -------------------------------------------------------------------------

    @app_commands.command(
        name="resolution-default", description="The resolution used when a member picks none"
    )
    async def resolution_default(
        self,
        interaction: discord.Interaction,
        resolution: Literal["1K", "2K", "4K", "model default"],
    ) -> None:
        chosen = None if resolution == "model default" else Resolution(resolution)

        def change(c: GuildConfig) -> GuildConfig:
            if chosen is not None and rules.clamp_resolution(chosen, c.max_resolution) != chosen:
                raise InvalidInput(
                    t(
                        "This server's maximum is {maximum}. Choose that or lower, or raise the "
                        "maximum first with `/wan-admin config resolution-max`.",
                        maximum=c.max_resolution.value,
                    )
                )
            return dataclasses.replace(c, default_resolution=chosen)

        await self._change(interaction, change)
        await reply(interaction, texts.default_resolution_set(chosen))

    @app_commands.command(name="resolution-max", description="The highest resolution allowed")
    async def resolution_max(
        self, interaction: discord.Interaction, resolution: Literal["1K", "2K", "4K"]
    ) -> None:
        limit = Resolution(resolution)

        def change(c: GuildConfig) -> GuildConfig:
            default = c.default_resolution
            if default is not None:
                default = rules.clamp_resolution(default, limit)
            return dataclasses.replace(c, max_resolution=limit, default_resolution=default)

        before, after = await self._change(interaction, change)
        lowered = after.default_resolution
        if before.default_resolution == lowered:
            lowered = None
        await reply(interaction, texts.max_resolution_set(limit, lowered))

    # --- spoilers -------------------------------------------------------------------------

    @app_commands.command(name="spoiler", description="Post every result as a spoiler")
    async def spoiler(self, interaction: discord.Interaction, state: OnOff) -> None:
        await self._change(interaction, lambda c: dataclasses.replace(c, spoiler=state == "on"))
        await reply(
            interaction,
            t("Results are posted as spoilers from now on.")
            if state == "on"
            else t("Results are posted normally (no spoilers)."),
        )

    # --- language -------------------------------------------------------------------------

    @app_commands.command(
        name="language", description="The language of results posted in this server's channels"
    )
    @app_commands.describe(language="default: the server's Discord language")
    async def language(self, interaction: discord.Interaction, language: Language) -> None:
        chosen = None if language == "default" else language
        await self._change(interaction, lambda c: dataclasses.replace(c, language=chosen))
        await reply(
            interaction,
            t("Results are posted in `{language}` from now on.", language=language)
            if chosen is not None
            else t("Results are posted in the server's Discord language from now on."),
        )

    # --- blocked words --------------------------------------------------------------------

    @app_commands.command(
        name="blocked-words-add", description="Refuse prompts with these words (comma-separated)"
    )
    @app_commands.describe(words="Whole words or phrases, e.g. gore, bad word")
    async def blocked_words_add(
        self, interaction: discord.Interaction, words: app_commands.Range[str, 1, 1000]
    ) -> None:
        wanted = rules.split_words(words)
        if not wanted:
            raise InvalidInput(t("Give one or more words, separated by commas."))
        before, after = await self._change(
            interaction, lambda c: rules.add_blocked_words(c, wanted)
        )
        added = len(after.blocked_words) - len(before.blocked_words)
        total = len(after.blocked_words)
        await reply(interaction, texts.words_added(added, len(wanted) - added, total))

    @app_commands.command(name="blocked-words-remove", description="Allow these words again")
    async def blocked_words_remove(
        self, interaction: discord.Interaction, words: app_commands.Range[str, 1, 1000]
    ) -> None:
        wanted = rules.split_words(words)
        before, after = await self._change(
            interaction, lambda c: rules.remove_blocked_words(c, wanted)
        )
        removed = len(before.blocked_words) - len(after.blocked_words)
        if not removed:
            raise InvalidInput(t("None of those words are blocked here."))
        await reply(
            interaction,
            tn(
                "Removed {count} word; {total} still blocked.",
                "Removed {count} words; {total} still blocked.",
                count=removed,
                total=len(after.blocked_words),
            ),
        )

    @app_commands.command(name="blocked-words-list", description="The words blocked here")
    async def blocked_words_list(self, interaction: discord.Interaction) -> None:
        guild_id = require_admin(interaction, self.services.owner_ids)
        words = (await self.services.admin.config(guild_id)).blocked_words
        if not words:
            await reply(interaction, t("No words are blocked here."))
            return
        title = t("Blocked words ({count})", count=len(words))
        await reply_long(interaction, title, ", ".join(words), "blocked-words.txt")

    # --- blocked patterns -----------------------------------------------------------------

    @app_commands.command(
        name="blocked-patterns-add", description="Refuse prompts matching a regular expression"
    )
    @app_commands.describe(pattern="Case-insensitive, e.g. \\bkill\\s+(him|her)\\b")
    async def blocked_patterns_add(
        self,
        interaction: discord.Interaction,
        pattern: app_commands.Range[str, 1, rules.MAX_PATTERN_CHARS],
    ) -> None:
        before, after = await self._change(
            interaction, lambda c: rules.add_blocked_patterns(c, pattern)
        )
        if before == after:
            raise InvalidInput(t("That pattern is already on the list."))
        await reply(
            interaction,
            t(
                "Added; {count} pattern(s) in all. Matching ignores case; `*` and `+` match at "
                "most {limit} characters.",
                count=len(after.blocked_patterns),
                limit=rules.REPEAT_CAP,
            ),
        )

    @app_commands.command(name="blocked-patterns-remove", description="Remove a blocked pattern")
    @app_commands.describe(pattern="Exactly as listed by blocked-patterns-list")
    async def blocked_patterns_remove(
        self, interaction: discord.Interaction, pattern: app_commands.Range[str, 1, 1000]
    ) -> None:
        before, after = await self._change(
            interaction, lambda c: rules.remove_blocked_patterns(c, pattern)
        )
        if before == after:
            raise InvalidInput(
                t(
                    "That pattern is not on the list. Copy it exactly from "
                    "`/wan-admin config blocked-patterns-list`."
                )
            )
        left = len(after.blocked_patterns)
        await reply(interaction, t("Removed; {count} pattern(s) left.", count=left))

    @app_commands.command(name="blocked-patterns-list", description="The patterns blocked here")
    async def blocked_patterns_list(self, interaction: discord.Interaction) -> None:
        guild_id = require_admin(interaction, self.services.owner_ids)
        patterns = (await self.services.admin.config(guild_id)).blocked_patterns
        if not patterns:
            await reply(interaction, t("No patterns are blocked here."))
            return
        title = t("Blocked patterns ({count})", count=len(patterns))
        await reply_long(interaction, title, "\n".join(patterns), "blocked-patterns.txt")

    # --- alerts ---------------------------------------------------------------------------

    @app_commands.command(
        name="alerts-channel-set", description="Where the bot posts alerts (credits running out)"
    )
    async def alerts_channel_set(
        self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel
    ) -> None:
        if channel.type not in (discord.ChannelType.text, discord.ChannelType.news):
            raise InvalidInput(t("Pick a text channel for alerts."))
        await self._change(
            interaction, lambda c: dataclasses.replace(c, alerts_channel_id=channel.id)
        )
        await reply(
            interaction,
            t(
                "Alerts go to {channel}. Make sure I can send messages there.",
                channel=channel.mention,
            ),
        )

    @app_commands.command(name="alerts-channel-clear", description="Stop posting alerts")
    async def alerts_channel_clear(self, interaction: discord.Interaction) -> None:
        await self._change(interaction, lambda c: dataclasses.replace(c, alerts_channel_id=None))
        await reply(interaction, t("Alerts are not posted on this server any more."))

    # --- moderation log -------------------------------------------------------------------

    @app_commands.command(
        name="modlog",
        description="Log blocked prompts, deleted results and blocks to a channel (none: stop)",
    )
    @app_commands.describe(
        channel="A channel only moderators can read (it shows blocked prompts); leave out to stop"
    )
    async def modlog(
        self,
        interaction: discord.Interaction,
        channel: app_commands.AppCommandChannel | None = None,
    ) -> None:
        if channel is None:
            await self._change(
                interaction, lambda c: dataclasses.replace(c, modlog_channel_id=None)
            )
            await reply(interaction, t("Nothing is logged to a mod-log channel any more."))
            return
        if channel.type not in (discord.ChannelType.text, discord.ChannelType.news):
            raise InvalidInput(t("Pick a text channel for the mod log."))
        await self._change(
            interaction, lambda c: dataclasses.replace(c, modlog_channel_id=channel.id)
        )
        await reply(interaction, texts.modlog_set(channel.mention))

    # --- bot-wide ---------------------------------------------------------------------------

    @app_commands.command(name="dms", description="Bot owner: allow requests in DMs (all servers)")
    @app_commands.describe(state="'default' follows the ALLOW_DMS setting")
    async def dms(
        self, interaction: discord.Interaction, state: Literal["on", "off", "default"]
    ) -> None:
        require_owner(interaction, self.services.owner_ids)
        value = None if state == "default" else state == "on"
        after = await self.services.admin.set_dms_allowed(value)
        allowed = rules.dms_allowed(after, self.services.admin.allow_dms_default)
        await reply(interaction, texts.dms_switched(allowed, by_setting=value is None))
