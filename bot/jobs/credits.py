"""Watches the crun balance: alerts once when it runs low or out, pauses submissions while out.

The alert state is kept in the store, so a restart does not repeat an alert that was already
posted, and a recovery is announced once. While paused, a member's request makes the monitor
look at the balance at once (not only on its timer), so a top-up is picked up by the very next
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.domain.quota import fmt_credits
from bot.domain.text import Text, t
from bot.errors import ServiceUnavailable, WanApiError
from bot.jobs.background import TaskGroup
from bot.store.meta import MetaRepository
from bot.wan.client import WanClient

log = logging.getLogger(__name__)

STATE_KEY = "credit_alert_state"

PAUSED_MESSAGE = t(
    "Image generation is paused: the bot's image credits have run out. The server's admins have "
    "been told; please try again later. Nothing was charged."
)


class CreditState(enum.StrEnum):
    OK = "ok"
    LOW = "low"
    OUT = "out"


# An alert for the servers' admins: (topic, message). The topic says what it is about: a
# CreditState for the balance (a StrEnum, so "low", "out", "ok"), "schema" or "contract" for the
# field map (bot.jobs.schema_watch). The message is rendered in each server's language where it
# is posted (bot.app); its English is what the log shows.
Alert = Callable[[str, Text], Awaitable[None]]


class CreditMonitor:
    def __init__(
        self,
        client: WanClient,
        meta: MetaRepository,
        *,
        threshold: float,
        alert: Alert,
        interval: float = 600.0,
        out_interval: float = 60.0,
        recheck_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.meta = meta
        self.threshold = threshold
        self.alert = alert
        self.interval = interval  # balance check while things are fine
        self.out_interval = out_interval  # faster checks while paused, to resume promptly
        self.recheck_every = recheck_every  # requests while paused look at most this often
        self._clock = clock
        self._rechecked_at: float | None = None
        self._rechecking: asyncio.Task[Any] | None = None
        self.state = CreditState.OK
        self.balance: float | None = None
        self._tasks = TaskGroup("credits")
        self._resumed = asyncio.Event()
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return self.state is CreditState.OUT

    async def wait_resumed(self) -> None:
        await self._resumed.wait()

    async def start(self) -> None:
        stored = await self.meta.get(STATE_KEY)
        if stored in {s.value for s in CreditState}:
            self.state = CreditState(stored or CreditState.OK)
            if self.paused:
                self._resumed.clear()
        await self.check()
        self._tasks.spawn(self._loop(), name="balance")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def admit(self) -> None:
        """Raise ServiceUnavailable while paused, after a fresh look at the balance."""
        if self.paused:
            await self.recheck()
            if self.paused:
                raise ServiceUnavailable(PAUSED_MESSAGE)

    async def recheck(self) -> None:
        """A request came in while paused: look at the balance now rather than at the next
        timed check. At most one look per ``recheck_every`` seconds for the whole bot; callers
        at the same moment share the one in flight."""
        if self._rechecking is None:
            now = self._clock()
            if self._rechecked_at is not None and now - self._rechecked_at < self.recheck_every:
                return
            self._rechecked_at = now
            self._rechecking = self._tasks.spawn(self.check(), name="recheck")
            self._rechecking.add_done_callback(self._recheck_done)
        # Shielded: one caller giving up must not cancel the look the others wait for. Its
        # failure is logged by the task group; the request is judged on the state we have.
        with contextlib.suppress(Exception):
            await asyncio.shield(self._rechecking)

    def _recheck_done(self, _task: asyncio.Task[Any]) -> None:
        self._rechecking = None

    def out_of_credits(self) -> None:
        """crun answered 402: pause now and confirm with a balance check."""
        self._tasks.spawn(self._set(CreditState.OUT, None), name="402")

    async def check(self) -> float | None:
        try:
            balance = await self.client.balance()
        except WanApiError as exc:
            log.warning("balance check failed: %s", exc)
            return None
        self.balance = balance
        if balance <= 0:
            await self._set(CreditState.OUT, balance)
        elif balance < self.threshold:
            await self._set(CreditState.LOW, balance)
        else:
            await self._set(CreditState.OK, balance)
        return balance

    async def _loop(self) -> None:
        while True:
            wait = self.out_interval if self.paused else self.interval
            await asyncio.sleep(wait)
            await self.check()

    async def _set(self, state: CreditState, balance: float | None) -> None:
        if state is self.state:
            return
        previous, self.state = self.state, state
        if state is CreditState.OUT:
            self._resumed.clear()
        else:
            self._resumed.set()
        await self.meta.set(STATE_KEY, state.value)
        message = _message(state, previous, balance, self.threshold)
        shown = f" (balance: {fmt_credits(balance)} credits)" if balance is not None else ""
        log.warning("credit state %s -> %s%s", previous.value, state.value, shown)
        try:
            await self.alert(state, message)
        except Exception:
            log.exception("posting the credit alert failed")


def _message(
    state: CreditState, previous: CreditState, balance: float | None, threshold: float
) -> Text:
    """The admins' alert for a change of ``state``; only a 402 comes without a balance."""
    if balance is None:
        return t(
            "⛔ The crun.ai account is out of credits. New image requests are paused until it is "
            "topped up; members see a message saying so."
        )
    if state is CreditState.OUT:
        return t(
            "⛔ The crun.ai account is out of credits (balance: {balance} credits). New image "
            "requests are paused until it is topped up; members see a message saying so.",
            balance=balance,
        )
    if state is CreditState.LOW and previous is CreditState.OUT:
        return t(
            "✅ Credits are back (balance: {balance} credits), but still low. Requests have "
            "resumed.",
            balance=balance,
        )
    if state is CreditState.LOW:
        return t(
            "⚠️ The crun.ai balance is low (balance: {balance} credits), below the alert "
            "threshold of {threshold}. Top it up to avoid a pause.",
            balance=balance,
            threshold=threshold,
        )
    return t(
        "✅ The crun.ai balance has recovered (balance: {balance} credits). Requests have resumed.",
        balance=balance,
    )
