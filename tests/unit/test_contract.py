"""The crun ``input`` mapping: wan-api.md 2.4 examples, field presence, live-schema renames."""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
from pathlib import Path
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
from bot.errors import InvalidInput
from bot.wan.contract import Concept, Contract, FieldNames
from bot.wan.types import MODEL_ID, ModelSchema

DEFAULT_FIELDS = frozenset(dataclasses.asdict(FieldNames()).values())


def refs(count: int) -> tuple[ImageRef, ...]:
    return tuple(
        ImageRef(ImageSource.UPLOAD_URL, f"https://cdn.discordapp.test/{i}.png")
        for i in range(count)
    )


def crun_urls(count: int) -> list[str]:
    return [f"https://files.crun.test/u/{i}.png" for i in range(count)]


def schema(
    fields: frozenset[str] | set[str] = DEFAULT_FIELDS,
    required: frozenset[str] | set[str] = frozenset({"prompt"}),
    model: str = MODEL_ID,
) -> ModelSchema:
    return ModelSchema.of_names(fields, required, model=model)


def refused(req: GenerationRequest, contract: Contract) -> str:
    with pytest.raises(InvalidInput) as info:
        build(req, contract)
    return info.value.user_message


def build(req: GenerationRequest, contract: Contract | None = None) -> dict[str, Any]:
    return (contract or Contract()).build_input(req, crun_urls(len(req.images)))


# --- wan-api.md 2.4 ---------------------------------------------------------------------------
# The bot always sends watermark explicitly (the model default is not pinned down), so each
# expected object is the document's example plus "watermark": false.


def expected(doc_json: str) -> dict[str, Any]:
    return {**json.loads(doc_json), "watermark": False}


def test_example_text_to_image_4k_thinking() -> None:
    req = GenerationRequest(
        prompt="Isometric cutaway of a tea shop, warm light",
        resolution=Resolution.R4K,
        n=1,
        thinking=True,
    )
    assert build(req) == expected(
        '{ "prompt": "Isometric cutaway of a tea shop, warm light", "resolution": "4K", "n": 1,'
        ' "thinking_mode": true }'
    )


def test_example_multi_image_edit() -> None:
    req = GenerationRequest(
        prompt="Put the mug from image 1 on the desk in image 2",
        mode=Mode.EDIT,
        images=refs(2),
        resolution=Resolution.R2K,
    )
    payload = Contract().build_input(req, ["https://…/a.png", "https://…/b.png"])
    assert payload == expected(
        '{ "prompt": "Put the mug from image 1 on the desk in image 2", "img_urls":'
        ' ["https://…/a.png", "https://…/b.png"], "resolution": "2K", "n": 1 }'
    )


def test_example_image_set() -> None:
    req = GenerationRequest(
        prompt="Four-panel comic: a cat learns to ski. Panel 1: … Panel 4: …",
        mode=Mode.IMAGE_SET,
        n=4,
    )
    assert build(req) == expected(
        '{ "prompt": "Four-panel comic: a cat learns to ski. Panel 1: … Panel 4: …",'
        ' "enable_sequential": true, "n": 4, "resolution": "2K" }'
    )


def test_payload_is_plain_json() -> None:
    palette = (PaletteColor("#112233", "50.00%"), *(PaletteColor("#445566", "25.00%"),) * 2)
    req = GenerationRequest(prompt="x", color_palette=palette, seed=3, aspect_ratio="1:1", n=2)
    payload = build(req)
    assert json.loads(json.dumps(payload)) == payload


# --- field presence ---------------------------------------------------------------------------


def test_prompt_n_resolution_watermark_always_sent() -> None:
    payload = build(GenerationRequest(prompt="fox"))
    assert payload == {"prompt": "fox", "n": 1, "resolution": "2K", "watermark": False}


def test_prompt_is_sent_normalised() -> None:
    payload = build(GenerationRequest(prompt="\ufeff\u200b  a fox \u200b in snow \n\u2060"))
    assert payload["prompt"] == "a fox \u200b in snow"


def test_watermark_true_is_sent() -> None:
    assert build(GenerationRequest(prompt="x", watermark=True))["watermark"] is True


@pytest.mark.parametrize("seed", [0, 2147483647])
def test_seed_sent_when_set_even_zero(seed: int) -> None:
    assert build(GenerationRequest(prompt="x", seed=seed))["seed"] == seed
    assert "seed" not in build(GenerationRequest(prompt="x"))


def test_aspect_ratio_only_when_set() -> None:
    assert build(GenerationRequest(prompt="x", aspect_ratio="21:9"))["aspect_ratio"] == "21:9"
    assert "aspect_ratio" not in build(GenerationRequest(prompt="x"))


