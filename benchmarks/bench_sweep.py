"""Time sweeps of one million grid points on ResNet-50: the symbolic analysis and compilation
(once per sweep), the evaluation over the grid, the numeric check of the corners, and writing
the CSV; against that, the numeric engine's cost per point.

Run: python benchmarks/bench_sweep.py [--repeat N]
Target (issue 5): evaluating a million points in under 2 s.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.symbolic.sweep import (
    check_corners,
    compile_figure,
    evaluate,
    parse_range,
    parse_shape,
    write_csv,
)

SPEC = str(Path(__file__).resolve().parent.parent / "specs" / "resnet50.yaml")

# (batch, input) grids of 1,000,000 points each
GRIDS = [
    ("1..1000", "3,64..1063,224"),  # batch x height
    ("32", "3,1..1000,1..1000"),  # height x width
    ("1..100", "3,101..200,101..200"),  # batch x height x width
]
FIGURES = [("memory", True), ("memory", False), ("flops", True)]


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Seconds of the first of `repeat` calls and their median, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    _, per_point, _ = timed(lambda: analyze(load(SPEC, input_shape=(3, 97, 225)), MemoryOptions(7)), opts.repeat)
    print(f"python {sys.version.split()[0]}; ResNet-50; seconds, median of {opts.repeat} runs")
    print("(compile: symbolic analysis and lambdify, first run (cold sympy caches) / median; total: compile + evaluate + check)")
    print(f"numeric engine, one point: {per_point * 1e3:.1f} ms (a million points: {per_point * 1e6 / 3600:.1f} h)")
    print(f"{'batch':>8} {'input':>20} {'figure':>9} {'points':>9} {'compile':>11} {'evaluate':>8} {'check':>6} {'total':>6} {'csv':>6}")
    for batch, shape in GRIDS:
        for what, train in FIGURES:
            figure = what if what == "flops" else ("training" if train else "inference")

            batches, sizes = parse_range(batch, "--batch"), parse_shape(shape)
            cold, compile_time, f = timed(
                lambda: compile_figure(SPEC, batches, sizes, what=what, train=train), opts.repeat  # noqa: B023
            )
            _, evaluate_time, result = timed(lambda: evaluate(f), opts.repeat)  # noqa: B023
            _, check_time, _ = timed(lambda: check_corners(f, result), opts.repeat)  # noqa: B023
            _, csv_time, _ = timed(lambda: write_csv(result, io.StringIO()), 1)  # noqa: B023
            total = compile_time + evaluate_time + check_time
            print(
                f"{batch:>8} {shape:>20} {figure:>9} {result.points:>9,} {cold:5.2f}/{compile_time:5.2f} "
                f"{evaluate_time:8.3f} {check_time:6.2f} {total:6.2f} {csv_time:6.2f}"
            )
    print("whole `archcalc sweep` process (interpreter start-up and imports included), table output:")
    for batch, shape in GRIDS:
        for flag in ("--train", "--infer"):
            args = [sys.executable, "-m", "archcalc", "sweep", SPEC, "--batch", batch, "--input", shape, flag]
            _, wall, _ = timed(lambda: subprocess.run(args, check=True, capture_output=True), opts.repeat)  # noqa: B023
            print(f"{batch:>8} {shape:>20} {flag:>8} {wall:6.2f}")


if __name__ == "__main__":
    main()
