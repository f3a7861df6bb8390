"""Reading crun's model description into ``FieldSpec`` leaves, whatever shape it comes in.

Seen or plausible shapes (wan-api.md 1.5 and 2.5): a JSON Schema (``properties``, ``required``,
``enum``, ``items``, nested objects such as upstream's ``parameters``, local ``$ref``s), a plain
mapping of field name to spec (crun's CLI reads ``input_schema`` that way), a list of field
objects (``name``, ``type``, ``enum``, ``required``), and bare ``required_input_fields`` /
``input_fields`` name lists. Anything unreadable is skipped rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bot.wan.types import MODEL_ID, FieldSpec, ModelSchema

__all__ = ["SchemaUnreadable", "parse_model_schema"]

_MAX_DEPTH = 6  # deeper nesting is not a model input anyone writes by hand

_TYPES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "url": "string",
    "uri": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
    "map": "object",
}
_GENERIC = re.compile(r"^(array|list)\s*[<\[(]\s*(\w+)\s*[>\])]$")
_ENUM_KEYS = ("enum", "options", "values", "allowed_values", "choices")
_NESTED_KEYS = ("properties", "fields", "children", "parameters")
_FIELD_KEYS = ("input_schema", "input_fields", "fields", "schema", "parameters")
_REQUIRED_KEY = "required_input_fields"


class SchemaUnreadable(ValueError):
    """The reply holds no recognisable description of the model's input."""


def parse_model_schema(data: dict[str, Any]) -> ModelSchema:
    """The ``data`` of ``GET Models/{model}`` as a ``ModelSchema``; raises SchemaUnreadable."""
    node = _model_node(data)
    fields: dict[str, FieldSpec] = {}
    found = False
    for key in _FIELD_KEYS:
        if key in node and isinstance(node[key], dict | list):
            found = True
            _Walker(node[key], fields).collect(node[key], (), True, 0)
            break
    required_names = node.get(_REQUIRED_KEY)
    if isinstance(required_names, list):
        found = True
        for name in required_names:
            if isinstance(name, str) and name:
                path = tuple(name.split("."))
                old = fields.get(name) or FieldSpec(path)
                fields[name] = _with_required(old)
    if not found:
        raise SchemaUnreadable("neither input_schema nor an input field list is present")
    return ModelSchema(model=_model_id(node), fields=tuple(fields.values()), raw=data)


def _model_node(data: dict[str, Any]) -> dict[str, Any]:
    # Lenient about nesting: {input_schema...} or {model: {input_schema...}}.
    inner = data.get("model")
    if isinstance(inner, dict) and not any(k in data for k in (*_FIELD_KEYS, _REQUIRED_KEY)):
        return {**data, **inner}
    return data


def _model_id(node: dict[str, Any]) -> str:
    for key in ("model", "model_id", "id"):
        value = node.get(key)
        if isinstance(value, str) and value:
            return value
    return MODEL_ID


def _with_required(spec: FieldSpec) -> FieldSpec:
    return replace(spec, required=True)


