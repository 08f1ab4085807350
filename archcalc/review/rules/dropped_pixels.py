"""dropped-pixels: floor-rounding windows whose last window stops short of their input's end,
leftover = (n + before + after - span) mod stride > after, per axis, and the nearest input size
(>= the spec's) at which no layer drops any. A warning when some layer leaves at least 1 in 20 of
its input's rows unread and no other layer reading that input reads them; otherwise information
(ResNet's 1x1 stride-2 projections, whose rows the strided 3x3 beside them reads)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from archcalc.analysis import Analysis
from archcalc.errors import ArchcalcError
from archcalc.figures.dropped_pixels import PROBES, AxisProgram, Drop, nearest_clean, period
from archcalc.ops.base import Window
from archcalc.review.rules.base import (
    Finding,
    finding,
    integers,
    listing,
    output_shapes,
    rule,
    size,
)

UNREAD_SHARE = Fraction(1, 20)  # rows of a map no layer reads, from this share on: a warning


@dataclass(frozen=True)
class _AxisDrops:
    """What one input axis loses at the spec's size, and the nearest size that loses nothing."""

    axis: int
    drops: tuple[Drop, ...]
    nearest: int | None
    period: int
    searched: int  # sizes n .. n + searched - 1 were tried (the period, or PROBES)


def _reader_of_rest(analysis: Analysis, drop: Drop, drops: tuple[Drop, ...]) -> str | None:
    """Another layer reading the same input that reads more of it (drops fewer rows, or none,
    itself and after the element-wise and 1x1 stride-1 layers it feeds): the rows `drop` leaves
    unread still reach the network through it."""
    network = analysis.network
    shapes = output_shapes(analysis)
    dropped = {d.path: d.lost for d in drops}

    def reads_on(path: str) -> bool:
        if dropped.get(path, 0) >= drop.lost:
            return False
        layer = network.layer(path)
        try:
            step = layer.op.receptive_step([shapes[i] for i in layer.inputs])
        except ArchcalcError:
            return True
        pointwise = step is None or (
            isinstance(step, Window) and all(x == 1 for x in (*step.spans, *step.strides))
        )
        readers = network.readers[path]
        return not pointwise or not readers or any(reads_on(r) for r in readers)

    for source in network.layer(drop.path).inputs:
        for other in network.readers[source]:
            if other != drop.path and reads_on(other):
                return other
    return None


_AXES = {
    1: [("length", "positions")],
    2: [("height", "rows"), ("width", "columns")],
    3: [("depth", "slices"), ("height", "rows"), ("width", "columns")],
}


@rule(
    "dropped-pixels",
    "Strided layers that leave trailing rows or columns of their input unread",
    "PyTorch documentation, torch.nn.Conv2d, section Shape (H_out = floor((H_in + 2 padding - "
    "dilation (kernel_size - 1) - 1) / stride + 1): input past the last window is never read); "
    "Araujo, Norris & Sim, Computing Receptive Fields of Convolutional Neural Networks, Distill "
    "2019 (doi:10.23915/distill.00021), section Computing receptive field region in input image",
    severities=("warning", "info"),
)
def dropped_pixels(analysis: Analysis) -> list[Finding]:
    """Per axis: windows with (m + before + after - span) mod stride > after at the spec's size,
    and the nearest input size, searched over one period of the effective strides, that loses none."""
    network = analysis.network
    spatial = len(network.input_shape) - 1
    if spatial not in _AXES or not integers(*network.input_shape):
        return []
    results: list[_AxisDrops] = []
    for axis in range(1, spatial + 1):
        program = AxisProgram(network, axis)
        n = network.input_shape[axis]
        drops = program.run(n)
        if not drops:
            continue
        cycle = period(network, axis)
        searched = min(cycle, PROBES)
        nearest = nearest_clean(program, n + 1, searched)
        results.append(_AxisDrops(axis, tuple(drops), nearest, cycle, searched))
    found = []
    for result in results:
        same = [r.axis for r in results if (r.drops, r.nearest) == (result.drops, result.nearest)]
        if same[0] != result.axis:
            continue  # reported with the first axis that drops the same
        names = " and ".join(_AXES[spatial][a - 1][0] for a in same)
        unit = " or ".join(_AXES[spatial][a - 1][1] for a in same)
        n, dropped, cycle = network.input_shape[result.axis], result.drops, result.period
        paths = {d.path for d in dropped}
        detail = {r.path: f"{r.op} {r.detail}".strip() for r in analysis.layers if r.path in paths}
        read_by = {d.path: _reader_of_rest(analysis, d, dropped) for d in dropped}
        items = [
            f"{d.path} ({detail[d.path]} on {d.size}: the last {d.lost} unread"
            + (f", read by {read_by[d.path]}" if read_by[d.path] else "")
            + ")"
            for d in dropped
        ]
        lost = [d for d in dropped if read_by[d.path] is None]
        serious = [d for d in lost if d.lost >= UNREAD_SHARE * d.size]
        if not lost:
            weight = (
                "each of these rows is read by another layer on the same input (a parallel path), "
                "so the network loses nothing: by design in torchvision's ResNet, whose 1x1 "
                "stride-2 projection skips every other row anyway and sits beside a 3x3 stride-2 "
                "convolution that reads them all"
            )
        elif not serious:
            weight = (
                "no other layer reads these rows, but each layer loses less than 1 in "
                f"{UNREAD_SHARE.denominator} of its input's {unit}, so this is information, not a defect"
            )
        else:
            worst = max(serious, key=lambda d: Fraction(d.lost, d.size))
            weight = (
                f"no other layer reads them, and {worst.path} loses {worst.lost} of {worst.size} "
                f"{unit} ({100 * worst.lost / worst.size:.1f}%): content at the end of the input "
                "never reaches the output"
            )
        if result.nearest is None and result.searched < cycle:
            advice = (
                f"no size from {n} to {n + result.searched - 1} avoids it (sizes round alike only "
                f"every {cycle:,}, too many to try): change these layers' padding or kernel"
            )
            figure = f"{len(dropped)} layer(s); no clean size nearby"
        elif result.nearest is None:
            advice = (
                f"no size from {n} to {n + cycle - 1} avoids it, and sizes round alike every "
                f"{cycle}, so no larger one does: change these layers' padding or kernel"
            )
            figure = f"{len(dropped)} layer(s); no clean size"
        else:
            advice = (
                f"the nearest size >= {n} at which no layer drops any is {result.nearest} "
                f"(sizes round alike every {cycle})"
            )
            figure = f"{len(dropped)} layer(s); nearest clean size {result.nearest}"
        found.append(
            finding(
                "dropped-pixels",
                "warning" if serious else "info",
                [d.path for d in dropped],
                f"at input {size(network.input_shape[1:])}, on the {names}, {len(dropped)} strided layer(s) "
                f"leave the last {unit} of their input unread (the floor in the output size): "
                f"{listing(items)}; {weight}; {advice}",
                figure,
            )
        )
    return found
