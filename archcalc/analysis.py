"""The whole analysis of a network as frozen data, and its JSON form (the machine contract).

`analyze` runs every registered figure's pass (archcalc/figures) in registry order; a figure's
per-layer values are `analysis.values[name][path]` (or `row.values[name]`), its totals
`analysis.total(key)`; the attributes below are shorthands for the built-in figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

from archcalc.arith import Shape
from archcalc.figures import FIGURES
from archcalc.figures.figure import PerOp
from archcalc.figures.figure import plain as _plain
from archcalc.figures.figure import total as declared_total
from archcalc.figures.flops import LayerFlops
from archcalc.figures.memory import LayerMemory, Memory, MemoryOptions
from archcalc.figures.params import ParamCount
from archcalc.figures.receptive_field import Field
from archcalc.figures.shapes import Constraint, merge_constraints
from archcalc.spec.graph import Network


@dataclass(frozen=True)
class LayerResult:
    """What the analysis found for one layer: every figure's value by figure name."""

    path: str
    op: str
    inputs: tuple[str, ...]
    detail: str
    values: dict[str, Any]

    @property
    def output_shape(self) -> Shape:
        return self.values["shapes"]  # type: ignore[no-any-return]

    @property
    def params(self) -> ParamCount:
        return self.values["params"]  # type: ignore[no-any-return]

    @property
    def flops(self) -> LayerFlops:
        return self.values["flops"]  # type: ignore[no-any-return]

    @property
    def receptive_field(self) -> Field:
        return self.values["rf"]  # type: ignore[no-any-return]

    @property
    def memory(self) -> LayerMemory:
        return self.values["memory"]  # type: ignore[no-any-return]


class Totals:
    """Every declared total as an attribute: `analysis.totals.params` is `analysis.total("params")`."""

    __slots__ = ("_analysis",)

    def __init__(self, analysis: Analysis) -> None:
        object.__setattr__(self, "_analysis", analysis)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._analysis.total(key)
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {key!r}: results are frozen")

    def __dir__(self) -> list[str]:
        return [t.key for f in FIGURES.values() for t in f.totals]


@dataclass(frozen=True)
class Analysis:
    network: Network
    layers: tuple[LayerResult, ...]
    results: dict[str, Any]  # each pass's result by figure name
    values: dict[str, Any]  # figure name -> layer path -> the figure's value there
    options: MemoryOptions
    constraints: tuple[Constraint, ...] = ()  # symbolic: sizes merges need equal, for some inputs only
    _totals: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def total(self, key: str) -> Any:
        """The declared total `key` (figure.Total), computed once."""
        if key not in self._totals:
            self._totals[key] = declared_total(key).value(self)
        return self._totals[key]

    @property
    def totals(self) -> Totals:
        return Totals(self)

    @property
    def memory(self) -> Memory:
        return self.results["memory"]  # type: ignore[no-any-return]

    @property
    def output_shape(self) -> Shape:
        return self.values["shapes"][self.network.output]  # type: ignore[no-any-return]

    def layer(self, path: str) -> LayerResult:
        """The result of the layer at `path` (e.g. 'layer1.0.conv1'); KeyError if there is none."""
        found = next((r for r in self.layers if r.path == path), None)
        if found is None:
            raise KeyError(path)
        return found


def analyze(network: Network, options: MemoryOptions | None = None) -> Analysis:
    """Every registered figure's pass, in registry order, each reading the earlier ones' results."""
    options = options or MemoryOptions()
    results: dict[str, Any] = {}
    for figure in FIGURES.values():
        if figure.run is not None:
            results[figure.name] = figure.run(network, results, options)
    values = {name: FIGURES[name].values(result) for name, result in results.items()}
    described: PerOp[str] = PerOp()
    rows = tuple(
        LayerResult(
            layer.path, layer.op.kind, layer.inputs, described(layer.op, (), layer.op.describe),
            {name: per_layer[layer.path] for name, per_layer in values.items()},
        )
        for layer in network.layers
    )
    return Analysis(network, rows, results, values, options, merge_constraints(network, results["shapes"]))


def to_json(analysis: Analysis) -> dict[str, Any]:
    """The documented JSON object of `archcalc analyze --json` (docs/json.md): every figure's
    JSON totals and, per layer, its JSON fields, in registry order."""
    return {
        **head_json(analysis),
        "constraints": constraints_json(analysis.constraints),
        "totals": totals_json(analysis),
        "layers": [
            {"name": r.path, "op": r.op, "inputs": list(r.inputs), **figure_fields(r, analysis)}
            for r in analysis.layers
        ],
    }


def unknown_layers(network: Network) -> list[str]:
    """The layers whose FLOPs and saved tensors archcalc cannot know (opaque imports): the
    totals count them as 0, so every report names them."""
    return [layer.path for layer in network.layers if not layer.op.known_costs]


def head_json(analysis: Analysis) -> dict[str, Any]:
    """The network's name, input and output shapes (batch excluded), as every JSON document
    opens; `unknown` lists the layers left out of the FLOPs and memory totals, when there are any."""
    unknown = unknown_layers(analysis.network)
    return {
        "name": analysis.network.name, "input": _plain(analysis.network.input_shape), "output": _plain(analysis.output_shape),
        **({"unknown": unknown} if unknown else {}),
    }


def constraints_json(constraints: Iterable[Constraint]) -> list[dict[str, Any]]:
    """Sizes merges need equal, for some inputs only: analyze --json's `constraints`."""
    return [{"layer": c.layer, "left": _plain(c.left), "right": _plain(c.right)} for c in constraints]


def totals_json(analysis: Analysis, figures: Iterable[str] | None = None) -> dict[str, Any]:
    """The JSON totals of the named figures (all, in registry order, by default)."""
    names = FIGURES if figures is None else figures
    return {t.key: _plain(analysis.total(t.key)) for name in names for t in FIGURES[name].totals if t.json}


def figure_fields(row: LayerResult, analysis: Analysis, figures: Iterable[str] | None = None) -> dict[str, Any]:
    """One layer's JSON fields of the named figures (all, in registry order, by default)."""
    fields: dict[str, Any] = {}
    for name in FIGURES if figures is None else figures:
        layer_json = FIGURES[name].layer_json
        if layer_json is not None:
            fields.update(layer_json(row.values[name], analysis))
    return fields
