"""The parameter pass: learnable and buffer element counts per layer, split trainable/frozen."""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.arith import Dim, Shape, product
from archcalc.errors import ArchcalcError
from archcalc.spec.graph import Network


@dataclass(frozen=True)
class ParamCount:
    """Element counts of one layer: learnable parameters (trainable or frozen) and buffers."""

    params: Dim
    buffers: Dim
    frozen: bool

    @property
    def trainable(self) -> Dim:
        return 0 if self.frozen else self.params


def parameter_counts(network: Network, shapes: dict[str, Shape]) -> dict[str, ParamCount]:
    """Per-layer counts, each array's size being the product of its PyTorch-style shape."""
    counts: dict[str, ParamCount] = {}
    for layer in network.layers:
        inputs = [shapes[i] for i in layer.inputs]
        try:
            arrays = layer.op.parameters(inputs)
            buffers = layer.op.buffers(inputs)
        except ArchcalcError as exc:
            raise exc.located(layer.location, layer.path) from None
        counts[layer.path] = ParamCount(
            sum((product(s) for s in arrays.values()), 0),
            sum((product(s) for s in buffers.values()), 0),
            layer.frozen,
        )
    return counts
