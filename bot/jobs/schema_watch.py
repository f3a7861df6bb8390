"""Keeps the contract in step with crun's live model schema, and tells admins when crun refuses.

crun can change the fields ``wan/2-7-image-pro`` takes at any time. The watch re-reads the schema
on a timer and soon after a CreateTask 422 that names a field; a changed field map is logged and
posted to the alerts channels once. A schema that cannot be read keeps the map in force. Repeated
422s in one mode mean the map is still wrong: admins get one alert per burst.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from bot.domain.models import Mode
from bot.domain.text import Text, t, tn
from bot.errors import WanApiError
from bot.jobs.background import TaskGroup
from bot.jobs.credits import Alert
from bot.wan.client import WanClient
from bot.wan.contract import Contract

log = logging.getLogger(__name__)

SCHEMA_TOPIC = "schema"  # the field map changed
CONTRACT_TOPIC = "contract"  # crun keeps refusing what the bot sends
# crun's words, the field map lines and problems together: under Discord's 2000 characters with
# room for the alert's own sentence in any language.
_VALUES_LIMIT = 1400


@dataclass
class _Burst:
    """The CreateTask 422s of one mode inside the window, and whether admins were told."""

    times: deque[float] = field(default_factory=deque)
    alerted: bool = False


class SchemaWatch:
    """Re-reads crun's model schema (timer and 422s, one read at a time) and counts refusals."""

    def __init__(
        self,
        client: WanClient,
        contract: Contract,
        *,
        alert: Alert,
        interval: float,
        reread_cooldown: float = 60.0,
        burst_size: int = 3,
        burst_window: float = 600.0,
    ) -> None:
        self.client = client
        self.contract = contract
        self.alert = alert
        self.interval = interval  # seconds between timed re-reads
        self.reread_cooldown = reread_cooldown  # at most one 422-triggered read this often
        self.burst_size = burst_size
        self.burst_window = burst_window
        self._tasks = TaskGroup("schema")
        self._inflight: asyncio.Task[list[str]] | None = None
        self._last_kick: float | None = None
        self._read_once = False  # a live schema was applied at least once
        self._bursts: dict[Mode, _Burst] = {}

    async def start(self) -> None:
        """Start the timer (the schema was read once already, when the runtime opened)."""
        self._tasks.spawn(self._loop(), name="timer")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    @property
    def reading(self) -> bool:
        """A schema read is under way (asked for by the timer, a 422 or the runtime)."""
        return self._inflight is not None and not self._inflight.done()

    async def refresh(self, *, announce: bool = True) -> list[str]:
        """Read the schema now, or join the read already under way; return the contract's notes.

        With ``announce``, a changed field map is logged and alerted (the read at start-up is
        not a change: the contract logs how the live schema differs from the built-in guess).
        """
        task = self._inflight
        if task is None or task.done():
            task = self._inflight = self._tasks.spawn(self._read(announce), name="read")
        # Shielded: a caller that gives up (the timer, on stop) must not cancel a shared read.
        return await asyncio.shield(task)

    def create_refused(
        self, mode: Mode, field_name: str | None, message: str, *, now: float
    ) -> None:
        """crun answered CreateTask with a 422: ``message`` is its text, with the key redacted
        and the member's prompt taken out (it goes to the admins' channel).

        A named field means the map may be stale: re-read soon, at most once per cooldown.
        """
        if field_name is not None:
            self._kick(now)
        burst = self._bursts.setdefault(mode, _Burst())
        while burst.times and now - burst.times[0] > self.burst_window:
            burst.times.popleft()
        burst.times.append(now)
        if len(burst.times) < self.burst_size:
            burst.alerted = False  # the window has fewer than a burst: the next one is news
            return
        if burst.alerted:
            return
        burst.alerted = True
        notice = _burst_message(mode, len(burst.times), self.burst_window, field_name, message)
        log.warning("%s", notice.english())
        self._tasks.spawn(self._post(CONTRACT_TOPIC, notice), name="refusal-alert")

    def _kick(self, now: float) -> None:
        if self.reading:
            return  # the read under way answers this 422 too
        if self._last_kick is not None and now - self._last_kick < self.reread_cooldown:
            return
        self._last_kick = now
        self._inflight = self._tasks.spawn(self._read(True), name="read-after-422")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("re-reading the model schema failed; will try again")

    async def _read(self, announce: bool) -> list[str]:
        try:
            schema = await self.client.model_schema()
        except WanApiError as exc:
            kept = (
                "keeping the field map in force"
                if self._read_once
                else "using built-in field names"
            )
            log.warning("live model schema unavailable (%s); %s", exc, kept)
            return []
        self._read_once = True
        before = self.contract.describe()
        notes = self.contract.apply_schema(schema)
        after = self.contract.describe()
        if before == after:
            log.info("model schema read; field map unchanged")
        elif announce:
            # describe() has one line per concept, in the same order: pair them up.
            changed = [
                f"{old} => {new}" for old, new in zip(before, after, strict=True) if old != new
            ]
            log.warning("crun's model schema changed the field map:\n  %s", "\n  ".join(changed))
            await self._post(SCHEMA_TOPIC, _change_message(changed, self.contract.problems))
        return notes

    async def _post(self, topic: str, message: Text) -> None:
        try:
            await self.alert(topic, message)
        except Exception:
            log.exception("posting the %s alert failed", topic)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _change_message(changed: list[str], problems: list[str]) -> Text:
    lines = "\n".join(f"• `{line}`" for line in changed)
    if problems:
        listed = _clip("; ".join(problems), _VALUES_LIMIT // 2)
        return t(
            "🔁 crun's model schema for Wan 2.7 Image Pro changed; the bot now sends requests "
            "with this field map (old => new):\n{lines}\n⚠️ Problems: {problems}\n"
            "Run `wanbot check --probe` to confirm what crun accepts.",
            lines=_clip(lines, _VALUES_LIMIT - len(listed)),
            problems=listed,
        )
    return t(
        "🔁 crun's model schema for Wan 2.7 Image Pro changed; the bot now sends requests with "
        "this field map (old => new):\n{lines}\n"
        "Run `wanbot check --probe` to confirm what crun accepts.",
        lines=_clip(lines, _VALUES_LIMIT),
    )


def _burst_message(
    mode: Mode, count: int, window: float, field_name: str | None, message: str
) -> Text:
    """The admins' alert for a burst of 422s: crun's words verbatim (the key and the prompt
    were taken out before), the mode's own name as the code spells it."""
    said = " ".join(message.split())[:400]
    minutes = round(window / 60)
    if field_name:
        return tn(
            "⚠️ crun refused {count} {mode} request in the last {minutes} minutes (HTTP 422) on "
            "the `{field}` field. crun said: “{said}”. The member was told and refunded, and "
            "the bot re-reads the model schema. Run `wanbot check --probe` on the bot's host to "
            "see which fields crun accepts now (WAN_FIELD_MAP can override the field map).",
            "⚠️ crun refused {count} {mode} requests in the last {minutes} minutes (HTTP 422) on "
            "the `{field}` field. crun said: “{said}”. The members were told and refunded, and "
            "the bot re-reads the model schema. Run `wanbot check --probe` on the bot's host to "
            "see which fields crun accepts now (WAN_FIELD_MAP can override the field map).",
            count=count,
            mode=mode.value,
            minutes=minutes,
            field=_clip(field_name, 100),
            said=said,
        )
    return tn(
        "⚠️ crun refused {count} {mode} request in the last {minutes} minutes (HTTP 422). "
        "crun said: “{said}”. The member was told and refunded, and the bot re-reads the model "
        "schema. Run `wanbot check --probe` on the bot's host to see which fields crun accepts "
        "now (WAN_FIELD_MAP can override the field map).",
        "⚠️ crun refused {count} {mode} requests in the last {minutes} minutes (HTTP 422). "
        "crun said: “{said}”. The members were told and refunded, and the bot re-reads the "
        "model schema. Run `wanbot check --probe` on the bot's host to see which fields crun "
        "accepts now (WAN_FIELD_MAP can override the field map).",
        count=count,
        mode=mode.value,
        minutes=minutes,
        said=said,
    )
