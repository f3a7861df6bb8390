"""Where a Discord job reports to: its channel, its status message and the interaction token."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bot.domain.models import Job, Target

KIND = "discord"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
# Interaction tokens live 15 minutes; stop using one a little early so an edit never races expiry.
TOKEN_TTL = 14 * 60


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

    def token_valid(self, now: float) -> bool:
        return (
            self.interaction_token is not None
            and self.application_id is not None
            and self.interaction_at is not None
            and now - self.interaction_at < TOKEN_TTL
        )

    def to_target(self) -> Target:
        return Target(KIND, {k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @staticmethod
    def from_target(target: Target) -> DiscordTarget:
        if target.kind != KIND:
            raise ValueError(f"not a discord target: {target.kind}")
        known = {f.name for f in dataclasses.fields(DiscordTarget)}
        data: dict[str, Any] = {k: v for k, v in target.data.items() if k in known}
        return DiscordTarget(**data)

    @staticmethod
    def of(job: Job) -> DiscordTarget:
        return DiscordTarget.from_target(job.target)

    def with_status_message(self, message_id: int) -> DiscordTarget:
        return dataclasses.replace(self, status_message_id=message_id)
