"""The shape pass: every layer's output shape, in execution order, and the constraints on the
input that merges of differently rounded branches add."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archcalc.arith import MAX_SIZE, Dim, Shape, equal
from archcalc.errors import ShapeError
from archcalc.figures.figure import Figure, Formula, GlanceRow, PerOp, Total, plain, walk
from archcalc.ops.base import Op
from archcalc.spec.graph import INPUT, Layer, Network


def output_shapes(network: Network) -> dict[str, Shape]:
    """Output shape (batch excluded) of the input and every layer; errors name the layer."""
    tidy = _identity
    if network.symbolic:
        from archcalc.symbolic.symbols import simplify_dim as tidy
    shapes: dict[str, Shape] = {INPUT: network.input_shape}
    once: PerOp[Shape] = PerOp()

    def shape_of(op: Op, inputs: list[Shape]) -> Shape:
        shape = tuple(tidy(d) for d in op.output_shape(inputs))
        if any(isinstance(d, int) and d >= MAX_SIZE for d in shape):
            raise ShapeError(f"the output {list(shape)} is beyond what any machine can hold (sizes stay below 2**1024)")
        return shape

    def step(layer: Layer) -> Shape:
        inputs = [shapes[i] for i in layer.inputs]
        return once(layer.op, tuple(inputs), lambda: shape_of(layer.op, inputs))

    return walk(network, step, shapes)


@dataclass(frozen=True)
class Constraint:
    """Two sizes a layer needs equal that are equal for some inputs only: `left == right`
    (a U-Net's 2*floor(H/8) == floor(H/4), which holds when H mod 8 < 4)."""

    layer: str
    left: Dim
    right: Dim


def merge_constraints(network: Network, shapes: dict[str, Shape]) -> tuple[Constraint, ...]:
    """Every pair of sizes a layer needs equal (op.must_match) that is not the same expression:
    symbolic mode only, since numeric sizes that differ are already a ShapeError."""
    if not network.symbolic:
        return ()
    found: list[Constraint] = []
    for layer in network.layers:
        pairs = layer.op.must_match([shapes[i] for i in layer.inputs])
        for left, right in pairs:
            if not equal(left, right) and (layer.path, left, right) not in {(c.layer, c.left, c.right) for c in found}:
                found.append(Constraint(layer.path, left, right))
    return tuple(found)


def _identity(dim: Any) -> Any:
    return dim


def _glance_text(g: Mapping[str, Any]) -> tuple[str, str]:
    from archcalc.render.tables import shape_text

    return "Input → output", f"{shape_text(g['input'])} → {shape_text(g['output'])} (batch excluded)"


SHAPES = Figure(
    "shapes", "Output shape", "shape", lower_is_better=None,
    run=lambda network, done, options: output_shapes(network),
    layer_json=lambda shape, analysis: {"output_shape": plain(shape)},
    totals=(  # analyze --json gives the input and output shapes beside its totals
        Total("input", "Input", "shape", lambda a: a.network.input_shape, json=False, compare=0),
        Total("output", "Output", "shape", lambda a: a.output_shape, json=False, compare=100),
    ),
    formula=Formula(
        lambda shape: {f"dim{i}": d for i, d in enumerate(shape)},
        lambda a: {f"output_dim{i}": d for i, d in enumerate(a.output_shape)},
    ),
    glance=GlanceRow(0, lambda a: {"input": a.network.input_shape, "output": a.output_shape}, _glance_text),
)
