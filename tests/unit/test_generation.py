"""Follow-up requests derived from a finished job."""

from __future__ import annotations

import dataclasses
import random

import pytest

from bot.domain.models import (
    GenerationRequest,
    ImageRef,
    ImageSource,
    Job,
    JobStatus,
    Mode,
    Resolution,
    Target,
)
from bot.errors import InvalidInput
from bot.services.generation import GenerationService


def job(request: GenerationRequest) -> Job:
    return Job(
        id="abc",
        user_id=1,
        guild_id=2,
        request=request,
        target=Target("test"),
        status=JobStatus.SUCCEEDED,
        created_at=0,
    )


@pytest.fixture
def service() -> GenerationService:
    return GenerationService(engine=None, jobs=None, configs=None, rng=random.Random(7))  # type: ignore[arg-type]


T2I = GenerationRequest(prompt="a fox", n=3, seed=42, resolution=Resolution.R2K, watermark=True)


def test_reroll_keeps_everything_but_the_seed(service: GenerationService) -> None:
    again = service.reroll(job(T2I))
    assert again.seed != 42
    assert again.with_seed(42) == T2I


def test_upscale_keeps_prompt_and_seed_at_4k(service: GenerationService) -> None:
    up = service.upscale(job(T2I))
    assert (up.prompt, up.seed, up.n, up.resolution) == ("a fox", 42, 3, Resolution.R4K)


def test_upscale_refuses_edits_and_4k(service: GenerationService) -> None:
    edit = GenerationRequest(
        prompt="x", mode=Mode.EDIT, images=(ImageRef(ImageSource.URL, "https://a/b.png"),)
    )
    with pytest.raises(InvalidInput, match="only for /imagine"):
        service.upscale(job(edit))
    with pytest.raises(InvalidInput, match="already 4K"):
        service.upscale(job(GenerationRequest(prompt="x", resolution=Resolution.R4K)))


def test_vary_and_edit_use_the_chosen_image_as_the_only_reference(
    service: GenerationService,
) -> None:
    four_k = job(GenerationRequest(prompt="a fox", resolution=Resolution.R4K, seed=1))
    vary = service.vary(four_k, "https://cdn/x.png", 2)
    assert vary.mode is Mode.EDIT
    assert vary.prompt == "a fox"
    assert [i.location for i in vary.images] == ["https://cdn/x.png"]
    assert vary.images[0].source is ImageSource.UPLOAD_URL
    assert vary.resolution is Resolution.R2K  # edits render at 2K at most
    assert vary.seed != 1
    edit = service.edit(four_k, "https://cdn/x.png", 2, "make it night")
    assert edit.prompt == "make it night"
    assert edit.n == 1


def test_reroll_of_an_edit_reuses_the_uploaded_inputs(service: GenerationService) -> None:
    edit = GenerationRequest(
        prompt="x",
        mode=Mode.EDIT,
        images=(
            ImageRef(ImageSource.UPLOAD_URL, "https://cdn.discordapp.com/a.png?ex=1", "a.png"),
        ),
    )
    done = dataclasses.replace(job(edit), uploaded_urls=("https://crun/files/u1.png",))
    again = service.reroll(done)
    assert again.images == (ImageRef(ImageSource.URL, "https://crun/files/u1.png", "a.png"),)
