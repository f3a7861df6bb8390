"""bot.media: downloads against a real aiohttp server on 127.0.0.1, image rules on real files."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from bot import media
from bot.errors import MediaError, UserFacingError
from bot.media import (
    Fitted,
    MediaFetcher,
    check_input_image,
    check_input_image_async,
    fit_image,
    fit_image_async,
    inspect_image,
    make_grid,
    make_grid_async,
    prepare_for_upload,
    prepare_for_upload_async,
)
from bot.media.sniff import sniff_format
from tests.helpers import encode, noise, noise_png, patch_jpeg_size, patch_png_size, png

MIB = 1024 * 1024
SEND_HINT = "send a PNG, JPEG, WEBP or BMP image"


# --- image helpers (more in tests/helpers.py) -------------------------------------------------
# png(width, height, 0, mode="1") is a cheap image of any size: one-bit or grey pixels compress
# to almost nothing.


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.fixture(scope="module")
def noise_4096() -> bytes:
    """A 4096x4096 random-noise PNG: incompressible, so ~48 MB."""
    return noise_png(4096, 4096, compress_level=1)


@pytest.fixture(scope="module")
def fitted_4096(noise_4096: bytes) -> Fitted:
    return fit_image(noise_4096, 10 * MIB)


# --- fetch: a real HTTP server on loopback ----------------------------------------------------

LIMIT = 256 * 1024
CHUNK = 16 * 1024


@dataclass
class FakeCdn:
    server: TestServer
    hits: Counter[str] = field(default_factory=Counter)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    payload: bytes = b"\x89PNG fake image bytes"
    stream_total: int = LIMIT + CHUNK

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def cdn() -> AsyncIterator[FakeCdn]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    state = FakeCdn(server)

    async def ok(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        return web.Response(body=state.payload, content_type="image/png")

    async def missing(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        return web.Response(status=404, text="no such object")

    async def flaky(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        if state.hits[request.path] == 1:
            return web.Response(status=503, text="try later")
        return web.Response(body=state.payload, content_type="image/png")

    async def down(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        return web.Response(status=503)

    async def throttled(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        if state.hits[request.path] == 1:
            return web.Response(status=429, headers={"Retry-After": "2"})
        return web.Response(body=state.payload, content_type="image/png")

    async def stalls(request: web.Request) -> web.Response:
        # Never answers while the test runs: the client's timeout has to end it.
        state.hits[request.path] += 1
        await state.release.wait()
        return web.Response(status=204)

    async def declared_too_big(request: web.Request) -> web.StreamResponse:
        # Headers only; the body would come after release. Rejecting early must not wait for it.
        state.hits[request.path] += 1
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.content_length = LIMIT + 1
        await resp.prepare(request)
        await state.release.wait()
        return resp

    async def chunked(request: web.Request) -> web.StreamResponse:
        # No Content-Length; sends stream_total bytes, then hangs until release. A client that
        # waits for the end of the body instead of counting would hang here.
        state.hits[request.path] += 1
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        while sent < state.stream_total:
            n = min(CHUNK, state.stream_total - sent)
            await resp.write(b"\0" * n)
            sent += n
        if "end" in request.query:
            await resp.write_eof()
            return resp
        await state.release.wait()
        return resp

    async def redirect(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        raise web.HTTPFound(request.query.get("to", "/ok.png"))

    async def loop(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        raise web.HTTPFound("/loop")

    for path, handler in {
        "/ok.png": ok,
        "/missing.png": missing,
        "/flaky.png": flaky,
        "/down.png": down,
        "/throttled.png": throttled,
        "/stalls.png": stalls,
        "/declared-too-big.png": declared_too_big,
        "/chunked.png": chunked,
        "/redirect": redirect,
        "/loop": loop,
    }.items():
        app.router.add_get(path, handler)

    await server.start_server()
    try:
        yield state
    finally:
        state.release.set()
        await server.close()


class Sleeps:
    """Stands in for asyncio.sleep: records the backoff and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def fetcher(sleeps: Sleeps, **kwargs: object) -> MediaFetcher:
    params: dict[str, object] = {"max_bytes": LIMIT, "allow_http": True, "sleep": sleeps}
    params.update(kwargs)
    return MediaFetcher(**params)  # type: ignore[arg-type]


