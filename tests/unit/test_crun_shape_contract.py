"""Against every schema shape of the replay corpus: whatever a member may ask, the contract
either refuses it at once with a message, or sends an input the strict service accepts, with
the images and the count where that service reads them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from bot.domain.models import GenerationRequest, ImageRef, ImageSource, Mode, Resolution
from bot.errors import InvalidInput
from bot.wan.contract import Concept, Contract, parse_model_schema
from tests.fakes.crun_shapes import SHAPE_NAMES, Shape, load_shape, lookup
from tests.unit.test_validation_properties import valid_requests


def contract_for(shape: Shape) -> Contract:
    contract = Contract(override=shape.override)
    contract.apply_schema(parse_model_schema(shape.reply))
    return contract


def urls(req: GenerationRequest) -> list[str]:
    return [f"https://files.crun.test/{i}.png" for i in range(len(req.images))]


def sent(shape: Shape, req: GenerationRequest) -> dict[str, Any]:
    payload = contract_for(shape).build_input(req, urls(req))
    problem = shape.validate(payload)
    assert problem is None, f"{shape.name} refuses {payload}: {problem}"
    return payload


def inputs(count: int) -> tuple[ImageRef, ...]:
    return tuple(ImageRef(ImageSource.URL, f"https://in.test/{i}.png") for i in range(count))


def test_the_corpus_holds_the_shapes_the_issue_names() -> None:
    assert len(SHAPE_NAMES) >= 6
    assert {"nested_parameters", "lowercase_pixels", "unknown_image_field"} <= set(SHAPE_NAMES)


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_every_mode_goes_through_on_every_shape(name: str) -> None:
    shape = load_shape(name)
    t2i = GenerationRequest(prompt="a lighthouse", resolution=Resolution.R1K, n=2)
    edit = GenerationRequest(prompt="make it night", mode=Mode.EDIT, images=inputs(2))
    image_set = GenerationRequest(prompt="four seasons", mode=Mode.IMAGE_SET, n=4)
    for req in (t2i, edit, image_set):
        payload = sent(shape, req)
        assert shape.count(payload) == req.n
        assert lookup(payload, shape.images_path) == (urls(req) or None)


@pytest.mark.parametrize("name", SHAPE_NAMES)
@settings(max_examples=120, deadline=None)
@given(req=valid_requests())
def test_a_valid_request_is_refused_with_a_message_or_accepted(
    name: str, req: GenerationRequest
) -> None:
    shape = load_shape(name)
    try:
        payload = sent(shape, req)
    except InvalidInput as exc:
        assert exc.user_message.endswith((".", "later.")) and "Traceback" not in exc.user_message
        return
    assert shape.count(payload) == req.n
    if req.images:
        assert lookup(payload, shape.images_path) == urls(req)


def test_the_unknown_image_field_needs_the_override() -> None:
    shape = load_shape("unknown_image_field")
    assert shape.override is not None
    bare = Contract()
    bare.apply_schema(parse_model_schema(shape.reply))
    assert not bare.supports(Concept.IMAGES)
    assert any("WAN_FIELD_MAP" in p and "refs" in p for p in bare.problems)
    with pytest.raises(InvalidInput) as refused:
        bare.check(GenerationRequest(prompt="x", mode=Mode.EDIT, images=inputs(1)))
    assert "Working from input images is not available" in refused.value.user_message
    assert contract_for(shape).supports(Concept.IMAGES)
