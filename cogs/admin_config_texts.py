"""The sentences /wan-admin config answers with (cogs/admin_config.py), as texts to render in
the admin's language. Channel mentions and resolutions are values, inserted as they are."""

from __future__ import annotations

from bot.domain.config import GuildConfig
from bot.domain.models import Resolution
from bot.domain.modlog import LINES_PER_WINDOW
from bot.domain.text import Text, t, tn
from bot.domain.validation import DEFAULT_RESOLUTION
from cogs.admin_config_view import channels_text


def channel_added(channel: str, after: GuildConfig, *, already: bool) -> Text:
    channels = channels_text(after.allowed_channels)
    if already:
        return t(
            "{channel} was already on the list. Image generation works only in {channels}; "
            "elsewhere members are told where to go.",
            channel=channel,
            channels=channels,
        )
    return t(
        "{channel} was added. Image generation works only in {channels}; elsewhere members are "
        "told where to go.",
        channel=channel,
        channels=channels,
    )


def channel_removed(channel: str, after: GuildConfig) -> Text:
    if not after.allowed_channels:
        return t(
            "{channel} was removed. The list is empty now, so image generation works in "
            "**every** channel.",
            channel=channel,
        )
    return t(
        "{channel} was removed. Image generation works only in {channels}.",
        channel=channel,
        channels=channels_text(after.allowed_channels),
    )


def default_resolution_set(chosen: Resolution | None) -> Text:
    if chosen is None:
        return t(
            "Requests without a resolution use the model default ({resolution}).",
            resolution=DEFAULT_RESOLUTION.value,
        )
    if chosen is Resolution.R4K:
        return t(
            "Requests without a resolution use {resolution}. Edits and image sets use 2K, their "
            "maximum.",
            resolution=chosen.value,
        )
    return t("Requests without a resolution use {resolution}.", resolution=chosen.value)


def max_resolution_set(limit: Resolution, lowered: Resolution | None) -> Text:
    """``lowered``: the default resolution this lowered, None when it stayed."""
    if lowered is not None:
        return t(
            "Members can ask for at most {limit}; larger requests are refused with a reason. "
            "The default resolution was lowered to {default}.",
            limit=limit.value,
            default=lowered.value,
        )
    return t(
        "Members can ask for at most {limit}; larger requests are refused with a reason.",
        limit=limit.value,
    )


def modlog_set(channel: str) -> Text:
    return t(
        "The mod log goes to {channel}: one line per blocked prompt, prompt stopped by the "
        "content filter, result deleted by a moderator, and block or unblock, at most {limit} a "
        "minute. Keep the channel private to moderators (prompts are shown as spoilers) and make "
        "sure I can send messages there. `/wan-admin config modlog` without a channel stops it.",
        channel=channel,
        limit=LINES_PER_WINDOW,
    )


def words_added(added: int, skipped: int, total: int) -> Text:
    """The answer to blocked-words-add: ``added`` new, ``skipped`` already on the list."""
    if skipped:
        return tn(
            "Blocked {count} word ({skipped} already blocked). This server blocks {total} in "
            "all. Matching ignores case, accents, hidden characters and common disguises "
            "(b@d, b a d).",
            "Blocked {count} words ({skipped} already blocked). This server blocks {total} in "
            "all. Matching ignores case, accents, hidden characters and common disguises "
            "(b@d, b a d).",
            count=added,
            skipped=skipped,
            total=total,
        )
    return tn(
        "Blocked {count} word. This server blocks {total} in all. Matching ignores case, "
        "accents, hidden characters and common disguises (b@d, b a d).",
        "Blocked {count} words. This server blocks {total} in all. Matching ignores case, "
        "accents, hidden characters and common disguises (b@d, b a d).",
        count=added,
        total=total,
    )


def dms_switched(allowed: bool, *, by_setting: bool) -> Text:
    """The answer to /wan-admin config dms; ``by_setting``: ALLOW_DMS decides again."""
    if by_setting:
        if allowed:
            return t("Requests in DMs are allowed (the ALLOW_DMS setting), for every server.")
        return t("Requests in DMs are refused (the ALLOW_DMS setting), for every server.")
    if allowed:
        return t("Requests in DMs are allowed, for every server.")
    return t("Requests in DMs are refused, for every server.")
