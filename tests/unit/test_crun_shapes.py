"""The replay corpus of crun schema shapes, and FakeCrun serving each one as a strict service.

Every shape accepts one hand-written good input and refuses the mistakes a bot makes when it
guesses crun's field names: an unknown field, a wrong enum spelling, no prompt, too many images.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from bot.wan.types import MODEL_ID
from tests.fakes.crun_server import FakeCrun
from tests.fakes.crun_shapes import SHAPE_NAMES, Shape, load_shape, lookup

URL = "https://cdn.example/in/1.png"
PALETTE = [{"hex": "#1A2B3C", "ratio": "60.00%"}, {"hex": "#FFFFFF", "ratio": "40.00%"}]

# One valid input per shape, written from the shape's own field names and enums.
GOOD: dict[str, dict[str, Any]] = {
    "builtin": {
        "prompt": "a lighthouse at dusk",
        "img_urls": [URL],
        "resolution": "2K",
        "aspect_ratio": "16:9",
        "n": 2,
        "color_palette": PALETTE,
        "bbox_list": [[[0, 0, 64, 64]]],
        "watermark": False,
        "seed": 42,
    },
    "crun_client": {
        "prompt": "a lighthouse at dusk",
        "img_urls": [URL],
        "resolution": "2K",
        "aspect_ratio": "16:9",
        "n": 2,
        "enable_sequential": False,
        "thinking_mode": False,
        "bbox_list": [[[0, 0, 64, 64], [8, 8, 32, 32]]],
        "seed": 0,
    },
    "json_schema_enums": {
        "prompt": "a four-panel comic of a cat learning to ski",
        "resolution": "2K",
        "aspect_ratio": "21:9",
        "n": 4,
        "enable_sequential": True,
        "watermark": True,
        "seed": 2147483647,
    },
    "field_list": {
        "prompt": "put the mug from image 1 on the desk",
        "images": [URL, URL],
        "resolution": "2k",
        "aspect_ratio": "1:1",
        "num_images": 3,
        "sequential": False,
        "seed": 7,
    },
    "nested_parameters": {
        "prompt": "a lighthouse at dusk",
        "images": [URL],
        "parameters": {"size": "2048*2048", "n": 2, "watermark": False, "seed": 7},
    },
    "lowercase_pixels": {
        "prompt": "a lighthouse at dusk",
        "image_urls": [URL],
        "size": "2048*2048",
        "n": 3,
        "thinking": "disabled",
        "watermark": False,
    },
    "unknown_image_field": {
        "prompt": "a lighthouse at dusk",
        "refs": [URL],
        "resolution": "2k",
        "aspect_ratio": "9:16",
        "n": 2,
        "thinking_mode": False,
    },
}

# A wrong spelling per shape: (dotted path inside input, value the service does not take).
MISSPELT: dict[str, tuple[str, Any]] = {
    "builtin": ("resolution", "2k"),
    "crun_client": ("resolution", "2k"),
    "json_schema_enums": ("aspect_ratio", "16x9"),
    "field_list": ("resolution", "2K"),
    "nested_parameters": ("parameters.size", "2k"),
    "lowercase_pixels": ("thinking", "Enabled"),
    "unknown_image_field": ("resolution", "2K"),
}


def with_value(input: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``input`` with ``value`` set at a dotted path."""
    out = copy.deepcopy(input)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


def advertised(reply: dict[str, Any]) -> set[str]:
    """The top-level field names a schema reply names, in any of the corpus's layouts."""
    if "input_fields" in reply:
        return {f["name"] for f in reply["input_fields"]}
    schema = reply["input_schema"]
    return set(schema.get("properties", schema))


@pytest.fixture(params=SHAPE_NAMES)
def shape(request: pytest.FixtureRequest) -> Shape:
    return load_shape(request.param)


# --- the corpus itself ----------------------------------------------------------------------


def test_the_corpus_has_every_shape_the_issue_names() -> None:
    assert set(SHAPE_NAMES) >= set(GOOD)
    assert set(GOOD) == set(MISSPELT) == set(SHAPE_NAMES)  # no shape goes untested