class _Walker:
    """Collects the leaves of one schema document; ``root`` is where local ``$ref``s point."""

    def __init__(self, root: Any, out: dict[str, FieldSpec]) -> None:
        self.root = root
        self.out = out

    def collect(self, node: Any, path: tuple[str, ...], required: bool, depth: int) -> None:
        """Add the leaves under ``node`` (an object schema, a name->spec map or a field list)."""
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, list):
            for item in node:
                if isinstance(item, str) and item:
                    self.out.setdefault(_key(path, item), FieldSpec((*path, item)))
                elif isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
                    required_here = item.get("required") is True or item.get("optional") is False
                    self.field(item, (*path, item["name"]), required_here, depth + 1)
            return
        if not isinstance(node, dict):
            return
        node = _resolve(node, self.root)
        props = node.get("properties")
        if isinstance(props, dict | list):
            listed = node.get("required")
            names = set(listed) if isinstance(listed, list) else set()
            if isinstance(props, list):
                self.collect(props, path, required, depth + 1)
                return
            for name, sub in props.items():
                if isinstance(name, str) and name:
                    self.field(sub, (*path, name), name in names, depth + 1)
            return
        # A plain mapping of field name to spec (no "properties" wrapper).
        for name, sub in node.items():
            if isinstance(name, str) and name and isinstance(sub, dict | str):
                self.field(sub, (*path, name), False, depth + 1)

    def field(self, spec: Any, path: tuple[str, ...], required: bool, depth: int) -> None:
        if isinstance(spec, str):  # {"prompt": "string"}
            kind, items = _norm_type(spec)
            self.out[".".join(path)] = FieldSpec(
                path, type=kind, items_type=items, required=required
            )
            return
        if not isinstance(spec, dict):
            return
        spec = _merge_variants(_resolve(spec, self.root))
        if spec.get("required") is True:
            required = True
        kind, items_type = _norm_type(spec.get("type"))
        nested = next((spec[k] for k in _NESTED_KEYS if isinstance(spec.get(k), dict | list)), None)
        if nested is not None and kind in (None, "object"):
            holder = {"properties": nested, "required": spec.get("required")}
            if isinstance(nested, list):
                self.collect(nested, path, required, depth)
            else:
                self.collect(holder, path, required, depth)
            return
        self.out[".".join(path)] = self.leaf(spec, path, required, (kind, items_type))

    def leaf(
        self,
        spec: dict[str, Any],
        path: tuple[str, ...],
        required: bool,
        types: tuple[str | None, str | None],
    ) -> FieldSpec:
        kind, items_type = types
        items = spec.get("items")
        items = _merge_variants(_resolve(items, self.root)) if isinstance(items, dict) else {}
        if items_type is None and items:
            items_type = _norm_type(items.get("type"))[0]
        enum = _enum(spec)
        if not enum and kind == "array" and items:
            enum = ()  # an enum of the items does not describe the list itself
        item_props = items.get("properties")
        return FieldSpec(
            path=path,
            type=kind or _type_of_enum(enum),
            enum=enum,
            required=required,
            minimum=_number(spec, "minimum", "min", "ge"),
            maximum=_number(spec, "maximum", "max", "le"),
            min_items=_integer(spec, "minItems", "min_items"),
            max_items=_integer(spec, "maxItems", "max_items", "max_count"),
            max_length=_integer(spec, "maxLength", "max_length"),
            pattern=_text(spec.get("pattern")) or None,
            format=_text(spec.get("format")) or None,
            description=" ".join(
                t for t in (_text(spec.get("title")), _text(spec.get("description"))) if t
            ),
            items_type=items_type,
            items_format=_text(items.get("format")) or None,
            item_keys=tuple(k for k in item_props if isinstance(k, str))
            if isinstance(item_props, dict)
            else (),
        )


def _key(path: tuple[str, ...], name: str) -> str:
    return ".".join((*path, name))


def _resolve(node: Any, root: Any, hops: int = 0) -> Any:
    """Follow a local ``$ref`` (``#/$defs/x``, ``#/definitions/x``), a few hops at most."""
    if not isinstance(node, dict) or not isinstance(node.get("$ref"), str) or hops > 4:
        return node
    target: Any = root
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    if not isinstance(target, dict):
        return {k: v for k, v in node.items() if k != "$ref"}
    merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return _resolve(merged, root, hops + 1)


def _merge_variants(node: Any) -> Any:
    """``anyOf``/``oneOf``/``allOf``: the first variant that is not null speaks for the field."""
    if not isinstance(node, dict):
        return node
    for key in ("anyOf", "oneOf", "allOf"):
        variants = node.get(key)
        if isinstance(variants, list):
            for variant in variants:
                if isinstance(variant, dict) and variant.get("type") != "null":
                    rest = {k: v for k, v in node.items() if k != key}
                    return {**variant, **rest}
    return node


def _norm_type(raw: Any) -> tuple[str | None, str | None]:
    """(type, items type) from ``"string"``, ``["integer", "null"]``, ``"string[]"``,
    ``"list[str]"`` and similar spellings."""
    if isinstance(raw, list):
        raw = next((t for t in raw if isinstance(t, str) and t != "null"), None)
    if not isinstance(raw, str):
        return None, None
    text = raw.strip().lower()
    if text.endswith("[]"):
        return "array", _TYPES.get(text[:-2].strip())
    generic = _GENERIC.match(text)
    if generic:
        return "array", _TYPES.get(generic.group(2))
    return _TYPES.get(text), None


def _enum(spec: dict[str, Any]) -> tuple[Any, ...]:
    if "const" in spec:
        return (spec["const"],)
    for key in _ENUM_KEYS:
        values = spec.get(key)
        if isinstance(values, list) and values:
            out = [v.get("value") if isinstance(v, dict) else v for v in values]
            return tuple(v for v in out if isinstance(v, str | int | float | bool))
    return ()


def _type_of_enum(enum: tuple[Any, ...]) -> str | None:
    if enum and all(isinstance(v, bool) for v in enum):
        return "boolean"
    if enum and all(isinstance(v, str) for v in enum):
        return "string"
    if enum and all(isinstance(v, int) and not isinstance(v, bool) for v in enum):
        return "integer"
    return None


def _number(spec: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = spec.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _integer(spec: dict[str, Any], *keys: str) -> int | None:
    value = _number(spec, *keys)
    return int(value) if value is not None else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
