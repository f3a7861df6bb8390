"""How long fitting a 4K result under the upload limit takes, and what it does to the event loop.

    python -m bench.bench_media [--limit-mib 10]

For each image: input size, output size, format/quality/scale, wall time of ``fit_image`` (sync,
in this thread) and the event-loop lag of a 10 ms ticker while ``fit_image_async`` runs (max and
p99 of how late each tick woke up). Lag well under ~50 ms means Discord heartbeats and other
interactions are unaffected.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import PIL
from PIL import Image, ImageChops

from bot.media import Fitted, fit_image, fit_image_async, make_grid, make_grid_async

T = TypeVar("T")
MIB = 1024 * 1024
TICK = 0.010


def noise_png(side: int) -> bytes:
    """Worst case: random noise does not compress, so the PNG is ~3 bytes per pixel."""
    im = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    return _png(im, compress_level=1)


def realistic_png(side: int) -> bytes:
    """Smooth gradients plus mild grain: closer to a rendered image than pure noise."""
    x = Image.linear_gradient("L").resize((side, side), Image.Resampling.BICUBIC)
    y = x.rotate(90)
    r = Image.radial_gradient("L").resize((side, side), Image.Resampling.BICUBIC)
    base = Image.merge("RGB", (x, y, r))
    grain = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).point(
        lambda v: v // 16
    )
    return _png(ImageChops.add(base, grain))  # default zlib level, like most encoders


def _png(im: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **params)
    return buf.getvalue()


async def loop_lag(work: Callable[[], Awaitable[T]]) -> tuple[T, list[float]]:
    """Run ``work`` while a 10 ms ticker measures how late each wake-up is."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()
    started = asyncio.Event()

    async def ticker() -> None:
        started.set()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(TICK)
            lags.append(loop.time() - before - TICK)

    task = asyncio.create_task(ticker())
    await started.wait()
    result = await work()
    done.set()
    await task
    return result, lags


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[98]


def describe(f: Fitted) -> str:
    if not f.reencoded:
        return "original kept"
    return f"JPEG q{f.quality} x{f.scale:.2f} ({f.width}x{f.height})"


async def main(limit: int) -> None:
    print(f"Pillow {PIL.__version__}, limit {limit / MIB:g} MiB, {os.cpu_count()} CPUs")
    cases = [
        ("4096² noise PNG", noise_png(4096)),
        ("4096² gradient+grain PNG", realistic_png(4096)),
        ("2048² gradient+grain PNG", realistic_png(2048)),
    ]
    header = (
        f"{'image':26} {'input':>9} {'output':>9} {'result':32} {'fit s':>6} "
        f"{'lag max ms':>10} {'lag p99 ms':>10}"
    )
    print(header)
    print("-" * len(header))
    for label, data in cases:
        started = time.perf_counter()
        fitted = fit_image(data, limit)
        seconds = time.perf_counter() - started
        again, lags = await loop_lag(partial(fit_image_async, data, limit))
        assert again == fitted  # deterministic
        print(
            f"{label:26} {len(data) / MIB:8.1f}M {len(fitted.data) / MIB:8.2f}M "
            f"{describe(fitted):32} {seconds:6.2f} {max(lags) * 1000:10.1f} "
            f"{p99(lags) * 1000:10.1f}"
        )

    tiles = [realistic_png(2048) for _ in range(4)]
    started = time.perf_counter()
    sheet = make_grid(tiles)
    seconds = time.perf_counter() - started
    _, lags = await loop_lag(lambda: make_grid_async(tiles))
    print(
        f"{'grid of 4 × 2048² PNG':26} {sum(map(len, tiles)) / MIB:8.1f}M "
        f"{len(sheet) / MIB:8.2f}M {'JPEG contact sheet 1024 px':32} {seconds:6.2f} "
        f"{max(lags) * 1000:10.1f} {p99(lags) * 1000:10.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--limit-mib", type=float, default=10.0, help="upload limit in MiB")
    args = parser.parse_args()
    asyncio.run(main(int(args.limit_mib * MIB)))
