"""dropped-pixels (warning): floor-rounding windows whose last window stops short of their input's
end, leftover = (n + before + after - span) mod stride > after, per axis, and the nearest input
size (>= the spec's) at which no layer drops any."""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.analysis import Analysis
from archcalc.figures.dropped_pixels import PROBES, AxisProgram, Drop, nearest_clean, period
from archcalc.review.rules.base import Finding, finding, integers, listing, rule, size


@dataclass(frozen=True)
class _AxisDrops:
    """What one input axis loses at the spec's size, and the nearest size that loses nothing."""

    axis: int
    drops: tuple[Drop, ...]
    nearest: int | None
    period: int
    searched: int  # sizes n .. n + searched - 1 were tried (the period, or PROBES)


_AXES = {
    1: [("length", "positions")],
    2: [("height", "rows"), ("width", "columns")],
    3: [("depth", "slices"), ("height", "rows"), ("width", "columns")],
}


@rule(
    "dropped-pixels",
    "Strided layers that leave trailing rows or columns of their input unread",
    "torch.nn.Conv2d documentation (output size floor((n + 2p - d(k-1) - 1)/s) + 1: trailing input "
    "no window reaches is lost); course deck 001, the output-size formula with floor; "
    "Araujo, Norris & Sim 2019",
    severities=("warning",),
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
        items = [
            f"{d.path} ({detail[d.path]} on {d.size}: the last {d.lost} unread)" for d in dropped
        ]
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
                "warning",
                [d.path for d in dropped],
                f"at input {size(network.input_shape[1:])}, on the {names}, {len(dropped)} strided layer(s) "
                f"leave the last {unit} of their input unread (the floor in the output size): "
                f"{listing(items)}; {advice}",
                figure,
            )
        )
    return found
