"""Time whole archcalc processes on 1k- and 10k-layer residual networks, and start-up.

Run: python benchmarks/bench_scale.py [--repeat N] [--blocks 250,2500]
Targets (speed issue): every command under 1.5 s at 10,000 layers, 10k at most 12x the time of
1k; `analyze resnet50 --json` at most 0.15 s more than a bare `python -c pass`.
Figures are the minimum of --repeat runs (the machine is shared, so the minimum is the signal).
Bytecode is cached in a temporary PYTHONPYCACHEPREFIX, as for an installed package (this machine
sets PYTHONDONTWRITEBYTECODE, which makes every run compile archcalc's sources: about 60 ms more).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [["analyze", "--json"], ["analyze"], ["summary"], ["memory"], ["flops"], ["rf"], ["report"]]


def residual_spec(blocks: int) -> str:
    """A spec of `blocks` blocks of conv, batch norm, relu, add: 4 layers each."""
    return f"""name: residual{blocks * 4}
input: [8, 16, 16]
blocks:
  unit:
    layers:
      - {{name: conv, op: conv2d, out: 8, kernel: 3, padding: 1, bias: false}}
      - {{name: bn, op: batchnorm2d}}
      - {{name: relu, op: relu}}
      - {{name: add, op: add, from: [relu, input]}}
layers:
  - {{name: body, block: unit, repeat: {blocks}}}
"""


def best_of(args: list[str], repeat: int, env: dict[str, str]) -> float:
    """Minimum wall-clock seconds of `repeat` whole processes after one warm-up run (output
    discarded, as to a pipe)."""
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--blocks", default="250,2500")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"), ARCHCALC_MAX_LAYERS="1000000")
        bare = best_of([sys.executable, "-c", "pass"], opts.repeat * 3, env)
        resnet = best_of([sys.executable, "-m", "archcalc", "analyze", "specs/resnet50.yaml", "--json"], opts.repeat * 3, env)
        print(f"python -c pass {bare:.3f} s; analyze resnet50 --json {resnet:.3f} s (+{resnet - bare:.3f} s)")
        sizes = [int(b) for b in opts.blocks.split(",")]
        specs = []
        for blocks in sizes:
            path = Path(tmp) / f"residual{blocks * 4}.yaml"
            path.write_text(residual_spec(blocks))
            specs.append(path)
        print("command".ljust(16) + "".join(f"{b * 4:>10,} layers" for b in sizes))
        for command in COMMANDS:
            times = [best_of([sys.executable, "-m", "archcalc", command[0], str(p), *command[1:]], opts.repeat, env) for p in specs]
            ratio = f"  ({times[-1] / times[0]:.1f}x)" if len(times) > 1 else ""
            print(" ".join(command).ljust(16) + "".join(f"{t:>15.2f} s" for t in times) + ratio)


if __name__ == "__main__":
    main()
