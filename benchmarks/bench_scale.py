"""Time whole archcalc processes: start-up, and 1k- and 10k-layer residual networks.

Run: python benchmarks/bench_scale.py [--repeat N] [--startup N] [--blocks 250,2500] [--all]
Targets (speed issue): `analyze resnet50 --json` at most 0.15 s more than a bare `python -c pass`;
every command under 1.5 s at 10,000 layers, 10k at most 12x the time of 1k.
Start-up is the median of --startup runs of each (wall clock, and CPU time of the process, which
another job on the machine disturbs less); the scale table the minimum of --repeat runs after a
warm-up (the machine is shared, so the minimum is the signal). --all adds graph, compare (two
networks of the size), solve and verify. Bytecode is cached in a temporary PYTHONPYCACHEPREFIX, as
for an installed package (this machine sets PYTHONDONTWRITEBYTECODE, which makes every run
compile archcalc's sources: about 60 ms more).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [["analyze", "--json"], ["analyze"], ["summary"], ["memory"], ["flops"], ["rf"], ["report"]]
MORE = [["graph"], ["compare", "OTHER"], ["solve", "--valid-inputs"], ["verify"]]


def residual_spec(blocks: int, name: str = "residual") -> str:
    """A spec of `blocks` blocks of conv, batch norm, relu, add: 4 layers each."""
    return f"""name: {name}{blocks * 4}
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
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def median_run(args: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of `runs` whole processes after one warm-up run."""
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--startup", type=int, default=20)
    parser.add_argument("--blocks", default="250,2500")
    parser.add_argument("--all", action="store_true", help="also graph, compare, solve and verify")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"), ARCHCALC_MAX_LAYERS="1000000")
        bare = median_run([sys.executable, "-c", "pass"], opts.startup, env)
        resnet = median_run([sys.executable, "-m", "archcalc", "analyze", "specs/resnet50.yaml", "--json"], opts.startup, env)
        print(f"start-up, median of {opts.startup}: wall / CPU seconds")
        print(f"  python -c pass                    {bare[0]:.3f} / {bare[1]:.3f}")
        print(f"  archcalc analyze resnet50 --json  {resnet[0]:.3f} / {resnet[1]:.3f}"
              f"  (+{resnet[0] - bare[0]:.3f} / +{resnet[1] - bare[1]:.3f}; target +0.150)")
        sizes = [int(b) for b in opts.blocks.split(",")]
        specs, others = [], []
        for blocks in sizes:
            for name, paths in (("residual", specs), ("other", others)):
                path = Path(tmp) / f"{name}{blocks * 4}.yaml"
                path.write_text(residual_spec(blocks, name))
                paths.append(path)
        print(f"whole processes, best of {opts.repeat}")
        print("command".ljust(24) + "".join(f"{b * 4:>10,} layers" for b in sizes))
        for command in COMMANDS + (MORE if opts.all else []):
            times = []
            for spec, other in zip(specs, others):
                rest = [str(other) if c == "OTHER" else c for c in command[1:]]
                times.append(best_of([sys.executable, "-m", "archcalc", command[0], str(spec), *rest], opts.repeat, env))
            ratio = f"  ({times[-1] / times[0]:.1f}x)" if len(times) > 1 else ""
            shown = " ".join(c for c in command if c != "OTHER")
            print(shown.ljust(24) + "".join(f"{t:>15.2f} s" for t in times) + ratio)


if __name__ == "__main__":
    main()
