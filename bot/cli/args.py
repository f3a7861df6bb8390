"""The command line's arguments: the parser (with help for every command and option), the exit
codes, and the generation request the flags describe, checked by the domain's rules.

Plain Python over the domain: no I/O, so any layer may read it (bot/__main__.py and the command
modules beside this one run the commands).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from bot import __version__
from bot.domain.models import GenerationRequest, ImageRef, ImageSource, Mode, Resolution
from bot.domain.validation import ASPECT_RATIOS, MAX_N, MAX_N_SET, SEED_MAX, validate_request
from bot.errors import InvalidInput

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 64, 130
EXIT_CODES = "exit codes: 0 done, 1 failed, 2 configuration error, 64 usage error, 130 interrupted"
SET_DEFAULT_N = 4  # as /imageset


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 64 (sysexits' EX_USAGE): 2 is reserved for configuration errors."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="wanbot", description="Wan 2.7 Image Pro Discord bot", epilog=EXIT_CODES)
    p.add_argument("--version", action="version", version=f"wanbot {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "run",
        help="run the Discord bot (needs DISCORD_TOKEN and WAN_API_KEY)",
        description="Run the Discord bot (reads .env). Resumes every unfinished job first, "
        "also the ones an interrupted `wanbot generate` left.",
    )
    _add_check(sub)
    _add_migrate(sub)
    _add_generate(sub)
    j = sub.add_parser(
        "jobs",
        help="list unfinished jobs; cancel or finish them",
        description="List unfinished jobs (id, status, created, target, prompt).",
    )
    acts = j.add_subparsers(dest="action", metavar="ACTION")
    cancel = acts.add_parser(
        "cancel",
        help="drop jobs not yet sent to crun, refunding their credits",
        description="Drop a job crun never saw (queued, CreateTask not sent); its reserved "
        "credits are refunded. Jobs already at crun cannot be cancelled.",
    )
    cancel.add_argument("job_id", nargs="?", metavar="ID", help="a job id from `wanbot jobs`")
    cancel.add_argument("--all", action="store_true", help="every job not yet sent to crun")
    acts.add_parser(
        "resume",
        help="finish the jobs earlier `generate` runs left (queued ones are billed)",
        description="Finish the terminal's unfinished jobs: queued ones are sent to crun (and "
        "billed), ones at crun are fetched. Prints the files.",
    )
    return p


def _add_migrate(sub: argparse._SubParsersAction[_Parser]) -> None:
    m = sub.add_parser(
        "migrate",
        help="create or upgrade the database; --copy-from moves SQLite data into PostgreSQL",
        description="Create or upgrade the database DATABASE_URL names, SQLite or PostgreSQL "
        "(also done automatically at start-up).",
    )
    m.add_argument(
        "--copy-from",
        type=sqlite_url,
        metavar="sqlite:///PATH",
        help="then copy jobs, job events, ledger, quotas, blocked members, server settings and "
        "meta (alert state, command sync) from this SQLite file into the PostgreSQL database "
        "DATABASE_URL names, which must be empty; checked by row counts and sums, kept only "
        "when every figure agrees. Stop the bot first.",
    )


def sqlite_url(value: str) -> Path:
    """``sqlite:///PATH`` (as DATABASE_URL spells it) -> PATH."""
    path = value.removeprefix("sqlite:///")
    if path == value or not path:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not sqlite:///PATH (e.g. sqlite:///data/wanbot.sqlite3)"
        )
    return Path(path)


