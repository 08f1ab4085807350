"""The figure registry, the twin of the op registry: a figure declares its name, label, unit and
ranking, its pass, its per-layer and whole-network values with their JSON fields, and whether
they can be swept or written as formulas. Analysis, JSON, formulas, sweeps, compare, the report's
glance and the CLI's choices loop over `FIGURES`, so a new figure is one module (registered in
figures/__init__.py). Cheap to import: no sympy, numpy or networkx.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from archcalc.errors import ArchcalcError, OptionError, quote

if TYPE_CHECKING:
    from archcalc.analysis import Analysis
    from archcalc.figures.memory import MemoryOptions
    from archcalc.spec.graph import Layer, Network

Unit = Literal["count", "flops", "bytes", "shape", "field"]
V = TypeVar("V")


def plain(value: Any) -> Any:
    """JSON-ready values: ints stay ints, symbolic expressions become strings."""
    if isinstance(value, (int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return str(value)


def walk(network: Network, step: Callable[[Layer], V], values: dict[str, V] | None = None) -> dict[str, V]:
    """`step` of every layer in execution order, into `values` (which the step may read for the
    layers before it); an ArchcalcError the step raises gets the layer's file, line and path."""
    values = {} if values is None else values
    for layer in network.layers:
        try:
            values[layer.path] = step(layer)
        except ArchcalcError as exc:
            raise exc.located(layer.location, layer.path) from None
    return values


_UNSEEN: Any = object()


class PerOp(Generic[V]):
    """What a pass works out for an op on given arguments, worked out once: the layers of a
    repeated entry share one op object (spec expansion), so at 10,000 layers most of them ask
    again on the same shapes."""

    def __init__(self) -> None:
        self._found: dict[tuple[Any, ...], V] = {}

    def __call__(self, op: object, args: tuple[Any, ...], compute: Callable[[], V]) -> V:
        key = (id(op), *args)
        found = self._found.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self._found[key] = compute()
        return found  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Total:
    """One whole-network value: `analysis.total(key)`, a key of analyze --json's totals (unless
    `json` is False) and a row of compare (at place `compare`, rows sorted by place)."""

    key: str
    label: str  # for people; "{batch}" is filled in with the batch
    unit: Unit
    value: Callable[[Analysis], Any]
    lower_is_better: bool | None = None  # None: the value describes a network without ranking it
    json: bool = True
    compare: int | None = None


@dataclass(frozen=True)
class Formula:
    """The figure as formulas (formula --what NAME): per layer ({} leaves a layer out) and in total."""

    layer: Callable[[Any], dict[str, Any]]  # of the layer's value
    totals: Callable[[Analysis], dict[str, Any]]
    assumes: Callable[[Analysis], str] | None = None  # a choice the formulas rest on ("attention fused"), or ""


@dataclass(frozen=True)
class Sweepable:
    """A total a sweep evaluates over a grid of batches and input sizes (sweep --what NAME)."""

    key: str  # its column in the sweep's CSV and JSON: training_bytes
    title: str  # training memory
    unit: str  # bytes or FLOPs
    value: Callable[[Analysis], Any]
    train: bool | None = None  # picked by --train (True), --infer (False) or either (None)
    # a largest-over-layers total: its fixed part and the storages (born, last use, bytes per
    # example) whose live sum the sweep maximises over layers at every grid point
    peak: Callable[[Analysis], tuple[Any, list[Any]]] | None = None


@dataclass(frozen=True)
class GlanceRow:
    """The figure's row in the report's at-a-glance panel, at `place` (rows sorted by place)."""

    place: int
    values: Callable[[Analysis], dict[str, Any]]  # the glance's JSON fields
    text: Callable[[Mapping[str, Any]], tuple[str, str]]  # the row's label and line, from the glance's fields


@dataclass(frozen=True)
class Figure:
    """A figure: its pass (the results of the passes it `needs`, by figure name -> its own), the
    per-layer values and JSON fields taken from that result, its totals, formulas, sweeps and
    glance row. A figure without a pass has totals only (a network's depth)."""

    name: str
    label: str
    unit: Unit
    lower_is_better: bool | None
    needs: tuple[str, ...] = ()
    run: Callable[[Network, Mapping[str, Any], MemoryOptions], Any] | None = None
    per_layer: Callable[[Any], Mapping[str, Any]] | None = None  # path -> value; None: the result is that mapping
    layer_json: Callable[[Any, Analysis], dict[str, Any]] | None = None  # of the layer's value
    totals: tuple[Total, ...] = ()
    formula: Formula | None = None
    sweeps: tuple[Sweepable, ...] = ()
    glance: GlanceRow | None = None

    def values(self, result: Any) -> Mapping[str, Any]:
        """Per-layer values of the pass's result, by layer path."""
        return result if self.per_layer is None else self.per_layer(result)


FIGURES: dict[str, Figure] = {}  # in the order passes run and JSON lists their fields


def register(*figures: Figure) -> None:
    """Add figures after those registered; a pass runs after the passes it needs."""
    for figure in figures:
        missing = [n for n in figure.needs if n not in FIGURES or FIGURES[n].run is None]
        if missing:
            raise ValueError(f"figure {figure.name!r} needs the passes {missing}, which are not registered before it")
        FIGURES[figure.name] = figure


def total(key: str) -> Total:
    """The declared total named `key`."""
    for figure in FIGURES.values():
        for t in figure.totals:
            if t.key == key:
                return t
    raise KeyError(key)


def formula_names() -> tuple[str, ...]:
    """Figures that can be written as formulas (formula --what)."""
    return tuple(f.name for f in FIGURES.values() if f.formula is not None)


def sweep_names() -> tuple[str, ...]:
    """Figures that can be swept (sweep --what)."""
    return tuple(f.name for f in FIGURES.values() if f.sweeps)


def sweepable(what: str, train: bool = True) -> Sweepable:
    """The sweep of figure `what`, the training or inference one where the figure has both."""
    figure = FIGURES.get(what)
    for s in figure.sweeps if figure else ():
        if s.train is None or s.train == train:
            return s
    raise OptionError(f"--what must be one of {', '.join(sweep_names())}, got {quote(what)}")


def swept(key: str) -> Sweepable:
    """The sweepable total whose column is `key` (training_bytes)."""
    return next(s for f in FIGURES.values() for s in f.sweeps if s.key == key)


def compared() -> list[Total]:
    """The totals compare shows, in their places."""
    return sorted((t for f in FIGURES.values() for t in f.totals if t.compare is not None), key=lambda t: t.compare or 0)


def glance_rows() -> list[GlanceRow]:
    """The report's at-a-glance rows, in their places."""
    return sorted((f.glance for f in FIGURES.values() if f.glance is not None), key=lambda g: g.place)
