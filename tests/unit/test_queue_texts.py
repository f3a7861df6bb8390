"""What members read about a waiting job: the status message's states and controls, and the
/queue panel. Rendered without Discord, from plain values (the e2e tests drive the real thing)."""

from __future__ import annotations

from typing import Any, cast

import discord

from bot.domain.models import GenerationRequest, Job, JobStatus, Target
from bot.jobs.delivery import Progress, ProgressKind
from bot.services.queue import QueueStanding, WaitingJob
from bot.ui.cancel import cancel_view, queue_panel
from bot.ui.embeds import status_embed
from bot.ui.sink import DiscordSink

NOW = 1_700_000_000.0


def a_job(prompt: str = "a fox in the snow") -> Job:
    return Job(
        id="k7v3m2q9ta",
        user_id=42,
        guild_id=7,
        request=GenerationRequest(prompt=prompt),
        target=Target("discord", {"channel_id": 9, "user_id": 42}),
        status=JobStatus.QUEUED,
        created_at=NOW - 30,
    )


def description(progress: Progress) -> str:
    return str(status_embed(a_job(), progress, now=NOW).description)


def test_a_waiting_job_shows_its_place_and_when_it_should_start() -> None:
    text = description(Progress(ProgressKind.QUEUED, queue_position=3, eta=NOW + 120))
    assert text.startswith(f"⏳ Waiting in line: #3, should start <t:{int(NOW + 120)}:R>\n")
    assert "Press **Cancel** to take it out of the line; nothing is charged." in text


def test_an_unknown_or_passed_start_time_never_reads_as_the_past() -> None:
    assert description(Progress(ProgressKind.QUEUED, queue_position=2)).startswith(
        "⏳ Waiting in line: #2\n"
    )
    passed = description(Progress(ProgressKind.QUEUED, queue_position=1, eta=NOW - 5))
    assert passed.startswith("⏳ Waiting in line: #1, starting soon\n")


def test_once_at_crun_the_status_says_it_can_no_longer_be_stopped() -> None:
    for kind in (ProgressKind.SUBMITTED, ProgressKind.RUNNING):
        text = description(Progress(kind, eta=NOW + 20))
        assert text.startswith("🎨 Rendering, started <t:")
        assert "It is with the image service now and can no longer be stopped." in text


def test_a_cancelled_job_names_who_cancelled_it() -> None:
    embed = status_embed(a_job(), Progress(ProgressKind.CANCELLED, cancelled_by=99), now=NOW)
    assert embed.title == "Imagine: cancelled"
    assert str(embed.description).startswith("✖️ Cancelled by <@99>; nothing was charged.")
    assert embed.footer.text == "job k7v3m2q9ta"


async def no_receipts(_job_id: str, _receipt: dict[str, Any]) -> None:
    return None


def test_only_a_waiting_job_gets_a_cancel_button() -> None:
    # The sink never touches the client for this: a stand-in will do.
    sink = DiscordSink(cast(discord.Client, object()), no_receipts, cancel_factory=cancel_view)
    status_controls = sink.status_controls
    view = status_controls(a_job(), Progress(ProgressKind.QUEUED, queue_position=1))
    assert view is not None
    assert [c["custom_id"] for row in view.to_components() for c in row["components"]] == [
        "wan:1:cx:k7v3m2q9ta"
    ]
    for kind in (ProgressKind.SUBMITTED, ProgressKind.RUNNING, ProgressKind.CANCELLED):
        assert status_controls(a_job(), Progress(kind)) is None


def test_the_queue_panel_lists_places_prompts_and_start_times_with_a_menu() -> None:
    mine = (
        WaitingJob("aaaa", 2, NOW + 60, "a *bold* @everyone prompt\nover two lines"),
        WaitingJob("bbbb", 5, None, "x" * 200),
    )
    embed, view = queue_panel(QueueStanding(rendering=20, waiting=7, mine=mine), now=NOW)
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Rendering now"] == "20"
    assert fields["Waiting"] == "7"
    first, second = str(fields["Your waiting jobs"]).splitlines()
    assert first.startswith(f"**#2 in line**, should start <t:{int(NOW + 60)}:R> · `aaaa` ")
    assert "\\*bold\\*" in first  # markdown and mentions in prompts are shown, not obeyed
    assert "@everyone" not in first.replace("@\u200beveryone", "")
    assert second.startswith("**#5 in line** · `bbbb` ")
    assert len(second) < 120  # long prompts are clipped
    (row,) = view.to_components()
    (menu,) = row["components"]
    assert menu["custom_id"] == "wan:1:cq"
    assert [o["value"] for o in menu["options"]] == ["aaaa", "bbbb"]
    assert all(len(o["label"]) <= 100 for o in menu["options"])


def test_the_queue_panel_without_waiting_jobs_has_no_menu() -> None:
    embed, view = queue_panel(QueueStanding(rendering=0, waiting=0, mine=()), now=NOW)
    assert {f.name: f.value for f in embed.fields}["Your waiting jobs"] == "none"
    assert view.to_components() == []
