"""Time numeric analysis (load, expand, analyse) of zoo specs in-process, and CLI start-up.

Run: python benchmarks/bench_analysis.py [--repeat N]
Target (issue 2): ResNet-50 under 50 ms in-process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from archcalc.analysis import analyze
from archcalc.spec.graph import load

SPECS = Path(__file__).resolve().parent.parent / "specs"


def time_analysis(spec: Path, repeat: int) -> list[float]:
    """Wall-clock seconds of each complete load-expand-analyse run."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        analyze(load(str(spec)))
        times.append(time.perf_counter() - start)
    return times


def time_cli(args: list[str], repeat: int) -> list[float]:
    """Wall-clock seconds of whole `archcalc` processes (interpreter start included)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archcalc", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    opts = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {opts.repeat} runs each (median, min) in ms")
    for name in ("resnet18", "resnet50", "vgg16", "alexnet"):
        times = time_analysis(SPECS / f"{name}.yaml", opts.repeat)
        print(f"analysis {name:9s} median {statistics.median(times) * 1e3:7.2f}  min {min(times) * 1e3:7.2f}")
    spec = str(SPECS / "resnet50.yaml")
    for args in (["analyze", spec, "--json"], ["summary", spec]):
        times = time_cli(args, max(3, opts.repeat // 10))
        print(f"cli {' '.join(args[:1] + args[2:]):22s} median {statistics.median(times) * 1e3:7.1f}  min {min(times) * 1e3:7.1f}")


if __name__ == "__main__":
    main()
