"""Time symbolic analysis (B, H, W as symbols; every figure) and formula export.

Run: python benchmarks/bench_symbolic.py [--spec specs/resnet50.yaml] [--repeat 3]
Target (issue 5): ResNet-50 with B, H, W symbolic, all figures, under 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "resnet50.yaml"))
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    code = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "from archcalc.analysis import analyze\n"
        "from archcalc.symbolic.formula import gather, render\n"
        "from archcalc.spec.graph import load\n"
        "from archcalc.figures.memory import MemoryOptions\n"
        "from archcalc.symbolic.symbols import symbol\n"
        "imported = time.perf_counter()\n"
        "network = load(sys.argv[1], input_shape=(3, 'H', 'W'))\n"
        "analysis = analyze(network, MemoryOptions(batch=symbol('B')))\n"
        "analysed = time.perf_counter()\n"
        "for what in ('shapes', 'params', 'memory', 'flops', 'rf'):\n"
        "    render(gather(analysis, what), 'python')\n"
        "exported = time.perf_counter()\n"
        "print(imported - start, analysed - imported, exported - analysed)\n"
    )
    rows = []
    for _ in range(opts.repeat):  # a fresh process each time: sympy's caches start cold
        out = subprocess.run([sys.executable, "-c", code, opts.spec], check=True, capture_output=True, text=True)
        rows.append([float(v) for v in out.stdout.split()])
    name = Path(opts.spec).stem
    for label, column in (("imports (sympy included)", 0), ("symbolic analysis, all figures", 1), ("export of all five kinds as Python", 2)):
        values = [r[column] for r in rows]
        print(f"{name} {label:36s} median {statistics.median(values):6.2f} s  min {min(values):6.2f} s")


if __name__ == "__main__":
    main()