@pytest.mark.parametrize("thinking", [True, False])
def test_thinking_sent_for_text_to_image_when_chosen(thinking: bool) -> None:
    assert build(GenerationRequest(prompt="x", thinking=thinking))["thinking_mode"] is thinking
    assert "thinking_mode" not in build(GenerationRequest(prompt="x"))


@pytest.mark.parametrize("mode,count", [(Mode.EDIT, 1), (Mode.IMAGE_SET, 0), (Mode.IMAGE_SET, 2)])
def test_thinking_off_never_sent_outside_text_to_image(mode: Mode, count: int) -> None:
    payload = build(GenerationRequest(prompt="x", mode=mode, images=refs(count), thinking=False))
    assert "thinking_mode" not in payload


def test_sequential_only_for_image_sets() -> None:
    assert "enable_sequential" not in build(GenerationRequest(prompt="x"))
    assert "enable_sequential" not in build(
        GenerationRequest(prompt="x", mode=Mode.EDIT, images=refs(1))
    )
    assert (
        build(GenerationRequest(prompt="x", mode=Mode.IMAGE_SET, n=12))["enable_sequential"] is True
    )


def test_images_sent_in_order_only_when_present() -> None:
    edit = build(GenerationRequest(prompt="x", mode=Mode.EDIT, images=refs(3)))
    assert edit["img_urls"] == crun_urls(3)
    with_refs = build(GenerationRequest(prompt="x", mode=Mode.IMAGE_SET, images=refs(2)))
    assert with_refs["img_urls"] == crun_urls(2)
    assert "img_urls" not in build(GenerationRequest(prompt="x", mode=Mode.IMAGE_SET))
    assert "img_urls" not in build(GenerationRequest(prompt="x"))


def test_palette_entries() -> None:
    palette = (
        PaletteColor("#1A2B3C", "50.00%"),
        PaletteColor("#ffffff", "25.00%"),
        PaletteColor("#000000", "25.00%"),
    )
    payload = build(GenerationRequest(prompt="x", color_palette=palette))
    assert payload["color_palette"] == [
        {"hex": "#1A2B3C", "ratio": "50.00%"},
        {"hex": "#ffffff", "ratio": "25.00%"},
        {"hex": "#000000", "ratio": "25.00%"},
    ]
    assert "color_palette" not in build(GenerationRequest(prompt="x"))


def test_url_count_must_match_images() -> None:
    req = GenerationRequest(prompt="x", mode=Mode.EDIT, images=refs(2))
    with pytest.raises(ValueError, match="1 image URL"):
        Contract().build_input(req, crun_urls(1))
    with pytest.raises(ValueError, match="non-empty"):
        Contract().build_input(req, ["https://files.crun.test/a.png", ""])


def test_every_key_comes_from_the_field_names_in_force() -> None:
    odd = FieldNames(**{f.name: f"x_{f.name}" for f in dataclasses.fields(FieldNames)})
    contract = Contract(odd)
    palette = (PaletteColor("#111111", "30.00%"),) * 2 + (PaletteColor("#222222", "40.00%"),)
    t2i = GenerationRequest(
        prompt="x", aspect_ratio="1:1", thinking=True, seed=1, color_palette=palette, n=2
    )
    image_set = GenerationRequest(prompt="x", mode=Mode.IMAGE_SET, images=refs(1), n=5)
    keys = set(build(t2i, contract)) | set(build(image_set, contract))
    assert keys == set(dataclasses.asdict(odd).values()) - {"x_bbox"}  # no boxes drawn yet


# --- live schema ------------------------------------------------------------------------------


def test_default_schema_has_no_mismatches(caplog: pytest.LogCaptureFixture) -> None:
    contract = Contract()
    live = schema(DEFAULT_FIELDS | {"bbox_list", "negative_prompt"})
    with caplog.at_level(logging.WARNING, logger="bot.wan.contract"):
        assert contract.apply_schema(live) == []
    assert contract.mismatches == []
    assert all(contract.field_name(c) == FieldNames().of(c) for c in Concept)
    assert contract.unsupported == frozenset()
    assert contract.unused_fields == {"negative_prompt"}
    assert not caplog.records


def test_renamed_fields_are_used() -> None:
    contract = Contract()
    live = (DEFAULT_FIELDS - {"img_urls", "resolution", "thinking_mode"}) | {
        "input_urls",
        "size",
        "enable_thinking",
    }
    lines = contract.apply_schema(schema(live))
    assert "images: expected 'img_urls', live schema has 'input_urls' (using it)" in lines
    assert "resolution: expected 'resolution', live schema has 'size' (using it)" in lines
    assert (
        "thinking: expected 'thinking_mode', live schema has 'enable_thinking' (using it)" in lines
    )
    assert len(lines) == 3
    assert contract.mismatches == lines

    edit = GenerationRequest(prompt="x", mode=Mode.EDIT, images=refs(2))
    assert build(edit, contract) == {
        "prompt": "x",
        "input_urls": crun_urls(2),
        "size": "2K",
        "n": 1,
        "watermark": False,
    }
    t2i = build(GenerationRequest(prompt="x", thinking=False, resolution=Resolution.R4K), contract)
    assert t2i["enable_thinking"] is False
    assert t2i["size"] == "4K"
    assert not {"img_urls", "resolution", "thinking_mode"} & set(t2i)


