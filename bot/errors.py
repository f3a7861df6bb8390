"""One error tree for the whole bot.

``UserFacingError`` carries a message that is safe to show a Discord member (no stack traces, no
secrets, no raw API payloads). ``WanApiError`` and its children describe what the crun API said; the
job engine translates them into user-facing errors.
"""

from __future__ import annotations

from bot.domain.text import Text


class WanbotError(Exception):
    """Base of every error wanbot raises on purpose."""


class ConfigError(WanbotError):
    """A setting is missing or malformed. The message names the environment variable."""


# --- errors a user may see -------------------------------------------------------------------


class UserFacingError(WanbotError):
    """An error whose ``user_message`` may be shown to the member who asked.

    The message may be a ``Text`` (bot.domain.text): ``user_message`` is then its English (for
    logs and stored jobs) and ``text`` the value the Discord edge renders in the member's
    language. A plain string is shown as it is (not yet translated).
    """

    def __init__(self, user_message: str | Text, *, detail: str | None = None) -> None:
        text = user_message if isinstance(user_message, Text) else None
        english = user_message.english() if isinstance(user_message, Text) else user_message
        super().__init__(detail or english)
        self.user_message = english
        self.text: Text | str = text if text is not None else english
        self.detail = detail or english


class InvalidInput(UserFacingError):
    """The request breaks a rule the model or the bot enforces; nothing was spent."""


class QuotaExceeded(UserFacingError):
    """The member (or the server) has no room left for this job."""


class GenerationFailed(UserFacingError):
    """The model ran and failed (moderation, model error). Credits may have been spent upstream."""


class ServiceUnavailable(UserFacingError):
    """The API cannot take work right now (down, maintenance, out of credits, misconfigured)."""


class SubmissionUncertain(UserFacingError):
    """CreateTask may or may not have created a task; it is never retried automatically."""


# --- errors from the crun API ----------------------------------------------------------------


class WanApiError(WanbotError):
    """The crun API answered with a non-success envelope ``code`` (or an unusable reply)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        # A request that never got an answer (status 0) has no "http 0, code None" to show: its
        # message names the request, the host and the cause.
        text = message if status == 0 and code is None else None
        super().__init__(text or f"crun API error (http {status}, code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class AuthError(WanApiError):
    """401: the API key is missing or invalid."""


class InsufficientCredits(WanApiError):
    """402: the crun account has run out of credits."""


class NotFound(WanApiError):
    """404: endpoint, model or task id not found."""


class ValidationError(WanApiError):
    """422: the API rejected the request parameters."""


class RateLimited(WanApiError):
    """429: slow down. ``retry_after`` is in seconds when the server said so."""

    def __init__(
        self, status: int, code: int | None, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


class Maintenance(WanApiError):
    """455: the API is in maintenance."""


class ServerError(WanApiError):
    """500 (or any 5xx without a documented meaning): the server failed."""


class GenerationError(WanApiError):
    """501: generation failed upstream (moderation or model failure)."""


class FeatureDisabled(WanApiError):
    """505: the model or feature is switched off on crun."""


class MalformedResponse(WanApiError):
    """The reply was not the documented JSON envelope."""


class WanTimeout(WanApiError):
    """The request did not complete within its timeout."""

    def __init__(self, message: str = "request timed out") -> None:
        super().__init__(0, None, message)


class WanConnectionError(WanApiError):
    """The connection failed. ``sent`` tells whether the request may have reached the server."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(0, None, message)
        self.sent = sent


class MediaError(UserFacingError):
    """An image could not be downloaded, decoded or fitted."""


class DownloadRefused(MediaError):
    """The address itself is refused (scheme, host): another attempt would get the same answer,
    so it is never retried. ``detail`` names the setting that would allow it, when one does."""
