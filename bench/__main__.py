"""Every benchmark, one after the other, each in its own process (clean RSS and CPU figures).

    python -m bench [--quick]

About 20 minutes (``--quick``: about 5); ``--quick`` is passed to the benchmarks that have it.
``processes`` needs PostgreSQL (WANBOT_TEST_PG_URL, default postgresql://postgres@127.0.0.1/test).
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = (
    "bench_media",
    "bench_quota",
    "bench_engine",
    "bench_discord",
    "busy_servers",
    "processes",
)
HAVE_QUICK = {"bench_engine", "bench_discord", "processes"}


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    failed = []
    for name in BENCHES:
        print(f"\n== python -m bench.{name}", flush=True)
        args = [sys.executable, "-m", f"bench.{name}"]
        if quick and name in HAVE_QUICK:
            args.append("--quick")
        if subprocess.run(args, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