def test_schema_rename_is_not_sticky() -> None:
    contract = Contract()
    contract.apply_schema(schema((DEFAULT_FIELDS - {"img_urls"}) | {"images"}))
    assert contract.field_name(Concept.IMAGES) == "images"
    assert contract.apply_schema(schema()) == []
    assert contract.field_name(Concept.IMAGES) == "img_urls"


def test_missing_concept_refuses_only_requests_that_need_it() -> None:
    contract = Contract()
    lines = contract.apply_schema(schema(DEFAULT_FIELDS - {"aspect_ratio", "seed", "watermark"}))
    assert any(line.startswith("aspect_ratio: expected 'aspect_ratio'") for line in lines)
    assert not contract.supports("aspect_ratio")
    assert not contract.supports(Concept.SEED)
    assert contract.supports(Concept.IMAGES)

    message = refused(GenerationRequest(prompt="x", aspect_ratio="16:9"), contract)
    assert "aspect ratio is not available right now" in message
    assert "not available right now" in refused(GenerationRequest(prompt="x", seed=1), contract)

    # Optional with a default: simply not sent, even when asked for.
    payload = build(GenerationRequest(prompt="x", watermark=True), contract)
    assert payload == {"prompt": "x", "n": 1, "resolution": "2K"}


def test_missing_n_or_resolution_only_blocks_explicit_choices() -> None:
    contract = Contract()
    contract.apply_schema(schema(DEFAULT_FIELDS - {"n", "resolution"}))
    assert build(GenerationRequest(prompt="x"), contract) == {"prompt": "x", "watermark": False}
    assert "more than one image" in refused(GenerationRequest(prompt="x", n=2), contract)
    message = refused(GenerationRequest(prompt="x", resolution=Resolution.R1K), contract)
    assert "resolution is not available right now" in message


def test_missing_sequential_refuses_image_sets() -> None:
    contract = Contract()
    contract.apply_schema(schema(DEFAULT_FIELDS - {"enable_sequential"}))
    message = refused(GenerationRequest(prompt="x", mode=Mode.IMAGE_SET), contract)
    assert "Making image sets is not available right now" in message
    assert build(GenerationRequest(prompt="x"), contract)["n"] == 1


def test_required_fields_the_bot_does_not_know_are_reported() -> None:
    contract = Contract()
    lines = contract.apply_schema(
        schema(DEFAULT_FIELDS | {"foo"}, required={"prompt", "foo", "seed"})
    )
    assert "schema requires field 'foo' the bot does not know" in lines
    assert any("'seed'" in line and "only when" in line for line in lines)
    assert not any("'prompt'" in line for line in lines)


def test_other_model_and_empty_schema_are_reported() -> None:
    contract = Contract()
    lines = contract.apply_schema(schema(frozenset(), required=frozenset(), model="wan/other"))
    assert "schema is for model 'wan/other', expected 'wan/2-7-image-pro'" in lines
    assert any("no input fields" in line for line in lines)
    # An empty field list keeps every built-in name and option.
    assert all(contract.field_name(c) == FieldNames().of(c) for c in Concept)
    assert contract.unsupported == frozenset()


def test_mismatches_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    contract = Contract()
    renamed = schema((DEFAULT_FIELDS - {"img_urls"}) | {"input_urls"})
    with caplog.at_level(logging.WARNING, logger="bot.wan.contract"):
        contract.apply_schema(renamed)
        contract.apply_schema(renamed)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "bot.wan.contract"
    assert "input_urls" in warnings[0].getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.wan.contract"):
        contract.apply_schema(schema(DEFAULT_FIELDS - {"seed"}))  # something new: log it
    assert len(caplog.records) == 1
    assert "seed" in caplog.records[0].getMessage()


def test_no_other_module_spells_a_crun_field_name() -> None:
    """Field names live only in bot/wan/contract: a literal elsewhere would dodge the schema."""
    root = Path(__file__).resolve().parents[2]
    distinctive = {"img_urls", "input_urls", "image_urls", "enable_sequential", "thinking_mode"}
    distinctive |= {"bbox_list", "num_images"}  # (color_palette is also the domain's own name)
    offenders = []
    for path in [*root.joinpath("bot").rglob("*.py"), *root.joinpath("cogs").rglob("*.py")]:
        if path.parent == root / "bot" / "wan" / "contract":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in distinctive:
                offenders.append(f"{path.relative_to(root)}:{node.lineno} {node.value!r}")
    assert not offenders
