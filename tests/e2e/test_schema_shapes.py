"""/imagine, /edit and /imageset end to end against every schema shape of the replay corpus: the
fake crun serves the shape and, like a strict service, refuses any input that does not match it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.crun_server import DEFAULT_SCHEMA_FIELDS, FakeCrun
from tests.fakes.crun_shapes import SHAPE_NAMES, Shape, lookup
from tests.fakes.discord_fake import DiscordFake, FakeMessage
from tests.helpers import png, uploaded
from tests.world import WanWorld, ephemeral_reply, world_for

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=SHAPE_NAMES)
async def shaped(
    request: pytest.FixtureRequest, discord_fake: DiscordFake, tmp_path: Path
) -> AsyncIterator[WanWorld]:
    async with FakeCrun(shape=request.param) as crun:
        yield world_for(discord_fake, crun, tmp_path)


def shape_of(wan: WanWorld) -> Shape:
    assert wan.crun.shape is not None
    return wan.crun.shape


def field_map(shape: Shape) -> str | None:
    return json.dumps(shape.override) if shape.override else None


async def result_of(wan: WanWorld, before: set[int]) -> FakeMessage:
    result = await wan.next_result(before)
    await wan.settle()
    return result


async def test_every_command_works_on_every_shape(shaped: WanWorld) -> None:
    wan, shape = shaped, shape_of(shaped)
    picture = png(320, 240, (200, 40, 40))
    async with wan.fake.running(wan.bot(wan_field_map=field_map(shape))):
        before = wan.result_ids()
        await wan.imagine("a lighthouse at dusk", count=2, resolution="1K", wait="sent")
        made = await result_of(wan, before)

        before = wan.result_ids()
        await wan.edit({"image": ("harbour.png", picture)}, "make it night")
        edited = await result_of(wan, before)

        before = wan.result_ids()
        await wan.fake.slash(
            wan.alice, wan.guild, wan.channel, "imageset", {"prompt": "seasons", "count": 3}
        )
        series = await result_of(wan, before)

    inputs = [r["input"] for r in wan.crun.requests_for("create")]
    assert len(inputs) == 3  # none refused: the fake answers 422 to anything off-shape
    assert [shape.validate(i) for i in inputs] == [None, None, None]
    assert [shape.count(i) for i in inputs] == [2, 1, 3]
    assert [uploaded(wan.crun, url) for url in lookup(inputs[1], shape.images_path)] == [picture]
    assert lookup(inputs[0], shape.images_path) is None
    assert [len(m.attachments) for m in (made, edited, series)] == [2, 1, 3]


async def test_aspect_ratio_reaches_crun_in_the_shapes_terms(shaped: WanWorld) -> None:
    wan, shape = shaped, shape_of(shaped)
    async with wan.fake.running(wan.bot(wan_field_map=field_map(shape))):
        before = wan.result_ids()
        await wan.imagine("a wide harbour", aspect_ratio="16:9", resolution="2K", wait="sent")
        await result_of(wan, before)
    (sent,) = [r["input"] for r in wan.crun.requests_for("create")]
    assert shape.validate(sent) is None
    text = json.dumps(sent)
    # Either a ratio field says 16:9, or the size is a wide W*H: never silently square.
    wide = [v for v in _strings(sent) if "*" in v and _is_wide(v)]
    assert "16:9" in text or wide, sent


async def test_without_the_override_an_unknown_image_field_refuses_edits_before_any_cost(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    async with FakeCrun(shape="unknown_image_field") as crun:
        wan = world_for(discord_fake, crun, tmp_path)
        async with wan.fake.running(wan.bot()):
            handle = await wan.edit({"image": ("cat.png", png(300, 300))}, "make it night")
            text = await ephemeral_reply(handle)
            before = wan.result_ids()
            await wan.imagine("text to image still works", wait="sent")
            await result_of(wan, before)
    assert "Working from input images is not available right now" in text
    assert crun.calls["upload_url"] == 0
    assert len(crun.requests_for("create")) == 1  # only the /imagine


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _is_wide(size: str) -> bool:
    width, _, height = size.partition("*")
    return width.isdigit() and height.isdigit() and int(width) > int(height)


async def test_a_schema_without_seed_still_generates_and_info_has_no_seed(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    fields = [f for f in DEFAULT_SCHEMA_FIELDS if f != "seed"]
    async with FakeCrun(schema_fields=fields) as crun:
        wan = world_for(discord_fake, crun, tmp_path)
        async with wan.fake.running(wan.bot()):
            before = wan.result_ids()
            await wan.imagine("no seed field here", wait="sent")
            await result_of(wan, before)
            chosen = await wan.imagine("but I pick one", seed=7)
            text = await ephemeral_reply(chosen)
    (sent,) = [r["input"] for r in crun.requests_for("create")]
    assert "seed" not in sent
    assert "Choosing a seed is not available right now" in text
