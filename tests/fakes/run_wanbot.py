"""Run the real ``wanbot`` CLI in a subprocess, pointed at an in-test fake Discord.

``python -m tests.fakes.run_wanbot REST_BASE GATEWAY_URL -- run`` applies the same discord.py
hooks as the in-process fake (they live in tests/fakes/discord_fake/hooks.py) and then runs
``bot.__main__.main``. Used by the CLI and crash tests, which need a real process to signal or kill.
"""

from __future__ import annotations

import sys

from tests.fakes.discord_fake import _DiscordPatches


def main() -> int:
    rest, gateway, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: run_wanbot REST_BASE GATEWAY_URL -- ARGS..."
    _DiscordPatches(rest, gateway).apply()
    from bot.__main__ import main as wanbot_main  # noqa: PLC0415 - after the patches

    return wanbot_main(args)


if __name__ == "__main__":
    sys.exit(main())
