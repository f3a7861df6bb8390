"""A member's history in the store, the same on both engines (tests/pg.py): their jobs only, in
every server and DM, newest first, paged, each with what it was charged; forgotten jobs are gone."""

from __future__ import annotations

from bot.domain.models import GenerationRequest, JobStatus, Target
from bot.domain.quota import QuotaPolicy
from bot.store.jobs import JobRepository
from bot.store.protocol import Db
from bot.store.quotas import Charge

pytest_plugins = ["tests.pg"]  # the store fixture: SQLite and PostgreSQL

BIG = 1_234_567_890_123_456_789  # a Discord snowflake needs 64 bits
ALICE, BOB = BIG, BIG + 1
ROOMY = QuotaPolicy(
    user_concurrent=1000, guild_concurrent=100_000, user_queue_limit=1000, guild_queue_limit=10_000
)
TARGET = Target("discord", {"channel_id": 5})


async def _job(
    jobs: JobRepository, user: int, guild: int | None, at: float, *, charge: float | None = 2.0
) -> str:
    job = await jobs.create(
        user_id=user,
        guild_id=guild,
        request=GenerationRequest(prompt=f"picture at {at:g}"),
        target=TARGET,
        now=at,
        owner=None,
        charge=None if charge is None else Charge(charge),
        policy=ROOMY,
    )
    return job.id


async def test_history_pages_a_members_own_jobs_newest_first_with_their_cost(store: Db) -> None:
    jobs = JobRepository(store)
    ids = [await _job(jobs, ALICE, BIG if i % 2 else None, 100.0 + i) for i in range(12)]
    await _job(jobs, BOB, BIG, 500.0)  # someone else's: never in alice's history

    first = await jobs.history_for_user(ALICE, 10)
    second = await jobs.history_for_user(ALICE, 10, 10)
    assert [c.job.id for c in first] == ids[::-1][:10]
    assert [c.job.id for c in second] == ids[1::-1]
    assert {c.job.user_id for c in first + second} == {ALICE}
    assert {c.job.guild_id for c in first} == {BIG, None}  # servers and DMs alike
    assert await jobs.history_for_user(ALICE, 10, 20) == []

    # Reserved, settled to crun's cost, refunded.
    await jobs.finish(ids[11], status=JobStatus.SUCCEEDED, now=200.0, credits=1.5)
    await jobs.finish(ids[10], status=JobStatus.FAILED, now=200.0, error_code="x")
    costs = {c.job.id: (c.ledger_state, c.charged) for c in first}
    newest = {c.job.id: (c.ledger_state, c.charged) for c in await jobs.history_for_user(ALICE, 3)}
    assert newest[ids[11]] == ("settled", 1.5)
    assert newest[ids[10]] == ("refunded", 0.0)
    assert newest[ids[9]] == costs[ids[9]] == ("reserved", 2.0)


async def test_a_job_without_a_ledger_row_and_a_forgotten_member(store: Db) -> None:
    jobs = JobRepository(store)
    cli = await _job(jobs, ALICE, None, 1.0, charge=None)  # e.g. `wanbot generate`: no ledger
    (only,) = await jobs.history_for_user(ALICE, 10)
    assert (only.job.id, only.ledger_state, only.charged) == (cli, None, None)

    await jobs.finish(cli, status=JobStatus.SUCCEEDED, now=2.0, credits=3.0)
    await store.execute("UPDATE jobs SET delivery_state = 'done' WHERE id = ?", (cli,))
    assert await jobs.forget_user(ALICE) == 1
    assert await jobs.history_for_user(ALICE, 10) == []
