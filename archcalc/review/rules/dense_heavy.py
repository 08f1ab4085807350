"""dense-heavy: fully connected layers on the flattened maps holding > 50% of the params; a
warning when the head flattens maps of more than one position (VGG's, AlexNet's), information when
the maps are pooled first (the head of a small mobile network is its width times the classes)."""

from __future__ import annotations

from fractions import Fraction

from archcalc.analysis import Analysis
from archcalc.arith import Shape
from archcalc.ops.base import GLOBAL
from archcalc.review.rules.base import (
    Finding,
    finding,
    integers,
    listing,
    output_shapes,
    positions,
    rule,
    share,
    size,
)

DENSE_SHARE = Fraction(1, 2)  # fully connected layers holding more than this share of params


def _one_position(shape: Shape) -> bool:
    """Whether a linear layer's input is one vector of features (a flattened or pooled map), not
    a map or a token sequence it is applied to position by position (a transformer's MLP)."""
    return all(d == 1 for d in shape[:-1])


@rule(
    "dense-heavy",
    "Fully connected layers hold most of the parameters",
    "Lin, Chen & Yan, Network in Network, ICLR 2014 (arXiv:1312.4400), §3.2: global average "
    "pooling in place of fully connected layers; Szegedy et al., Going Deeper with Convolutions, "
    "CVPR 2015 (arXiv:1409.4842), §5; Simonyan & Zisserman, ICLR 2015 (arXiv:1409.1556), §2.1",
    severities=("warning", "info"),
)
def dense_heavy(analysis: Analysis) -> list[Finding]:
    """Linear layers on the flattened maps (their field is the whole input, their input one vector)
    over all parameters, in networks with convolutions (in a plain multilayer perceptron they
    are the whole design; a transformer's per-token MLP is not a head)."""
    network = analysis.network
    shapes = output_shapes(analysis)
    if not any(layer.op.connectivity == "convolution" for layer in network.layers):
        return []
    dense = [
        r
        for r in analysis.layers
        if network.layer(r.path).op.connectivity == "dense"
        and r.receptive_field == GLOBAL
        and integers(r.params.params)
        and _one_position(shapes[r.inputs[0]])
    ]
    held = sum((r.params.params for r in dense), 0)
    total = analysis.totals.params
    if not dense or not integers(total) or held <= DENSE_SHARE * total:
        return []
    largest = max(dense, key=lambda r: r.params.params)
    features = shapes[largest.inputs[0]][-1]
    rank = len(network.input_shape)
    first = positions(network)[dense[0].path]
    maps = next(
        (r.output_shape for r in reversed(analysis.layers[:first]) if len(r.output_shape) == rank),
        None,
    )
    read = shapes[dense[0].inputs[0]][-1]  # features the first fully connected layer reads
    per_channel = (
        read // maps[0]
        if maps is not None and integers(read, maps[0]) and read % maps[0] == 0
        else 1
    )
    if maps is not None and per_channel > 1:
        severity = "warning"
        advice = (
            f"the head flattens {size(maps)} maps ({per_channel:,} positions per channel); global "
            "average pooling before a single classifier (Network in Network; as ResNet and "
            "GoogLeNet do) would remove most of these parameters. torchvision's VGG and AlexNet "
            "ship this head, as their papers did; GoogLeNet's authors report that average pooling "
            "in its place improved top-1 accuracy by about 0.6% (Szegedy et al. 2015, §5)"
        )
    else:
        severity = "info"
        advice = (
            "the maps are already pooled to one position, so the head's size is its widths' "
            "product, set by the number of classes: usual in small networks (torchvision's "
            "MobileNetV3-Small, ShuffleNetV2 x0.5, MNASNet 0.5); fewer features before it, or a "
            "narrower hidden layer, would shrink it"
        )
    parts = [f"{r.path} {r.params.params:,}" for r in dense]
    return [
        finding(
            "dense-heavy",
            severity,
            [r.path for r in dense],
            f"fully connected layers hold {held:,} of {total:,} parameters ({share(held, total)}): "
            f"{listing(parts)}; the largest, {largest.path}, reads {features:,} features; {advice}",
            f"{share(held, total)} of params",
        )
    ]
