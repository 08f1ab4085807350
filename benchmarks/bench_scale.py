"""Time whole archcalc processes: start-up, and 1k- and 10k-layer residual networks.

Run: python benchmarks/bench_scale.py [--repeat N] [--startup N] [--blocks 250,2500] [--all]
     [--against DIR]
Targets (speed issue): `analyze resnet50 --json` at most 0.15 s more than a bare `python -c pass`;
every command under 1.5 s at 10,000 layers, 10k at most 12x the time of 1k.
Start-up is the median of --startup runs of each (wall clock, and CPU time of the process, which
another job on the machine disturbs less); the scale table the minimum of --repeat runs after a
warm-up (the machine is shared, so the minimum is the signal). --all adds graph, compare (two
networks of the size), solve and verify. --against DIR runs another checkout (say
`git archive fc5c005 | tar -x -C /tmp/base`) run for run with this one, so both see the same load
on a shared machine, and shows both with CPU times. Bytecode is cached in a temporary PYTHONPYCACHEPREFIX, as
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


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one whole process, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def runs(args: list[str], trees: list[Path], count: int, env: dict[str, str]) -> list[list[tuple[float, float]]]:
    """Per tree, `count` timed runs of `args` after one warm-up each, the trees taking turns."""
    for tree in trees:
        timed(args, tree, env)
    found: list[list[tuple[float, float]]] = [[] for _ in trees]
    for _ in range(count):
        for times, tree in zip(found, trees):
            times.append(timed(args, tree, env))
    return found


def best(times: list[tuple[float, float]]) -> tuple[float, float]:
    return min(w for w, _ in times), min(c for _, c in times)


def median(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in times), statistics.median(c for _, c in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--startup", type=int, default=20)
    parser.add_argument("--blocks", default="250,2500")
    parser.add_argument("--all", action="store_true", help="also graph, compare, solve and verify")
    parser.add_argument("--against", type=Path, default=None, help="another checkout, timed run for run with this one")
    opts = parser.parse_args()
    trees = [ROOT] if opts.against is None else [opts.against.resolve(), ROOT]
    names = ["this tree"] if opts.against is None else [str(opts.against), "this tree"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"), ARCHCALC_MAX_LAYERS="1000000")
        bare, *resnets = runs([sys.executable, "-c", "pass"], [ROOT], opts.startup, env) + runs(
            [sys.executable, "-m", "archcalc", "analyze", "specs/resnet50.yaml", "--json"], trees, opts.startup, env
        )
        print(f"start-up, median of {opts.startup}: wall / CPU seconds")
        b = median(bare)
        print(f"  python -c pass{'':36}{b[0]:.3f} / {b[1]:.3f}")
        for name, times in zip(names, resnets):
            w, c = median(times)
            print(f"  analyze resnet50 --json, {name:24}{w:.3f} / {c:.3f}  (+{w - b[0]:.3f} / +{c - b[1]:.3f}; target +0.150)")
        sizes = [int(b) for b in opts.blocks.split(",")]
        specs, others = [], []
        for blocks in sizes:
            for name, paths in (("residual", specs), ("other", others)):
                path = Path(tmp) / f"{name}{blocks * 4}.yaml"
                path.write_text(residual_spec(blocks, name))
                paths.append(path)
        print(f"whole processes, best of {opts.repeat}: wall seconds" + ("" if opts.against is None else " (CPU seconds)"))
        print("command".ljust(24) + "".join(f"{b * 4:>10,} layers" for b in sizes))
        for command in COMMANDS + (MORE if opts.all else []):
            per_size = []
            for spec, other in zip(specs, others):
                rest = [str(other) if c == "OTHER" else c for c in command[1:]]
                per_size.append([best(t) for t in runs([sys.executable, "-m", "archcalc", command[0], str(spec), *rest], trees, opts.repeat, env)])
            shown = " ".join(c for c in command if c != "OTHER")
            for k, name in enumerate(names):
                cells = [t[k] for t in per_size]
                ratio = f"  ({cells[-1][0] / cells[0][0]:.1f}x)" if len(cells) > 1 else ""
                label = shown if opts.against is None else f"{shown}, {'before' if k == 0 else 'after'}"
                extra = (lambda c: "") if opts.against is None else (lambda c: f" ({c:.2f})")
                print(label.ljust(24) + "".join(f"{w:>10.2f} s{extra(c)}" for w, c in cells) + ratio)


if __name__ == "__main__":
    main()
