"""Command line: ``wanbot run | check | generate | migrate``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.domain.models import (
    GenerationRequest,
    ImageRef,
    ImageSource,
    Mode,
    Resolution,
    Target,
)
from bot.errors import ConfigError, UserFacingError, WanApiError, WanbotError
from bot.jobs.delivery import FileSink
from bot.logging_setup import setup_logging
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.store.database import Database

log = logging.getLogger("wanbot")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wanbot", description="Wan 2.7 Image Pro Discord bot")
    p.add_argument("--version", action="version", version=f"wanbot {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the bot (reads .env)")
    sub.add_parser("check", help="check settings, database, API key and the live schema")
    sub.add_parser("migrate", help="create or upgrade the database")

    g = sub.add_parser(
        "generate", help="generate images from the terminal, through the same engine"
    )
    g.add_argument("prompt")
    g.add_argument("--resolution", choices=[r.value for r in Resolution], default=None)
    g.add_argument("--n", type=int, default=1, help="number of images (1-4, or 1-12 with --set)")
    g.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH_OR_URL",
        help="input image to edit (repeat up to 9 times)",
    )
    g.add_argument("--set", action="store_true", help="make a coherent image set")
    g.add_argument("--aspect-ratio", default=None)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--watermark", action="store_true")
    g.add_argument("--out", default="out", help="folder for the images (default: ./out)")
    g.add_argument("--timeout", type=float, default=None, help="stop waiting after N seconds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"wanbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    secrets = [s.get_secret_value() for s in (settings.wan_api_key, settings.discord_token) if s]
    setup_logging(settings.log_level, settings.log_format, secrets=secrets)
    try:
        if args.command == "run":
            return asyncio.run(cmd_run(settings))
        if args.command == "check":
            return asyncio.run(cmd_check(settings))
        if args.command == "migrate":
            return asyncio.run(cmd_migrate(settings))
        return asyncio.run(cmd_generate(settings, args))
    except ConfigError as exc:
        print(f"wanbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


# --- migrate -----------------------------------------------------------------------------------


async def cmd_migrate(settings: Settings) -> int:
    db = await Database.open(settings.database_path, migrate=False)
    try:
        applied = await db.migrate()
        version = await db.schema_version()
    finally:
        await db.close()
    done = ", ".join(applied) if applied else "nothing to do"
    print(f"database {settings.database_path}: schema version {version} ({done})")
    return EXIT_OK


# --- check -------------------------------------------------------------------------------------


async def cmd_check(settings: Settings) -> int:
    ok = True

    def line(good: bool, what: str, detail: str) -> None:
        nonlocal ok
        ok = ok and good
        print(f"[{'ok' if good else 'FAIL'}] {what}: {detail}")

    line(True, "settings", f"API base {settings.wan_api_base}, database {settings.database_path}")
    line(
        settings.discord_token is not None,
        "DISCORD_TOKEN",
        "set" if settings.discord_token else "missing (needed by `wanbot run`)",
    )
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
    runtime = Runtime(settings, sinks={})
    try:
        await runtime.open(start_engine=False)
    except WanbotError as exc:
        line(False, "crun client", str(exc))
        return EXIT_FAILED
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
    return EXIT_OK if ok else EXIT_FAILED


def _api_problem(exc: WanApiError) -> str:
    known = {401: "the API key was rejected (401)", 402: "out of credits (402)"}
    return known.get(exc.code or exc.status, str(exc))


# --- generate ----------------------------------------------------------------------------------


def _image_ref(value: str) -> ImageRef:
    if value.startswith(("http://", "https://")):
        return ImageRef(ImageSource.UPLOAD_URL, value)
    path = Path(value).expanduser()
    if not path.is_file():
        raise UserFacingError(f"Input image {value} does not exist.")
    return ImageRef(ImageSource.PATH, str(path.resolve()), name=path.name)


def _request(args: argparse.Namespace, images: tuple[ImageRef, ...]) -> GenerationRequest:
    mode = Mode.IMAGE_SET if args.set else (Mode.EDIT if images else Mode.TEXT_TO_IMAGE)
    return GenerationRequest(
        prompt=args.prompt,
        mode=mode,
        images=images,
        resolution=Resolution(args.resolution) if args.resolution else None,
        aspect_ratio=args.aspect_ratio,
        n=args.n,
        thinking=args.thinking,
        seed=args.seed,
        watermark=args.watermark,
    )


async def cmd_generate(settings: Settings, args: argparse.Namespace) -> int:
    try:
        request = _request(args, tuple(_image_ref(v) for v in args.image))
    except UserFacingError as exc:
        print(f"wanbot: {exc.user_message}", file=sys.stderr)
        return EXIT_FAILED
    out_dir = await asyncio.to_thread(lambda: Path(args.out).expanduser().resolve())
    runtime = Runtime(settings, sinks={FileSink.kind: lambda _runtime: FileSink()})
    await runtime.open()
    try:
        try:
            job = await runtime.engine.submit(
                request, user_id=0, guild_id=None, target=Target("files", {"dir": str(out_dir)})
            )
        except UserFacingError as exc:
            print(f"wanbot: {exc.user_message}", file=sys.stderr)
            return EXIT_FAILED
        print(f"job {job.id} queued; waiting for the result...", file=sys.stderr)
        return await _wait_and_report(runtime, job.id, args.timeout)
    finally:
        await runtime.close()


async def _wait_and_report(runtime: Runtime, job_id: str, timeout: float | None) -> int:  # noqa: ASYNC109
    """Wait for the job (Ctrl-C or SIGTERM keeps it saved) and print the files or the reason."""
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
        print(
            f"interrupted; job {job_id} is saved and will be finished by the next "
            "`wanbot generate` or `wanbot run`",
            file=sys.stderr,
        )
        return 130
    try:
        finished = waiter.result()
    except TimeoutError:
        print(f"timed out; job {job_id} is saved and will be resumed later", file=sys.stderr)
        return EXIT_FAILED
    receipt = finished.receipt or {}
    if "files" in receipt:
        for path in receipt["files"]:
            print(path)
        return EXIT_OK
    reason = receipt.get("error") or finished.error_message
    if reason is None:  # made, but never written: say where it failed, not "None"
        why = receipt.get("gone") or "see the messages above"
        reason = f"the images were made but could not be saved ({why}); job {job_id}"
    print(f"wanbot: {reason}", file=sys.stderr)
    return EXIT_FAILED


# --- run ---------------------------------------------------------------------------------------


async def cmd_run(settings: Settings) -> int:
    # Imported late: the CLI's other commands don't need discord.py.
    from bot.app import run_bot  # noqa: PLC0415

    return await run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
