"""The lines ``wanbot check`` prints, and its verdict.

``[ok]`` and ``[note]`` are fine, ``[warn]`` is worth reading but never fails the check (an option
members cannot use), ``[FAIL]`` fails it. Continuation lines are indented under their line.
"""

from __future__ import annotations

from bot.cli.args import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from bot.errors import WanApiError

__all__ = ["INDENT", "Report", "api_problem"]

INDENT = " " * 7  # continuation lines start under the text after "[FAIL] "


class Report:
    def __init__(self) -> None:
        self.failed = False
        self.config_error = False  # a setting is wrong: exit 2, like every other command

    def ok(self, what: str, detail: str) -> None:
        self._line("ok", what, detail)

    def note(self, what: str, detail: str) -> None:
        self._line("note", what, detail)

    def warn(self, what: str, detail: str) -> None:
        self._line("warn", what, detail)

    def fail(self, what: str, detail: str) -> None:
        self.failed = True
        self._line("FAIL", what, detail)

    def line(self, mark: str, what: str, detail: str) -> None:
        """A line whose mark was decided elsewhere (``ok``, ``note``, ``warn`` or ``FAIL``)."""
        {"ok": self.ok, "note": self.note, "warn": self.warn, "FAIL": self.fail}[mark](what, detail)

    def more(self, text: str) -> None:
        """Lines that belong to the line above (a fix, a JSON document)."""
        for part in text.splitlines() or [""]:
            print(INDENT + part)

    @property
    def code(self) -> int:
        if self.config_error:
            return EXIT_CONFIG
        return EXIT_FAILED if self.failed else EXIT_OK

    @staticmethod
    def _line(mark: str, what: str, detail: str) -> None:
        print(f"[{mark}] {what}: {detail}")


def api_problem(exc: WanApiError) -> str:
    """What a refusal means for the operator, for the codes that have one clear cause."""
    known = {
        401: "the API key was rejected (401): set WAN_API_KEY to a valid crun key",
        402: "out of credits (402): top up the crun account",
        404: "crun answered 404 (model or path not found): check WAN_API_BASE "
        "(normally https://api.crun.ai)",
    }
    return known.get(exc.code or exc.status, str(exc))
