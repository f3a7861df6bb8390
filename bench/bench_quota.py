"""Quota reservation throughput on SQLite, with a correctness check.

``python -m bench.bench_quota [--n 3000] [--users 50] [--concurrency 64]``

Each reservation is the real path: one BEGIN IMMEDIATE transaction that checks the member's
block, limits, the lengths of the waiting line and the global cap, inserts the ledger row and
the job row. By default each admitted job is then settled (one more transaction, not timed
separately), as in production where few jobs run at once; ``--hold`` keeps them all waiting,
the worst case for the running and waiting counts.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bot.domain.models import GenerationRequest, JobStatus, Target
from bot.domain.quota import Limits, QuotaPolicy
from bot.errors import QuotaExceeded
from bot.store.database import Database
from bot.store.jobs import JobRepository
from bot.store.quotas import Charge, QuotaRepository


async def run(n: int, users: int, concurrency: int, settle: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.sqlite3")
        jobs = JobRepository(db)
        policy = QuotaPolicy(
            default_limits=Limits(daily=n / users / 2),  # half of the attempts must be refused
            user_concurrent=10**9,
            guild_concurrent=10**9,
            user_queue_limit=10**9,  # only the daily limit refuses here
            guild_queue_limit=10**9,
            queue_limit=10**9,
        )
        request = GenerationRequest(prompt="bench")
        sem = asyncio.Semaphore(concurrency)
        admitted = refused = 0

        async def one(i: int) -> None:
            nonlocal admitted, refused
            async with sem:
                try:
                    job = await jobs.create(
                        user_id=i % users,
                        guild_id=1,
                        request=request,
                        target=Target("b"),
                        now=time.time(),
                        owner=None,
                        charge=Charge(1.0),
                        policy=policy,
                    )
                    admitted += 1
                except QuotaExceeded:
                    refused += 1
                    return
                if settle:  # as in production: few jobs are running at any moment
                    await jobs.finish(job.id, status=JobStatus.SUCCEEDED, now=time.time())

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
        quotas = QuotaRepository(db, policy)
        used = [await quotas.usage(1, u) for u in range(users)]
        over = [u for u in used if u.daily_used > (u.daily_limit or 0) + 1e-9]
        rows = (await db.fetchall("SELECT COUNT(*) FROM ledger"))[0][0]
        await db.close()
    print(f"{'attempts':>10} {'admitted':>9} {'refused':>8} {'seconds':>8} {'per second':>11}")
    print(f"{n:>10} {admitted:>9} {refused:>8} {elapsed:>8.2f} {n / elapsed:>11.0f}")
    print(f"ledger rows {rows} (= admitted: {rows == admitted}); members over limit: {len(over)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument(
        "--hold", action="store_true", help="keep every admitted job running (worst case)"
    )
    a = p.parse_args()
    asyncio.run(run(a.n, a.users, a.concurrency, settle=not a.hold))


if __name__ == "__main__":
    main()
