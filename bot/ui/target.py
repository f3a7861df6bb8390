"""Where a Discord job reports to: its channel, its status message and the interaction token."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bot.domain.models import Job, Target
from bot.i18n.catalogs import LOCALES

KIND = "discord"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
# Interaction tokens live 15 minutes; stop using one a little early so an edit never races expiry.
TOKEN_TTL = 14 * 60


_UNSET: dict[str, object] = {"private": False, "origin_role_ids": ()}


def message_link(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """A message's jump link (``@me`` for DMs)."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def supported(locale: str | None) -> str | None:
    """``locale`` when it has a catalog, else None: English, stored as nothing."""
    return locale if locale in LOCALES else None


def job_locale(job: Job) -> str | None:
    """The language a job's posts are written in (its target's), None for English."""
    try:
        return DiscordTarget.of(job).locale
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class DiscordTarget:
    channel_id: int
    user_id: int
    guild_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    interaction_at: float | None = None  # unix seconds the interaction was created
    status_message_id: int | None = None  # the message progress is shown on
    reply_to_message_id: int | None = None  # the user's message (mention path) or source
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    spoiler: bool = False
    # Private results (bot/ui/private.py): ``channel_id`` is the member's DM channel and
    # ``guild_id`` None; the request's server channel and the roles it was judged with are kept
    # so follow-ups pressed in the DM get the same server's rules and quotas.
    private: bool = False
    origin_channel_id: int | None = None
    origin_parent_id: int | None = None  # the channel the origin thread lives in
    origin_role_ids: tuple[int, ...] = ()
    # The Discord locale the job's posts (its result) are written in, decided when the job was
    # made (``channel_locale``); None reads English, so English targets stay as they were.
    locale: str | None = None

    def token_valid(self, now: float) -> bool:
        return (
            self.interaction_token is not None
            and self.application_id is not None
            and self.interaction_at is not None
            and now - self.interaction_at < TOKEN_TTL
        )

    def to_target(self) -> Target:
        # Unset values are left out: a channel result's target reads as it did before privacy.
        data = dataclasses.asdict(self)
        return Target(KIND, {k: v for k, v in data.items() if v is not None and v != _UNSET.get(k)})

    @staticmethod
    def from_target(target: Target) -> DiscordTarget:
        if target.kind != KIND:
            raise ValueError(f"not a discord target: {target.kind}")
        known = {f.name for f in dataclasses.fields(DiscordTarget)}
        data: dict[str, Any] = {k: v for k, v in target.data.items() if k in known}
        data["origin_role_ids"] = tuple(int(r) for r in data.get("origin_role_ids") or ())
        return DiscordTarget(**data)

    @staticmethod
    def of(job: Job) -> DiscordTarget:
        return DiscordTarget.from_target(job.target)

    def with_status_message(self, message_id: int) -> DiscordTarget:
        return dataclasses.replace(self, status_message_id=message_id)