def test_each_shape_file_loads_and_its_accepts_is_a_strict_json_schema(shape: Shape) -> None:
    assert shape.about
    assert shape.reply["model"] == MODEL_ID
    Draft202012Validator.check_schema(shape.accepts)
    assert shape.accepts["additionalProperties"] is False
    assert "prompt" in shape.accepts["required"]


def test_each_shape_accepts_only_fields_its_reply_advertises(shape: Shape) -> None:
    assert set(shape.accepts["properties"]) == advertised(shape.reply)
    top = {shape.count_path.split(".")[0], shape.images_path.split(".")[0]}
    assert top <= advertised(shape.reply)


def test_only_the_unknown_image_field_shape_needs_an_operator_override(shape: Shape) -> None:
    expected = {"images": "refs"} if shape.name == "unknown_image_field" else None
    assert shape.override == expected


# --- strict validation ----------------------------------------------------------------------


def test_each_shape_accepts_its_good_example(shape: Shape) -> None:
    good = GOOD[shape.name]
    assert shape.validate(good) is None
    assert shape.count(good) == lookup(good, shape.count_path) > 1


def test_the_count_defaults_to_one_when_the_field_is_absent(shape: Shape) -> None:
    assert shape.count({"prompt": "x"}) == 1


def test_an_unknown_field_is_refused_by_name(shape: Shape) -> None:
    bad = with_value(GOOD[shape.name], "negative_prompt", "blurry")
    assert shape.validate(bad) == "unknown input field 'negative_prompt'"


def test_a_nested_unknown_field_is_refused_by_its_dotted_path() -> None:
    shape = load_shape("nested_parameters")
    bad = with_value(GOOD[shape.name], "parameters.resolution", "2K")
    assert shape.validate(bad) == "unknown input field 'parameters.resolution'"


def test_the_section_2_2_names_fail_on_every_shape_that_spells_images_otherwise(
    shape: Shape,
) -> None:
    # What a bot that hard-codes `img_urls` sends: only the shapes that call it that take it.
    bad = with_value(GOOD[shape.name], "img_urls", [URL])
    if shape.images_path == "img_urls":
        assert shape.validate(bad) is None
    else:
        assert shape.validate(bad) == "unknown input field 'img_urls'"


def test_a_wrong_enum_spelling_is_refused_naming_the_field(shape: Shape) -> None:
    path, value = MISSPELT[shape.name]
    message = shape.validate(with_value(GOOD[shape.name], path, value))
    assert message is not None
    assert message.startswith(f"input.{path}: {value!r}")


def test_a_missing_prompt_is_refused(shape: Shape) -> None:
    bad = copy.deepcopy(GOOD[shape.name])
    del bad["prompt"]
    assert shape.validate(bad) == "input.prompt is required"


def test_an_empty_prompt_is_refused(shape: Shape) -> None:
    message = shape.validate(with_value(GOOD[shape.name], "prompt", ""))
    assert message is not None
    assert message.startswith("input.prompt:")


def test_ten_input_images_are_refused(shape: Shape) -> None:
    bad = with_value(GOOD[shape.name], shape.images_path, [URL] * 10)
    assert shape.validate(bad) == f"input.{shape.images_path}: at most 9 items, got 10"


def test_too_many_outputs_are_refused(shape: Shape) -> None:
    message = shape.validate(with_value(GOOD[shape.name], shape.count_path, 13))
    assert message == f"input.{shape.count_path}: 13 is greater than the maximum of 12"


def test_a_bad_palette_colour_is_refused_with_its_index() -> None:
    shape = load_shape("builtin")
    palette = [{"hex": "#1A2B3C", "ratio": "50%"}, {"hex": "red", "ratio": "50%"}]
    message = shape.validate(with_value(GOOD["builtin"], "color_palette", palette))
    assert message is not None
    assert message.startswith("input.color_palette[1].hex: 'red' does not match")


# --- FakeCrun serving a shape ---------------------------------------------------------------


