"""dilation-gridding (warning): dilated convolutions that read each other's output through
spatially pointwise layers only, whose rates share a factor > 1."""

from __future__ import annotations

import math
from itertools import groupby

from archcalc.analysis import Analysis
from archcalc.errors import ArchcalcError
from archcalc.ops.base import GLOBAL, Window
from archcalc.review.rules.base import (
    Chains,
    Finding,
    convolution_window,
    finding,
    output_shapes,
    positions,
    rule,
)
from archcalc.spec.graph import INPUT


def _ordinal(n: str) -> str:
    """`2nd`, `3rd`, `4th`; `2x3` (per axis) as it is, with `th`."""
    if not n.isdigit() or n.endswith(("11", "12", "13")):
        return f"{n}th"
    return n + {"1": "st", "2": "nd", "3": "rd"}.get(n[-1], "th")


def _runs(values: list[str]) -> str:
    """`2 (x23), 4 (x3)`: equal neighbours counted."""
    groups = [(v, len(list(g))) for v, g in groupby(values)]
    return ", ".join(f"{v} (x{c})" if c != 1 else v for v, c in groups)


@rule(
    "dilation-gridding",
    "Consecutive dilated convolutions whose rates share a common factor",
    "Wang et al., Understanding Convolution for Semantic Segmentation, WACV 2018 "
    "(arXiv:1702.08502), §3.2 hybrid dilated convolution (HDC); Yu, Koltun & Funkhouser, Dilated "
    "Residual Networks, CVPR 2017 (arXiv:1705.09914), §4 gridding artifacts; Yu & Koltun, "
    "Multi-Scale Context Aggregation by Dilated Convolutions, ICLR 2016 (arXiv:1511.07122)",
    severities=("warning",),
)
def dilation_gridding(analysis: Analysis) -> list[Finding]:
    """Links dilated convolution A -> B when B reads A's output through spatially pointwise layers
    only (element-wise ops, merges, 1x1 stride-1 windows) and gcd(rate_A, rate_B) > 1 on an axis;
    each group of linked convolutions is one finding."""
    network = analysis.network
    shapes = output_shapes(analysis)
    dilated = {}
    for layer in network.layers:
        window = convolution_window(layer.op)
        if window is not None and any(
            d > 1 and k > 1 for d, k in zip(window.dilations, window.kernel_size)
        ):
            dilated[layer.path] = window.dilations
    if len(dilated) < 2:
        return []
    pointwise: dict[str, bool] = {}

    def is_pointwise(path: str) -> bool:
        if path not in pointwise:
            layer = network.layer(path)
            try:
                step = layer.op.receptive_step([shapes[i] for i in layer.inputs])
            except ArchcalcError:
                step = GLOBAL
            pointwise[path] = step is None or (
                isinstance(step, Window)
                and all(s == 1 for s in step.spans)
                and all(s == 1 for s in step.strides)
            )
        return pointwise[path]

    def previous(path: str) -> set[str]:
        """The nearest spatial (not pointwise) layers whose output reaches `path`'s inputs."""
        found, seen = set(), set()
        stack = list(network.layer(path).inputs)
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            if p != INPUT and is_pointwise(p):
                stack.extend(network.layer(p).inputs)
            else:
                found.add(p)
        return found

    groups = Chains()
    for b, rates_b in dilated.items():
        for a in previous(b):
            if a in dilated and any(math.gcd(x, y) > 1 for x, y in zip(dilated[a], rates_b)):
                groups.link(a, b)
    found = []
    for members in groups.groups(positions(network)):
        factors = tuple(math.gcd(*axis) for axis in zip(*(dilated[m] for m in members)))
        rates = [
            ("x".join(map(str, dilated[m])) if len(set(dilated[m])) > 1 else str(dilated[m][0]))
            for m in members
        ]
        if any(f > 1 for f in factors):
            factor = "x".join(map(str, factors)) if len(set(factors)) > 1 else str(factors[0])
            holes = (
                f"a unit of the last reads, through the chain, only every {_ordinal(factor)} "
                "position of the feature map entering the chain on each axis (1 in "
                f"{math.prod(factors)} positions)"
            )
        else:
            factor = "pairwise"
            holes = "each linked pair reads only a sub-grid of the map the first of them reads"
        found.append(
            finding(
                "dilation-gridding",
                "warning",
                members,
                f"{len(members)} consecutive dilated convolutions from {members[0]} to {members[-1]} have "
                f"dilation rates {_runs(rates)} with the common factor {factor}: {holes}, so local "
                "detail is lost in a checkerboard pattern (gridding); use rates without a common factor "
                "in each group, e.g. 1, 2, 5 repeated (hybrid dilated convolution). A warning even in "
                "torchvision's FCN, DeepLabV3 and LR-ASPP, whose backbones trade their last strides for "
                "dilation: Wang et al. 2018 (§3.2) name this the gridding issue in such a backbone and "
                "Yu et al. 2017 (§4) show its artifacts in dilated ResNets, at the cost of the fine "
                "detail segmentation needs",
                f"common factor {factor}",
            )
        )
    return found
