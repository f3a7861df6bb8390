"""Command line: ``wanbot run | check | generate | jobs | migrate``.

Exit codes (README, "Exit codes"): 0 done, 1 failed, 2 configuration, 64 usage, 130 interrupted.
The bigger commands live in bot/cli/: ``check`` (and its ``--probe``/``--spend``) in check.py and
probe.py, the engine run behind ``generate`` in generating.py, ``migrate`` (and its
``--copy-from``) in migrate.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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
from bot.cli.check import cmd_check
from bot.cli.generating import cli_runtime, report, run_one, wait
from bot.cli.migrate import cmd_migrate
from bot.cli.reach import http_base_problem, probe_crun, say
from bot.domain.models import Job
from bot.errors import ConfigError, UserFacingError
from bot.logging_setup import setup_logging
from bot.settings import Settings, load_settings
from bot.store.engine import open_database
from bot.store.protocol import Db
from bot.store.unsent import CancelOutcome, cancel_unsent, list_unfinished

log = logging.getLogger("wanbot")

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) == "cancel" and (args.job_id is None) == (not args.all):
        parser.error("`jobs cancel` takes a job id or --all")
    if args.command == "check":
        _check_flags(parser, args)
    try:
        settings = load_settings()
    except ConfigError as exc:
        if args.command == "check":  # the check's own answer, in its own format, as well
            print(f"[FAIL] settings: {exc}")
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


def _check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--spend creates a billed task: only after --probe proved the input; --out and --timeout
    only mean something for that one image."""
    if args.spend and not args.probe:
        parser.error("--spend needs --probe: the image is made only after every probe passed")
    for flag, value in (("--out", args.out), ("--timeout", args.timeout)):
        if value is not None and not args.spend:
            parser.error(f"{flag} only goes with --probe --spend")


# --- generate ------------------------------------------------------------------------------------


async def cmd_generate(settings: Settings, args: argparse.Namespace) -> int:
    try:
        request = request_from(args)
    except UserFacingError as exc:
        say(exc.user_message)
        return EXIT_USAGE
    http_problem = http_base_problem(settings)
    if http_problem is not None:  # the images would be refused after crun made (and billed) them
        say(f"WAN_API_BASE is {http_problem}. Nothing was sent to crun.")
        return EXIT_FAILED
    problem = await probe_crun(settings, tell=True)
    if problem is not None:
        say(f"giving up: {problem}. Check WAN_API_BASE and the network; nothing was queued.")
        return EXIT_FAILED
    out_dir = await asyncio.to_thread(lambda: Path(args.out).expanduser().resolve())
    code, _job = await run_one(settings, request, out_dir, args.timeout)
    return code


# --- jobs ----------------------------------------------------------------------------------------


async def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "resume":
        return await _resume(settings)
    db = await open_database(settings.database_url)
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


async def _cancel(db: Db, job_id: str | None, *, every: bool) -> int:
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
            say(f"there is no job {jid}; `wanbot jobs` lists the unfinished ones")
        elif result.outcome is CancelOutcome.FINISHED:
            say(f"job {jid} has already ended ({result.status}); nothing to cancel")
        else:
            say(
                f"job {jid} cannot be cancelled: it is already at crun ({result.status}), which "
                "bills it. `wanbot jobs resume` or `wanbot run` fetches its images."
            )
    return code


async def _resume(settings: Settings) -> int:
    if (problem := http_base_problem(settings)) is not None:
        say(f"WAN_API_BASE is {problem}. Nothing was resumed.")
        return EXIT_CONFIG
    runtime = cli_runtime(settings)
    await runtime.open(resume=True)
    code = EXIT_OK
    try:
        mine = await list_unfinished(runtime.db, owner=runtime.engine.instance_id)
        print(f"resuming {len(mine)} saved job(s)", file=sys.stderr)
        for j in mine:
            ended = await wait(runtime, j.id, None)
            if not isinstance(ended, Job):
                return EXIT_INTERRUPTED
            code = max(code, await report(runtime, ended))
    finally:
        await runtime.close()
    return code


async def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    if (problem := http_base_problem(settings)) is not None:
        # Every job would be made (and billed) and then refused at download: say so now.
        say(f"WAN_API_BASE is {problem}. The bot did not start.")
        return EXIT_CONFIG
    # Imported late: the CLI's other commands don't need discord.py.
    from bot.app import run_bot  # noqa: PLC0415

    return await run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
