"""The one place that knows crun's ``input`` field names for ``wan/2-7-image-pro``.

crun's documentation does not list the fields (shared wan-api.md section 2), so the built-in names
are evidence-weighted guesses. The live model schema is read at start-up and ``apply_schema`` lets
its names win. Everything else in the project goes through ``Contract``; no other module may spell
a crun input field name.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from bot.domain.models import GenerationRequest, Mode
from bot.domain.validation import effective_resolution, normalise_prompt
from bot.errors import InvalidInput
from bot.wan.types import MODEL_ID, ModelSchema

__all__ = ["PALETTE_HEX_KEY", "PALETTE_RATIO_KEY", "Concept", "Contract", "FieldNames"]

log = logging.getLogger(__name__)

# Keys inside each color_palette entry (wan-api.md 2.2).
PALETTE_HEX_KEY = "hex"
PALETTE_RATIO_KEY = "ratio"


@dataclass(frozen=True)
class FieldNames:
    """crun ``input`` field name for each concept the bot can express."""

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


class Concept(enum.StrEnum):
    """What a field means to the bot; each value is the matching ``FieldNames`` attribute."""

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


# Names other gateways use for the same concept (kie.ai, upstream DashScope, crun's other models).
# Checked in order after the built-in name, when the live schema lacks the built-in name.
_ALTERNATIVES: dict[Concept, tuple[str, ...]] = {
    Concept.PROMPT: ("prompt",),
    Concept.IMAGES: ("img_urls", "input_urls", "image_urls", "images"),
    Concept.RESOLUTION: ("resolution", "size"),
    Concept.ASPECT_RATIO: ("aspect_ratio",),
    Concept.N: ("n", "num_images"),
    Concept.SEQUENTIAL: ("enable_sequential", "sequential"),
    Concept.THINKING: ("thinking_mode", "enable_thinking"),
    Concept.PALETTE: ("color_palette",),
    Concept.WATERMARK: ("watermark",),
    Concept.SEED: ("seed",),
}

# Sent in every request whenever the field exists; the rest only when a request uses them.
_ALWAYS_SENT = frozenset({Concept.PROMPT, Concept.N, Concept.RESOLUTION, Concept.WATERMARK})

# What happens when the live schema has no field for a concept (for the mismatch report).
_WHEN_MISSING: dict[Concept, str] = {
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
}

# How the option is called in a message to the member.
_LABELS: dict[Concept, str] = {
    Concept.PROMPT: "Image generation",
    Concept.IMAGES: "Working from input images",
    Concept.RESOLUTION: "Choosing a resolution",
    Concept.ASPECT_RATIO: "Choosing an aspect ratio",
    Concept.N: "Asking for more than one image",
    Concept.SEQUENTIAL: "Making image sets",
    Concept.THINKING: "Setting thinking mode",
    Concept.PALETTE: "The color palette option",
    Concept.WATERMARK: "The watermark option",
    Concept.SEED: "Choosing a seed",
}

assert {f.name for f in fields(FieldNames)} == {c.value for c in Concept}


class Contract:
    """Maps a ``GenerationRequest`` to crun's ``input`` object, using the field names in force."""

    def __init__(self, names: FieldNames | None = None) -> None:
        self._defaults = names or FieldNames()
        self._names = self._defaults
        self._unsupported: frozenset[Concept] = frozenset()
        self._unused: frozenset[str] = frozenset()
        self._mismatches: tuple[str, ...] = ()
        self._logged: tuple[str, ...] = ()

    # --- what is in force -------------------------------------------------------------------

    @property
    def names(self) -> FieldNames:
        """The field names in force (built-in, or as adjusted by ``apply_schema``)."""
        return self._names

    @property
    def mismatches(self) -> list[str]:
        """Human-readable differences found by the last ``apply_schema`` (for ``wanbot check``)."""
        return list(self._mismatches)

    @property
    def unsupported(self) -> frozenset[Concept]:
        """Concepts the live schema has no field for."""
        return self._unsupported

    @property
    def unused_fields(self) -> frozenset[str]:
        """Live schema fields the bot never sends (e.g. ``bbox_list``), for diagnostics."""
        return self._unused

    def supports(self, concept: Concept | str) -> bool:
        """Whether requests may use ``concept`` (UIs can hide options that would be refused)."""
        return Concept(concept) not in self._unsupported

    def field_name(self, concept: Concept | str) -> str:
        """The crun field name in force for ``concept``."""
        name: str = getattr(self._names, Concept(concept).value)
        return name

    # --- building requests ------------------------------------------------------------------

    def build_input(self, req: GenerationRequest, image_urls: Sequence[str]) -> dict[str, Any]:
        """Return crun's ``input`` object for ``req``, which was validated on its way in (at the
        edge for instant feedback, by the engine as the guard; never a third time here).

        ``image_urls`` are URLs crun can fetch, one per ``req.images``, in the same order (the
        prompt may refer to "image 1", "image 2").
        """
        if len(image_urls) != len(req.images):
            raise ValueError(
                f"got {len(image_urls)} image URL(s) for {len(req.images)} input image(s)"
            )
        if not all(isinstance(u, str) and u for u in image_urls):
            raise ValueError("every image URL must be a non-empty string")

        mode = Mode(req.mode)
        payload: dict[str, Any] = {}
        self._put(payload, Concept.PROMPT, normalise_prompt(req.prompt), needed=True)
        if image_urls:
            self._put(payload, Concept.IMAGES, list(image_urls), needed=True)
        # R8: presets are pixel budgets; the aspect ratio (t2i) or last input image sets the shape.
        self._put(
            payload,
            Concept.RESOLUTION,
            effective_resolution(req).value,
            needed=req.resolution is not None,
        )
        if req.aspect_ratio is not None:
            self._put(payload, Concept.ASPECT_RATIO, req.aspect_ratio, needed=True)
        # The model default for n is disputed (1 or 4), so it is always sent when it can be.
        self._put(payload, Concept.N, req.n, needed=req.n != 1)
        if mode is Mode.IMAGE_SET:
            self._put(payload, Concept.SEQUENTIAL, True, needed=True)
        # R3: thinking only takes effect for plain text-to-image; elsewhere it is never sent.
        if mode is Mode.TEXT_TO_IMAGE and req.thinking is not None:
            self._put(payload, Concept.THINKING, req.thinking, needed=True)
        if req.color_palette:
            palette = [
                {PALETTE_HEX_KEY: c.hex, PALETTE_RATIO_KEY: c.ratio} for c in req.color_palette
            ]
            self._put(payload, Concept.PALETTE, palette, needed=True)
        self._put(payload, Concept.WATERMARK, req.watermark, needed=False)
        if req.seed is not None:
            self._put(payload, Concept.SEED, req.seed, needed=True)
        return payload

    def _put(self, payload: dict[str, Any], concept: Concept, value: Any, *, needed: bool) -> None:
        if concept in self._unsupported:
            if needed:
                advice = (
                    "Please try again later."
                    if concept is Concept.PROMPT
                    else "Try again without this option, or later."
                )
                raise InvalidInput(
                    f"{_LABELS[concept]} is not available right now. {advice}",
                    detail=f"live crun schema has no field for {concept.value!r}",
                )
            return
        payload[self.field_name(concept)] = value

    # --- live schema ------------------------------------------------------------------------

    def apply_schema(self, schema: ModelSchema) -> list[str]:
        """Adopt the live schema's field names; return (and log once) what differed."""
        lines: list[str] = []
        if schema.model != MODEL_ID:
            lines.append(f"schema is for model {schema.model!r}, expected {MODEL_ID!r}")
        live = schema.input_fields
        chosen: dict[str, str] = {}
        unsupported: set[Concept] = set()
        if not live:
            # An empty field list says nothing about names; dropping every option would be worse.
            lines.append("live schema lists no input fields; keeping the built-in names")
            chosen = {c.value: getattr(self._defaults, c.value) for c in Concept}
        else:
            for concept in Concept:
                default: str = getattr(self._defaults, concept.value)
                candidates = (default, *_ALTERNATIVES[concept])
                found = next((name for name in candidates if name in live), None)
                if found is None:
                    chosen[concept.value] = default
                    unsupported.add(concept)
                    lines.append(
                        f"{concept.value}: expected {default!r}, live schema has no such field "
                        f"({_WHEN_MISSING[concept]})"
                    )
                else:
                    chosen[concept.value] = found
                    if found != default:
                        lines.append(
                            f"{concept.value}: expected {default!r}, live schema has "
                            f"{found!r} (using it)"
                        )

        names = FieldNames(**chosen)
        in_force = {getattr(names, c.value): c for c in Concept if c not in unsupported}
        for name in sorted(schema.required_fields):
            owner = in_force.get(name)
            if owner is None:
                lines.append(f"schema requires field {name!r} the bot does not know")
            elif owner not in _ALWAYS_SENT:
                lines.append(
                    f"schema requires field {name!r}, which the bot sends only when a request "
                    "uses it"
                )

        self._names = names
        self._unsupported = frozenset(unsupported)
        self._unused = frozenset(live) - set(in_force)
        self._mismatches = tuple(lines)
        if self._mismatches and self._mismatches != self._logged:
            log.warning(
                "live crun schema for %r differs from the built-in contract:\n  %s",
                schema.model,
                "\n  ".join(self._mismatches),
            )
        self._logged = self._mismatches
        return list(self._mismatches)
