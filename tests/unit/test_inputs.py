"""bot/ui/inputs.py: the two-stage check of input images (metadata, then real bytes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from PIL import Image

from bot.domain.models import ImageRef, ImageSource
from bot.errors import InvalidInput
from bot.media import MediaFetcher
from bot.services.inputs import InputChecker
from bot.ui.inputs import Candidate, check_images, dedupe, precheck, verify
from cogs.context_menu import modal_id, parse_modal_id, submitted_values
from tests.helpers import encode, jpeg, png


class Files:
    """A tiny file server on 127.0.0.1 that counts downloads."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.base = ""

    def url(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.base}/f/{name}?ex=1&hm=sig"

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[name], content_type="application/octet-stream")


@pytest.fixture
async def files() -> AsyncIterator[Files]:
    server = Files()
    app = web.Application()
    app.router.add_get("/f/{name}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


@pytest.fixture
async def fetcher() -> AsyncIterator[MediaFetcher]:
    async with MediaFetcher(max_bytes=64_000_000, allow_http=True, retries=0) as f:
        yield f


def cand(
    name: str, *, size: int | None = None, width: int | None = None, height: int | None = None
) -> Candidate:
    url = f"https://cdn.example/attachments/1/2/{name}?ex=1"
    return Candidate(url=url, name=name, size=size, width=width, height=height)


# --- precheck: no I/O ------------------------------------------------------------------------


def test_precheck_accepts_the_limits_themselves() -> None:
    precheck(
        [
            cand("a.png", size=20_000_000, width=240, height=240),
            cand("b.png", width=8000, height=1000),  # exactly 8:1
            cand("c.png"),  # nothing reported: left to the download
        ]
    )


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (cand("big.jpg", size=20_000_001), "big.jpg is 20.0 MB; images must be at most 20 MB"),
        (cand("small.png", width=239, height=500), "each side must be at least 240 px"),
        (cand("huge.png", width=8001, height=2000), "each side must be at most 8000 px"),
        (cand("thin.png", width=2430, height=300), "at most 8:1 (this one is 8.1:1)"),
        (cand("tall.png", width=300, height=2700), "at most 8:1 (this one is 9:1)"),
    ],
)
def test_precheck_names_the_file_and_the_rule(candidate: Candidate, expected: str) -> None:
    with pytest.raises(InvalidInput) as err:
        precheck([cand("fine.png", width=500, height=500), candidate])
    assert candidate.name in err.value.user_message
    assert expected in err.value.user_message
    assert "fine.png" not in err.value.user_message


def test_precheck_counts_before_anything_else() -> None:
    with pytest.raises(InvalidInput) as err:
        precheck([cand(f"{i}.png", size=99_000_000) for i in range(10)])
    assert "That's 10 images" in err.value.user_message
    precheck([cand(f"{i}.png") for i in range(9)])


def test_precheck_lists_every_bad_file_and_escapes_markdown() -> None:
    with pytest.raises(InvalidInput) as err:
        precheck([cand("my_cat_.png", width=10, height=10), cand("b*.png", size=10**9)])
    text = err.value.user_message
    assert text.startswith("These images can't be used:")
    assert "my\\_cat\\_.png" in text
    assert "b\\*.png" in text
    assert text.count("\n• ") == 2


def test_dedupe_keeps_the_first_position_and_ignores_signatures() -> None:
    a = Candidate(
        url="https://cdn.example/attachments/1/2/a.png?ex=1&hm=x",
        name="a.png",
        aliases=("https://media.example/attachments/1/2/a.png?ex=1&hm=x",),
    )
    b = Candidate(url="https://cdn.example/attachments/1/3/b.png", name="b.png")
    embed_of_a = Candidate(
        url="https://media.example/attachments/1/2/a.png?ex=2&hm=y&width=300",
        name="a.png",
        aliases=("https://cdn.example/attachments/1/2/a.png?ex=2&hm=y",),
    )
    other_host = Candidate(url="https://elsewhere.example/attachments/1/2/a.png", name="a.png")
    assert dedupe([a, b, embed_of_a, other_host]) == [a, b, other_host]


# --- verify: the bytes decide -----------------------------------------------------------------


async def test_verify_returns_refs_in_order(files: Files, fetcher: MediaFetcher) -> None:
    one, two = files.url("one.jpg", png(300, 300)), files.url("two.png", jpeg(400, 300))
    refs = await check_images(
        [Candidate(one, "one.jpg"), Candidate(two, "two.png")], InputChecker(fetcher)
    )  # a PNG named .jpg and a JPEG named .png: the content is what counts
    assert refs == [
        ImageRef(ImageSource.UPLOAD_URL, one, name="one.jpg"),
        ImageRef(ImageSource.UPLOAD_URL, two, name="two.png"),
    ]


async def test_verify_names_every_bad_file(files: Files, fetcher: MediaFetcher) -> None:
    gif = encode(Image.new("P", (300, 300)), "GIF")
    candidates = [
        Candidate(files.url("good.png", png(300, 300)), "good.png"),
        Candidate(files.url("text.png", b"not a picture at all\n" * 20), "text.png"),
        Candidate(files.url("anim.gif", gif), "anim.gif"),
        # Discord said 500x500; the bytes say otherwise
        Candidate(files.url("liar.png", png(100, 100)), "liar.png", width=500, height=500),
        Candidate(f"{files.base}/f/gone.png", "gone.png"),
    ]
    with pytest.raises(InvalidInput) as err:
        await verify(candidates, InputChecker(fetcher))
    lines = err.value.user_message.splitlines()
    assert lines[0] == "These images can't be used:"
    assert len(lines) == 5
    assert "text.png is not an image" in lines[1]
    assert "anim.gif is a GIF" in lines[2]
    assert "liar.png is 100×100 px" in lines[3]
    assert lines[4].startswith("• I couldn't download gone.png:")
    assert files.hits["good.png"] == 1


async def test_check_images_downloads_nothing_when_metadata_fails(
    files: Files, fetcher: MediaFetcher
) -> None:
    url = files.url("a.png", png(300, 300))
    with pytest.raises(InvalidInput):
        await check_images(
            [Candidate(url, "a.png"), Candidate(url, "b.png", size=30_000_000)],
            InputChecker(fetcher),
        )
    assert files.hits == {}


# --- the context menu's modal id and raw submission ------------------------------------------


def test_modal_id_round_trip_is_unique_and_short() -> None:
    first, second = modal_id(123456789012345678, 987654321098765432), modal_id(1, 2)
    assert parse_modal_id(first) == (123456789012345678, 987654321098765432)
    assert parse_modal_id(second) == (1, 2)
    assert modal_id(1, 2) != second  # a nonce: two members editing one message stay apart
    assert len(first) <= 100
    assert parse_modal_id("wan:edit-msg:x:2:abc") is None
    assert parse_modal_id("something-else") is None


def test_submitted_values_reads_labels_and_rows() -> None:
    data = {
        "custom_id": "x",
        "components": [
            {"type": 18, "component": {"type": 4, "custom_id": "prompt", "value": "hi"}},
            {"type": 1, "components": [{"type": 3, "custom_id": "count", "values": ["2"]}]},
            {"type": 10, "content": "text display"},
        ],
    }
    assert submitted_values(data) == {"prompt": "hi", "count": ["2"]}
