"""crun's request budget in PostgreSQL: one row every process takes its slots from.

Taking a slot is one atomic ``UPDATE ... RETURNING``: the row lock orders concurrent takers, and
each is granted ``GREATEST(next_at, now)`` and moves ``next_at`` one spacing on. The spacing is
the local limiter's rule (``rate`` per ``1 s + margin``, evenly spread), so the grants of all
processes together never exceed ``rate`` in any one-second window. Times are the database's
clock (``clock_timestamp()``), so processes on hosts whose clocks differ still agree; the caller
only learns how long to wait.

A 429 halves the rate in force (never below ``min_rate``) and pushes the schedule past the pause;
from the pause's end the lost rate comes back by half every ``half_life`` seconds. That recovery
is computed from the row when a slot is taken, so a success costs no extra round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.protocol import Db

# The database's clock, read when the statement reaches the row (after waiting for its lock).
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
# The rate in force now: ``rate`` from ``slowed_until`` on, recovering toward ``max_rate``
# (the exponent is capped: PostgreSQL reports a float underflow as an error).
_RATE = (
    "LEAST(p.max_rate, p.max_rate - (p.max_rate - b.rate)"
    f" * power(0.5, LEAST(60.0, GREATEST(0.0, {_NOW} - b.slowed_until) / p.half_life)))"
)
# The local limiter's window and limit, spread evenly: seconds between two grants.
_SPACING = f"(GREATEST(1.0, 1.0 / {_RATE}) + p.margin) / GREATEST(1.0, floor({_RATE}))"

_PARAMS = (
    "(SELECT CAST(:max_rate AS DOUBLE PRECISION) AS max_rate,"
    " CAST(:min_rate AS DOUBLE PRECISION) AS min_rate,"
    " CAST(:margin AS DOUBLE PRECISION) AS margin,"
    " CAST(:pause AS DOUBLE PRECISION) AS pause,"
    " CAST(:half_life AS DOUBLE PRECISION) AS half_life) AS p"
)

_TAKE = f"""
UPDATE crun_budget AS b SET
    last_at = GREATEST(b.next_at, {_NOW}),
    next_at = GREATEST(b.next_at, {_NOW}) + {_SPACING}
FROM {_PARAMS}
WHERE b.name = :name
RETURNING b.last_at AS at, b.last_at - {_NOW} AS wait, {_RATE} AS rate
"""  # noqa: S608 - constant fragments; values go as parameters

_SLOW = f"""
UPDATE crun_budget AS b SET
    rate = GREATEST(p.min_rate, {_RATE} / 2),
    slowed_until = GREATEST(b.slowed_until, {_NOW} + p.pause),
    next_at = GREATEST(b.next_at, {_NOW} + p.pause)
FROM {_PARAMS}
WHERE b.name = :name
RETURNING b.rate AS rate
"""  # noqa: S608 - constant fragments; values go as parameters

_CREATE = (
    "INSERT INTO crun_budget (name, next_at, last_at, rate, slowed_until)"
    " VALUES (:name, 0, 0, :max_rate, 0) ON CONFLICT (name) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class BudgetGrant:
    at: float  # when the request may go, on the database's clock (epoch seconds)
    wait: float  # seconds from the database's answer until then
    rate: float  # the shared rate in force


class CrunBudgetRepository:
    """The shared crun budget named ``name`` (one per crun account) on a PostgreSQL store."""

    def __init__(self, db: Db, *, name: str = "crun", half_life: float = 5.0) -> None:
        self._db = db
        self.name = name
        self.half_life = half_life

    def _params(
        self, max_rate: float, min_rate: float, margin: float, pause: float
    ) -> dict[str, object]:
        return {
            "name": self.name,
            "max_rate": float(max_rate),
            "min_rate": float(min_rate),
            "margin": float(margin),
            "pause": float(pause),
            "half_life": self.half_life,
        }

    async def take(self, *, max_rate: float, margin: float) -> BudgetGrant:
        """Take the next slot of the shared schedule (the row is made on first use)."""
        params = self._params(max_rate, max_rate, margin, 0.0)
        row = await self._db.fetchone(_TAKE, params)
        if row is None:
            await self._db.execute(_CREATE, {"name": self.name, "max_rate": float(max_rate)})
            row = await self._db.fetchone(_TAKE, params)
            assert row is not None  # made just now; nothing deletes it
        return BudgetGrant(at=row["at"], wait=max(0.0, row["wait"]), rate=row["rate"])

    async def slow(self, *, max_rate: float, min_rate: float, pause: float) -> float:
        """A 429: pause every process for ``pause`` s and halve the shared rate; the new rate."""
        params = self._params(max_rate, min_rate, 0.0, pause)
        row = await self._db.fetchone(_SLOW, params)
        if row is None:
            await self._db.execute(_CREATE, {"name": self.name, "max_rate": float(max_rate)})
            row = await self._db.fetchone(_SLOW, params)
            assert row is not None
        rate: float = row["rate"]
        return rate
