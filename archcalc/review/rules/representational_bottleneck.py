"""representational-bottleneck (warning): a layer in the first third (execution order) after which
the tensors later layers still read hold more than 4x fewer elements than the representation held
before it (at most the fewest elements it has passed through since the input); the head (outputs
with fewer axes than the input) and the network's output are exempt."""

from __future__ import annotations

from fractions import Fraction

from archcalc.analysis import Analysis
from archcalc.ops.base import elements
from archcalc.review.rules.base import Finding, finding, integers, output_shapes, rule, size

BOTTLENECK_RATIO = 4  # output elements more than this many times fewer than the input's
EARLY_FRACTION = Fraction(1, 3)  # "early": the first third of the layers in execution order


@rule(
    "representational-bottleneck",
    "An abrupt drop in the number of elements early in the network",
    "Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, Rethinking the Inception Architecture for Computer "
    "Vision, CVPR 2016 (arXiv:1512.00567), §2 principle 1: avoid representational bottlenecks, "
    "especially early in the network",
    severities=("warning",),
)
def representational_bottleneck(analysis: Analysis) -> list[Finding]:
    """The representation after layer i is every tensor made so far that a later layer still
    reads (or the network's output): its element count E(i). Each is computed from the one
    before, so it holds at most held(i) = min(E(j), j <= i), from E = elements(input) before the
    first layer. A layer in the first third (execution order) with held(i-1) > 4 * E(i) is a
    bottleneck. A branch that narrows while its block's input stays alive (ResNet, Inception,
    DenseNet), or a projection back to the width a block expanded from (MobileNetV2), drops
    nothing. The head (outputs with fewer axes than the input) and the output are exempt."""
    network = analysis.network
    shapes = output_shapes(analysis)
    if not integers(*network.input_shape) or not all(
        integers(*r.output_shape) for r in analysis.layers
    ):
        return []
    last_read: dict[str, int] = {}
    for i, layer in enumerate(network.layers):
        for source in layer.inputs:
            last_read[source] = i
    last_read[network.output] = len(network.order)
    freed: dict[int, list[str]] = {}
    for path, i in last_read.items():
        freed.setdefault(i, []).append(path)
    total = len(analysis.layers)
    rank = len(network.input_shape)
    live = elements(network.input_shape)
    held, held_at = live, "the input"
    found = []
    for i, r in enumerate(analysis.layers):
        if i >= EARLY_FRACTION * total:
            break
        live += elements(r.output_shape) - sum(elements(shapes[p]) for p in freed.get(i, ()))
        head = len(r.output_shape) < rank or r.path == network.output
        if not head and held > BOTTLENECK_RATIO * live:
            ratio = held / live
            found.append(
                finding(
                    "representational-bottleneck",
                    "warning",
                    [r.path],
                    f"elements drop {ratio:.2f}x from {held:,} to {live:,} at {r.path} ({r.op} "
                    f"{r.detail}, output {size(r.output_shape)}; layer {i + 1} of {total}, within the "
                    "first third of the network): after it, the tensors later layers read hold "
                    f"{live:,} elements, where the representation held {held:,} up to {held_at}. "
                    "Compressing this early loses information later layers cannot recover; keep more "
                    "channels here, or reduce the resolution more gradually (at most 4x per layer)",
                    f"{ratio:.2f}x",
                )
            )
        if live < held:
            held, held_at = live, r.path
    return found
