"""What users are told when a job cannot be done. Friendly, actionable, never technical."""

from __future__ import annotations

from bot.domain.validation import normalise_prompt
from bot.errors import (
    AuthError,
    FeatureDisabled,
    GenerationError,
    InsufficientCredits,
    Maintenance,
    NotFound,
    RateLimited,
    ValidationError,
    WanApiError,
)

_MODERATION_HINTS = ("inspection", "moderat", "sensitive", "safety", "nsfw", "policy")
# How a content-filter failure begins: finishing.py recognises one by it (for the mod log).
CONTENT_FILTERED = "The image service's content filter blocked this request."


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def without_prompt(message: str, prompt: str) -> str:
    """crun may echo the input back: its words are not a field name, nor for the admins' eyes."""
    for text in {prompt, normalise_prompt(prompt)}:
        if len(text) >= 3:
            message = message.replace(text, "[…]")  # not a word a field name could match
    return message


def failure_message(kind: str, job_id: str, *, reason: str | None = None) -> str:
    ref = f"(job `{job_id}`)"
    if kind == "generation-failed":
        if reason and any(h in reason.lower() for h in _MODERATION_HINTS):
            return f"{CONTENT_FILTERED} Try rephrasing your prompt or using different images. {ref}"
        detail = f" The service said: {_clip(reason)}" if reason else ""
        return f"The model could not make this image.{detail} You can try again. {ref}"
    if kind == "uncertain":
        return (
            "The image service did not confirm whether it started this job, so it was not sent "
            "again (that could charge twice). If no result shows up, try again. " + ref
        )
    if kind == "expired":
        return f"The image service did not finish this job in time, so it was abandoned. {ref}"
    if kind == "lost":
        return f"The image service lost track of this job. Please try again. {ref}"
    if kind == "empty":
        return f"The image service finished but returned no images. Please try again. {ref}"
    if kind == "download":
        return (
            "The images were made but could not be downloaded from the image service. "
            f"Please try again later. {ref}"
        )
    return f"Something went wrong on our side. Please try again. {ref}"


def user_message_for_api_error(exc: WanApiError, *, field: str | None = None) -> str:
    """The user's view of a refused submission; the operator gets the details in the log.

    ``field`` is the input field crun's 422 named, when the contract recognised one.
    """
    if isinstance(exc, InsufficientCredits):
        return (
            "This server's image credits have run out. An admin needs to top up the crun.ai "
            "account; nothing was charged for this request."
        )
    if isinstance(exc, AuthError):
        return (
            "The image service rejected the bot's API key. Please tell a server admin; "
            "nothing was charged."
        )
    if isinstance(exc, ValidationError):
        hint = f" ({_clip(exc.message, 300)})" if exc.message else ""
        if field:
            return (
                f"The image service rejected the `{field}` setting{hint}. Adjust it and try again."
            )
        return f"The image service rejected these settings{hint}. Adjust them and try again."
    if isinstance(exc, RateLimited):
        return "The image service is busy right now. Please try again in a few minutes."
    if isinstance(exc, Maintenance):
        return "The image service is down for maintenance. Please try again later."
    if isinstance(exc, FeatureDisabled | NotFound):
        return "Image generation is unavailable right now. Please tell a server admin."
    if isinstance(exc, GenerationError):
        return "The model could not make this image. Try a different prompt."
    return "The image service is unavailable right now. Please try again in a few minutes."
