"""``Contract``: a ``GenerationRequest`` as crun's ``input`` object, in the live schema's terms."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.models import GenerationRequest, Mode
from bot.domain.text import Text, t, tn
from bot.domain.validation import effective_resolution, full_prompt
from bot.errors import InvalidInput
from bot.wan.contract.concepts import ALWAYS_SENT, BUILTIN, LABELS, Concept, FieldNames
from bot.wan.contract.mapping import Binding, FieldMap, Override, map_fields, parse_override
from bot.wan.contract.spelling import (
    SizeSpelling,
    SizeStyle,
    size_spelling,
    spell_bool,
    spell_enum,
    spell_number,
    spell_size,
)
from bot.wan.types import MODEL_ID, FieldSpec, ModelSchema

__all__ = ["PALETTE_HEX_KEY", "PALETTE_RATIO_KEY", "Contract"]

# The bot's logger name for contract news (the package's public name).
log = logging.getLogger("bot.wan.contract")

# Keys inside each color_palette entry (wan-api.md 2.2), unless the schema names others.
PALETTE_HEX_KEY = "hex"
PALETTE_RATIO_KEY = "ratio"
_HEX_KEYS = ("hex", "color", "colour", "value", "rgb")
_RATIO_KEYS = ("ratio", "weight", "percent", "percentage", "proportion", "share")
_PLACEHOLDER = "https://example.invalid/input.png"  # checks need a URL, never fetched


class Contract:
    """Maps a ``GenerationRequest`` to crun's ``input`` object, with the field map in force."""

    def __init__(
        self,
        names: FieldNames | None = None,
        *,
        override: str | Mapping[str, Any] | None = None,
    ) -> None:
        self._defaults = names or BUILTIN
        self._override: Override = parse_override(override)
        self._map = self._builtin_map()
        self._logged: tuple[str, ...] = ()
        self._model_note: tuple[str, ...] = ()

    # --- what is in force -------------------------------------------------------------------

    @property
    def override(self) -> dict[str, str | None]:
        """``WAN_FIELD_MAP`` as understood (concept -> dotted path or None)."""
        return {c.value: ".".join(p) if p else None for c, p in self._override.items()}

    @property
    def mismatches(self) -> list[str]:
        """Differences from the built-in guess found by the last ``apply_schema``."""
        return [*self._model_note, *self._map.notes]

    @property
    def problems(self) -> list[str]:
        """The mismatches that stop a whole mode (no prompt, no images, unknown required...)."""
        return [*self._model_note, *self._map.problems]

    @property
    def unsupported(self) -> frozenset[Concept]:
        """Concepts requests cannot use with the field map in force."""
        return frozenset(c for c in Concept if not self.supports(c))

    @property
    def unused_fields(self) -> frozenset[str]:
        """Live schema fields the bot never sends, for diagnostics."""
        return frozenset(f.dotted for f in self._map.unused)

    def supports(self, concept: Concept | str) -> bool:
        concept = Concept(concept)
        if concept in self._map.bindings:
            return True
        spelling = self._size_spelling()
        return concept is Concept.ASPECT_RATIO and spelling is not None and spelling.folds_aspect

    def field_name(self, concept: Concept | str) -> str | None:
        """The dotted path the concept is sent under, or None when it is not sent."""
        binding = self._map.bindings.get(Concept(concept))
        return binding.spec.dotted if binding else None

    def describe(self) -> list[str]:
        """One line per concept: where it goes and how it is spelled (for ``wanbot check``)."""
        lines = []
        for concept in Concept:
            binding = self._map.bindings.get(concept)
            if binding is None:
                via = self.field_name(Concept.RESOLUTION)
                text = f"inside {via!r} (pixel size)" if self.supports(concept) else "not sent"
                lines.append(f"{concept.value:<13}-> {text}")
                continue
            how = {"override": " [WAN_FIELD_MAP]", "hint": " [by type/values]"}.get(binding.how, "")
            shape = binding.spec.summary() if binding.how != "builtin" else "built-in guess"
            if concept is Concept.RESOLUTION:
                shape += f"; sent as {size_spelling(binding.spec).describe()}"
            lines.append(f"{concept.value:<13}-> {binding.spec.dotted}{how}: {shape}")
        return lines

    def field_in(self, message: str) -> str | None:
        """The input field a refusal message names (longest match wins), if any."""
        text = message.lower()
        known = {b.spec.dotted for b in self._map.bindings.values()}
        known |= {f.dotted for f in self._map.unused}
        for path in sorted(known, key=len, reverse=True):
            for candidate in {path, path.rsplit(".", 1)[-1]}:
                if re.search(rf"(?<!\w){re.escape(candidate.lower())}(?!\w)", text):
                    return path
        return None

    # --- building requests ------------------------------------------------------------------

    def check(self, req: GenerationRequest) -> None:
        """Refuse at once (InvalidInput) what the live schema cannot take."""
        self.build_input(req, [_PLACEHOLDER] * len(req.images))

    def build_input(self, req: GenerationRequest, image_urls: Sequence[str]) -> dict[str, Any]:
        """Return crun's ``input`` object for ``req`` (validated on its way in).

        ``image_urls`` are URLs crun can fetch, one per ``req.images``, in the same order (the
        prompt may refer to "image 1", "image 2").
        """
        if len(image_urls) != len(req.images):
            raise ValueError(
                f"got {len(image_urls)} image URL(s) for {len(req.images)} input image(s)"
            )
        if not all(isinstance(u, str) and u for u in image_urls):
            raise ValueError("every image URL must be a non-empty string")
        payload: dict[str, Any] = {}
        self._put(payload, Concept.PROMPT, self._prompt(req), needed=True)
        if image_urls:
            self._put(payload, Concept.IMAGES, self._images(list(image_urls)), needed=True)
        self._put_size(payload, req)
        self._put(payload, Concept.N, self._number(Concept.N, req.n, t("Image count")), req.n != 1)
        if req.mode is Mode.IMAGE_SET:
            self._put(payload, Concept.SEQUENTIAL, self._bool(Concept.SEQUENTIAL, True), True)
        # R3: thinking only takes effect for plain text-to-image; elsewhere it is never sent.
        if req.mode is Mode.TEXT_TO_IMAGE and req.thinking is not None:
            self._put(payload, Concept.THINKING, self._bool(Concept.THINKING, req.thinking), True)
        if req.color_palette:
            self._put(payload, Concept.PALETTE, self._palette(req), needed=True)
        if self.supports(Concept.WATERMARK):
            watermark = self._bool(Concept.WATERMARK, req.watermark)
            self._put(payload, Concept.WATERMARK, watermark, needed=False)
        if req.seed is not None:
            self._put(payload, Concept.SEED, self._number(Concept.SEED, req.seed, t("Seed")), True)
        return payload

    def _put(self, payload: dict[str, Any], concept: Concept, value: Any, needed: bool) -> None:
        binding = self._map.bindings.get(concept)
        if binding is None:
            if needed:
                if concept is Concept.PROMPT:
                    message = t(
                        "{feature} is not available right now. Please try again later.",
                        feature=LABELS[concept],
                    )
                else:
                    message = t(
                        "{feature} is not available right now. Try again without this option, "
                        "or later.",
                        feature=LABELS[concept],
                    )
                raise InvalidInput(
                    message, detail=f"the field map in force has no field for {concept.value!r}"
                )
            return
        _set(payload, binding.spec.path, value)

    def _spec(self, concept: Concept) -> FieldSpec | None:
        binding = self._map.bindings.get(concept)
        return binding.spec if binding and binding.how != "builtin" else None

    def _prompt(self, req: GenerationRequest) -> str:
        prompt = full_prompt(req)  # the member's prompt and the server style they picked
        spec = self._spec(Concept.PROMPT)
        if spec is not None and spec.max_length is not None and len(prompt) > spec.max_length:
            # Numbers as strings: written as today (5000, not 5,000).
            raise InvalidInput(
                t(
                    "Your prompt is too long for the image service: at most {limit} characters "
                    "(yours has {length}). Shorten it and try again.",
                    limit=str(spec.max_length),
                    length=str(len(prompt)),
                )
            )
        return prompt

    def _images(self, urls: list[str]) -> Any:
        spec = self._spec(Concept.IMAGES)
        if spec is None:
            return urls
        limit = 1 if spec.type == "string" else spec.max_items
        if limit is not None and len(urls) > limit:
            raise InvalidInput(
                tn(
                    "The image service takes at most {count} input image(s) right now; this "
                    "request has {images}. Use fewer images and try again.",
                    "The image service takes at most {count} input image(s) right now; this "
                    "request has {images}. Use fewer images and try again.",
                    count=limit,
                    images=len(urls),
                )
            )
        return urls[0] if spec.type == "string" else urls

    def _put_size(self, payload: dict[str, Any], req: GenerationRequest) -> None:
        """Resolution, and the aspect ratio in its own field or folded into a W*H size.
        R8: presets are pixel budgets; the model shapes them itself."""
        spelling = self._size_spelling()
        ratio = req.aspect_ratio
        explicit = req.resolution is not None
        fold = ratio is not None and Concept.ASPECT_RATIO not in self._map.bindings
        fold = fold and spelling is not None and spelling.folds_aspect
        if ratio is not None and not fold:
            value = spell_enum(self._spec(Concept.ASPECT_RATIO), ratio, t("Aspect ratio"))
            self._put(payload, Concept.ASPECT_RATIO, value, needed=True)
        if spelling is None:
            self._put(payload, Concept.RESOLUTION, None, needed=explicit)  # refuses a choice
            return
        if fold and spelling.style is SizeStyle.PRESET:
            spelling = spelling.as_pixels()
        spec = self._spec(Concept.RESOLUTION)
        pixels = spelling.style is SizeStyle.PIXELS
        # Pixel sizes fix the shape: sent only when something asks for one, since an edit's
        # output otherwise follows its last input image.
        if pixels and not (explicit or fold or ratio is not None or (spec and spec.required)):
            return
        preset = effective_resolution(req).value
        shape = ratio if pixels else None
        value = spell_size(spelling, spec, preset, shape, explicit=explicit)
        self._put(payload, Concept.RESOLUTION, value, needed=explicit)

    def _size_spelling(self) -> SizeSpelling | None:
        if Concept.RESOLUTION not in self._map.bindings:
            return None
        return size_spelling(self._spec(Concept.RESOLUTION))

    def _number(self, concept: Concept, value: int, label: Text) -> Any:
        return spell_number(self._spec(concept), value, label)

    def _bool(self, concept: Concept, value: bool) -> Any:
        return spell_bool(self._spec(concept), value, LABELS[concept])

    def _palette(self, req: GenerationRequest) -> list[dict[str, str]]:
        spec = self._spec(Concept.PALETTE)
        keys = spec.item_keys if spec else ()
        hex_key = next((k for k in keys if k.lower() in _HEX_KEYS), PALETTE_HEX_KEY)
        ratio_key = next((k for k in keys if k.lower() in _RATIO_KEYS), PALETTE_RATIO_KEY)
        return [{hex_key: c.hex, ratio_key: c.ratio} for c in req.color_palette]

    # --- live schema ------------------------------------------------------------------------

    def apply_schema(self, schema: ModelSchema) -> list[str]:
        """Adopt the live schema's fields; return (and log once) what differs from the guess."""
        self._model_note = (
            (f"schema is for model {schema.model!r}, expected {MODEL_ID!r}",)
            if schema.model != MODEL_ID
            else ()
        )
        if not schema.fields:
            # An empty field list says nothing about names; dropping every option would be worse.
            base = self._builtin_map()
            note = "live schema lists no input fields; keeping the built-in names"
            self._map = FieldMap(base.bindings, (note, *base.notes), base.problems)
        else:
            self._map = map_fields(schema.fields, self._override)
            self._flag_required(schema)
        lines = self.mismatches
        if lines and tuple(lines) != self._logged:
            log.warning(
                "live crun schema for %r differs from the built-in contract:\n  %s",
                schema.model,
                "\n  ".join(lines),
            )
        self._logged = tuple(lines)
        return lines

    def _flag_required(self, schema: ModelSchema) -> None:
        """A required field the bot sends only on request would make other requests fail."""
        extra = []
        for concept, binding in self._map.bindings.items():
            if binding.spec.required and concept not in ALWAYS_SENT:
                extra.append(
                    f"schema requires field {binding.spec.dotted!r}, which the bot sends only "
                    "when a request uses it"
                )
        if extra:
            m = self._map
            self._map = FieldMap(m.bindings, (*m.notes, *extra), m.problems, m.unused)

    def _builtin_map(self) -> FieldMap:
        bindings: dict[Concept, Binding] = {}
        notes = []
        for concept in Concept:
            path = self._override.get(concept, (self._defaults.of(concept),))
            if path is None:
                notes.append(f"{concept.value}: not sent (WAN_FIELD_MAP sets it to null)")
                continue
            how = "override" if concept in self._override else "builtin"
            bindings[concept] = Binding(FieldSpec(path), how)
            if how == "override":
                notes.append(f"{concept.value}: {'.'.join(path)!r} from WAN_FIELD_MAP")
        return FieldMap(bindings, tuple(notes))

    def override_json(self) -> str:
        return json.dumps(self.override, sort_keys=True)


def _set(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Put ``value`` at a dotted path, creating the nested objects on the way."""
    node = payload
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value
