"""The FLOP pass: multiply-accumulates and FLOPs per layer, by torch.utils.flop_counter's rule.

Headline FLOPs = 2 x MACs of convolutions (grouped and transposed too) and linear layers, with
bias not counted, as torch.utils.flop_counter.FlopCounterMode counts them. Everything else
(norms, activations, pooling, adds, bias adds) is an estimate reported apart as `elementwise`.
A training step costs about 3x the forward FLOPs: the backward pass computes two products of
the same size per layer (the gradient for the input and for the weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archcalc.arith import Dim, Shape
from archcalc.figures.figure import Figure, Formula, GlanceRow, PerOp, Sweepable, Total, plain, walk
from archcalc.spec.graph import Layer, Network

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

    once: PerOp[tuple[Dim, Dim]] = PerOp()

    def step(layer: Layer) -> LayerFlops:
        op, inputs, output = layer.op, [shapes[i] for i in layer.inputs], shapes[layer.path]
        return LayerFlops(*once(op, (output, *inputs), lambda: (op.macs(inputs, output), op.elementwise_flops(inputs, output))))

    return walk(network, step)


def _sum(attribute: str) -> Any:
    """A total: the layers' figures summed."""
    return lambda analysis: sum((getattr(f, attribute) for f in analysis.values["flops"].values()), 0)


def _glance_text(g: Mapping[str, Any]) -> tuple[str, str]:
    from archcalc.units import human_count

    return "FLOPs per example", f"{human_count(g['flops'])}FLOP = {human_count(g['macs'])}MAC (torch.utils.flop_counter convention)"


def _per_batch(analysis: Any) -> Any:
    """Forward FLOPs of a whole batch: FLOPs per example x batch."""
    return analysis.total("flops") * analysis.memory.options.batch


FLOPS = Figure(
    "flops", "FLOPs", "flops", lower_is_better=True,
    needs=("shapes",),
    run=lambda network, done, options: flop_counts(network, done["shapes"]),
    layer_json=lambda f, analysis: {"macs": plain(f.macs), "flops": plain(f.flops), "elementwise_flops": plain(f.elementwise)},
    totals=(
        Total("macs", "MACs per example", "flops", _sum("macs"), lower_is_better=True, compare=21),
        Total("flops", "FLOPs per example", "flops", lambda a: 2 * a.total("macs"), lower_is_better=True, compare=20),
        Total("elementwise_flops", "Element-wise FLOPs per example", "flops", _sum("elementwise"), lower_is_better=True),
    ),
    formula=Formula(
        lambda f: {"macs": f.macs, "flops": f.flops, "elementwise": f.elementwise} if f.macs != 0 or f.elementwise != 0 else {},
        lambda a: {
            "macs": a.total("macs"), "flops": a.total("flops"), "flops_per_batch": _per_batch(a),
            "elementwise": a.total("elementwise_flops"),
        },
    ),
    sweeps=(Sweepable("flops", "FLOPs per batch", "FLOPs", _per_batch),),
    glance=GlanceRow(30, lambda a: {"macs": a.total("macs"), "flops": a.total("flops")}, _glance_text),
)
