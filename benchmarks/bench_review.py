"""Time the design review: `review(analysis)` alone, and load + analyse + review, on the largest
zoo specs (ResNet-152: 515 layers, DenseNet-201: 707).

Run: python benchmarks/bench_review.py [--repeat N]
Target: review alone under 300 ms per model; load + analyse + review of both well under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from archcalc.analysis import analyze
from archcalc.review.findings import RULES, review
from archcalc.spec.graph import load

SPECS = Path(__file__).resolve().parent.parent / "specs"
MODELS = ("resnet152", "densenet201")


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of each call of `run`."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def load_analyse_review(spec: str) -> None:
    review(analyze(load(spec)))


def ms(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1e3:7.2f}  min {min(times) * 1e3:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    opts = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {opts.repeat} runs each (median, min) in ms")
    whole = 0.0
    for name in MODELS:
        spec = str(SPECS / f"{name}.yaml")
        analysis = analyze(load(spec))
        print(f"{name} ({len(analysis.layers)} layers): {len(review(analysis))} findings")
        print(f"  review            {ms(timed(partial(review, analysis), opts.repeat))}")
        for rule in RULES.values():
            print(f"    {rule.id:28s}{ms(timed(partial(rule.check, analysis), opts.repeat))}")
        everything = timed(partial(load_analyse_review, spec), opts.repeat)
        whole += statistics.median(everything)
        print(f"  load+analyse+review {ms(everything)}")
    print(f"both, load+analyse+review (sum of medians): {whole * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
