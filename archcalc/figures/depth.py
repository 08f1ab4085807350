"""Layer counts of a whole network: all layers, the weighted ones (convolutions and linear layers,
whose MACs are not 0) and the depth, weighted layers on the longest path. A figure without a pass:
its totals read the FLOP pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archcalc.figures.figure import Figure, GlanceRow, Total
from archcalc.spec.graph import INPUT

if TYPE_CHECKING:
    from archcalc.analysis import Analysis


def weighted_layers(analysis: Analysis) -> int:
    """Convolutions and linear layers: the layers that multiply by weights (their MACs are not 0)."""
    return sum(1 for r in analysis.layers if r.flops.macs != 0)


def depth(analysis: Analysis) -> int:
    """Convolutions and linear layers on the longest path from input to output (ResNet-50: 50).

    Projection shortcuts run beside the main path, so they add to `weighted_layers` but not here,
    which is how the papers count depth.
    """
    on_path = {INPUT: 0}
    for r in analysis.layers:
        on_path[r.path] = max((on_path[i] for i in r.inputs), default=0) + (1 if r.flops.macs != 0 else 0)
    return on_path[analysis.network.output]


DEPTH = Figure(
    "depth", "Layers and depth", "count", lower_is_better=None,
    needs=("flops",),
    totals=(  # not in analyze --json, whose layers list says as much
        Total("layers", "Layers", "count", lambda a: len(a.layers), json=False),
        Total("weighted_layers", "Conv/linear layers", "count", weighted_layers, json=False, compare=50),
        Total("depth", "Depth (longest path)", "count", depth, json=False, compare=51),
    ),
    glance=GlanceRow(
        10, lambda a: {"layers": a.total("layers"), "weighted": a.total("weighted_layers"), "depth": a.total("depth")},
        lambda g: ("Layers", f"{g['layers']}; {g['weighted']} convolution/linear, depth {g['depth']} (longest path)"),
    ),
)
