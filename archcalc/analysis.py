"""The whole analysis of a network as frozen data, and its JSON form (the machine contract)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .arith import Dim, Shape
from .graph import Network
from .params import ParamCount, parameter_counts
from .shapes import output_shapes


@dataclass(frozen=True)
class LayerResult:
    """What the analysis found for one layer."""

    path: str
    op: str
    inputs: tuple[str, ...]
    output_shape: Shape
    params: ParamCount
    detail: str


@dataclass(frozen=True)
class Totals:
    params: Dim
    trainable_params: Dim
    frozen_params: Dim
    buffers: Dim


@dataclass(frozen=True)
class Analysis:
    network: Network
    layers: tuple[LayerResult, ...]
    totals: Totals

    @property
    def output_shape(self) -> Shape:
        return next(r.output_shape for r in self.layers if r.path == self.network.output)


def analyze(network: Network) -> Analysis:
    """Shapes and parameters of every layer, with totals."""
    shapes = output_shapes(network)
    counts = parameter_counts(network, shapes)
    rows = tuple(
        LayerResult(
            layer.path, layer.op.kind, layer.inputs, shapes[layer.path], counts[layer.path],
            layer.op.describe(),
        )
        for layer in network.layers
    )
    total = sum((c.params for c in counts.values()), 0)
    trainable = sum((c.trainable for c in counts.values()), 0)
    buffers = sum((c.buffers for c in counts.values()), 0)
    return Analysis(network, rows, Totals(total, trainable, total - trainable, buffers))


def _plain(value: Any) -> Any:
    """JSON-ready numbers: ints stay ints, symbolic expressions become strings."""
    if isinstance(value, (int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return str(value)


def to_json(analysis: Analysis) -> dict[str, Any]:
    """The documented JSON object of `archcalc analyze --json` (docs/json.md)."""
    t = analysis.totals
    return {
        "name": analysis.network.name,
        "input": _plain(analysis.network.input_shape),
        "output": _plain(analysis.output_shape),
        "totals": {
            "params": _plain(t.params),
            "trainable_params": _plain(t.trainable_params),
            "frozen_params": _plain(t.frozen_params),
            "buffers": _plain(t.buffers),
        },
        "layers": [
            {
                "name": r.path,
                "op": r.op,
                "inputs": list(r.inputs),
                "output_shape": _plain(r.output_shape),
                "params": _plain(r.params.params),
                "trainable": not r.params.frozen,
                "buffers": _plain(r.params.buffers),
            }
            for r in analysis.layers
        ],
    }
