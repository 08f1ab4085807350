"""Cross-checking the analysis against the executor: shapes, parameter sizes, activation peak."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archcalc.analysis import Analysis, analyze
from archcalc.errors import OptionError, quote
from archcalc.executor import execute, parameter_sizes
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import Network


@dataclass(frozen=True)
class Mismatch:
    """One figure where the analysis and the run disagree."""

    layer: str
    figure: str
    analysed: str
    measured: str


@dataclass(frozen=True)
class Verification:
    """The analysis, what disagreed, and what the run measured (peak bytes, and per layer the
    output shape and parameter count)."""

    analysis: Analysis
    mismatches: tuple[Mismatch, ...]
    peak_bytes: int
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    peak_layer: str = ""


def verify(
    network: Network,
    *,
    batch: int = 2,
    dtype: str = "float32",
    seed: int = 0,
    max_memory: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Verification:
    """Run the network and compare every layer's shape and parameters, and the peak, with the
    analysis; at batch 2 by default, so a shape that holds only at batch 1 cannot pass."""
    if network.symbolic:
        names = ", ".join(network.symbols)
        raise OptionError(
            f"verify runs real arrays, but {names} ha{'ve' if len(network.symbols) > 1 else 's'} no value: "
            "give values under `symbols` in the spec, or pass --input with numbers (e.g. --input 3,224,224)"
        )
    if batch < 1:
        raise OptionError(f"the batch must be at least 1, got {batch}")
    if dtype not in ("float32", "float64"):
        raise OptionError(f"the executor runs float32 or float64, not {quote(dtype)}")
    analysis = analyze(network, MemoryOptions(batch=batch, dtype=dtype))
    run = execute(network, batch=batch, dtype=dtype, seed=seed, progress=progress, max_memory=max_memory)
    sizes = parameter_sizes(network, run.weights)
    found: list[Mismatch] = []
    for r in analysis.layers:
        if run.shapes[r.path] != tuple(r.output_shape):
            found.append(Mismatch(r.path, "output shape", str(list(r.output_shape)), str(list(run.shapes[r.path]))))
        if sizes.get(r.path, 0) != r.params.params:
            found.append(Mismatch(r.path, "parameters", f"{r.params.params:,}", f"{sizes.get(r.path, 0):,}"))
    peak = analysis.memory.inference_peak
    if run.peak_bytes != peak:
        found.append(Mismatch(run.peak_layer, "inference peak (bytes)", f"{peak:,} at {analysis.memory.peak_layer}", f"{run.peak_bytes:,}"))
    measured = {r.path: sizes.get(r.path, 0) for r in analysis.layers}
    return Verification(analysis, tuple(found), run.peak_bytes, dict(run.shapes), measured, run.peak_layer)
