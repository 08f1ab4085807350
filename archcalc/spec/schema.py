"""The JSON Schema of the spec format, assembled from the op models (`archcalc schema`)."""

from __future__ import annotations

from typing import Any

from archcalc.ops import REGISTRY
from archcalc.spec.spec import InputSpec

_EXPRESSION = {"type": "string", "pattern": "\\$", "description": "an expression over block arguments, e.g. '$out * 4'"}

_ENTRY_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "description": "the layer's name in its block (default: its number in the container)"},
    "from": {
        "description": "earlier layer name(s) feeding this one, or 'input' (default: the previous entry)",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    },
    "frozen": {"anyOf": [{"type": "boolean"}, _EXPRESSION], "description": "parameters not trained (transfer learning)"},
    "repeat": {"anyOf": [{"type": "integer", "minimum": 0}, _EXPRESSION], "description": "stack N copies, named NAME.0 ... NAME.N-1; $i is the index"},
    "when": {"anyOf": [{"type": "boolean"}, _EXPRESSION], "description": "false skips the entry; its name then passes its input through"},
    "names": {"type": "string", "maxLength": 200, "description": "with repeat: each copy's name, {expression} parts replaced, e.g. 'denselayer{$i + 1}'"},
    "flat": {"anyOf": [{"type": "boolean"}, _EXPRESSION], "description": "number the copies in the container (features.2, features.3), not NAME.0, NAME.1"},
}


def _allow_expressions(schema: Any) -> Any:
    """Each field may also be a `$` expression (inside blocks)."""
    return {"anyOf": [schema, _EXPRESSION]}


def _op_entry(kind: str) -> dict[str, Any]:
    cls = REGISTRY[kind]
    model = cls.model_json_schema()
    properties = {name: _allow_expressions(field) for name, field in model.get("properties", {}).items()}
    entry: dict[str, Any] = {
        "type": "object",
        "title": kind,
        "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else kind,
        "properties": {"op": {"const": kind}, **properties, **_ENTRY_PROPERTIES},
        "required": ["op", *model.get("required", [])],
        "additionalProperties": False,
    }
    if "$defs" in model:
        entry["$defs"] = model["$defs"]
    return entry


def spec_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for spec files."""
    block_call = {
        "type": "object",
        "title": "block call",
        "properties": {
            "block": {"type": "string"}, **_ENTRY_PROPERTIES,
            "inline": {"anyOf": [{"type": "boolean"}, _EXPRESSION], "description": "name the block's layers as if written in place of the call"},
            "checkpoint": {"anyOf": [{"type": "boolean"}, _EXPRESSION], "description": "activation checkpointing: each instance keeps only its inputs and is recomputed in backward"},
        },
        "required": ["block"],
        "additionalProperties": {"description": "a block argument"},
    }
    entry = {"anyOf": [*(_op_entry(k) for k in sorted(REGISTRY)), block_call]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "archcalc network spec",
        "type": "object",
        "required": ["name", "input", "layers"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "input": {"anyOf": [InputSpec.model_json_schema()["properties"]["shape"], InputSpec.model_json_schema()]},
            "output": {"type": "string", "description": "the layer whose output is the network's (default: the last)"},
            "blocks": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "args": {
                            "description": "argument names (all required), or a mapping of names to defaults (null: required)",
                            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}],
                        },
                        "layers": {"type": "array", "items": {"$ref": "#/$defs/entry"}, "minItems": 1},
                        "output": {"type": "string"},
                    },
                    "required": ["layers"],
                    "additionalProperties": False,
                },
            },
            "layers": {"type": "array", "items": {"$ref": "#/$defs/entry"}, "minItems": 1},
        },
        "$defs": {"entry": entry},
    }