async def test_fetch_ok(cdn: FakeCdn) -> None:
    sleeps = Sleeps()
    async with fetcher(sleeps) as f:
        got = await f.fetch(cdn.url("/ok.png?sig=abc"))
    assert got.data == cdn.payload
    assert got.content_type == "image/png"
    assert got.url == cdn.url("/ok.png?sig=abc")
    assert cdn.hits["/ok.png"] == 1
    assert sleeps.delays == []


async def test_fetch_accepts_exactly_max_bytes_streamed(cdn: FakeCdn) -> None:
    cdn.stream_total = LIMIT
    async with fetcher(Sleeps()) as f:
        got = await f.fetch(cdn.url("/chunked.png?end=1"))
    assert len(got.data) == LIMIT


async def test_fetch_rejects_declared_content_length_without_reading_body(cdn: FakeCdn) -> None:
    async with fetcher(Sleeps(), timeout=30.0) as f, asyncio.timeout(5):
        with pytest.raises(MediaError) as info:
            await f.fetch(cdn.url("/declared-too-big.png"))
    assert "larger than" in info.value.user_message
    assert "Content-Length" in info.value.detail
    assert cdn.hits["/declared-too-big.png"] == 1  # too big is not transient: no retry


async def test_fetch_aborts_chunked_stream_once_over_max_bytes(cdn: FakeCdn) -> None:
    async with fetcher(Sleeps(), timeout=30.0) as f, asyncio.timeout(5):
        with pytest.raises(MediaError) as info:
            await f.fetch(cdn.url("/chunked.png"))
    assert "larger than" in info.value.user_message
    assert "streamed" in info.value.detail
    assert cdn.hits["/chunked.png"] == 1


async def test_fetch_refuses_http_unless_allowed(cdn: FakeCdn) -> None:
    async with fetcher(Sleeps(), allow_http=False) as f:
        with pytest.raises(MediaError) as info:
            await f.fetch(cdn.url("/ok.png"))
    assert "can't be used" in info.value.user_message
    assert sum(cdn.hits.values()) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.png",
        "https://[::1]/a.png",
        "https://10.1.2.3/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/a.png",
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "not a url",
    ],
)
async def test_fetch_refuses_internal_hosts_and_other_schemes_without_connecting(
    url: str,
) -> None:
    async with MediaFetcher(max_bytes=LIMIT) as f:
        with pytest.raises(MediaError):
            await f.fetch(url)


async def test_fetch_allowed_hosts(cdn: FakeCdn) -> None:
    async with fetcher(Sleeps(), allowed_hosts=frozenset({"cdn.example.com"})) as f:
        with pytest.raises(MediaError):
            await f.fetch(cdn.url("/ok.png"))
    assert sum(cdn.hits.values()) == 0
    async with fetcher(Sleeps(), allowed_hosts=frozenset({"127.0.0.1"})) as f:
        assert (await f.fetch(cdn.url("/ok.png"))).data == cdn.payload


