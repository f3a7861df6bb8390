"""Command line: ``wanbot run | check | generate | jobs | migrate``.

Exit codes (README, "Exit codes"): 0 done, 1 failed, 2 configuration, 64 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bot.cli.args import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    request_from,
)
from bot.domain.models import Job
from bot.domain.models import Target as JobTarget
from bot.errors import (
    ConfigError,
    UserFacingError,
    WanApiError,
    WanbotError,
    WanConnectionError,
    WanTimeout,
)
from bot.jobs.delivery import FileSink
from bot.logging_setup import setup_logging
from bot.runtime import Runtime, engine_config_from
from bot.settings import Settings, load_settings
from bot.store.database import Database
from bot.store.jobs import JobRepository
from bot.store.unsent import CancelOutcome, UnfinishedJob, cancel_unsent, list_unfinished
from bot.wan.client import WanClient

log = logging.getLogger("wanbot")

# Someone waits at the terminal: a refused submit is retried this long (the bot: 10 minutes).
CLI_SUBMIT_RETRY_WINDOW = 20.0
PROBE_PAUSES = (1.0, 2.0)  # reaching crun before anything is stored: three tries, ~3 s
PROBE_CONNECT_TIMEOUT = 5.0
Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) == "cancel" and (args.job_id is None) == (not args.all):
        parser.error("`jobs cancel` takes a job id or --all")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"wanbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    secrets = [s.get_secret_value() for s in (settings.wan_api_key, settings.discord_token) if s]
    setup_logging(settings.log_level, settings.log_format, secrets=secrets)
    commands: dict[str, Command] = {
        "run": cmd_run,
        "check": cmd_check,
        "migrate": cmd_migrate,
        "generate": cmd_generate,
        "jobs": cmd_jobs,
    }
    try:
        return asyncio.run(commands[args.command](settings, args))
    except ConfigError as exc:
        print(f"wanbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _say(text: str) -> None:
    print(f"wanbot: {text}", file=sys.stderr)


async def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    db = await Database.open(settings.database_path, migrate=False)
    try:
        applied = await db.migrate()
        version = await db.schema_version()
    finally:
        await db.close()
    done = ", ".join(applied) if applied else "nothing to do"
    print(f"database {settings.database_path}: schema version {version} ({done})")
    return EXIT_OK


# --- reaching crun -------------------------------------------------------------------------------


async def probe_crun(settings: Settings, *, tell: bool) -> str | None:
    """Ask crun for the balance (three quick tries): None when it answers, else why not.
    A wrong or unreachable WAN_API_BASE is named in seconds, before anything is stored."""
    client = WanClient(
        settings.api_key(),
        base_url=settings.wan_api_base,
        request_timeout=settings.wan_request_timeout,
        connect_timeout=min(settings.wan_connect_timeout, PROBE_CONNECT_TIMEOUT),
        get_retries=0,
    )
    problem: str | None = None
    async with client:
        for pause in (0.0, *PROBE_PAUSES):
            await asyncio.sleep(pause)
            try:
                await client.balance()
            except (WanConnectionError, WanTimeout) as exc:
                if tell and problem is None:
                    _say(f"{exc}; trying again for a few seconds")
                problem = str(exc)
            except WanApiError:
                return None  # it answered: the command itself reports what it said
            else:
                return None
    return problem


# --- check ---------------------------------------------------------------------------------------

_MARKS = {True: "ok", False: "FAIL", None: "note"}  # a note never fails the check


async def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    ok = True

    def line(good: bool | None, what: str, detail: str) -> None:
        nonlocal ok
        ok = ok and good is not False
        print(f"[{_MARKS[good]}] {what}: {detail}")

    line(True, "settings", f"API base {settings.wan_api_base}, database {settings.database_path}")
    if settings.discord_token is not None:
        line(True, "DISCORD_TOKEN", "set")
    elif args.purpose == "run":
        line(False, "DISCORD_TOKEN", "missing (needed by `wanbot run`)")
    else:
        line(None, "DISCORD_TOKEN", "not set: fine for the command line, `wanbot run` needs it")
    try:
        db = await Database.open(settings.database_path)
        try:
            await db.check_writable()
            line(True, "database", f"schema version {await db.schema_version()}, writable")
        finally:
            await db.close()
    except Exception as exc:
        line(False, "database", f"{type(exc).__name__}: {exc}")
    if settings.wan_api_key is None:
        line(False, "WAN_API_KEY", "missing")
        return EXIT_FAILED
    problem = await probe_crun(settings, tell=False)
    if problem is not None:
        line(False, "crun API", f"{problem} (check WAN_API_BASE)")
        return EXIT_FAILED
    await _check_api(settings, line)
    return EXIT_OK if ok else EXIT_FAILED


async def _check_api(settings: Settings, line: Callable[[bool, str, str], None]) -> None:
    runtime = Runtime(settings, sinks={})
    try:
        await runtime.open(start_engine=False)
    except WanbotError as exc:
        line(False, "crun client", str(exc))
        return
    try:
        try:
            balance = await runtime.client.balance()
            line(True, "API key", f"accepted; balance {balance:g} credits")
        except WanApiError as exc:
            line(False, "API key", _api_problem(exc))
        try:
            schema = await runtime.client.model_schema()
            mismatches = runtime.contract.apply_schema(schema)
            if mismatches:
                line(False, "live schema", "differs from the built-in field names:")
                for m in mismatches:
                    print(f"       - {m}")
            else:
                line(True, "live schema", f"{len(schema.input_fields)} input fields, all known")
        except WanApiError as exc:
            line(False, "live schema", _api_problem(exc))
    finally:
        await runtime.close()


def _api_problem(exc: WanApiError) -> str:
    known = {401: "the API key was rejected (401)", 402: "out of credits (402)"}
    return known.get(exc.code or exc.status, str(exc))


# --- generate ------------------------------------------------------------------------------------


async def cmd_generate(settings: Settings, args: argparse.Namespace) -> int:
    try:
        request = request_from(args)
    except UserFacingError as exc:
        _say(exc.user_message)
        return EXIT_USAGE
    problem = await probe_crun(settings, tell=True)
    if problem is not None:
        _say(f"giving up: {problem}. Check WAN_API_BASE and the network; nothing was queued.")
        return EXIT_FAILED
    out_dir = await asyncio.to_thread(lambda: Path(args.out).expanduser().resolve())
    runtime = _cli_runtime(settings)
    await runtime.open(resume=False)  # never send a job someone else left: list it (below)
    try:
        _announce_left(await list_unfinished(runtime.db, kind=FileSink.kind))
        try:
            job = await runtime.engine.submit(
                request, user_id=0, guild_id=None, target=JobTarget("files", {"dir": str(out_dir)})
            )
        except UserFacingError as exc:
            _say(exc.user_message)
            return EXIT_FAILED
        print(f"job {job.id} queued; waiting for the result...", file=sys.stderr)
        ended = await _wait(runtime, job.id, args.timeout)
        if isinstance(ended, Job):
            return await _report(runtime, ended)
    finally:
        await runtime.close()
    return await _report_saved(settings, job.id, ended)


def _cli_runtime(settings: Settings) -> Runtime:
    config = engine_config_from(settings)
    config = dataclasses.replace(config, submit_retry_window=CLI_SUBMIT_RETRY_WINDOW)
    return Runtime(settings, sinks={FileSink.kind: lambda _rt: FileSink()}, engine_config=config)


def _announce_left(left: list[UnfinishedJob]) -> None:
    """Jobs earlier runs left are not sent by this one (crun would bill them): say so."""
    if not left:
        return
    shown = ", ".join(f"{j.id} ({j.state})" for j in left[:5]) + (" ..." if len(left) > 5 else "")
    _say(
        f"note: {len(left)} job(s) from earlier runs are unfinished and left alone: {shown}. "
        "`wanbot jobs` lists them, `wanbot jobs cancel <id>` drops one not yet sent, "
        "`wanbot jobs resume` finishes them."
    )


async def _wait(runtime: Runtime, job_id: str, timeout: float | None) -> Job | str:  # noqa: ASYNC109
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


async def _report(runtime: Runtime, finished: Job) -> int:
    receipt = finished.receipt or {}
    if "files" in receipt:
        for path in receipt["files"]:
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
    _say(reason + (f"\n  cause: {cause}" if cause else ""))
    return EXIT_FAILED


async def _report_saved(settings: Settings, job_id: str, ended: str) -> int:
    """After an interrupt or a timeout: where the job stands and how to cancel or finish it."""
    db = await Database.open(settings.database_path)
    try:
        jobs = JobRepository(db)
        job, sent = await jobs.get(job_id), await jobs.create_was_sent(job_id)
    finally:
        await db.close()
    code = EXIT_INTERRUPTED if ended == "interrupted" else EXIT_FAILED
    if job is None or job.status.terminal:
        _say(f"{ended}; job {job_id} ended meanwhile: `wanbot jobs` shows what is left")
    elif sent:
        _say(
            f"{ended}; job {job_id} is saved and already at crun (billed: it cannot be "
            "cancelled). `wanbot jobs resume` (or `wanbot run`) fetches its images."
        )
    else:
        _say(
            f"{ended}; job {job_id} is saved and was not sent to crun. Cancel it with "
            f"`wanbot jobs cancel {job_id}`, or send it with `wanbot jobs resume`."
        )
    return code


# --- jobs ----------------------------------------------------------------------------------------


async def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "resume":
        return await _resume(settings)
    db = await Database.open(settings.database_path)
    try:
        if args.action == "cancel":
            return await _cancel(db, args.job_id, every=args.all)
        left = await list_unfinished(db)
    finally:
        await db.close()
    if not left:
        print("no unfinished jobs")
        return EXIT_OK
    print(f"{'ID':<10}  {'STATUS':<22}  {'CREATED':<16}  {'TARGET':<24}  PROMPT")
    for j in left:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created_at))
        target = str(j.target.data.get("dir", "")) if j.target.kind == "files" else j.target.kind
        if j.guild_id is not None:
            target += f" (server {j.guild_id})"
        prompt = " ".join(j.prompt.split())
        prompt = prompt if len(prompt) <= 40 else prompt[:39] + "…"
        print(f"{j.id:<10}  {j.state:<22}  {created:<16}  {target:<24}  {prompt}")
    print(
        "\njobs not sent can be dropped: `wanbot jobs cancel <id>` (or --all); jobs at crun cannot"
    )
    return EXIT_OK


async def _cancel(db: Database, job_id: str | None, *, every: bool) -> int:
    ids = [j.id for j in await list_unfinished(db) if j.cancellable] if every else [job_id or ""]
    if every and not ids:
        print("no job is waiting to be sent to crun; nothing to cancel")
    code = EXIT_OK
    for jid in ids:
        result = await cancel_unsent(db, jid, now=time.time())
        if result.outcome is CancelOutcome.CANCELLED:
            refund = f"; {result.refunded:g} reserved credits refunded" if result.refunded else ""
            print(f"job {jid} cancelled: it was never sent to crun, nothing was charged{refund}")
            continue
        code = EXIT_FAILED
        if result.outcome is CancelOutcome.NOT_FOUND:
            _say(f"there is no job {jid}; `wanbot jobs` lists the unfinished ones")
        elif result.outcome is CancelOutcome.FINISHED:
            _say(f"job {jid} has already ended ({result.status}); nothing to cancel")
        else:
            _say(
                f"job {jid} cannot be cancelled: it is already at crun ({result.status}), which "
                "bills it. `wanbot jobs resume` or `wanbot run` fetches its images."
            )
    return code


async def _resume(settings: Settings) -> int:
    runtime = _cli_runtime(settings)
    await runtime.open(resume=True)
    code = EXIT_OK
    try:
        mine = await list_unfinished(runtime.db, owner=runtime.engine.instance_id)
        print(f"resuming {len(mine)} saved job(s)", file=sys.stderr)
        for j in mine:
            ended = await _wait(runtime, j.id, None)
            if not isinstance(ended, Job):
                return EXIT_INTERRUPTED
            code = max(code, await _report(runtime, ended))
    finally:
        await runtime.close()
    return code


async def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    # Imported late: the CLI's other commands don't need discord.py.
    from bot.app import run_bot  # noqa: PLC0415

    return await run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
