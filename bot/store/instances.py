"""All SQL about engine instances and the leases on their jobs.

Every unfinished job names its owner instance and a lease expiry (``lease_until``). A live
instance renews the leases of its jobs with each heartbeat; one that stops releases them; the jobs
of one that died (SIGKILL, crash, a lost host) are claimed by another process once their lease
lapses, or at once when the owner was a process on this host that is gone. Claims take rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two processes claiming at the same moment
take different jobs and never wait for each other.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable

from bot.store.job_rows import UNFINISHED
from bot.store.protocol import Db

# Claimed per statement: a takeover of more jobs than this continues with the next heartbeat.
CLAIM_BATCH = 500


class InstanceRepository:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def register(self, instance_id: str, now: float) -> None:
        await self.db.execute(
            "INSERT INTO instances (id, host, pid, started_at, heartbeat_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET host = excluded.host,"
            " pid = excluded.pid, started_at = excluded.started_at,"
            " heartbeat_at = excluded.heartbeat_at",
            # started_at is real time (it identifies the process); heartbeats use the clock.
            (instance_id, socket.gethostname(), os.getpid(), time.time(), now),
        )

    async def heartbeat(self, instance_id: str, now: float, *, lease_until: float) -> set[str]:
        """Renew the instance and the leases of its unfinished jobs; returns the ids of the jobs
        it still holds (one it no longer finds there was taken over while it stalled)."""
        await self.db.execute(
            "UPDATE instances SET heartbeat_at = ? WHERE id = ?", (now, instance_id)
        )
        await self.db.execute(
            f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND {UNFINISHED}",  # noqa: S608 - constant
            (lease_until, instance_id),
        )
        rows = await self.db.fetchall(
            f"SELECT id FROM jobs WHERE owner = ? AND {UNFINISHED}",  # noqa: S608 - constant
            (instance_id,),
        )
        return {str(r["id"]) for r in rows}

    async def unregister(self, instance_id: str) -> None:
        """Release the instance's jobs (the next claim takes them at once) and forget it."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET owner = NULL, lease_until = NULL WHERE owner = ?", (instance_id,)
            )
            await conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))

    async def claim_orphans(
        self, instance_id: str, kinds: Iterable[str], *, now: float, lease_until: float
    ) -> int:
        """Take over unfinished jobs whose owner is gone: unset, unknown, dead on this host, or
        whose lease lapsed. Returns how many were claimed."""
        kinds = list(kinds)
        if not kinds:
            return 0
        await self._forget_dead_here(instance_id)
        marks = ",".join("?" for _ in kinds)
        # One statement: the row locks of the inner SELECT are the claim (no write lock needed).
        return await self.db.execute(
            "UPDATE jobs SET owner = ?, lease_until = ? WHERE id IN ("  # noqa: S608 - placeholders only
            f" SELECT id FROM jobs WHERE {UNFINISHED} AND target_kind IN ({marks})"
            "  AND (owner IS NULL OR owner NOT IN (SELECT id FROM instances)"
            "       OR COALESCE(lease_until, 0) < ?)"
            f" ORDER BY created_at LIMIT {CLAIM_BATCH}{self.db.skip_locked})",
            (instance_id, lease_until, *kinds, now),
        )

    async def _forget_dead_here(self, instance_id: str) -> None:
        """Instances on this host whose process is gone: their jobs are claimable at once."""
        host = socket.gethostname()
        rows = await self.db.fetchall(
            "SELECT id, pid, started_at FROM instances WHERE host = ? AND id != ?",
            (host, instance_id),
        )
        dead = [r["id"] for r in rows if not _alive(int(r["pid"]), float(r["started_at"]))]
        if dead:
            marks = ",".join("?" for _ in dead)
            await self.db.execute(f"DELETE FROM instances WHERE id IN ({marks})", dead)  # noqa: S608 - placeholders only


# When this process started (roughly: when this module was imported).
_PROCESS_STARTED = time.time()


def _alive(pid: int, started_at: float) -> bool:
    """Is the instance that registered with ``pid`` at ``started_at`` still running?"""
    if pid == os.getpid():
        # Our own pid: an instance registered before we started is a previous process that
        # had the same pid (a restarted container is always pid 1). Later ones are in-process.
        return started_at >= _PROCESS_STARTED - 1.0
    return _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
