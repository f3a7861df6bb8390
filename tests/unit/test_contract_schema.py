"""The schema-driven contract: reading schema shapes, binding concepts, spelling values."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.models import (
    GenerationRequest,
    ImageRef,
    ImageSource,
    Mode,
    PaletteColor,
    Resolution,
)
from bot.errors import ConfigError, InvalidInput
from bot.wan.contract import Concept, Contract, parse_model_schema, parse_override
from bot.wan.contract.schema import SchemaUnreadable
from bot.wan.types import MODEL_ID


def contract_for(input_schema: Any, override: Any = None, **extra: Any) -> Contract:
    contract = Contract(override=override)
    contract.apply_schema(
        parse_model_schema({"model": MODEL_ID, "input_schema": input_schema, **extra})
    )
    return contract


def json_schema(props: dict[str, Any], required: tuple[str, ...] = ("prompt",)) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


def edit(count: int = 1, **kw: Any) -> GenerationRequest:
    images = tuple(ImageRef(ImageSource.URL, f"https://in.test/{i}.png") for i in range(count))
    return GenerationRequest(prompt="x", mode=Mode.EDIT, images=images, **kw)


def build(contract: Contract, req: GenerationRequest) -> dict[str, Any]:
    return contract.build_input(req, [f"https://files.test/{i}" for i in range(len(req.images))])


def refusal(contract: Contract, req: GenerationRequest) -> str:
    with pytest.raises(InvalidInput) as info:
        contract.check(req)
    return info.value.user_message


PROMPT = {"type": "string"}


# --- reading every shape -----------------------------------------------------------------------


def test_json_schema_nested_objects_refs_and_variants() -> None:
    schema = parse_model_schema(
        {
            "model": MODEL_ID,
            "input_schema": {
                "type": "object",
                "required": ["prompt", "parameters"],
                "$defs": {"count": {"type": "integer", "minimum": 1, "maximum": 4}},
                "properties": {
                    "prompt": {"type": "string", "maxLength": 800},
                    "images": {"type": "array", "items": {"type": "string", "format": "uri"}},
                    "parameters": {
                        "type": "object",
                        "required": ["n"],
                        "properties": {
                            "n": {"$ref": "#/$defs/count"},
                            "seed": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
                        },
                    },
                },
            },
        }
    )
    by_path = {f.dotted: f for f in schema.fields}
    assert set(by_path) == {"prompt", "images", "parameters.n", "parameters.seed"}
    assert by_path["prompt"].max_length == 800 and by_path["prompt"].required
    assert by_path["images"].items_format == "uri"
    assert by_path["parameters.n"].maximum == 4 and by_path["parameters.n"].required
    assert by_path["parameters.seed"].type == "integer"
    assert not by_path["parameters.seed"].required


def test_name_to_spec_mapping_and_required_list() -> None:
    schema = parse_model_schema(
        {
            "required_input_fields": ["prompt"],
            "input_schema": {"prompt": "string", "img_urls": {"type": "string[]"}, "n": "int"},
        }
    )
    types = {f.dotted: (f.type, f.items_type, f.required) for f in schema.fields}
    assert types == {
        "prompt": ("string", None, True),
        "img_urls": ("array", "string", False),
        "n": ("integer", None, False),
    }
    assert schema.model == MODEL_ID


def test_field_list_with_nested_fields_and_option_objects() -> None:
    schema = parse_model_schema(
        {
            "model": {"id": MODEL_ID},
            "input_fields": [
                {"name": "prompt", "type": "str", "required": True},
                {
                    "name": "quality",
                    "type": "string",
                    "options": [{"value": "1k"}, {"value": "2k"}],
                },
                {"name": "parameters", "type": "object", "fields": [{"name": "n", "type": "int"}]},
            ],
        }
    )
    by_path = {f.dotted: f for f in schema.fields}
    assert set(by_path) == {"prompt", "quality", "parameters.n"}
    assert by_path["quality"].enum == ("1k", "2k")
    assert by_path["prompt"].required


def test_bare_name_lists_and_dotted_required_names() -> None:
    schema = parse_model_schema(
        {"input_fields": ["prompt", "image_urls"], "required_input_fields": ["parameters.size"]}
    )
    assert schema.input_fields == {"prompt", "image_urls", "parameters.size"}
    assert schema.required_fields == {"parameters.size"}


def test_a_reply_without_any_field_description_is_unreadable() -> None:
    with pytest.raises(SchemaUnreadable):
        parse_model_schema({"model": MODEL_ID, "description": "an image model"})


# --- binding concepts --------------------------------------------------------------------------


def test_synonyms_bind_at_any_depth() -> None:
    contract = contract_for(
        json_schema(
            {
                "text": PROMPT,
                "reference_images": {"type": "array"},
                "options": {
                    "type": "object",
                    "properties": {
                        "num_images": {"type": "integer"},
                        "random_seed": {"type": "integer"},
                    },
                },
            },
            required=("text",),
        )
    )
    assert contract.field_name(Concept.PROMPT) == "text"
    assert contract.field_name(Concept.IMAGES) == "reference_images"
    assert contract.field_name(Concept.N) == "options.num_images"
    payload = build(contract, edit(2, n=1, seed=5))
    assert payload == {
        "text": "x",
        "reference_images": ["https://files.test/0", "https://files.test/1"],
        "options": {"num_images": 1, "random_seed": 5},
    }


def test_type_and_value_hints_bind_fields_with_unknown_names() -> None:
    contract = contract_for(
        json_schema(
            {
                "prompt": PROMPT,
                "output_quality": {"type": "string", "enum": ["1K", "2K", "4K"]},
                "frame": {"type": "string", "enum": ["1:1", "16:9", "9:16"]},
                "sources": {"type": "array", "items": {"type": "string", "format": "uri"}},
            }
        )
    )
    assert contract.field_name(Concept.RESOLUTION) == "output_quality"
    assert contract.field_name(Concept.ASPECT_RATIO) == "frame"
    assert contract.field_name(Concept.IMAGES) == "sources"
    assert any("'frame' (its type and values fit)" in n for n in contract.mismatches)


def test_a_quality_enum_without_sizes_is_no_resolution() -> None:
    contract = contract_for(
        json_schema({"prompt": PROMPT, "quality": {"type": "string", "enum": ["standard", "hd"]}})
    )
    assert not contract.supports(Concept.RESOLUTION)
    assert "resolution is not available" in refusal(
        contract, GenerationRequest(prompt="x", resolution=Resolution.R1K)
    )


def test_two_fields_that_fit_equally_are_reported_not_guessed() -> None:
    uri_list = {"type": "array", "items": {"type": "string", "format": "uri"}}
    contract = contract_for(json_schema({"prompt": PROMPT, "a": uri_list, "b": uri_list}))
    assert not contract.supports(Concept.IMAGES)
    assert any("several fields could hold it ('a', 'b')" in p for p in contract.problems)


def test_unrecognised_image_field_is_a_problem_with_a_suggestion() -> None:
    contract = contract_for(
        json_schema({"prompt": PROMPT, "refs": {"type": "array", "items": {"type": "string"}}})
    )
    assert not contract.supports(Concept.IMAGES)
    problem = next(p for p in contract.problems if p.startswith("images:"))
    assert "'refs' (array of string)" in problem
    assert """WAN_FIELD_MAP='{"images": "refs"}'""" in problem
    assert "Working from input images is not available" in refusal(contract, edit())
    # Text-to-image still works: only the options that need the field are off.
    assert build(contract, GenerationRequest(prompt="x")) == {"prompt": "x"}


def test_override_wins_over_the_schema_and_can_disable() -> None:
    props = {
        "prompt": PROMPT,
        "refs": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "img_urls": {"type": "array"},
        "seed": {"type": "integer"},
    }
    contract = contract_for(json_schema(props), override='{"images": "refs", "seed": null}')
    assert build(contract, edit(2))["refs"] == ["https://files.test/0", "https://files.test/1"]
    assert "at most 2 input image(s)" in refusal(contract, edit(3))  # the schema's limit holds
    assert not contract.supports(Concept.SEED)
    assert "img_urls" in contract.unused_fields
    assert contract.override == {"images": "refs", "seed": None}
    assert "images: 'refs' from WAN_FIELD_MAP" in contract.mismatches
    assert any("[WAN_FIELD_MAP]" in line for line in contract.describe())


def test_override_to_a_field_the_schema_lacks_is_a_problem_but_is_used() -> None:
    contract = contract_for(json_schema({"prompt": PROMPT}), override={"images": "media.inputs"})
    assert build(contract, edit(1)) == {
        "prompt": "x",
        "media": {"inputs": ["https://files.test/0"]},
    }
    assert any("does not list it" in p for p in contract.problems)


def test_override_applies_before_any_schema_is_read() -> None:
    contract = Contract(override={"count": "parameters.n"})
    assert build(contract, GenerationRequest(prompt="x", n=2))["parameters"] == {"n": 2}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"colour": "x"}', "unknown concept 'colour'"),
        ('{"images": "a..b"}', "field path"),
        ('{"images": 3}', "field path"),
    ],
)
def test_bad_overrides_say_what_to_fix(raw: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_override(raw)


# --- spelling values ---------------------------------------------------------------------------


def test_lowercase_presets_and_limits_from_the_enum() -> None:
    contract = contract_for(
        json_schema({"prompt": PROMPT, "resolution": {"type": "string", "enum": ["1k", "2k"]}})
    )
    assert build(contract, GenerationRequest(prompt="x"))["resolution"] == "2k"
    assert build(contract, GenerationRequest(prompt="x", resolution=Resolution.R1K)) == {
        "prompt": "x",
        "resolution": "1k",
    }
    message = refusal(contract, GenerationRequest(prompt="x", resolution=Resolution.R4K))
    assert message == "4K is not available right now. Choose 1K, 2K."


def test_default_resolution_falls_back_to_the_nearest_allowed_budget() -> None:
    contract = contract_for(
        json_schema({"prompt": PROMPT, "resolution": {"type": "string", "enum": ["1K"]}})
    )
    assert build(contract, GenerationRequest(prompt="x"))["resolution"] == "1K"


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [
        (Resolution.R2K, None, "2048*2048"),
        (Resolution.R2K, "16:9", "2736*1536"),
        (Resolution.R1K, "9:16", "768*1360"),
        (Resolution.R4K, "1:1", "4096*4096"),
    ],
)
def test_pixel_sizes_are_computed_from_resolution_and_aspect_ratio(
    resolution: Resolution, ratio: str | None, size: str
) -> None:
    pixel = {"type": "string", "pattern": "^[0-9]+\\*[0-9]+$", "description": "width*height"}
    contract = contract_for(json_schema({"prompt": PROMPT, "size": pixel}))
    assert contract.supports(Concept.ASPECT_RATIO)  # folded into the size
    req = GenerationRequest(prompt="x", resolution=resolution, aspect_ratio=ratio)
    assert build(contract, req) == {"prompt": "x", "size": size}


def test_pixel_enum_picks_the_closest_listed_size() -> None:
    sizes = ["1024x1024", "2048x2048", "2560x1440", "1440x2560"]
    contract = contract_for(
        json_schema({"prompt": PROMPT, "size": {"type": "string", "enum": sizes}})
    )
    req = GenerationRequest(prompt="x", resolution=Resolution.R2K, aspect_ratio="16:9")
    assert build(contract, req)["size"] == "2560x1440"


def test_pixel_sizes_are_not_forced_on_edits_that_did_not_ask() -> None:
    pixel = {"type": "string", "description": "output size in pixels, W*H"}
    contract = contract_for(
        json_schema({"prompt": PROMPT, "size": pixel, "images": {"type": "array"}})
    )
    assert "size" not in build(contract, edit(1))
    assert build(contract, edit(1, resolution=Resolution.R1K))["size"] == "1024*1024"


def test_sizes_given_as_pixels_per_side() -> None:
    side = {"type": "integer", "enum": [1024, 2048]}
    contract = contract_for(json_schema({"prompt": PROMPT, "resolution": side}))
    assert (
        build(contract, GenerationRequest(prompt="x", resolution=Resolution.R1K))["resolution"]
        == 1024
    )
    assert "not available" in refusal(
        contract, GenerationRequest(prompt="x", resolution=Resolution.R4K)
    )


def test_yes_no_in_the_schemas_own_words() -> None:
    props = {
        "prompt": PROMPT,
        "thinking": {"type": "string", "enum": ["Enabled", "Disabled"]},
        "watermark": {"type": "integer", "enum": [0, 1]},
    }
    contract = contract_for(json_schema(props))
    payload = build(contract, GenerationRequest(prompt="x", thinking=False, watermark=True))
    assert payload == {"prompt": "x", "thinking": "Disabled", "watermark": 1}


def test_ranges_and_item_limits_refuse_with_the_limit() -> None:
    props = {
        "prompt": {"type": "string", "maxLength": 10},
        "n": {"type": "integer", "minimum": 1, "maximum": 4},
        "seed": {"type": "integer", "minimum": 0, "maximum": 999},
        "img_urls": {"type": "array", "maxItems": 3},
        "enable_sequential": {"type": "boolean"},
    }
    contract = contract_for(json_schema(props))
    image_set = GenerationRequest(prompt="x", mode=Mode.IMAGE_SET, n=6)
    assert "between 1 and 4" in refusal(contract, image_set)
    assert "between 0 and 999" in refusal(contract, GenerationRequest(prompt="x", seed=1000))
    assert "at most 3 input image(s)" in refusal(contract, edit(4))
    assert "at most 10 characters" in refusal(contract, GenerationRequest(prompt="x" * 11))
    assert build(contract, GenerationRequest(prompt="x", n=4, seed=999))["n"] == 4


def test_single_image_field_takes_one_url() -> None:
    contract = contract_for(json_schema({"prompt": PROMPT, "image_url": {"type": "string"}}))
    assert build(contract, edit(1))["image_url"] == "https://files.test/0"
    assert "at most 1 input image(s)" in refusal(contract, edit(2))


def test_aspect_ratio_enum_is_kept_and_spelled() -> None:
    ratio = {"type": "string", "enum": ["1:1", "16:9"]}
    contract = contract_for(json_schema({"prompt": PROMPT, "aspect_ratio": ratio}))
    assert (
        build(contract, GenerationRequest(prompt="x", aspect_ratio="16:9"))["aspect_ratio"]
        == "16:9"
    )
    message = refusal(contract, GenerationRequest(prompt="x", aspect_ratio="21:9"))
    assert message == "Aspect ratio 21:9 is not available right now. Choose one of: 1:1, 16:9."


def test_palette_entries_use_the_schemas_keys() -> None:
    palette = {
        "type": "array",
        "items": {"type": "object", "properties": {"color": {}, "weight": {}}},
    }
    contract = contract_for(json_schema({"prompt": PROMPT, "colors": palette}))
    colours = (PaletteColor("#111111", "50.00%"), PaletteColor("#222222", "30.00%"))
    colours += (PaletteColor("#333333", "20.00%"),)
    payload = build(contract, GenerationRequest(prompt="x", color_palette=colours))
    assert payload["colors"][0] == {"color": "#111111", "weight": "50.00%"}


def test_refusal_messages_are_traced_to_a_field() -> None:
    nested = json_schema(
        {
            "prompt": PROMPT,
            "parameters": {"type": "object", "properties": {"size": {"type": "string"}}},
        }
    )
    contract = contract_for(nested)
    assert contract.field_in("input.parameters.size: '2k' is not valid") == "parameters.size"
    assert contract.field_in("size must be one of 1K, 2K") == "parameters.size"
    assert contract.field_in("prompt is required") == "prompt"
    assert contract.field_in("upstream said no") is None
    assert contract.field_in("promptly refused") is None


def test_presets_that_also_take_pixel_sizes_carry_the_aspect_ratio_as_pixels() -> None:
    size = {"type": "string", "pattern": "^([124]K|[0-9]+\\*[0-9]+)$"}
    params = {"type": "object", "properties": {"size": size}}
    contract = contract_for(json_schema({"prompt": PROMPT, "parameters": params}))
    assert contract.supports(Concept.ASPECT_RATIO)
    assert build(contract, GenerationRequest(prompt="x"))["parameters"] == {"size": "2K"}
    wide = GenerationRequest(prompt="x", aspect_ratio="16:9")
    assert build(contract, wide)["parameters"] == {"size": "2736*1536"}
