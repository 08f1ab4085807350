"""Element sizes of the data types a spec or a memory estimate may name."""

from __future__ import annotations

from typing import Literal

DType = Literal["float64", "float32", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]

BYTES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
}

INTEGER = frozenset({"int64", "int32", "int8", "uint8", "bool"})
"""Types no float activation dtype replaces: an input of token ids keeps its own."""
