"""large-kernel (info): a stride-1, undilated k x k convolution (k odd, >= 5) whose stack of
(k-1)/2 3x3 convolutions (same field, first in->out, then out->out, same groups) has fewer weights.
Strided and dilated kernels are skipped: the stack would not keep their field."""

from __future__ import annotations

from archcalc.analysis import Analysis
from archcalc.review.rules.base import (
    Finding,
    convolution_window,
    finding,
    integers,
    listing,
    output_shapes,
    rule,
    share,
)


@rule(
    "large-kernel",
    "A large stride-1 convolution a stack of 3x3 convolutions would do with fewer weights",
    "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, "
    "ICLR 2015 (arXiv:1409.1556), §2.3: a stack of 3x3 convolutions in place of a larger kernel; "
    "Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016 "
    "(arXiv:1512.00567), §3.1: a 5x5 convolution factorized into two 3x3",
    severities=("info",),
)
def large_kernel(analysis: Analysis) -> list[Finding]:
    """Weights of a k^D kernel (PyTorch's shape: out, in/g, *k), out*(in/g)*k^D, against a stack
    of n = (k-1)/2 3^D kernels: 3^D * (out*(in/g) + (n-1)*out*(out/g)) (first in->out, then
    out->out, same groups)."""
    shapes = output_shapes(analysis)
    network = analysis.network
    lines, layers, skipped = [], [], []
    saved_total = 0
    for r in analysis.layers:
        op = network.layer(r.path).op
        window = convolution_window(op)
        if window is None:
            continue
        k = window.kernel_size[0]
        if k < 5 or any(x != k for x in window.kernel_size):
            continue
        kernel = "x".join([str(k)] * len(window.kernel_size))
        if (
            any(s != 1 for s in window.strides)
            or any(d != 1 for d in window.dilations)
            or k % 2 == 0
        ):
            why = (
                "strided"
                if any(s != 1 for s in window.strides)
                else "dilated"
                if any(d != 1 for d in window.dilations)
                else "even"
            )
            skipped.append(f"{r.path} ({kernel} {why})")
            continue
        cin = shapes[r.inputs[0]][0]
        cout, per_group = op.parameters([shapes[i] for i in r.inputs])["weight"][
            :2
        ]  # (out, in/g, *k)
        if not integers(cin, cout):
            continue
        g = cin // per_group
        taps = 3 ** len(window.kernel_size)
        single = cout * (cin // g) * k ** len(window.kernel_size)
        depth = (k - 1) // 2
        stack = taps * (cout * (cin // g) + (depth - 1) * cout * (cout // g))
        if stack >= single:
            continue
        widths = "->".join([f"{cin}"] + [f"{cout}"] * depth)
        grouped = f", groups {g}" if g != 1 else ""
        lines.append(
            f"{r.path} {kernel} {cin}->{cout}{grouped}: {single:,} weights; {depth} 3x3 ({widths}): "
            f"{stack:,} ({single - stack:,} fewer, {share(single - stack, single)})"
        )
        layers.append(r.path)
        saved_total += single - stack
    if not layers:
        return []
    note = (
        f" Not considered: {listing(skipped, 3)} (a stack of 3x3 would not keep a strided, dilated or even kernel's field)."
        if skipped
        else ""
    )
    return [
        finding(
            "large-kernel",
            "info",
            layers,
            f"{len(layers)} stride-1 convolution(s) with large kernels can be stacks of 3x3 "
            f"convolutions with the same receptive field and width, with {saved_total:,} fewer weights "
            f"in all: {listing(lines)}. Assumed: the stack keeps the groups, maps in->out first and "
            "out->out after; weights only (biases, and the activations the stack adds between its "
            f"convolutions, not counted).{note}",
            f"{saved_total:,} fewer weights",
        )
    ]
