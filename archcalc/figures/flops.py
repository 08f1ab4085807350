"""The FLOP pass: multiply-accumulates and FLOPs per layer, by torch.utils.flop_counter's rule.

Headline FLOPs = 2 x MACs of convolutions (grouped and transposed too) and linear layers, with
bias not counted, as torch.utils.flop_counter.FlopCounterMode counts them. Everything else
(norms, activations, pooling, adds, bias adds) is an estimate reported apart as `elementwise`.
A training step costs about 3x the forward FLOPs: the backward pass computes two products of
the same size per layer (the gradient for the input and for the weights).
"""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.arith import Dim, Shape
from archcalc.spec.graph import Network

TRAINING_STEP_FACTOR = 3


@dataclass(frozen=True)
class LayerFlops:
    """Per example: MACs, headline FLOPs (2 x MACs) and element-wise operations (counted apart)."""

    macs: Dim
    elementwise: Dim

    @property
    def flops(self) -> Dim:
        return 2 * self.macs


def flop_counts(network: Network, shapes: dict[str, Shape]) -> dict[str, LayerFlops]:
    """MACs and element-wise operations of every layer, for one example."""
    counts = {}
    for layer in network.layers:
        inputs = [shapes[i] for i in layer.inputs]
        output = shapes[layer.path]
        counts[layer.path] = LayerFlops(
            layer.op.macs(inputs, output), layer.op.elementwise_flops(inputs, output)
        )
    return counts
