"""Executor speed against the machine's matmul roofline (and PyTorch's CPU forward, if installed).

Run: python benchmarks/bench_executor.py [--spec specs/resnet18.yaml] [--batch 8] [--repeat 3]
Target (issue 4): convolution layers at >= 40% of the roofline (a large float32 numpy.matmul).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from archcalc.analysis import analyze
from archcalc.executor import execute, random_weights
from archcalc.spec.graph import load

ROOT = Path(__file__).resolve().parent.parent


def matmul_roofline(n: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of a large float32 square matmul: what this machine's BLAS can do."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def timed_run(network, weights, batch: int) -> tuple[float, dict[str, float]]:
    """Total seconds and seconds per layer of one forward pass."""
    stamps: dict[str, float] = {}
    start = time.perf_counter()
    execute(network, batch=batch, weights=weights, progress=lambda i, n, path: stamps.__setitem__(path, time.perf_counter()))
    total = time.perf_counter() - start
    per_layer, previous = {}, start
    for path, stamp in stamps.items():
        per_layer[path] = stamp - previous
        previous = stamp
    return total, per_layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "resnet18.yaml"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    network = load(opts.spec)
    analysis = analyze(network)
    weights = random_weights(network)
    roofline = matmul_roofline()
    runs = [timed_run(network, weights, opts.batch) for _ in range(opts.repeat)]
    best_total, per_layer = min(runs, key=lambda r: r[0])
    flops = opts.batch * analysis.totals.flops
    conv = [r for r in analysis.layers if r.op.startswith("conv")]
    conv_time = sum(per_layer[r.path] for r in conv)
    conv_flops = opts.batch * sum(r.flops.flops for r in conv)
    print(f"{network.name}, batch {opts.batch}, input {list(network.input_shape)}, float32, {opts.repeat} runs")
    print(f"matmul roofline:      {roofline:7.1f} GFLOP/s (2048^3 float32 numpy.matmul)")
    print(f"forward (best):       {best_total * 1e3:7.1f} ms, median {statistics.median(r[0] for r in runs) * 1e3:.1f} ms")
    print(f"whole network:        {flops / best_total / 1e9:7.1f} GFLOP/s = {flops / best_total / 1e9 / roofline:.0%} of roofline")
    print(f"convolution layers:   {conv_flops / conv_time / 1e9:7.1f} GFLOP/s = {conv_flops / conv_time / 1e9 / roofline:.0%} of roofline ({conv_time * 1e3:.1f} ms)")
    try:
        import torch
        import torchvision
    except ImportError:
        print("torch: not installed (pip install torch torchvision to compare)")
        return
    name = network.name
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(opts.batch, *network.input_shape)
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(opts.repeat):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    print(f"torch {torch.__version__} CPU forward: {min(times) * 1e3:7.1f} ms on {torch.get_num_threads()} threads; "
          f"archcalc/torch time ratio {best_total / min(times):.2f}")


if __name__ == "__main__":
    main()
