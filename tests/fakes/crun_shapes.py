"""The replay corpus of crun shapes (tests/fixtures/crun), and the strict checks a shape implies.

``schemas/<name>.json`` holds one way crun might describe ``wan/2-7-image-pro`` (wan-api.md
section 2.5): ``reply`` is what GET Models answers, ``accepts`` a hand-written strict JSON Schema
for the ``input`` such a service takes, ``count`` / ``images`` the dotted paths of the image-count
and input-image fields, ``override`` the WAN_FIELD_MAP an operator needs (if any).
``taskinfo/<name>.json`` holds a whole TaskInfo envelope (``reply``) and what the bot should read
from it (``expect``). FakeCrun(shape=...) serves a shape; tests load the rest from here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "crun"
SHAPES_DIR = FIXTURES_DIR / "schemas"
TASKINFO_DIR = FIXTURES_DIR / "taskinfo"
SHAPE_NAMES: tuple[str, ...] = tuple(sorted(p.stem for p in SHAPES_DIR.glob("*.json")))
TASKINFO_NAMES: tuple[str, ...] = tuple(sorted(p.stem for p in TASKINFO_DIR.glob("*.json")))


@dataclass(frozen=True)
class Shape:
    name: str
    about: str
    reply: dict[str, Any]  # GET Models/{model} ``data``
    accepts: dict[str, Any]  # strict JSON Schema (2020-12) for ``input``
    count_path: str  # dotted path of the image count inside ``input``
    images_path: str  # dotted path of the input images inside ``input``
    override: dict[str, str] | None = None  # the WAN_FIELD_MAP this shape needs

    @cached_property
    def _validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.accepts)

    def validate(self, input: Any) -> str | None:
        """None when a strict service takes ``input``; else one message naming the field."""
        errors = list(self._validator.iter_errors(input))
        if not errors:
            return None
        return describe(min(errors, key=_rank))

    def count(self, input: dict[str, Any]) -> int:
        """How many images ``input`` asks for (1 when the count field is absent)."""
        value = lookup(input, self.count_path)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1


@dataclass(frozen=True)
class TaskInfoCase:
    name: str
    about: str
    reply: dict[str, Any]  # the whole envelope GET TaskInfo answers
    expect: dict[str, Any]  # TaskInfo attribute -> value (status as its string value)


def load_shape(name: str) -> Shape:
    doc = _load(SHAPES_DIR, name)
    return Shape(
        name=name,
        about=doc["about"],
        reply=doc["reply"],
        accepts=doc["accepts"],
        count_path=doc["count"],
        images_path=doc["images"],
        override=doc.get("override"),
    )


def load_taskinfo(name: str) -> TaskInfoCase:
    doc = _load(TASKINFO_DIR, name)
    return TaskInfoCase(name=name, about=doc["about"], reply=doc["reply"], expect=doc["expect"])


def lookup(input: dict[str, Any], path: str) -> Any:
    """The value at a dotted path inside ``input``, or None when any step is missing."""
    node: Any = input
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def describe(error: ValidationError) -> str:
    """One line a strict service might answer, naming the field by its path inside input."""
    where = dotted(error.absolute_path)
    prefix = where + "." if where else ""
    label = "input." + where if where else "input"
    # The stubs allow "unset" (and older ones mistype the keyword); iter_errors always sets them.
    keyword = str(error.validator)
    instance: Any = error.instance
    limit: Any = error.validator_value
    if keyword == "additionalProperties":
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(k for k in instance if k not in known)
        names = ", ".join(repr(prefix + k) for k in extra)
        return f"unknown input field{'s' if len(extra) > 1 else ''} {names}"
    if keyword == "required":
        missing = [r for r in limit if r not in instance]
        return f"input.{prefix}{missing[0]} is required"
    if keyword in ("maxItems", "minItems"):
        bound = "at most" if keyword == "maxItems" else "at least"
        return f"{label}: {bound} {limit} items, got {len(instance)}"
    return f"{label}: {error.message}"


def dotted(path: Sequence[str | int]) -> str:
    """``['parameters', 'size']`` -> ``parameters.size``; list indexes as ``[i]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _rank(error: ValidationError) -> tuple[int, int]:
    # The shallowest problem first; at one depth an unknown field says the most (a wrong name is
    # what a schema mix-up produces), then a missing one, then a bad value.
    order = {"additionalProperties": 0, "required": 1}
    return len(error.absolute_path), order.get(str(error.validator), 2)


def _load(folder: Path, name: str) -> dict[str, Any]:
    doc = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{folder.name}/{name}.json is not a JSON object"
    return doc
