"""A job's life in the server's language (issue 22): its status message while it waits and runs,
its failure and its "done" line follow the language the job was made with (kept on its target, so
a restart changes nothing), /wan info answers in the asking member's language, and the job's
stored error message stays English for admins and logs."""

from __future__ import annotations

import copy

import pytest

from bot.domain.models import DeliveryState, JobStatus
from bot.domain.text import dump_text, load_text, t
from bot.i18n.replies import render
from bot.jobs.messages import CANCELLED, failure_message
from bot.store.unsent import CANCELLED_MESSAGE
from tests.e2e.test_queue_cancel import described, one_at_a_time, running, waiting
from tests.fakes.discord_fake import FakeMessage
from tests.helpers import wait_until
from tests.world import WanWorld, job_id_of

pytestmark = pytest.mark.timeout(90)

FILTERED_DE = "Der Inhaltsfilter des Bilddiensts hat diese Anfrage blockiert."
FILTERED_EN = "The image service's content filter blocked this request."


def title(message: FakeMessage) -> str:
    return str(message.embeds[0]["title"]) if message.embeds else ""


async def failure_shown(wan: WanWorld, locale: str | None) -> FakeMessage:
    """/imagine in a server speaking ``locale`` (None: English), which crun's filter refuses."""
    if locale is not None:
        wan.guild.locale = locale
    wan.crun.outcome = lambda _input: ("failed", "DataInspectionFailed")
    async with wan.fake.running(wan.bot()):
        handle = await wan.imagine("a fox")
        return await handle.wait_original_edit(
            predicate=lambda m: "filter" in described(m) or "Inhaltsfilter" in described(m),
            timeout=15,
        )


async def test_a_failed_job_in_a_german_server_is_told_in_german(wan: WanWorld) -> None:
    failed = await failure_shown(wan, "de")
    assert title(failed) == "Dieses Bild konnte nicht erstellt werden"
    assert described(failed).startswith(FILTERED_DE)
    assert "(Auftrag `" in described(failed)
    assert described(failed).endswith("> a fox")  # the prompt is never translated
    assert failed.embeds[0]["footer"]["text"].startswith("job ")  # the footer stays as it is
    (job,) = await wan.job_rows()
    assert job.status is JobStatus.FAILED
    assert (job.error_message or "").startswith(FILTERED_EN)  # stored in English


async def test_a_failed_job_in_an_english_server_reads_as_before(wan: WanWorld) -> None:
    failed = await failure_shown(wan, None)
    assert title(failed) == "Could not make this image"
    assert described(failed).startswith(
        f"{FILTERED_EN} Try rephrasing your prompt or using different images. (job `"
    )


async def test_the_status_of_a_waiting_and_a_running_job_in_a_german_server(
    wan: WanWorld,
) -> None:
    wan.guild.locale = "de"
    async with wan.fake.running(one_at_a_time(wan)):
        first = await running(wan, "first fox", wan.alice, 1)
        rendering = copy.deepcopy(  # the fake's message changes with later edits
            await first.wait_original_edit(
                predicate=lambda m: "Wird gerendert" in described(m), timeout=15
            )
        )
        second = await wan.imagine("second fox", user=wan.bob)
        in_line = copy.deepcopy(
            await second.wait_original_edit(
                predicate=lambda m: "Wartet in der Schlange: #1" in described(m), timeout=15
            )
        )
        before = wan.result_ids()
        wan.crun.finish(next(iter(wan.crun.tasks)))
        await wan.next_result(before)
        done = await first.wait_original_edit(
            predicate=lambda m: title(m).endswith(": fertig"), timeout=15
        )
        await wan.settle()
    assert title(rendering) == "Bild erstellen: in Arbeit"
    assert described(rendering).startswith("🎨 Wird gerendert, gestartet <t:")
    assert "Er ist jetzt beim Bilddienst und lässt sich nicht mehr stoppen." in described(rendering)
    assert rendering.embeds[0]["fields"][0]["name"] == "Einstellungen"
    assert "1 Bild" in rendering.embeds[0]["fields"][0]["value"]
    assert title(in_line) == "Bild erstellen: wartet in der Schlange"
    assert "Drück **Abbrechen**" in described(in_line)
    [[cancel]] = [row["components"] for row in in_line.components]
    assert cancel["label"] == "Abbrechen"  # the button the text names, in the same language
    assert described(in_line).endswith("> second fox")
    assert title(done) == "Bild erstellen: fertig"
    assert described(done).startswith("[Zum Ergebnis springen](")


