"""What the bot can express, and every name crun (or another host of the model) may give it.

This package is the only place in the project that spells a crun ``input`` field name.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from bot.domain.text import Text, t

__all__ = [
    "ALWAYS_SENT",
    "BUILTIN",
    "HINT_WORDS",
    "LABELS",
    "SYNONYMS",
    "WHEN_MISSING",
    "Concept",
    "FieldNames",
    "normalise_name",
]


class Concept(enum.StrEnum):
    """What a field means to the bot (also the keys of ``WAN_FIELD_MAP``)."""

    PROMPT = "prompt"
    IMAGES = "images"
    RESOLUTION = "resolution"
    ASPECT_RATIO = "aspect_ratio"
    N = "n"
    SEQUENTIAL = "sequential"
    THINKING = "thinking"
    PALETTE = "palette"
    WATERMARK = "watermark"
    SEED = "seed"
    BBOX = "bbox"


@dataclass(frozen=True)
class FieldNames:
    """The built-in guess (wan-api.md 2.2), used until a live schema says otherwise."""

    prompt: str = "prompt"
    images: str = "img_urls"
    resolution: str = "resolution"
    aspect_ratio: str = "aspect_ratio"
    n: str = "n"
    sequential: str = "enable_sequential"
    thinking: str = "thinking_mode"
    palette: str = "color_palette"
    watermark: str = "watermark"
    seed: str = "seed"
    bbox: str = "bbox_list"

    def of(self, concept: Concept) -> str:
        name: str = getattr(self, concept.value)
        return name


BUILTIN = FieldNames()


def normalise_name(name: str) -> str:
    """``Img-URLs`` and ``img_urls`` are the same name to the matcher."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Exact names (after ``normalise_name``) that mean the concept: crun's other models, upstream
# DashScope, kie.ai and the other hosts of wan2.7 (wan-api.md 2.2 and 2.5); earlier ones win.
SYNONYMS: dict[Concept, tuple[str, ...]] = {
    c: tuple(normalise_name(n) for n in names)
    for c, names in {
        Concept.PROMPT: ("prompt", "text", "prompt_text", "positive_prompt", "caption"),
        Concept.IMAGES: (
            "img_urls",
            "input_urls",
            "image_urls",
            "images",
            "image",
            "image_url",
            "input_images",
            "input_image_urls",
            "reference_images",
            "reference_image_urls",
            "ref_images",
            "image_list",
            "init_images",
        ),
        Concept.RESOLUTION: (
            "resolution",
            "size",
            "image_size",
            "output_size",
            "output_resolution",
        ),
        Concept.ASPECT_RATIO: ("aspect_ratio", "aspect", "ratio", "image_ratio"),
        Concept.N: (
            "n",
            "num_images",
            "num_outputs",
            "number_of_images",
            "image_count",
            "count",
            "batch_size",
            "num",
        ),
        Concept.SEQUENTIAL: (
            "enable_sequential",
            "sequential",
            "sequential_mode",
            "image_set",
            "enable_image_set",
            "group",
            "enable_group",
            "series",
        ),
        Concept.THINKING: ("thinking_mode", "enable_thinking", "thinking", "think", "reasoning"),
        Concept.PALETTE: ("color_palette", "colour_palette", "palette", "colors", "colours"),
        Concept.WATERMARK: ("watermark", "add_watermark", "enable_watermark"),
        Concept.SEED: ("seed", "random_seed"),
        Concept.BBOX: ("bbox_list", "bbox", "bboxes", "boxes", "bounding_boxes"),
    }.items()
}

# Word pieces that, with a matching type or values, suggest the concept for a field whose name
# is no synonym. "ref" is deliberately absent: too many unrelated fields start with it.
HINT_WORDS: dict[Concept, tuple[str, ...]] = {
    Concept.PROMPT: ("prompt",),
    Concept.IMAGES: ("image", "img", "photo", "picture"),
    Concept.RESOLUTION: ("resolution", "size", "quality", "dimension"),
    Concept.ASPECT_RATIO: ("aspect", "ratio"),
    Concept.N: ("numimage", "imagecount", "numoutput", "count", "numberof", "quantity"),
    Concept.SEQUENTIAL: ("sequen", "series", "group", "imageset"),
    Concept.THINKING: ("think", "reason"),
    Concept.PALETTE: ("palette", "color", "colour"),
    Concept.WATERMARK: ("watermark",),
    Concept.SEED: ("seed",),
    Concept.BBOX: ("bbox", "box"),
}

# Sent in every request whenever the field exists; the rest only when a request uses them
# (or the schema requires them).
ALWAYS_SENT = frozenset({Concept.PROMPT, Concept.N, Concept.RESOLUTION, Concept.WATERMARK})

# What happens when the live schema has no field for a concept (for the operator's report).
WHEN_MISSING: dict[Concept, str] = {
    Concept.PROMPT: "every request will be refused",
    Concept.IMAGES: "edits and image sets with input images will be refused",
    Concept.RESOLUTION: "not sent; requests that pick a resolution will be refused",
    Concept.ASPECT_RATIO: "requests with an aspect ratio will be refused",
    Concept.N: "not sent; requests for more than one image will be refused",
    Concept.SEQUENTIAL: "image sets will be refused",
    Concept.THINKING: "text-to-image requests that set thinking mode will be refused",
    Concept.PALETTE: "requests with a color palette will be refused",
    Concept.WATERMARK: "not sent; the model default applies",
    Concept.SEED: "requests with a seed will be refused",
    Concept.BBOX: "not sent (the bot does not draw boxes yet)",
}

# How the option is called in a message to the member.
# What a member reads when a concept is missing ("… is not available right now").
LABELS: dict[Concept, Text] = {
    Concept.PROMPT: t("Image generation"),
    Concept.IMAGES: t("Working from input images"),
    Concept.RESOLUTION: t("Choosing a resolution"),
    Concept.ASPECT_RATIO: t("Choosing an aspect ratio"),
    Concept.N: t("Asking for more than one image"),
    Concept.SEQUENTIAL: t("Making image sets"),
    Concept.THINKING: t("Setting thinking mode"),
    Concept.PALETTE: t("The color palette option"),
    Concept.WATERMARK: t("The watermark option"),
    Concept.SEED: t("Choosing a seed"),
    Concept.BBOX: t("Marking areas with boxes"),
}

assert set(SYNONYMS) == set(HINT_WORDS) == set(WHEN_MISSING) == set(LABELS) == set(Concept)
