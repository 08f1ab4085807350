"""The parameter pass: learnable and buffer element counts per layer, split trainable/frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archcalc.arith import Dim, Shape, product
from archcalc.figures.figure import Figure, Formula, GlanceRow, PerOp, Total, plain, walk
from archcalc.ops.base import Op
from archcalc.spec.graph import Layer, Network


@dataclass(frozen=True)
class ParamCount:
    """Element counts of one layer: learnable parameters (trainable or frozen) and buffers."""

    params: Dim
    buffers: Dim
    frozen: bool

    @property
    def trainable(self) -> Dim:
        return 0 if self.frozen else self.params


def parameter_counts(network: Network, shapes: dict[str, Shape]) -> dict[str, ParamCount]:
    """Per-layer counts, each array's size being the product of its PyTorch-style shape."""

    once: PerOp[tuple[Dim, Dim]] = PerOp()

    def count(op: Op, inputs: list[Shape]) -> tuple[Dim, Dim]:
        return (
            sum((product(s) for s in op.parameters(inputs).values()), 0),
            sum((product(s) for s in op.buffers(inputs).values()), 0),
        )

    def step(layer: Layer) -> ParamCount:
        inputs = [shapes[i] for i in layer.inputs]
        return ParamCount(*once(layer.op, tuple(inputs), lambda: count(layer.op, inputs)), layer.frozen)

    return walk(network, step)


def _sum(attribute: str) -> Any:
    """A total: the layers' counts summed."""
    return lambda analysis: sum((getattr(c, attribute) for c in analysis.values["params"].values()), 0)


def _glance_text(g: Mapping[str, Any]) -> tuple[str, str]:
    from archcalc.render.tables import count_text

    frozen = f", frozen {count_text(g['frozen'])}" if g["frozen"] else ""
    return "Parameters", f"{count_text(g['params'])} (trainable {count_text(g['trainable'])}{frozen})"


PARAMS = Figure(
    "params", "Parameters", "count", lower_is_better=True,
    needs=("shapes",),
    run=lambda network, done, options: parameter_counts(network, done["shapes"]),
    layer_json=lambda c, analysis: {"params": plain(c.params), "trainable": not c.frozen, "buffers": plain(c.buffers)},
    totals=(
        Total("params", "Params", "count", _sum("params"), lower_is_better=True, compare=10),
        Total("trainable_params", "Trainable params", "count", _sum("trainable"), lower_is_better=True, compare=11),
        Total("frozen_params", "Frozen params", "count", lambda a: a.total("params") - a.total("trainable_params"), lower_is_better=True),
        Total("buffers", "Buffers", "count", _sum("buffers"), lower_is_better=True),
    ),
    formula=Formula(
        lambda c: {"params": c.params} if c.params != 0 else {},
        lambda a: {"params": a.total("params"), "trainable_params": a.total("trainable_params"), "buffers": a.total("buffers")},
    ),
    glance=GlanceRow(20, lambda a: {
        "params": a.total("params"), "trainable": a.total("trainable_params"), "frozen": a.total("frozen_params"),
    }, _glance_text),
)
