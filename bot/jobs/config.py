"""The engine's settings, in one frozen object every part of it reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.quota import QuotaPolicy
from bot.wan.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class EngineConfig:
    poll_interval_min: float = 5.0
    poll_interval_max: float = 15.0
    fast_phase: float = 60.0  # poll at the minimum interval for this long after submit
    callback_poll_interval: float = 30.0  # fallback poll when callbacks are on
    soft_deadline: float = 600.0
    hard_deadline: float = 6 * 3600.0
    max_concurrent_jobs: int = 20
    max_concurrent_submits: int = 4
    max_concurrent_polls: int = 32
    api_rate_limit: float = 5.0
    not_found_limit: int = 3  # fresh tasks may lag in TaskInfo: allow a few 404s
    submit_retry_window: float = 600.0  # keep retrying refused submits (429/455) this long
    delivery_max_attempts: int = 8
    download_max_attempts: int = 5
    retry_backoff_base: float = 2.0
    retry_backoff_cap: float = 300.0
    heartbeat_interval: float = 15.0
    instance_stale_after: float = 60.0
    callback_base_url: str | None = None
    drain_timeout: float = 10.0
    progress_timeout: float = 5.0  # status edits are best effort: never hold up a job
    queue_update_interval: float = 5.0  # a waiting job's place is edited at most this often
    queue_edits_per_second: float = 10.0  # and place edits across the bot at most this often
    quota: QuotaPolicy = field(default_factory=QuotaPolicy)

    def crun_limiter(self) -> RateLimiter:
        """The budget the crun client spends. With callbacks on, one request per second stays
        free for woken polls: a member is waiting on those, while submits and routine polls can
        wait a moment."""
        return RateLimiter(self.api_rate_limit, reserve=1 if self.callback_base_url else 0)