async def test_fetch_404_is_not_retried_and_hides_the_signed_query(
    cdn: FakeCdn, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    caplog.set_level(logging.DEBUG, logger="bot.media")
    async with fetcher(sleeps) as f:
        with pytest.raises(MediaError) as info:
            await f.fetch(cdn.url("/missing.png?X-Signature=TOPSECRET&Expires=1"))
    err = info.value
    assert isinstance(err, UserFacingError)
    assert "expired" in err.user_message
    assert "404" in err.detail and "/missing.png" in err.detail  # the log gets the detail
    for text in (err.user_message, err.detail, str(err), caplog.text):
        assert "TOPSECRET" not in text
    assert "/missing.png" in caplog.text
    assert cdn.hits["/missing.png"] == 1
    assert sleeps.delays == []


async def test_fetch_retries_503_then_succeeds(cdn: FakeCdn) -> None:
    sleeps = Sleeps()
    async with fetcher(sleeps) as f:
        got = await f.fetch(cdn.url("/flaky.png"))
    assert got.data == cdn.payload
    assert cdn.hits["/flaky.png"] == 2
    assert sleeps.delays == [0.5]


async def test_fetch_gives_up_after_two_retries(cdn: FakeCdn) -> None:
    sleeps = Sleeps()
    async with fetcher(sleeps) as f:
        with pytest.raises(MediaError) as info:
            await f.fetch(cdn.url("/down.png"))
    assert "try again" in info.value.user_message
    assert cdn.hits["/down.png"] == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_fetch_honours_short_retry_after(cdn: FakeCdn) -> None:
    sleeps = Sleeps()
    async with fetcher(sleeps) as f:
        got = await f.fetch(cdn.url("/throttled.png"))
    assert got.data == cdn.payload
    assert sleeps.delays == [2.0]


async def test_fetch_timeout_is_retried_then_reported(cdn: FakeCdn) -> None:
    sleeps = Sleeps()
    async with fetcher(sleeps, timeout=0.2) as f, asyncio.timeout(10):
        with pytest.raises(MediaError) as info:
            await f.fetch(cdn.url("/stalls.png"))
    assert "too long" in info.value.user_message
    assert cdn.hits["/stalls.png"] == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_fetch_connection_refused_is_retried_then_reported() -> None:
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/gone.png"))
    await server.close()
    sleeps = Sleeps()
    async with fetcher(sleeps) as f:
        with pytest.raises(MediaError) as info:
            await f.fetch(url)
    assert "reach" in info.value.user_message
    assert sleeps.delays == [0.5, 1.0]


async def test_fetch_follows_redirects_and_checks_every_hop(cdn: FakeCdn) -> None:
    async with fetcher(Sleeps()) as f:
        assert (await f.fetch(cdn.url("/redirect"))).data == cdn.payload
        with pytest.raises(MediaError):
            await f.fetch(cdn.url("/redirect?to=ftp://example.com/x.png"))
        with pytest.raises(MediaError):
            await f.fetch(cdn.url("/loop"))
    assert cdn.hits["/ok.png"] == 1
    assert cdn.hits["/loop"] == 6  # the first request and five redirects, then it gives up


async def test_close_leaves_an_injected_session_open(cdn: FakeCdn) -> None:
    async with aiohttp.ClientSession() as session:
        f = MediaFetcher(max_bytes=LIMIT, allow_http=True, session=session)
        assert (await f.fetch(cdn.url("/ok.png"))).data == cdn.payload
        await f.close()
        assert not session.closed


# --- fit_image ---------------------------------------------------------------------------------


def test_fit_brings_4096_noise_png_under_10_mib(noise_4096: bytes, fitted_4096: Fitted) -> None:
    limit = 10 * MIB
    assert len(noise_4096) > limit  # otherwise the test proves nothing
    fitted = fitted_4096
    assert len(fitted.data) <= limit
    assert fitted.reencoded
    assert fitted.content_type == "image/jpeg" and fitted.ext == ".jpg"
    assert fitted.quality in media.QUALITY_LADDER
    im = decode(fitted.data)
    assert im.format == "JPEG"
    assert im.size == (fitted.width, fitted.height)
    assert fitted.width == round(4096 * fitted.scale)


def test_fit_keeps_original_bytes_when_they_fit() -> None:
    data = noise_png(300, 200)
    fitted = fit_image(data, len(data))
    assert fitted.data == data
    assert not fitted.reencoded
    assert (fitted.width, fitted.height, fitted.scale, fitted.quality) == (300, 200, 1.0, None)
    assert (fitted.content_type, fitted.ext) == ("image/png", ".png")


def test_fit_downscales_when_no_quality_fits_and_is_deterministic() -> None:
    data = noise_png(1024, 768, compress_level=1)
    limit = 120_000
    first = fit_image(data, limit)
    assert len(first.data) <= limit
    assert first.scale < 1.0
    assert max(first.width, first.height) >= media.MIN_LONG_SIDE
    assert decode(first.data).size == (first.width, first.height)
    assert fit_image(data, limit) == first


def test_fit_raises_media_error_when_impossible() -> None:
    data = noise_png(1024, 1024, compress_level=1)
    with pytest.raises(MediaError) as info:
        fit_image(data, 2_000)
    assert "too large" in info.value.user_message


def test_fit_reports_an_unreadable_result_without_blaming_the_user() -> None:
    with pytest.raises(MediaError) as info:
        fit_image(b"<html>Access denied</html>", 1_000_000)
    assert (
        info.value.user_message
        == "The finished image could not be read, so it can't be shown here."
    )
    assert "unrecognised" in info.value.detail


def test_fit_drops_alpha_onto_white() -> None:
    im = noise(600, 600, "RGBA")
    im.paste((0, 0, 0, 0), (0, 0, 100, 100))  # a fully transparent corner
    data = encode(im, "PNG", compress_level=1)
    fitted = fit_image(data, len(data) // 2)
    out = decode(fitted.data).convert("RGB")
    r, g, b = out.getpixel((20, 20))  # type: ignore[misc]
    assert min(r, g, b) > 240


async def test_event_loop_stays_responsive_while_fitting(
    noise_4096: bytes, fitted_4096: Fitted
) -> None:
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    started = asyncio.Event()
    done = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        started.set()
        while True:
            await asyncio.sleep(0.01)
            now = loop.time()
            gaps.append(now - last)
            last = now
            if done.is_set():
                return

    task = asyncio.create_task(ticker())
    await started.wait()
    fitted = await fit_image_async(noise_4096, 10 * MIB)
    done.set()
    await asyncio.wait_for(task, 5)

    assert fitted == fitted_4096  # same work as the sync run (and deterministic)
    assert len(gaps) >= 10
    assert max(gaps) < 0.2, f"event loop stalled for {max(gaps):.3f}s"


# --- check_input_image ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "mode"),
    [
        ((240, 240), "L"),
        ((8000, 1000), "1"),
        ((1000, 8000), "1"),
        ((1920, 240), "1"),  # exactly 8:1
        ((240, 1920), "1"),  # exactly 1:8
        ((8000, 8000), "1"),
    ],
)
def test_input_sizes_accepted(size: tuple[int, int], mode: str) -> None:
    info = check_input_image(png(*size, 0, mode=mode), name="ok.png")
    assert (info.width, info.height) == size


@pytest.mark.parametrize(
    ("size", "needle"),
    [
        ((239, 240), "at least 240"),
        ((240, 239), "at least 240"),
        ((1, 1), "at least 240"),
        ((8001, 1001), "at most 8000"),
        ((1001, 8001), "at most 8000"),
        ((2430, 300), "8:1"),  # 8.1:1
        ((300, 2430), "8:1"),
    ],
)
def test_input_sizes_rejected(size: tuple[int, int], needle: str) -> None:
    with pytest.raises(MediaError) as info:
        check_input_image(png(*size, 0, mode="1"), name="photo.png")
    msg = info.value.user_message
    assert msg.startswith("photo.png is ")
    assert needle in msg
    assert f"{size[0]}×{size[1]}" in msg


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("BMP", "image/bmp"), ("WEBP", "image/webp")],
)
def test_input_formats_accepted(fmt: str, mime: str) -> None:
    info = check_input_image(encode(noise(300, 260), fmt), name="x.bin")
    assert (info.format, info.mime, info.width, info.height) == (fmt, mime, 300, 260)


