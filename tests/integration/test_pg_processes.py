"""Quota reservation stays atomic across real OS processes sharing one PostgreSQL (issue 20).

Three child processes (this venv's python) each open their own ``PgDatabase`` on the test's
schema, wait for a shared start line on stdin, then fire their reservations at once for the same
member, whose daily limit admits exactly 7. Across all of them exactly 7 get through, and the
ledger agrees. The setup mirrors the concurrency test in test_quotas.py: a user limit of
``daily=7`` in guild 77, ``Charge(1.0)``, the roomy policy.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.domain.quota import Limits, QuotaPolicy
from bot.store.pg_database import PgDatabase
from bot.store.quotas import QuotaRepository

pytest_plugins = ["tests.pg"]  # pg_url, pg_db

ROOT = Path(__file__).resolve().parents[2]
GUILD = 77
USER = 1
DAILY = 7
COST = 1.0
PROCESSES = 3
PER_PROCESS = 20
JAN30 = 1_769_774_400.0  # 2026-01-30 12:00 UTC: a fixed clock, far from a day's edge
TIMEOUT = 15.0  # for each wait on the children
ROOMY = QuotaPolicy(
    user_concurrent=1000, guild_concurrent=100_000, user_queue_limit=1000, guild_queue_limit=10_000
)

# One child: open its own pool (the schema is already migrated), say "ready", wait for the start
# line, fire its reservations at once, print how many were accepted. Any error other than a
# refusal ends it with a traceback and a non-zero exit.
CHILD = """
import asyncio, sys
from bot.domain.models import GenerationRequest, Target
from bot.domain.quota import QuotaPolicy
from bot.errors import QuotaExceeded
from bot.store.jobs import JobRepository
from bot.store.pg_database import PgDatabase
from bot.store.quotas import Charge

url, index, count, guild, user, cost, start = sys.argv[1:8]
index, count, guild, user = int(index), int(count), int(guild), int(user)
cost, start = float(cost), float(start)
POLICY = QuotaPolicy(
    user_concurrent=1000, guild_concurrent=100_000, user_queue_limit=1000, guild_queue_limit=10_000
)

async def main():
    db = await PgDatabase.open(url, migrate=False, max_size=5)
    try:
        jobs = JobRepository(db)
        await db.fetchone("SELECT 1")  # a connection is up before the start line
        print("ready", flush=True)
        line = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 15)
        assert line.strip() == "go", line

        async def one(i):
            try:
                await jobs.create(
                    user_id=user, guild_id=guild,
                    request=GenerationRequest(prompt="a heron in the reeds"),
                    target=Target("test", {}), now=start + index * 100 + i, owner=None,
                    charge=Charge(cost), policy=POLICY,
                )
            except QuotaExceeded:
                return False
            return True

        results = await asyncio.gather(*(one(i) for i in range(count)))
        print(f"accepted {results.count(True)}", flush=True)
    finally:
        await db.close()

asyncio.run(main())
"""


async def _spawn(url: str, index: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        url,
        str(index),
        str(PER_PROCESS),
        str(GUILD),
        str(USER),
        str(COST),
        str(JAN30),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _expect_line(proc: asyncio.subprocess.Process, prefix: str) -> str:
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode().strip()
    if not line.startswith(prefix):
        assert proc.stderr is not None
        err = await asyncio.wait_for(proc.stderr.read(), TIMEOUT)
        raise AssertionError(f"child said {line!r}, expected {prefix!r}; stderr:\n{err.decode()}")
    return line


@pytest.mark.postgres
async def test_reservations_spread_over_three_processes_let_exactly_7_through(
    pg_url: str, pg_db: PgDatabase
) -> None:
    # pg_db has migrated the schema; the children open their own pools on it without migrating.
    await QuotaRepository(pg_db, ROOMY).set_limits(GUILD, "user", USER, Limits(daily=DAILY))
    procs = [await _spawn(pg_url, i) for i in range(PROCESSES)]
    try:
        for proc in procs:
            await _expect_line(proc, "ready")
        for proc in procs:  # the shared start signal: all are waiting on their stdin
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
        await asyncio.wait_for(
            asyncio.gather(*(p.stdin.drain() for p in procs if p.stdin is not None)), TIMEOUT
        )
        lines = [await _expect_line(proc, "accepted ") for proc in procs]
        codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), TIMEOUT)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert codes == [0] * PROCESSES
    accepted = [int(line.split()[1]) for line in lines]
    assert sum(accepted) == DAILY, accepted
    rows = await pg_db.fetchall(
        "SELECT COUNT(*), SUM(reserved) FROM ledger WHERE user_id = ? AND guild_id = ?",
        (USER, GUILD),
    )
    assert (rows[0][0], rows[0][1]) == (DAILY, DAILY * COST)
    jobs = await pg_db.fetchall("SELECT COUNT(*) FROM jobs")
    assert jobs[0][0] == DAILY  # refused requests stored nothing
