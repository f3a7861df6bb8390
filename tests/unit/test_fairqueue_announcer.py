"""Places in line as the queue moves: coalesced per job, a trailing edit with the latest place,
nothing for a job that has started, a bot-wide budget, and a start ETA. Driven by a fake clock
through ``QueueAnnouncer.plan`` (what the engine's pass sends)."""

from __future__ import annotations

from typing import cast

from bot.jobs.announcing import QueueAnnouncer
from bot.jobs.delivery import Progress, ProgressKind
from bot.jobs.fairqueue import FairQueue
from bot.jobs.progress import ProgressReporter
from bot.jobs.records import JobRecords
from bot.store.jobs import JobRepository


class Line:
    """A queue of waiting jobs from distinct members, ``slots`` all taken at crun."""

    def __init__(self, waiting: int, *, slots: int = 2, **announcer: float) -> None:
        self.queue = FairQueue()
        self.records = JobRecords(max_at_crun=slots, per_user=1, per_guild=100)
        self.reporter = ProgressReporter({}, timeout=1.0)
        for i in range(slots):  # the running jobs
            self.records.track(f"run{i}", 1000 + i, 1)
            self.records.take_slot(f"run{i}")
        for i in range(waiting):
            self.records.track(f"w{i}", i, 1)
            self.queue.put(f"w{i}", i, 1)
        self.announcer = QueueAnnouncer(
            queue=self.queue,
            records=self.records,
            jobs=cast(JobRepository, None),  # plan() never reads the store
            reporter=self.reporter,
            clock=lambda: 0.0,
            **announcer,  # type: ignore[arg-type]
        )

    def plan(self, now: float) -> tuple[dict[str, Progress], float | None]:
        updates, wake = self.announcer.plan(now)
        return dict(updates), wake


def places(updates: dict[str, Progress]) -> dict[str, int | None]:
    return {job: p.queue_position for job, p in updates.items()}


def test_every_waiting_job_is_told_its_place_once() -> None:
    line = Line(3)
    updates, wake = line.plan(100.0)
    assert places(updates) == {"w0": 1, "w1": 2, "w2": 3}
    assert all(p.kind is ProgressKind.QUEUED for p in updates.values())
    assert wake is None
    assert line.plan(101.0) == ({}, None)  # nothing moved: nothing sent


def test_moves_are_coalesced_and_the_trailing_edit_has_the_latest_place() -> None:
    line = Line(4)
    line.plan(100.0)
    line.queue.pop()  # w0 starts at 101: everyone moves up
    updates, wake = line.plan(101.0)
    assert updates == {}  # edited a second ago: held back
    assert wake == 105.0
    line.queue.pop()  # w1 starts at 103
    assert line.plan(103.0) == ({}, 105.0)
    updates, wake = line.plan(105.0)
    assert places(updates) == {"w2": 1, "w3": 2}  # the latest places, not the first change
    assert wake is None


def test_a_job_that_started_or_was_cancelled_is_never_told_again() -> None:
    line = Line(3)
    line.plan(100.0)
    assert line.queue.pop() == "w0"
    line.queue.remove("w2")
    updates, _ = line.plan(106.0)
    assert places(updates) == {"w1": 1}


def test_a_new_job_that_can_start_at_once_is_not_shown_as_waiting() -> None:
    line = Line(0, slots=2)
    line.records.done("run0")  # one slot free
    line.records.track("next", 7, 1)
    line.queue.put("next", 7, 1)
    assert line.plan(100.0) == ({}, None)  # a worker takes it in a moment
    line.records.track("after", 8, 1)
    line.queue.put("after", 8, 1)
    updates, _ = line.plan(100.5)
    assert places(updates) == {"after": 2}  # behind the one about to start: it must wait


def test_a_member_at_the_running_limit_is_told_even_with_slots_free() -> None:
    line = Line(0, slots=5)
    line.records.done("run0")
    line.records.track("busy", 1000 + 1, 1)  # run1's member (per_user=1): at the limit
    line.queue.put("busy", 1000 + 1, 1)
    updates, _ = line.plan(100.0)
    assert places(updates) == {"busy": 1}


def test_edits_across_the_bot_are_budgeted_front_of_line_first() -> None:
    line = Line(12, edits_per_second=2.0, interval=2.0)  # a burst of 4, then 2 a second
    updates, wake = line.plan(100.0)
    assert places(updates) == {"w0": 1, "w1": 2, "w2": 3, "w3": 4}
    assert wake == 100.5
    updates, _ = line.plan(100.5)
    assert places(updates) == {"w4": 5}
    updates, _ = line.plan(101.5)
    assert places(updates) == {"w5": 6, "w6": 7}


def test_the_eta_says_when_the_job_should_start() -> None:
    line = Line(3, slots=2)
    assert line.plan(100.0)[0]["w0"].eta is None  # no task has finished yet: unknown
    line.reporter.load([10.0, 10.0, 10.0])  # tasks take 10 s; two at a time
    line.queue.pop()
    updates, _ = line.plan(110.0)
    # w1 is now first: one slot must free first, about every 10 / 2 = 5 s.
    assert updates["w1"].eta == 115.0
    assert updates["w2"].eta == 120.0
    assert line.announcer.places_of(2, 110.0) == [("w2", 2, 120.0)]