def test_input_gif_rejected_with_instructions() -> None:
    with pytest.raises(MediaError) as info:
        check_input_image(encode(noise(300, 300), "GIF"), name="cat.gif")
    assert info.value.user_message == f"cat.gif is a GIF; {SEND_HINT}."


def test_input_format_is_judged_by_content_not_name() -> None:
    with pytest.raises(MediaError) as info:
        check_input_image(encode(noise(300, 300), "GIF"), name="sneaky.png")
    assert info.value.user_message == f"sneaky.png is a GIF; {SEND_HINT}."
    assert check_input_image(encode(noise(300, 300), "JPEG"), name="photo.png").format == "JPEG"


def test_input_tiff_rejected() -> None:
    with pytest.raises(MediaError) as info:
        check_input_image(encode(noise(300, 300), "TIFF"), name="scan.tif")
    assert info.value.user_message == f"scan.tif is a TIFF; {SEND_HINT}."


def test_input_text_named_png_rejected() -> None:
    with pytest.raises(MediaError) as info:
        check_input_image(b"these are my notes, not a picture\n" * 20, name="notes.png")
    assert info.value.user_message == f"notes.png is not an image the bot can read; {SEND_HINT}."


def test_input_truncated_png_rejected() -> None:
    data = noise_png(300, 300)
    with pytest.raises(MediaError) as info:
        check_input_image(data[: len(data) // 2], name="half.png")
    assert "half.png" in info.value.user_message
    assert "damaged" in info.value.user_message


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("BMP", {}),
        ("PNG", {}),
        ("WEBP", {"quality": 80}),
        ("WEBP", {"lossless": True}),
    ],
)
@pytest.mark.parametrize("kept", [0.5, 0.95])
def test_input_cut_short_is_rejected_in_every_format(
    fmt: str, options: dict[str, object], kept: float
) -> None:
    # Regression: verify() checks nothing for JPEG or BMP, so these were accepted.
    data = encode(noise(300, 300), fmt, **options)
    assert check_input_image(data, name="whole").format == fmt
    with pytest.raises(MediaError) as info:
        check_input_image(data[: int(len(data) * kept)], name="cut")
    assert "damaged" in info.value.user_message


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGB"])
def test_input_whole_jpeg_in_any_mode_passes_the_scan_check(mode: str) -> None:
    data = encode(noise(300, 300).convert(mode), "JPEG", progressive=True)
    assert check_input_image(data, name="ok.jpg").format == "JPEG"


