"""Making images from the terminal: one job through the bot's engine into a folder, waiting for it,
and saying how it ended. ``wanbot generate``, ``wanbot check --probe --spend`` and
``wanbot jobs resume`` share it, so the terminal has one path to crun.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
from pathlib import Path

from bot.cli.args import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from bot.cli.reach import say
from bot.domain.models import GenerationRequest, Job
from bot.domain.models import Target as JobTarget
from bot.errors import UserFacingError
from bot.jobs.delivery import FileSink
from bot.runtime import Runtime, engine_config_from
from bot.settings import Settings
from bot.store.engine import open_database
from bot.store.jobs import JobRepository
from bot.store.unsent import UnfinishedJob, list_unfinished

__all__ = ["cli_runtime", "report", "run_one", "wait"]

# Someone waits at the terminal: a refused submit is retried this long (the bot: 10 minutes).
CLI_SUBMIT_RETRY_WINDOW = 20.0


def cli_runtime(settings: Settings) -> Runtime:
    config = engine_config_from(settings)
    config = dataclasses.replace(config, submit_retry_window=CLI_SUBMIT_RETRY_WINDOW)
    return Runtime(settings, sinks={FileSink.kind: lambda _rt: FileSink()}, engine_config=config)


async def run_one(
    settings: Settings,
    request: GenerationRequest,
    out_dir: Path,
    timeout: float | None,  # noqa: ASYNC109 - the job stays saved when waiting stops
    *,
    show_files: bool = True,
) -> tuple[int, Job | None]:
    """Submit ``request``, wait, print the files written (``show_files``); the exit code and
    the finished job (None when it did not finish: interrupted, timed out, or refused before it
    was stored)."""
    runtime = cli_runtime(settings)
    await runtime.open(resume=False)  # never send a job someone else left: list it (below)
    try:
        _announce_left(await list_unfinished(runtime.db, kind=FileSink.kind))
        try:
            job = await runtime.engine.submit(
                request, user_id=0, guild_id=None, target=JobTarget("files", {"dir": str(out_dir)})
            )
        except UserFacingError as exc:
            say(exc.user_message)
            return EXIT_FAILED, None
        print(f"job {job.id} queued; waiting for the result...", file=sys.stderr)
        ended = await wait(runtime, job.id, timeout)
        if isinstance(ended, Job):
            return await report(runtime, ended, show_files=show_files), ended
    finally:
        await runtime.close()
    return await _report_saved(settings, job.id, ended), None


def _announce_left(left: list[UnfinishedJob]) -> None:
    """Jobs earlier runs left are not sent by this one (crun would bill them): say so."""
    if not left:
        return
    shown = ", ".join(f"{j.id} ({j.state})" for j in left[:5]) + (" ..." if len(left) > 5 else "")
    say(
        f"note: {len(left)} job(s) from earlier runs are unfinished and left alone: {shown}. "
        "`wanbot jobs` lists them, `wanbot jobs cancel <id>` drops one not yet sent, "
        "`wanbot jobs resume` finishes them."
    )


async def wait(runtime: Runtime, job_id: str, timeout: float | None) -> Job | str:  # noqa: ASYNC109
    """The finished job, or how waiting ended ("interrupted" by Ctrl-C/SIGTERM, "timed out")."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(runtime.engine.wait_finished(job_id, timeout))
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if waiter not in done:
        waiter.cancel()
        return "interrupted"
    try:
        return waiter.result()
    except TimeoutError:
        return f"timed out after {timeout:g} s" if timeout is not None else "timed out"


async def report(runtime: Runtime, finished: Job, *, show_files: bool = True) -> int:
    """The files written, one a line on stdout (for scripts); or why there are none."""
    receipt = finished.receipt or {}
    if "files" in receipt:
        for path in receipt["files"] if show_files else ():
            print(path)
        return EXIT_OK
    reason = receipt.get("error") or finished.error_message
    cause = None
    for _, event, detail in reversed(await runtime.jobs.events(finished.id)):
        if event == "download-refused" and detail:
            reason = f"the images were made but not downloaded: {detail}; job {finished.id}"
            break
        if event == "requeued" and detail:
            cause = detail  # why crun could not be reached, the last time it was tried
            break
    if reason is None:  # made, but never written: say where it failed, not "None"
        why = receipt.get("gone") or "see the messages above"
        reason = f"the images were made but could not be saved ({why}); job {finished.id}"
    say(reason + (f"\n  cause: {cause}" if cause else ""))
    return EXIT_FAILED


async def _report_saved(settings: Settings, job_id: str, ended: str) -> int:
    """After an interrupt or a timeout: where the job stands and how to cancel or finish it."""
    db = await open_database(settings.database_url)
    try:
        jobs = JobRepository(db)
        job, sent = await jobs.get(job_id), await jobs.create_was_sent(job_id)
    finally:
        await db.close()
    code = EXIT_INTERRUPTED if ended == "interrupted" else EXIT_FAILED
    if job is None or job.status.terminal:
        say(f"{ended}; job {job_id} ended meanwhile: `wanbot jobs` shows what is left")
    elif sent:
        say(
            f"{ended}; job {job_id} is saved and already at crun (billed: it cannot be "
            "cancelled). `wanbot jobs resume` (or `wanbot run`) fetches its images."
        )
    else:
        say(
            f"{ended}; job {job_id} is saved and was not sent to crun. Cancel it with "
            f"`wanbot jobs cancel {job_id}`, or send it with `wanbot jobs resume`."
        )
    return code
