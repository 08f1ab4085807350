"""The JSON documents of the commands whose output is otherwise a table (summary, memory, flops,
solve, verify, zoo), and the one writer every `--json` prints with.

Keys are the `analyze --json` contract's (analysis.to_json): a layer's fields come from the same
figures' `layer_json`, a memory block is figures.memory.memory_json, totals are the declared
totals' keys. Each document's JSON Schema is archcalc/schemas/COMMAND.json (docs/json.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from archcalc.analysis import constraints_json, figure_fields, head_json, totals_json
from archcalc.figures import FIGURES
from archcalc.figures.figure import plain
from archcalc.figures.flops import TRAINING_STEP_FACTOR
from archcalc.figures.memory import Linear, MemoryOptions, batch_total, largest_batch, memory_json
from archcalc.figures.params import parameter_counts
from archcalc.figures.shapes import Constraint, output_shapes
from archcalc.figures.training import StepFlops, training_json
from archcalc.spec.blocks import Blocks

if TYPE_CHECKING:
    from archcalc.analysis import Analysis, LayerResult
    from archcalc.spec.graph import Network
    from archcalc.symbolic.solve import AxisSolution, Fit
    from archcalc.verify import Verification


def dumps(document: Any) -> str:
    """The text every --json prints: two-space indented JSON and a newline, as analyze --json."""
    return json.dumps(document, indent=2) + "\n"


def _fields(row: LayerResult, analysis: Analysis, figures: tuple[str, ...]) -> dict[str, Any]:
    """One layer's name, op and the named figures' JSON fields, as in analyze --json's layers."""
    return {"name": row.path, "op": row.op, **figure_fields(row, analysis, figures)}


SUMMARY_FIGURES = ("shapes", "params")


def summary_json(analysis: Analysis, depth: int | None = None) -> dict[str, Any]:
    """summary --json: shapes and parameters per row (a layer, or a block folded at `depth`:
    parameters and buffers summed, its last layer's output shape, trainable unless all frozen)."""
    rows: list[dict[str, Any]] = []
    for group in Blocks(analysis.network.blocks).fold(analysis.layers, depth):
        members = group.members
        if not group.folded:
            rows.append({**_fields(members[0], analysis, SUMMARY_FIGURES), "block": False, "detail": members[0].detail, "layers": [members[0].path]})
            continue
        rows.append({
            "name": group.name,
            "op": group.kind,
            "output_shape": plain(members[-1].output_shape),
            "params": plain(sum((r.params.params for r in members), 0)),
            "trainable": not all(r.params.frozen for r in members),
            "buffers": plain(sum((r.params.buffers for r in members), 0)),
            "block": True,
            "detail": "",
            "layers": [r.path for r in members],
        })
    return {
        **head_json(analysis),
        "depth": depth,
        "constraints": constraints_json(analysis.constraints),
        "totals": totals_json(analysis, SUMMARY_FIGURES),
        "layers": rows,
    }


def fit_json(budget: int, total: Linear, batch: Any, train: bool) -> dict[str, Any]:
    """The largest batch that fits `budget` bytes: fixed + batch * per_example <= budget."""
    return {
        "budget": budget,
        "mode": "training" if train else "inference",
        "fixed": plain(total.fixed),
        "per_example": plain(total.per_example),
        "batch": plain(batch),
        "batch_at_defaults": None,
        "given_batch": None,
        "square_input": None,
    }


def fit_document(network: Network, options: MemoryOptions, budget: int, train: bool, reserve: int = 0) -> dict[str, Any]:
    """memory --fit's `fit`: the largest batch (figures.memory.largest_batch), or in symbolic
    mode the formula symbolic.solve.fit derives, in the budget less `reserve` (--reserve)."""
    from archcalc.options import usable_budget

    usable = usable_budget(budget, reserve)
    shapes = output_shapes(network)
    counts = parameter_counts(network, shapes)
    if network.symbolic:
        from archcalc.symbolic.solve import fit

        found = solved_fit_json(fit(network, shapes, counts, options, usable, train), train)
    else:
        batch = largest_batch(network, shapes, counts, options, usable, train)
        found = fit_json(usable, batch_total(network, shapes, counts, options, train), batch, train)
    return {**found, "budget": budget, "reserve": reserve}