def test_input_byte_limit_both_sides() -> None:
    data = noise_png(300, 300)
    padded = data + b"\0" * (media.INPUT_MAX_BYTES - len(data))  # trailing bytes after IEND
    assert check_input_image(padded, name="big.png").format == "PNG"
    with pytest.raises(MediaError) as info:
        check_input_image(padded + b"\0", name="big.png")
    assert "big.png" in info.value.user_message and "20 MB" in info.value.user_message


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param(
            lambda: patch_png_size(png(300, 300, 0, mode="1"), 30000, 30000), id="png-30000"
        ),
        pytest.param(
            lambda: patch_jpeg_size(encode(noise(300, 300), "JPEG"), 30000, 30000),
            id="jpeg-30000",
        ),
    ],
)
def test_decompression_bombs_are_refused_quickly(bomb: object) -> None:
    data = bomb()  # type: ignore[operator]
    for func in (
        lambda: check_input_image(data, name="bomb.png"),
        lambda: inspect_image(data, name="bomb.png"),
        lambda: prepare_for_upload(data, name="bomb.png"),
        lambda: fit_image(data, 1024),
        lambda: make_grid([data]),
    ):
        started = time.perf_counter()
        with pytest.raises(MediaError):
            func()
        assert time.perf_counter() - started < 1.0


def test_declared_pixels_are_capped_below_pillows_own_limit() -> None:
    # 9000x9000 = 81M pixels: Pillow itself would open it without a word.
    assert media.MAX_PIXELS < 9000 * 9000 < (Image.MAX_IMAGE_PIXELS or 0)
    data = patch_png_size(png(300, 300, 0, mode="1"), 9000, 9000)
    with pytest.raises(MediaError) as info:
        inspect_image(data, name="huge.png")
    assert "huge.png" in info.value.user_message
    assert "9000×9000" in info.value.user_message


def test_pillow_bomb_warning_becomes_an_error_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    before = list(warnings.filters)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: Pillow only warns
    with pytest.raises(MediaError) as info:
        inspect_image(noise_png(40, 40), name="tiny-bomb.png")
    assert "too large to open safely" in info.value.user_message
    assert warnings.filters == before


def test_warning_filters_do_not_leak_across_threads() -> None:
    before = list(warnings.filters)
    data = noise_png(64, 64)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                inspect_image(data, name="x.png")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert warnings.filters == before


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("GIF", {}),
    ],
)
def test_header_parser_agrees_with_pillow(fmt: str, params: dict[str, object]) -> None:
    data = encode(noise(333, 217), fmt, **params)
    sniffed_fmt, header = sniff_format(data)
    assert sniffed_fmt == fmt
    assert header is not None and (header.width, header.height) == (333, 217)


async def test_check_input_image_async() -> None:
    info = await check_input_image_async(png(300, 300, 0, mode="1"), name="a.png")
    assert (info.width, info.height) == (300, 300)


# --- prepare_for_upload ----------------------------------------------------------------------


def test_prepare_flattens_alpha_png_onto_white() -> None:
    im = Image.new("RGBA", (300, 300), (0, 0, 255, 255))
    im.putpixel((0, 0), (255, 0, 0, 0))  # invisible red
    im.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black
    prepared = prepare_for_upload(encode(im, "PNG"), name="logo.png")
    assert (prepared.content_type, prepared.ext) == ("image/png", ".png")
    out = decode(prepared.data)
    assert out.format == "PNG"
    assert not out.has_transparency_data
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 0)) == (127, 127, 127)
    assert out.getpixel((5, 5)) == (0, 0, 255)


