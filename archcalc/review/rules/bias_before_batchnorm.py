"""bias-before-batchnorm (info): a convolution or fully connected layer with a bias whose only
reader normalises each channel by its own mean (batch norm) along the bias's axis: the bias is
cancelled."""

from __future__ import annotations

from archcalc.analysis import Analysis
from archcalc.arith import Shape
from archcalc.ops.base import Op, elements
from archcalc.review.rules.base import Finding, finding, integers, listing, output_shapes, rule


def _bias_along_channels(op: Op, output: Shape) -> bool:
    """Whether the bias varies along axis 0 only, the axis batch norm normalises per channel:
    a convolution's (channels first); a fully connected layer's (features last) when its output
    is a feature vector."""
    return op.connectivity == "convolution" or (op.connectivity == "dense" and len(output) == 1)


@rule(
    "bias-before-batchnorm",
    "A bias cancelled by the batch norm that follows",
    "Ioffe & Szegedy, Batch Normalization: Accelerating Deep Network Training by Reducing Internal "
    "Covariate Shift, ICML 2015 (arXiv:1502.03167), §3.2: the bias is cancelled by the mean "
    "subtraction, its role taken by beta",
    severities=("info",),
)
def bias_before_batchnorm(analysis: Analysis) -> list[Finding]:
    """A layer with a bias whose only reader is batch norm over the bias's axis: bias wasted."""
    network = analysis.network
    shapes = output_shapes(analysis)
    layers, wasted = [], 0
    for r in analysis.layers:
        op = network.layer(r.path).op
        if not _bias_along_channels(op, r.output_shape):
            continue
        readers = list(network.readers[r.path])
        if (
            len(readers) != 1
            or r.path == network.output
            or not network.layer(readers[0]).op.normalizes_channels
        ):
            continue
        bias = op.parameters([shapes[i] for i in r.inputs]).get("bias")
        if bias is None or not integers(elements(bias)):
            continue
        layers.append(r.path)
        wasted += elements(bias)
    if not layers:
        return []
    return [
        finding(
            "bias-before-batchnorm",
            "info",
            layers,
            f"{len(layers)} layer(s) feed a batch norm alone and carry a bias it cancels by subtracting "
            f"the mean: {wasted:,} parameters do nothing ({listing(layers)}); set bias: false on them",
            f"{wasted:,} params wasted",
        )
    ]
