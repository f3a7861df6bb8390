"""``wanbot check``: settings, database, API key, crun's live schema and the field map the bot
will use; with ``--probe`` crun's verdict on one request per mode (EstimateTask, free); with
``--spend`` one real image.

A problem that stops a whole mode fails the check and names its fix (usually a WAN_FIELD_MAP
value); an option members cannot use is a warning. The exit status can gate a deployment.
"""

from __future__ import annotations

import argparse

from bot.cli.probe import ProbeOutcome, probe_modes, spend_one
from bot.cli.reach import http_base_problem, probe_crun
from bot.cli.report import Report, api_problem
from bot.errors import ConfigError, WanApiError, WanbotError
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.engine import open_database
from bot.wan.contract import Concept, Contract, parse_override

__all__ = ["cmd_check"]

FIX = (
    "fix: make WAN_FIELD_MAP name the live schema's field for each [FAIL] line above (a JSON "
    "object: concept -> field path inside `input`, or null), then run `wanbot check --probe` "
    'again; docs/operations.md, "First run against the real crun", explains each line'
)


async def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    report = Report()
    settings = _check_settings(settings, args, report)
    await _check_database(settings, report)
    if settings.wan_api_key is None:
        report.fail("WAN_API_KEY", "missing")
        return report.code
    problem = await probe_crun(settings, tell=False)
    if problem is not None:
        report.fail("crun API", f"{problem} (check WAN_API_BASE)")
        return report.code
    outcome = await _check_api(settings, report, probe=args.probe)
    if args.spend:
        await spend_one(settings, report, outcome, out=args.out, timeout=args.timeout)
    return report.code


def _check_settings(settings: Settings, args: argparse.Namespace, report: Report) -> Settings:
    """The lines that need no I/O. An unusable WAN_FIELD_MAP fails the check; the rest of the
    report is made without it, so the operator still sees what the live schema offers."""
    report.ok("settings", f"API base {settings.wan_api_base}, database {settings.database_label}")
    http_problem = http_base_problem(settings)
    if http_problem is not None:
        report.fail("WAN_API_BASE", http_problem)
    if settings.discord_token is not None:
        report.ok("DISCORD_TOKEN", "set")
    elif args.purpose == "run":
        report.fail("DISCORD_TOKEN", "missing (needed by `wanbot run`)")
    else:
        report.note("DISCORD_TOKEN", "not set: fine for the command line, `wanbot run` needs it")
    try:
        parse_override(settings.wan_field_map)
    except ConfigError as exc:
        why = str(exc).removeprefix("WAN_FIELD_MAP: ")
        report.fail("WAN_FIELD_MAP", f"{why}. The report below ignores it")
        report.config_error = True
        return settings.model_copy(update={"wan_field_map": None})
    return settings


async def _check_database(settings: Settings, report: Report) -> None:
    try:
        db = await open_database(settings.database_url)
        try:
            await db.check_writable()
            report.ok("database", f"schema version {await db.schema_version()}, writable")
        finally:
            await db.close()
    except Exception as exc:  # any failure here is the line's answer, not a crash
        report.fail("database", f"{type(exc).__name__}: {exc}")


async def _check_api(settings: Settings, report: Report, *, probe: bool) -> ProbeOutcome | None:
    runtime = Runtime(settings, sinks={})
    try:
        await runtime.open(start_engine=False)
    except WanbotError as exc:
        report.fail("crun client", str(exc))
        return None
    try:
        try:
            balance = await runtime.client.balance()
            report.ok("API key", f"accepted; balance {balance:g} credits")
        except WanApiError as exc:
            report.fail("API key", api_problem(exc))
            if probe:
                report.fail("probe", "not run: crun did not accept the API key")
            return None
        await _check_schema(runtime, report)
        return await probe_modes(runtime, report) if probe else None
    finally:
        await runtime.close()


async def _check_schema(runtime: Runtime, report: Report) -> None:
    contract = runtime.contract
    try:
        schema = await runtime.client.model_schema()
    except WanApiError as exc:
        report.fail("live schema", f"{api_problem(exc)}; the built-in field names stay in force")
        notes = contract.mismatches
    else:
        notes = contract.apply_schema(schema)
        count = len(schema.input_fields)
        if contract.problems:
            many = len(contract.problems)
            report.fail("live schema", f"{count} input fields; {many} problem(s) stop whole modes")
        elif notes:
            report.ok("live schema", f"{count} input fields; the differences below are handled")
        else:
            report.ok("live schema", f"{count} input fields, all known")
    if contract.override:
        report.note("WAN_FIELD_MAP", f"{contract.override_json()} (wins over the live schema)")
    _show_notes(notes, contract, report)
    print("field map in force (concept -> field inside crun's `input`, and how it is spelled):")
    report.more("\n".join(contract.describe()))
    if contract.problems:
        report.more(FIX)


def _show_notes(notes: list[str], contract: Contract, report: Report) -> None:
    """Every note: a problem (with its suggested fix) fails, an option lost warns."""
    problems = list(contract.problems)
    for note in notes:
        problem = next((p for p in problems if p.startswith(note)), None)
        if problem is not None:
            problems.remove(problem)
            report.fail("schema", problem)
        else:
            report.line(_mark(note, contract), "schema", note)
    for problem in problems:  # a problem that is no note of its own
        report.fail("schema", problem)


def _mark(note: str, contract: Contract) -> str:
    head = note.split(":", 1)[0]
    if head in {c.value for c in Concept}:
        return "note" if contract.supports(head) else "warn"  # an option members cannot use
    return "warn" if note.startswith("schema") else "note"
