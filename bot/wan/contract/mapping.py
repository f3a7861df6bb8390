"""Which live-schema field holds each concept: the operator's ``WAN_FIELD_MAP`` first, then
names, then type and value hints, at any nesting depth.

A hint alone binds a field only when exactly one unclaimed field fits; two that fit equally are
reported, never guessed between.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ConfigError
from bot.wan.contract.concepts import (
    BUILTIN,
    HINT_WORDS,
    SYNONYMS,
    WHEN_MISSING,
    Concept,
    normalise_name,
)
from bot.wan.contract.spelling import SizeStyle, bool_like, size_spelling
from bot.wan.types import FieldSpec

__all__ = ["Binding", "FieldMap", "Override", "map_fields", "parse_override"]

Override = dict[Concept, tuple[str, ...] | None]

_ALIASES = {
    "count": Concept.N,
    "num_images": Concept.N,
    "size": Concept.RESOLUTION,
    "aspect": Concept.ASPECT_RATIO,
    "image_set": Concept.SEQUENTIAL,
    "color_palette": Concept.PALETTE,
    "thinking_mode": Concept.THINKING,
    "bbox_list": Concept.BBOX,
    "input_images": Concept.IMAGES,
}
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_RATIO = re.compile(r"^\s*\d+\s*:\s*\d+\s*$")
_SIZE_VALUE = re.compile(r"^\s*(\d+\s*[kK]|\d+\s*[*xX]\s*\d+)\s*$")
_SINGLE_IMAGE = frozenset({"image", "imageurl", "img", "imgurl", "inputimage", "inputimageurl"})


@dataclass(frozen=True)
class Binding:
    spec: FieldSpec
    how: str  # "name", "hint", "override" or "builtin"


@dataclass(frozen=True)
class FieldMap:
    bindings: dict[Concept, Binding]
    notes: tuple[str, ...] = ()  # every difference from the built-in guess, for operators
    problems: tuple[str, ...] = ()  # the subset that stops whole modes, for `wanbot check`
    unused: tuple[FieldSpec, ...] = field(default=())


def parse_override(raw: str | Mapping[str, Any] | None) -> Override:
    """``WAN_FIELD_MAP``: ``{"images": "refs", "resolution": "parameters.size", "seed": null}``.

    Keys are concepts (see ``Concept``); a value is a dotted path inside ``input`` or null for
    "never send it". Anything else is a configuration error that says what to fix.
    """
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"WAN_FIELD_MAP is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError("WAN_FIELD_MAP must be a JSON object of concept -> field path")
    known = ", ".join(c.value for c in Concept)
    out: Override = {}
    for key, value in raw.items():
        concept = _concept_named(str(key))
        if concept is None:
            raise ConfigError(f"WAN_FIELD_MAP: unknown concept {key!r}; use one of {known}")
        if value is None:
            out[concept] = None
            continue
        path = tuple(value.split(".")) if isinstance(value, str) else ()
        if not path or not all(_SEGMENT.match(p) for p in path):
            raise ConfigError(
                f"WAN_FIELD_MAP: {key!r} must map to a field path like 'refs' or "
                f"'parameters.size' (or null), not {value!r}"
            )
        out[concept] = path
    return out


def _concept_named(key: str) -> Concept | None:
    text = key.strip().lower()
    if text in {c.value for c in Concept}:
        return Concept(text)
    return _ALIASES.get(text)


def map_fields(fields: Iterable[FieldSpec], override: Override) -> FieldMap:
    """Bind each concept to a live field (see the module docstring)."""
    leaves = [f for f in fields if f.type != "object"]
    notes: list[str] = []
    problems: list[str] = []
    bindings = _overridden(leaves, override, notes, problems)
    claimed = {b.spec.path for b in bindings.values()}
    free = [f for f in leaves if f.path not in claimed]
    for concept in Concept:
        if concept in bindings or concept in override:
            continue
        spec = _by_name(concept, free)
        if spec is not None:
            bindings[concept] = Binding(spec, "name")
            free.remove(spec)
            if spec.dotted != BUILTIN.of(concept):
                notes.append(
                    f"{concept.value}: expected {BUILTIN.of(concept)!r}, live schema has "
                    f"{spec.dotted!r} (using it)"
                )
    _bind_by_hints(bindings, override, free, notes, problems)
    _report_missing(bindings, override, free, notes, problems)
    for spec in free:
        if spec.required:
            line = f"schema requires field {spec.dotted!r} the bot does not know"
            notes.append(line)
            problems.append(line)
    return FieldMap(bindings, tuple(notes), tuple(problems), tuple(free))


def _overridden(
    leaves: list[FieldSpec], override: Override, notes: list[str], problems: list[str]
) -> dict[Concept, Binding]:
    """WAN_FIELD_MAP wins: its paths are used whether or not the schema lists them."""
    by_path = {f.path: f for f in leaves}
    bindings: dict[Concept, Binding] = {}
    for concept, path in override.items():
        if path is None:
            continue
        spec = by_path.get(path) or FieldSpec(path)
        bindings[concept] = Binding(spec, "override")
        listed = path in by_path or not leaves
        where = "" if listed else " (the live schema does not list it)"
        notes.append(f"{concept.value}: {spec.dotted!r} from WAN_FIELD_MAP{where}")
        if not listed:
            problems.append(notes[-1])
    return bindings


def _report_missing(
    bindings: dict[Concept, Binding],
    override: Override,
    free: list[FieldSpec],
    notes: list[str],
    problems: list[str],
) -> None:
    for concept in Concept:
        if concept in bindings or _folded(concept, bindings):
            continue
        if concept in override:
            notes.append(f"{concept.value}: not sent (WAN_FIELD_MAP sets it to null)")
            continue
        line = (
            f"{concept.value}: expected {BUILTIN.of(concept)!r}, live schema has no such "
            f"field ({WHEN_MISSING[concept]})"
        )
        notes.append(line)
        if concept in (Concept.PROMPT, Concept.IMAGES, Concept.SEQUENTIAL):
            problems.append(line + _suggestion(concept, free))


def _by_name(concept: Concept, free: list[FieldSpec]) -> FieldSpec | None:
    names = SYNONYMS[concept]
    found = [
        (len(f.path), names.index(normalise_name(f.name)), f)
        for f in free
        if normalise_name(f.name) in names and _fits(concept, f)
    ]
    return min(found, key=lambda t: (t[0], t[1]))[2] if found else None


def _bind_by_hints(
    bindings: dict[Concept, Binding],
    override: Override,
    free: list[FieldSpec],
    notes: list[str],
    problems: list[str],
) -> None:
    for concept in Concept:
        if concept in bindings or concept in override:
            continue
        fits = [f for f in free if f.type is not None and _fits(concept, f) and _hinted(concept, f)]
        if len(fits) == 1:
            bindings[concept] = Binding(fits[0], "hint")
            free.remove(fits[0])
            notes.append(
                f"{concept.value}: expected {BUILTIN.of(concept)!r}, using "
                f"{fits[0].dotted!r} (its type and values fit)"
            )
        elif len(fits) > 1:
            shown = ", ".join(repr(f.dotted) for f in fits)
            line = (
                f"{concept.value}: several fields could hold it ({shown}); set WAN_FIELD_MAP "
                "to pick one"
            )
            notes.append(line)
            problems.append(line)


def _fits(concept: Concept, spec: FieldSpec) -> bool:
    """Whether the field's type can carry the concept's value at all."""
    kind = spec.type
    if concept is Concept.IMAGES:
        if kind == "string":
            return normalise_name(spec.name) in _SINGLE_IMAGE
        return kind in (None, "array") and spec.items_type in (None, "string")
    if concept in (Concept.SEQUENTIAL, Concept.THINKING, Concept.WATERMARK):
        return kind is None or bool_like(spec)
    allowed = {
        Concept.PROMPT: ("string",),
        Concept.RESOLUTION: ("string", "integer", "number"),
        Concept.ASPECT_RATIO: ("string",),
        Concept.N: ("integer", "number"),
        Concept.SEED: ("integer", "number"),
        Concept.PALETTE: ("array",),
        Concept.BBOX: ("array",),
    }[concept]
    return kind is None or kind in allowed


def _hinted(concept: Concept, spec: FieldSpec) -> bool:
    """Evidence beyond the type: a telling word in the name, or telling values."""
    name = normalise_name(spec.name)
    if concept is Concept.PROMPT and "negative" in name:
        return False
    worded = any(word in name for word in HINT_WORDS[concept])
    if concept is Concept.RESOLUTION:
        if spec.enum:  # "quality: standard/hd" is no resolution; "1K/2K/4K" is, whatever its name
            return any(isinstance(v, str) and _SIZE_VALUE.match(v) for v in spec.enum)
        pixels = bool(spec.pattern) and size_spelling(spec).style is SizeStyle.PIXELS
        return worded or pixels
    if worded:
        return True
    if concept is Concept.ASPECT_RATIO:
        return bool(spec.enum) and all(isinstance(v, str) and _RATIO.match(v) for v in spec.enum)
    if concept is Concept.IMAGES:
        return (spec.items_format or "").lower() in ("uri", "url", "iri")
    return False


def _folded(concept: Concept, bindings: dict[Concept, Binding]) -> bool:
    """An aspect ratio needs no field of its own when the size field takes W*H sizes."""
    size = bindings.get(Concept.RESOLUTION)
    return (
        concept is Concept.ASPECT_RATIO
        and size is not None
        and size_spelling(size.spec).folds_aspect
    )


def _suggestion(concept: Concept, free: list[FieldSpec]) -> str:
    """Name the unrecognised fields that could hold ``concept``, with the override that says so."""
    could = [f for f in free if _fits(concept, f)]
    if not could:
        return ""
    shown = ", ".join(f"{f.dotted!r} ({f.summary()})" for f in could[:4])
    example = json.dumps({concept.value: could[0].dotted})
    return (
        f"; fields the bot does not recognise: {shown}. If one of them holds it, set "
        f"WAN_FIELD_MAP='{example}'"
    )
