"""What an importer found in a foreign model, before it is written as a spec: layers named by
their module path (or ONNX node), their archcalc op and fields, and what could not be mapped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImportedLayer:
    """One layer: its path (dots between module names), archcalc op and fields, the paths it
    reads (`input` for the network's input), and where it came from, for messages."""

    path: str
    op: str
    fields: dict[str, Any]
    inputs: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Unmapped:
    """An operation archcalc has no op for: what it is and where it is in the foreign model."""

    what: str
    where: str


@dataclass(frozen=True)
class ImportedNetwork:
    """A foreign model as archcalc layers: name, input (shape without the batch, dtype), the
    layers in execution order, the operations left unmapped, and a default for each symbol the
    input names (a dynamic ONNX axis such as `H`)."""

    name: str
    input_shape: tuple[int | str, ...]
    input_dtype: str
    layers: list[ImportedLayer]
    unmapped: list[Unmapped] = field(default_factory=list)
    symbols: dict[str, int] = field(default_factory=dict)