def solved_fit_json(found: Fit, train: bool) -> dict[str, Any]:
    """A budget solved in symbolic mode: the largest batch as a formula in the input's sizes (and
    its value at the spec's sizes), and at the given batch the largest square input."""
    return {
        **fit_json(found.budget, Linear(found.fixed, found.per_example), found.batch, train),
        "batch_at_defaults": found.batch_at_defaults,
        "given_batch": found.given_batch,
        "square_input": found.square_input,
        **({"input_limit": found.limit} if found.limit is not None else {}),
        **({"curve": [{"length": n, "batch": b} for n, b in found.curve]} if found.curve else {}),
    }


def memory_document(analysis: Analysis, train: bool, fit: dict[str, Any] | None = None) -> dict[str, Any]:
    """memory --json: analyze's memory block, the inference total, and what --fit found (or null)."""
    m = analysis.memory
    return {
        **head_json(analysis),
        "mode": "training" if train else "inference",
        "memory": memory_json(m),
        "inference_total": plain(m.inference_total),
        "fit": fit,
    }


def flops_json(analysis: Analysis) -> dict[str, Any]:
    """flops --json: per-example MACs, FLOPs and element-wise work per layer and in total, the
    FLOPs at the batch and the training step's estimate (TRAINING_STEP_FACTOR x forward)."""
    batch = analysis.options.batch
    return {
        **head_json(analysis),
        "batch": plain(batch),
        "totals": totals_json(analysis, ("flops",)),
        "flops_at_batch": plain(batch * analysis.total("flops")),
        "training_step_factor": TRAINING_STEP_FACTOR,
        "training_step_flops": plain(TRAINING_STEP_FACTOR * batch * analysis.total("flops")),
        "training": training_json(analysis),
        "layers": [{**_fields(r, analysis, ("flops",)), **_step_fields(r.values["training_flops"])} for r in analysis.layers],
    }


def _step_fields(f: StepFlops) -> dict[str, Any]:
    """A layer's FLOPs in a training step (figures.training): backward and recomputation."""
    return {"backward_flops": plain(f.backward), "recomputation_flops": plain(f.recomputation)}


def solve_json(name: str, solutions: list[AxisSolution], constraints: Iterable[Constraint] = ()) -> dict[str, Any]:
    """solve --json: per spatial axis, sizes as residue classes size = modulus*k + r."""
    return {
        "name": name,
        "axes": [
            {
                "name": s.name,
                "smallest_valid": s.smallest,
                "modulus": s.modulus,
                "valid_residues": list(s.valid),
                "no_drop_residues": list(s.residues),
                "size": s.at_size,
                "dropping": [{"layer": d.path, "size": d.size, "lost": d.lost} for d in s.dropping],
                "nearest_no_drop": s.nearest,
                **({"largest_valid": s.largest} if s.largest is not None else {}),
            }
            for s in solutions
        ],
        "constraints": constraints_json(constraints),
    }


def verify_json(result: Verification, seed: int) -> dict[str, Any]:
    """verify --json: per layer the analysed and measured output shape and parameters, the
    analysed and measured inference peak, and the mismatches (empty when all agree)."""
    analysis = result.analysis
    m = analysis.memory
    return {
        "name": analysis.network.name,
        "batch": m.options.batch,
        "dtype": m.options.dtype,
        "seed": seed,
        "agree": not result.mismatches,
        "inference_peak": m.inference_peak,
        "inference_peak_layer": m.peak_layer,
        "measured_inference_peak": result.peak_bytes,
        "measured_inference_peak_layer": result.peak_layer,
        "layers": [
            {
                **_fields(r, analysis, SUMMARY_FIGURES),
                "measured_output_shape": list(result.shapes[r.path]),
                "measured_params": result.params[r.path],
            }
            for r in analysis.layers
        ],
        "mismatches": [
            {"layer": x.layer, "figure": x.figure, "analysed": x.analysed, "measured": x.measured} for x in result.mismatches
        ],
    }


def zoo_json(analyses: dict[str, Analysis]) -> dict[str, Any]:
    """zoo --json: every built-in spec's name, file, shapes and analyze --json totals (batch 1)."""
    return {
        "specs": [
            {**head_json(a), "name": name, "file": a.network.file, "totals": totals_json(a, tuple(FIGURES))}
            for name, a in analyses.items()
        ]
    }
