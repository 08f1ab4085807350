"""The parameter pass: learnable and buffer element counts per layer, split trainable/frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from archcalc.arith import Dim, Shape, equal, product
from archcalc.errors import ShapeError
from archcalc.figures.figure import Figure, Formula, GlanceRow, PerOp, Total, plain, walk
from archcalc.ops.base import Op
from archcalc.spec.graph import Layer, Network


@dataclass(frozen=True)
class ParamCount:
    """Element counts of one layer: learnable parameters (trainable or frozen) and buffers."""

    params: Dim
    buffers: Dim
    frozen: bool
    tied_to: str | None = None  # the layer whose parameters it uses, counted there, not here
    shared: Dim = 0  # elements of those

    @property
    def trainable(self) -> Dim:
        return 0 if self.frozen else self.params

    @property
    def trains(self) -> bool:
        """Whether a learned parameter it uses (its own or tied ones) gets a gradient."""
        used = self.params + self.shared
        return not self.frozen and (used != 0 if isinstance(used, int) else True)


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
        params, buffers = once(layer.op, tuple(inputs), lambda: count(layer.op, inputs))
        if layer.tied_to is None:
            return ParamCount(params, buffers, layer.frozen)
        source = network.layer(layer.tied_to)
        check_tied(layer, source, inputs, [shapes[i] for i in source.inputs])
        return ParamCount(0, buffers, source.frozen, layer.tied_to, params)

    return walk(network, step)


def check_tied(layer: Layer, source: Layer, inputs: list[Shape], source_inputs: list[Shape]) -> None:
    """A ShapeError unless every parameter of `layer` is one of `source`'s, of the same shape
    (GPT-2's head [vocab, D] and its token embedding [vocab, D] share `weight`)."""
    mine, theirs = layer.op.parameters(inputs), source.op.parameters(source_inputs)
    for name, shape in mine.items():
        if name not in theirs or not all(equal(a, b) for a, b in zip_longest(shape, theirs[name], fillvalue=-1)):
            have = f"{list(theirs[name])}" if name in theirs else "no such parameter"
            raise ShapeError(
                f"tied to '{source.path}', but its '{name}' {list(shape)} does not match "
                f"'{source.path}': {have} (tied layers share parameters of the same shape)"
            )


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
    layer_json=lambda c, analysis: {
        "params": plain(c.params), "trainable": not c.frozen, "buffers": plain(c.buffers),
        **({"tied_to": c.tied_to} if c.tied_to else {}),
    },
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