def _add_check(sub: argparse._SubParsersAction[_Parser]) -> None:
    c = sub.add_parser(
        "check",
        help="check settings, database, API key, crun's live schema and the field map",
        description="Check the settings, the database, that crun answers and accepts the API "
        "key, crun's live model schema and the field map the bot will use (WAN_FIELD_MAP wins "
        "over the schema). Fails when the schema stops a whole mode and names the fix. "
        "DISCORD_TOKEN is only a note unless --for run.",
        epilog="First run against the real crun: `wanbot check`, then `wanbot check --probe`, "
        "then once `wanbot check --probe --spend` (docs/operations.md). " + EXIT_CODES,
    )
    c.add_argument(
        "--for",
        dest="purpose",
        choices=("cli", "run"),
        default="cli",
        help="cli (default): what `generate` needs; run: also DISCORD_TOKEN, for the bot",
    )
    c.add_argument(
        "--probe",
        action="store_true",
        help="also ask crun's EstimateTask (free, nothing is created) about one request per "
        "mode: text-to-image, an edit of one uploaded 256x256 test image, an image set of 2; "
        "prints each `input` and crun's verdict; fails unless every mode is accepted",
    )
    c.add_argument(
        "--spend",
        action="store_true",
        help="with --probe, when everything passed: make ONE 1K text-to-image image "
        "(CreateTask, billed) the way `generate` does, and print the file and the credits charged",
    )
    c.add_argument(
        "--out",
        metavar="DIR",
        help="with --spend: folder for the image (default: ./out, as `generate`)",
    )
    c.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --spend: stop waiting for the image after this long (default 600; the job "
        "stays saved for `wanbot jobs resume`)",
    )


def _add_generate(sub: argparse._SubParsersAction[_Parser]) -> None:
    g = sub.add_parser(
        "generate",
        help="generate images from the terminal, through the same engine",
        description="Generate images through the bot's engine and save them. Jobs earlier "
        "runs left unfinished are listed, never sent: see `wanbot jobs`.",
    )
    g.add_argument("prompt", help="what to draw (up to 5,000 characters)")
    g.add_argument(
        "--resolution",
        choices=[r.value for r in Resolution],
        help="default 2K; 4K only for text-to-image",
    )
    g.add_argument(
        "--n", type=int, help=f"images: 1-{MAX_N} (default 1), 2-{MAX_N_SET} with --set (default 4)"
    )
    g.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH_OR_URL",
        help="input image to edit (repeat up to 9 times)",
    )
    g.add_argument("--set", action="store_true", help=f"a coherent set of 2-{MAX_N_SET} images")
    g.add_argument(
        "--aspect-ratio", metavar="W:H", help=f"text-to-image only: {', '.join(ASPECT_RATIOS)}"
    )
    g.add_argument("--seed", type=int, help=f"0-{SEED_MAX}; same seed + prompt = similar images")
    g.add_argument(
        "--thinking",
        action=argparse.BooleanOptionalAction,
        help="thinking mode (text-to-image only; slower); default: the model's",
    )
    g.add_argument("--watermark", action="store_true", help="add the model's watermark")
    g.add_argument("--out", default="out", help="folder for the images (default: ./out)")
    g.add_argument(
        "--timeout", type=float, help="stop waiting after N seconds (the job stays saved)"
    )


def image_ref(value: str) -> ImageRef:
    if value.startswith(("http://", "https://")):
        return ImageRef(ImageSource.UPLOAD_URL, value)
    path = Path(value).expanduser()
    if not path.is_file():
        raise InvalidInput(f"Input image {value} does not exist.")
    return ImageRef(ImageSource.PATH, str(path.resolve()), name=path.name)


def request_from(args: argparse.Namespace) -> GenerationRequest:
    """The request the flags describe, checked by the domain's rules (and /imageset's 2-12)."""
    images = tuple(image_ref(v) for v in args.image)
    mode = Mode.IMAGE_SET if args.set else (Mode.EDIT if images else Mode.TEXT_TO_IMAGE)
    n = args.n if args.n is not None else (SET_DEFAULT_N if args.set else 1)
    if args.set and not 2 <= n <= MAX_N_SET:
        raise InvalidInput(
            f"An image set has 2 to {MAX_N_SET} images; you asked for {n}. "
            f"Use --n 2 to --n {MAX_N_SET} with --set (or drop --set for single images)."
        )
    request = GenerationRequest(
        prompt=args.prompt,
        mode=mode,
        images=images,
        resolution=Resolution(args.resolution) if args.resolution else None,
        aspect_ratio=args.aspect_ratio,
        n=n,
        thinking=args.thinking,
        seed=args.seed,
        watermark=args.watermark,
    )
    validate_request(request)
    return request
