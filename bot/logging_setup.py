"""Logging is configured by the entry point, never on import.

Two formats: human-readable lines (the default) and JSON lines (``LOG_FORMAT=json``): one object
per line with ``ts``, ``level``, ``logger``, ``message`` and, on job lines, ``job_id`` and
``guild_id`` (taken from the job context the engine binds, see bot/observability/context.py).

Every record goes through a redaction filter on the handler before any formatter sees it: the API
key, the Discord token and anything shaped like a crun key (``ak_`` + 32 characters) become
``***``, in the message, its arguments, the traceback and the stack. Filters sit on the handler,
not on a logger, because a logger's filters do not see records propagated from its children.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from bot.observability.context import current_job

LogFormat = Literal["text", "json"]

MASK = "***"
# crun API keys: "ak_" followed by 32 characters (wan-api.md section 1). Not preceded by a letter
# or digit, so words that merely end in "ak_" are left alone.
_KEY_SHAPE = re.compile(r"(?<![A-Za-z0-9])ak_[A-Za-z0-9]{32}")
_MIN_SECRET = 8  # shorter "secrets" (placeholders, test values) would mask ordinary words

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class Redactor:
    """Replaces known secret values and key-shaped strings with ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        values = {s.strip() for s in secrets if s and len(s.strip()) >= _MIN_SECRET}
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return _KEY_SHAPE.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in the record itself, so every formatter and handler sees the masked text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not take the caller down, nor leak its args
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


class JobContextFilter(logging.Filter):
    """Adds ``job_id`` and ``guild_id`` from the job context (unless the call passed its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ref = current_job()
        if getattr(record, "job_id", None) is None:
            record.job_id = ref.job_id if ref else None
        if getattr(record, "guild_id", None) is None:
            record.guild_id = ref.guild_id if ref else None
        return True


class TextFormatter(logging.Formatter):
    """``2025-01-01 12:00:00,000 INFO    bot.jobs.engine: job k7v3 delivered [job=k7v3 guild=1]``"""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        tags = []
        job_id = getattr(record, "job_id", None)
        guild_id = getattr(record, "guild_id", None)
        if job_id:
            tags.append(f"job={job_id}")
        if guild_id is not None:
            tags.append(f"guild={guild_id}")
        return f"{line} [{' '.join(tags)}]" if tags else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; newlines inside messages and tracebacks stay escaped."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        doc: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.message,
        }
        job_id = getattr(record, "job_id", None)
        guild_id = getattr(record, "guild_id", None)
        if job_id:
            doc["job_id"] = job_id
        if guild_id is not None:
            doc["guild_id"] = guild_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


_FORMATTER = logging.Formatter()

# discord.py start-up warnings that do not apply to wanbot (docs/operations.md, "Start-up
# messages"): it never joins voice channels (PyNaCl and davey are voice libraries), and it reads
# only messages that mention it, whose content Discord sends without the privileged intent (the
# warning fires for any prefix other than a mention, though the bot has no prefix commands).
IRRELEVANT_DISCORD_WARNINGS: dict[str, tuple[str, ...]] = {
    "discord.client": ("PyNaCl is not installed", "davey is not installed"),
    "discord.ext.commands.bot": ("Privileged message content intent is missing",),
}


class DropMessages(logging.Filter):
    """Drops records whose message text starts with one of ``prefixes``; passes the rest."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_irrelevant_discord_warnings() -> None:
    """Filter those warnings on the loggers that emit them (once; safe to call again)."""
    for name, prefixes in IRRELEVANT_DISCORD_WARNINGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages(prefixes))


def make_handler(
    fmt: LogFormat = "text",
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """A stream handler with the job-context and redaction filters and the chosen format."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(JobContextFilter())
    handler.addFilter(RedactingFilter(Redactor(secrets)))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


def setup_logging(
    level: str = "INFO",
    fmt: LogFormat = "text",
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record (and Python warnings) to one handler on the root logger."""
    handler = make_handler(fmt, secrets=secrets, stream=stream)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # so JSON output stays JSON
    # aiohttp's access log and discord.py's gateway chatter are noise at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("discord.gateway").setLevel(logging.WARNING)
    return handler
