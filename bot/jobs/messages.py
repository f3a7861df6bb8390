"""What users are told when a job cannot be done. Friendly, actionable, never technical.

Each message is a ``Text`` (bot.domain.text): the job's ``error_message`` column keeps its English
(admins, logs and /history read it) and the member reads it in the job's language. A failure's
``Text`` is kept with the job (as JSON, ``bot.domain.text.dump_text``) so a restart still
delivers it translated; ``rebuilt`` remakes the ones that carry no free text from the job's
error code.
"""

from __future__ import annotations

from bot.domain.models import Job
from bot.domain.text import Text, t
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
# How a content-filter failure begins in English: finishing.py recognises one by it (mod log).
CONTENT_FILTERED = "The image service's content filter blocked this request."
# The job event that keeps a failure's Text (JSON) for its delivery, even after a restart.
FAILURE_TEXT = "failure-text"
# Failures whose message is the job's id and nothing else: remade from the error code.
REBUILT = ("uncertain", "expired", "lost", "empty", "download", "internal")
# bot/store/unsent.py stores this English for a job cancelled before crun saw it.
CANCELLED = t(
    "This job was cancelled before it was sent to the image service; nothing was charged."
)


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def without_prompt(message: str, prompt: str) -> str:
    """crun may echo the input back: its words are not a field name, nor for the admins' eyes."""
    for text in {prompt, normalise_prompt(prompt)}:
        if len(text) >= 3:
            message = message.replace(text, "[…]")  # not a word a field name could match
    return message


def failure_message(kind: str, job_id: str, *, reason: str | None = None) -> Text:
    """What a member is told about a failed job; crun's ``reason`` is quoted as it is."""
    if kind == "generation-failed":
        if reason and any(h in reason.lower() for h in _MODERATION_HINTS):
            return t(
                "The image service's content filter blocked this request. Try rephrasing your "
                "prompt or using different images. (job `{job_id}`)",
                job_id=job_id,
            )
        if reason:
            return t(
                "The model could not make this image. The service said: {reason} You can try "
                "again. (job `{job_id}`)",
                reason=_clip(reason),
                job_id=job_id,
            )
        return t(
            "The model could not make this image. You can try again. (job `{job_id}`)",
            job_id=job_id,
        )
    if kind == "uncertain":
        return t(
            "The image service did not confirm whether it started this job, so it was not sent "
            "again (that could charge twice). If no result shows up, try again. (job `{job_id}`)",
            job_id=job_id,
        )
    if kind == "expired":
        return t(
            "The image service did not finish this job in time, so it was abandoned. "
            "(job `{job_id}`)",
            job_id=job_id,
        )
    if kind == "lost":
        return t(
            "The image service lost track of this job. Please try again. (job `{job_id}`)",
            job_id=job_id,
        )
    if kind == "empty":
        return t(
            "The image service finished but returned no images. Please try again. (job `{job_id}`)",
            job_id=job_id,
        )
    if kind == "download":
        return t(
            "The images were made but could not be downloaded from the image service. "
            "Please try again later. (job `{job_id}`)",
            job_id=job_id,
        )
    return t("Something went wrong on our side. Please try again. (job `{job_id}`)", job_id=job_id)


def user_message_for_api_error(exc: WanApiError, *, field: str | None = None) -> Text:
    """The user's view of a refused submission; the operator gets the details in the log.

    ``field`` is the input field crun's 422 named, when the contract recognised one.
    """
    if isinstance(exc, InsufficientCredits):
        return t(
            "This server's image credits have run out. An admin needs to top up the crun.ai "
            "account; nothing was charged for this request."
        )
    if isinstance(exc, AuthError):
        return t(
            "The image service rejected the bot's API key. Please tell a server admin; "
            "nothing was charged."
        )
    if isinstance(exc, ValidationError):
        return _rejected_settings(exc, field)
    if isinstance(exc, RateLimited):
        return t("The image service is busy right now. Please try again in a few minutes.")
    if isinstance(exc, Maintenance):
        return t("The image service is down for maintenance. Please try again later.")
    if isinstance(exc, FeatureDisabled | NotFound):
        return t("Image generation is unavailable right now. Please tell a server admin.")
    if isinstance(exc, GenerationError):
        return t("The model could not make this image. Try a different prompt.")
    return t("The image service is unavailable right now. Please try again in a few minutes.")


def _rejected_settings(exc: ValidationError, field: str | None) -> Text:
    """A 422: crun's own words (``said``) are quoted as they are, never translated."""
    said = _clip(exc.message, 300) if exc.message else None
    if field and said:
        return t(
            "The image service rejected the `{field}` setting ({said}). Adjust it and try again.",
            field=field,
            said=said,
        )
    if field:
        return t(
            "The image service rejected the `{field}` setting. Adjust it and try again.",
            field=field,
        )
    if said:
        return t(
            "The image service rejected these settings ({said}). Adjust them and try again.",
            said=said,
        )
    return t("The image service rejected these settings. Adjust them and try again.")


def rebuilt(job: Job) -> Text | None:
    """A stored failure's Text remade from its error code, when its English is all it says;
    None when the message carries free text (crun's words, a file name): that is shown as
    stored, in English."""
    english = job.error_message
    code = job.error_code or ""
    if code == "cancelled" and english == CANCELLED.english():
        return CANCELLED
    for kind in REBUILT:
        text = failure_message(kind, job.id)
        if (english is None and kind == "internal") or english == text.english():
            return text
    if code == "generation-failed":
        text = failure_message(code, job.id, reason="nsfw")  # the content filter's, no free text
        if english == text.english():
            return text
    return None