async def test_an_english_server_keeps_the_english_status(wan: WanWorld) -> None:
    async with wan.fake.running(one_at_a_time(wan)):
        await running(wan, "first fox", wan.alice, 1)
        _, in_line = await waiting(wan, "second fox", wan.bob, 1)
        in_line = copy.deepcopy(in_line)
        await wan.settle()
    assert title(in_line) == "Imagine: waiting in line"
    assert "Press **Cancel** to take it out of the line; nothing is charged." in described(in_line)


async def test_wan_info_answers_each_member_in_their_own_language(wan: WanWorld) -> None:
    async with wan.fake.running(wan.bot()):
        result = await wan.imagine_result("an owl", seed=7)
        job_id = job_id_of(result)
        german = await wan.fake.slash(
            wan.bob, wan.guild, wan.channel, "wan info", {"job_id": job_id}, locale="de"
        )
        await german.wait_response()
        english = await wan.fake.slash(
            wan.bob, wan.guild, wan.channel, "wan info", {"job_id": job_id}, locale="en-US"
        )
        await english.wait_response()
        missing = await wan.fake.slash(
            wan.bob, wan.guild, wan.channel, "wan info", {"job_id": "nosuchjob"}, locale="de"
        )
        await missing.wait_response()
    assert german.original is not None and english.original is not None
    de = german.original.embeds[0]
    fields = {f["name"]: f["value"] for f in de["fields"]}
    assert de["title"] == f"Auftrag {job_id}"
    assert de["description"] == "an owl"
    assert fields["Status"] == "fertig"
    assert fields["Modus"] == "text-to-image"
    assert "Seed 7" in fields["Einstellungen"] and "1 Bild" in fields["Einstellungen"]
    assert {"Angefordert von", "Erstellt", "Beendet", "Credits"} <= set(fields)
    en = {f["name"]: f["value"] for f in english.original.embeds[0]["fields"]}
    assert en["Status"] == "succeeded"
    assert "1 image" in en["Settings"] and "seed 7" in en["Settings"]
    assert missing.original is not None
    assert missing.original.content.startswith("Es gibt keinen Auftrag `nosuchjob`.")


async def test_a_failure_delivered_after_a_restart_is_still_german(wan: WanWorld) -> None:
    """The job fails (crun's own words in it) while Discord refuses every post, so the bot stops
    with the failure stored but not delivered; the next bot delivers it in German."""
    wan.guild.locale = "de"
    wan.crun.task_latency = None  # the test ends the task
    slow_retries = {"retry_backoff_base": 30.0, "retry_backoff_cap": 30.0}
    async with wan.fake.running(wan.bot(engine=slow_retries)):
        handle = await wan.imagine("a fox")
        await handle.wait_original_edit(predicate=lambda m: bool(m.embeds), timeout=15)
        wan.fake.fail("PATCH", r"/messages/\d+$", 400, times=None)
        wan.fake.fail("POST", r"^/channels/\d+/messages$", 400, times=None)
        wan.crun.finish(await wan.one_task(), "failed", "the model wandered off")

        async def tried() -> bool:
            jobs = await wan.job_rows()
            return bool(jobs) and jobs[0].delivery_attempts >= 1

        await wait_until(tried, timeout=15, what="a refused delivery")
    wan.fake.fail_rules.clear()
    (job,) = await wan.job_rows()
    assert job.status is JobStatus.FAILED and job.delivery_state is not DeliveryState.DONE
    assert (job.error_message or "").startswith("The model could not make this image.")
    async with wan.fake.running(wan.bot()):
        failed = await handle.wait_original_edit(
            predicate=lambda m: "Der Dienst meldete" in described(m), timeout=15
        )
        await wan.wait_delivery(DeliveryState.DONE)
    assert title(failed) == "Dieses Bild konnte nicht erstellt werden"
    assert described(failed).startswith(
        "Das Modell konnte dieses Bild nicht erstellen. Der Dienst meldete: the model wandered "
        "off Du kannst es noch einmal versuchen. (Auftrag `"
    )


def test_a_kept_failure_text_comes_back_whole_and_the_cancel_text_matches_the_store() -> None:
    """What a delivery after a restart reads back (numbers stay numbers, nested texts stay
    texts), and the English a job cancelled before crun stores is the catalog's."""
    nested = t("Your prompt is {count} characters; {why}", count=5001, why=t("Settings"))
    for text in (nested, failure_message("generation-failed", "abc", reason="it broke")):
        assert load_text(dump_text(text)) == text
    assert render(load_text(dump_text(nested)) or nested, "de").startswith("Your prompt is 5.001")
    assert load_text("not json") is None
    assert CANCELLED.english() == CANCELLED_MESSAGE