def test_prepare_flattens_palette_transparency_and_alpha_webp() -> None:
    p = Image.new("P", (300, 300), 1)
    p.putpalette([0, 0, 0, 0, 255, 0])
    palette_png = encode(p, "PNG", transparency=1)
    webp = encode(Image.new("RGBA", (300, 300), (0, 0, 0, 0)), "WEBP", lossless=True)
    for data in (palette_png, webp):
        prepared = prepare_for_upload(data, name="x")
        assert prepared.content_type == "image/png"
        out = decode(prepared.data)
        assert not out.has_transparency_data
        assert out.convert("RGB").getpixel((10, 10)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("fmt", "mime", "ext"),
    [
        ("JPEG", "image/jpeg", ".jpg"),
        ("PNG", "image/png", ".png"),
        ("BMP", "image/bmp", ".bmp"),
        ("WEBP", "image/webp", ".webp"),
    ],
)
async def test_prepare_passes_opaque_images_through_unchanged(
    fmt: str, mime: str, ext: str
) -> None:
    data = encode(noise(300, 300), fmt)
    prepared = await prepare_for_upload_async(data, name="photo")
    assert prepared.data == data
    assert (prepared.content_type, prepared.ext) == (mime, ext)


# --- make_grid -------------------------------------------------------------------------------

COLOURS = [
    (230, 30, 30),
    (30, 200, 30),
    (30, 30, 230),
    (230, 230, 30),
    (30, 230, 230),
    (230, 30, 230),
    (200, 120, 40),
    (120, 40, 200),
    (40, 200, 120),
    (250, 250, 250),
    (120, 120, 120),
    (200, 160, 160),
]


def close_to(a: object, b: tuple[int, int, int], tol: int = 24) -> bool:
    assert isinstance(a, tuple)
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("n", "cols", "rows"), [(2, 2, 1), (4, 2, 2), (9, 3, 3), (12, 4, 3)])
def test_grid_layout_and_labels(n: int, cols: int, rows: int) -> None:
    sheet = decode(make_grid([png(400, 400, c) for c in COLOURS[:n]], max_side=1024))
    assert sheet.format == "JPEG"
    assert max(sheet.size) == pytest.approx(1024, abs=cols + rows)
    cell_w, cell_h = sheet.width / cols, sheet.height / rows
    assert cell_w == pytest.approx(cell_h, rel=0.05)  # square inputs -> square cells
    rgb = sheet.convert("RGB")
    for i, colour in enumerate(COLOURS[:n]):
        col, row = i % cols, i // cols
        x0, y0 = col * cell_w, row * cell_h
        centre = rgb.getpixel((int(x0 + cell_w * 0.6), int(y0 + cell_h * 0.6)))
        assert close_to(centre, colour), (i, centre)
        # The number badge is a dark patch in the top-left corner of each cell, absent elsewhere.
        corner = rgb.crop((int(x0), int(y0), int(x0 + cell_w * 0.25), int(y0 + cell_h * 0.25)))
        other = rgb.crop(
            (int(x0 + cell_w * 0.7), int(y0 + cell_h * 0.7), int(x0 + cell_w), int(y0 + cell_h))
        )
        assert dark_pixels(corner) > 50
        assert dark_pixels(other) < dark_pixels(corner) // 5


def dark_pixels(im: Image.Image) -> int:
    return sum(im.convert("L").histogram()[:20])


def test_grid_fits_other_aspects_inside_cells() -> None:
    images = [png(800, 400, COLOURS[0]), png(300, 600, COLOURS[1])]
    sheet = decode(make_grid(images, max_side=512))
    assert sheet.width == pytest.approx(512, abs=4)
    assert sheet.height < sheet.width  # cells take the first image's 2:1 shape


def test_grid_rejects_bad_counts_and_names_a_bad_image() -> None:
    with pytest.raises(ValueError):
        make_grid([])
    with pytest.raises(ValueError):
        make_grid([png(400, 400, COLOURS[0])] * 13)
    with pytest.raises(MediaError) as info:
        make_grid([png(400, 400, COLOURS[0]), b"<html>oops</html>"])
    assert info.value.user_message.startswith("Image 2 of the result could not be read")
    assert "image 2" in info.value.detail


async def test_grid_async_matches_sync() -> None:
    images = [png(400, 400, c) for c in COLOURS[:5]]
    assert await make_grid_async(images, max_side=400) == make_grid(images, max_side=400)
