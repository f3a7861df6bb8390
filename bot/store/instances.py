"""All SQL about engine instances: who is running, and which unfinished jobs each one owns.

Every job row names its owner instance. A live instance heartbeats; when one stops it releases
its jobs, and when one dies (SIGKILL, crash) another takes its jobs over.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable

from bot.store.job_rows import UNFINISHED
from bot.store.protocol import Db


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

    async def heartbeat(self, instance_id: str, now: float) -> None:
        await self.db.execute(
            "UPDATE instances SET heartbeat_at = ? WHERE id = ?", (now, instance_id)
        )

    async def unregister(self, instance_id: str) -> None:
        """Release the instance's jobs (the next claim takes them at once) and forget it."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET owner = NULL WHERE owner = ?", (instance_id,))
            await conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))

    async def claim_orphans(
        self, instance_id: str, kinds: Iterable[str], *, now: float, stale_after: float
    ) -> int:
        """Take over unfinished jobs whose owner is gone: unset, dead on this host, or silent."""
        kinds = list(kinds)
        if not kinds:
            return 0
        host = socket.gethostname()
        rows = await self.db.fetchall(
            "SELECT id, pid, started_at FROM instances WHERE host = ? AND id != ?",
            (host, instance_id),
        )
        dead = [r["id"] for r in rows if not _alive(int(r["pid"]), float(r["started_at"]))]
        marks = ",".join("?" for _ in kinds)
        dead_marks = ",".join("?" for _ in dead) or "NULL"
        async with self.db.transaction() as conn:
            if dead:
                await conn.execute(f"DELETE FROM instances WHERE id IN ({dead_marks})", dead)  # noqa: S608 - placeholders only
            cur = await conn.execute(
                f"UPDATE jobs SET owner = ? WHERE {UNFINISHED} AND target_kind IN ({marks})"  # noqa: S608 - placeholders only
                " AND (owner IS NULL OR owner NOT IN (SELECT id FROM instances)"
                "      OR owner IN (SELECT id FROM instances WHERE heartbeat_at < ?))",
                (instance_id, *kinds, now - stale_after),
            )
            return cur.rowcount


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