@pytest.fixture
async def served(shape: Shape) -> AsyncIterator[tuple[FakeCrun, aiohttp.ClientSession]]:
    async with (
        FakeCrun(shape=shape.name, task_latency=None, credits_per_image=5.0) as crun,
        aiohttp.ClientSession(crun.base_url, headers={"x-api-key": crun.api_key}) as http,
    ):
        yield crun, http


async def post(http: aiohttp.ClientSession, path: str, input: dict[str, Any]) -> dict[str, Any]:
    async with http.post(
        f"/api/v1/client/job/{path}", json={"model": MODEL_ID, "input": input}
    ) as r:
        doc: dict[str, Any] = await r.json()
        assert r.status == doc["code"]
        return doc


async def get(http: aiohttp.ClientSession, path: str, **query: str) -> dict[str, Any]:
    async with http.get(f"/api/v1/client/job/{path}", params=query) as r:
        doc: dict[str, Any] = await r.json()
        return doc


async def test_fake_serves_the_shape_reply_as_the_model_schema(
    shape: Shape, served: tuple[FakeCrun, aiohttp.ClientSession]
) -> None:
    _crun, http = served
    doc = await get(http, f"Models/{MODEL_ID}")
    assert (doc["code"], doc["data"]) == (200, shape.reply)


@pytest.mark.parametrize("endpoint", ["CreateTask", "EstimateTask", "estimate-credits"])
async def test_fake_answers_422_naming_the_field_for_bad_input(
    shape: Shape, served: tuple[FakeCrun, aiohttp.ClientSession], endpoint: str
) -> None:
    crun, http = served
    path, value = MISSPELT[shape.name]
    good = GOOD[shape.name]
    bad_inputs = {
        "unknown input field 'negative_prompt'": with_value(good, "negative_prompt", "blurry"),
        f"input.{path}: {value!r}": with_value(good, path, value),
        "input.prompt is required": {k: v for k, v in good.items() if k != "prompt"},
        f"input.{shape.images_path}: at most 9": with_value(good, shape.images_path, [URL] * 10),
    }
    for expected, bad in bad_inputs.items():
        doc = await post(http, endpoint, bad)
        assert doc["code"] == 422, expected
        assert doc["message"].startswith(expected)
    assert crun.tasks == {}
    assert crun.balance == 1000.0


async def test_fake_takes_good_input_and_makes_count_images(
    shape: Shape, served: tuple[FakeCrun, aiohttp.ClientSession]
) -> None:
    crun, http = served
    good = GOOD[shape.name]
    count = shape.count(good)

    estimate = await post(http, "EstimateTask", good)
    assert estimate["data"]["estimated_credits"] == 5.0 * count
    legacy = await post(http, "estimate-credits", good)
    assert legacy["data"]["credits"] == 5.0 * count

    created = await post(http, "CreateTask", good)
    task_id = created["data"]["task_id"]
    assert crun.tasks[task_id].input == good
    crun.finish(task_id)
    info = await get(http, "TaskInfo", task_id=task_id)
    assert info["data"]["status"] == "success"
    assert len(info["data"]["result"]["media_urls"]) == count
    assert info["data"]["credits"] == 5.0 * count
    assert crun.balance == 1000.0 - 5.0 * count


async def test_fake_takes_a_shape_object_as_well_as_a_name() -> None:
    shape = load_shape("nested_parameters")
    async with FakeCrun(shape=shape) as crun:
        assert crun.shape is shape


async def test_without_a_shape_the_fake_serves_the_builtin_reply_and_its_old_rules() -> None:
    async with (
        FakeCrun() as crun,
        aiohttp.ClientSession(crun.base_url, headers={"x-api-key": crun.api_key}) as http,
    ):
        assert crun.shape is None
        doc = await get(http, f"Models/{MODEL_ID}")
        assert doc["data"] == load_shape("builtin").reply  # the default is a corpus shape
        # The knobs' rules are looser than the strict builtin shape: an unchecked enum passes.
        lax = {"prompt": "x", "resolution": "2k"}
        assert (await post(http, "EstimateTask", lax))["code"] == 200
        assert load_shape("builtin").validate(lax) is not None
