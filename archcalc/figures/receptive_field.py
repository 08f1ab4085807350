"""The receptive-field pass: Araujo, Norris & Sim's closed forms (Distill, 2019) where they hold,
exact per-unit intervals where they do not.

Going forward through a layer with (dilated) span k, stride s and padding p before:
    size r' = r + (k - 1) * j,  jump j' = j * s,  effective padding P' = P + p * j.
Unit u of a layer sees input elements [u*j - P, u*j - P + r - 1]. Over several paths with one
jump the field is their union; paths whose centre disagrees are flagged as misaligned. Once a
layer mixes all positions (linear on flattened maps, global pooling) its field is the whole input.

The closed forms need every op to read one window translated by a whole stride. Where an op does
not (a transposed convolution's fractional stride, uneven adaptive windows, circular or reflect
padding mapping the field past the window, branches with different jumps), the field depends on
the unit's position: each op's `receptive_reads` says exactly which input positions an output
position reads, per spatial axis, and intervals are propagated through the graph (the field of a
unit is the union over its channels and paths, on the real input). Such a layer reports the
largest and smallest field over its units, with the reason, never a closed form.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Union

from archcalc.arith import Dim, Shape, maximum
from archcalc.errors import OptionError
from archcalc.figures.figure import Figure, Formula, GlanceRow, PerOp, Total, plain, walk
from archcalc.ops.base import GLOBAL, UNDEFINED, Window
from archcalc.spec.graph import INPUT, Layer, Network

if TYPE_CHECKING:
    from archcalc.analysis import Analysis


@dataclass(frozen=True)
class ReceptiveField:
    """Per spatial axis: field size, jump (effective stride) and effective padding of unit 0.

    `varies` (empty when the closed forms hold) says why the field depends on the unit's
    position; then `size` is the largest field over all units and `smallest` the smallest, both
    counted on the input (None in symbolic mode), and `stride`, `padding` are None."""

    size: tuple[Dim, ...]
    stride: tuple[Dim, ...]
    padding: tuple[Dim, ...]
    misaligned: bool = False
    varies: str = ""
    smallest: tuple[Dim, ...] | None = None

    @property
    def position_dependent(self) -> bool:
        return bool(self.varies)

    @property
    def center(self) -> tuple[Dim, ...]:
        """Centre of unit 0's field in input coordinates: (r - 1)/2 - P (may be a half)."""
        if self.varies:
            return tuple(None for _ in self.size)
        return tuple((r - 1) / 2 - p for r, p in zip(self.size, self.padding))

    def covers(self, input_shape: Shape) -> bool:
        """True when the field (the largest, if it varies) spans the input on every spatial axis."""
        return all(
            isinstance(r, int) and isinstance(n, int) and r >= n
            for r, n in zip(self.size, input_shape[1:])
        )


Field = Union[ReceptiveField, Literal["global"], None]  # None: no spatial axes to speak of


def _minimum(a: Dim, b: Dim) -> Dim:
    return -maximum(-a, -b)


def _union(fields: list[ReceptiveField]) -> ReceptiveField:
    """The smallest field containing every path's field for unit 0 (paths of one jump)."""
    first = fields[0]
    size, stride, padding = list(first.size), list(first.stride), list(first.padding)
    misaligned = any(f.misaligned for f in fields)
    for f in fields[1:]:
        if f.center != first.center:
            misaligned = True
        numeric = all(type(v) is int for v in (*size, *padding, *f.size, *f.padding))
        low, high = (min, max) if numeric else (_minimum, maximum)  # the same values; sympy's only when symbolic
        for axis in range(len(size)):
            start = low(-padding[axis], -f.padding[axis])
            end = high(size[axis] - 1 - padding[axis], f.size[axis] - 1 - f.padding[axis])
            padding[axis] = -start
            size[axis] = end - start + 1
    return ReceptiveField(tuple(size), tuple(stride), tuple(padding), misaligned)


def _step(field: ReceptiveField, window: Window) -> ReceptiveField:
    return ReceptiveField(
        tuple(r + (k - 1) * j for r, k, j in zip(field.size, window.spans, field.stride)),
        tuple(j * s for j, s in zip(field.stride, window.strides)),
        tuple(p + b * j for p, b, j in zip(field.padding, window.before, field.stride)),
        field.misaligned,
    )


def _varying(reason: str, spatial: int, misaligned: bool) -> ReceptiveField:
    """A field with no closed form; its sizes are filled in by the per-unit pass."""
    unknown = (None,) * spatial
    return ReceptiveField(unknown, unknown, unknown, misaligned, reason)


def receptive_fields(network: Network, shapes: dict[str, Shape]) -> dict[str, Field]:
    """Every layer's receptive field on the input; GLOBAL once it sees the whole input."""
    spatial = len(network.input_shape) - 1
    fields: dict[str, Field] = {
        INPUT: ReceptiveField((1,) * spatial, (1,) * spatial, (0,) * spatial) if spatial else None
    }

    once: PerOp[tuple[Any, str | None]] = PerOp()

    def step_of(layer: Layer, inputs: list[Shape]) -> tuple[Any, str | None]:
        """The op's step, and why its field varies (None where its output is not spatial)."""
        window = layer.op.receptive_step(inputs)
        spatial_out = window != GLOBAL and len(shapes[layer.path]) - 1 == spatial
        return window, layer.op.receptive_varies(inputs) if spatial_out else None

    def step(layer: Layer) -> Field:
        incoming = [fields[i] for i in layer.inputs]
        if GLOBAL in incoming:
            return GLOBAL
        known = [f for f in incoming if isinstance(f, ReceptiveField)]
        if not known:
            return None
        inputs = [shapes[i] for i in layer.inputs]
        window, own = once(layer.op, tuple(inputs), lambda: step_of(layer, inputs))
        if own is None:
            return GLOBAL if window == GLOBAL else None
        if len(known) == 1 and not own and not known[0].varies and window != UNDEFINED:
            return _step(known[0], window) if isinstance(window, Window) else known[0]
        misaligned = any(f.misaligned for f in known)
        inherited = next((f.varies for f in known if f.varies), "")
        jumps = {f.stride for f in known}
        if own or window == UNDEFINED:
            reason = f"'{layer.path}' ({layer.op.kind}): {own}"
        elif inherited:
            reason = inherited
        elif len(jumps) > 1:
            strides = " and ".join(sorted("x".join(map(str, j)) for j in jumps))
            reason = f"'{layer.path}' ({layer.op.kind}) joins paths with effective strides {strides}"
            misaligned = True
        else:
            field = _union(known) if len(known) > 1 else known[0]
            return _step(field, window) if isinstance(window, Window) else field
        return _varying(reason, spatial, misaligned)

    walk(network, step, fields)
    if any(isinstance(f, ReceptiveField) and f.varies for f in fields.values()) and _numeric(network, shapes):
        fields = _measured(network, shapes, fields)
    return fields


def _numeric(network: Network, shapes: dict[str, Shape]) -> bool:
    return all(isinstance(d, int) for s in (network.input_shape, *shapes.values()) for d in s)


Extent = list[tuple[list[int], list[int]]]  # per spatial axis: first and last input position per unit


def unit_extents(network: Network, shapes: dict[str, Shape]) -> dict[str, Extent]:
    """Per layer and spatial axis, the first and last input position each unit's field reaches
    (first > last: the unit reads padding only). Exact: the field of unit u is the union, over
    every input and every position it reads, of those positions' fields, so its ends are the
    min and max of theirs. A layer without spatial axes (after global pooling) has one 'unit'
    per axis, the union of all it reads. Numeric shapes only; a pass over every unit."""
    spatial = len(network.input_shape) - 1
    sizes = network.input_shape[1:]
    extents: dict[str, Extent] = {INPUT: [(list(range(n)), list(range(n))) for n in sizes]}
    for layer in network.layers:
        out, inputs = shapes[layer.path], [shapes[i] for i in layer.inputs]
        if not layer.inputs:  # a learned tensor reads no input position: empty fields
            units = out[1:] if len(out) - 1 == spatial else (1,) * spatial
            extents[layer.path] = [([n] * m, [-1] * m) for m, n in zip(units, sizes)]
            continue
        if any(i not in extents for i in layer.inputs):
            continue
        if not layer.inputs:  # a tensor the batch shares (a parameter, a mask) reads no input position
            units = out[1:] if len(out) - 1 == spatial else (1,) * spatial
            extents[layer.path] = [([n] * m, [-1] * m) for m, n in zip(units, sizes)]
            continue
        if len(out) - 1 != spatial or all(len(s) - 1 != spatial for s in inputs):  # no spatial axes to follow
            union = [([min(lo for i in layer.inputs for lo in extents[i][a][0])], [max(hi for i in layer.inputs for hi in extents[i][a][1])]) for a in range(spatial)]
            extents[layer.path] = union if len(out) - 1 != spatial else [([lo] * m, [hi] * m) for ([lo], [hi]), m in zip(union, out[1:])]
            continue
        if len(layer.inputs) == 1 and inputs[0] == out and layer.op.receptive_step(inputs) is None and not layer.op.receptive_varies(inputs):
            extents[layer.path] = extents[layer.inputs[0]]  # element-wise: the same fields
            continue
        axes: Extent = []
        whole: dict[tuple[str, int], tuple[int, int]] = {}  # a source axis's ends over all its units
        for axis, (m, n) in enumerate(zip(out[1:], sizes)):
            first, last = [n] * m, [-1] * m
            for u in range(m):
                for source, shape, reads in zip(layer.inputs, inputs, layer.op.receptive_reads(inputs, axis, u)):
                    lo, hi = extents[source][axis]
                    if len(shape) - 1 != spatial:
                        reads = (0,)  # a vector (a gate after global pooling): all it read
                    if isinstance(reads, range) and len(reads) == len(lo) > 1 and reads.step == 1:
                        ends = whole.get((source, axis))
                        if ends is None:  # read whole: its ends worked out once per axis
                            ends = whole[(source, axis)] = (min(lo), max(hi))
                        first[u], last[u] = min(first[u], ends[0]), max(last[u], ends[1])
                    elif reads:
                        first[u] = min(first[u], *(lo[t] for t in reads))
                        last[u] = max(last[u], *(hi[t] for t in reads))
            axes.append((first, last))
        extents[layer.path] = axes
    return extents


def _measured(network: Network, shapes: dict[str, Shape], fields: dict[str, Field]) -> dict[str, Field]:
    """Position-dependent fields with their largest and smallest size over all units."""
    extents = unit_extents(network, shapes)
    result = dict(fields)
    for path, field in fields.items():
        if not (isinstance(field, ReceptiveField) and field.varies):
            continue
        spans = [[b - a + 1 for a, b in zip(lo, hi) if b >= a] for lo, hi in extents[path]]
        if not all(spans):  # every unit reads padding only on some axis: no field at all
            spans = [[0]] * len(spans)
        result[path] = replace(field, size=tuple(map(max, spans)), smallest=tuple(map(min, spans)))
    return result


Interval = Union[tuple[int, int], None]


def unit_field(network: Network, shapes: dict[str, Shape], path: str, unit: Sequence[int]) -> tuple[Interval, ...]:
    """The exact input interval, per spatial axis, of one unit (all its channels) of a layer:
    the positions it reads, propagated backward through every path to the input. None on every
    axis when it reads padding only. Errors name the layer or index that is wrong."""
    spatial = len(network.input_shape) - 1
    if path != INPUT and path not in network.nodes:
        near = " or ".join(f"'{n}'" for n in difflib.get_close_matches(path, network.order, n=3, cutoff=0.6))
        raise OptionError(f"--at: no layer '{path}'" + (f"; did you mean {near}?" if near else "") + " (`archcalc summary` lists the layers)")
    shape = shapes.get(path, network.input_shape)
    if len(shape) - 1 != spatial or spatial == 0:
        raise OptionError(
            f"--at: layer '{path}' has output {list(shape)}, without the input's {spatial} spatial "
            "axes; pick a layer with spatial axes"
        )
    if len(unit) != spatial:
        raise OptionError(f"--unit needs {spatial} indices (one per spatial axis of {list(shape[1:])}), got {len(unit)}")
    for axis, (i, n) in enumerate(zip(unit, shape[1:])):
        if not (isinstance(n, int) and 0 <= i < n):
            raise OptionError(f"--unit index {i} on spatial axis {axis + 1} is outside 0..{n - 1} (layer '{path}' has {list(shape[1:])})")
    wanted: dict[str, list[set[int]]] = {path: [{i} for i in unit]}
    for current in reversed(network.order):
        if current not in wanted:
            continue
        layer = network.layer(current)
        if not layer.inputs:
            continue  # a learned tensor: it reads no input position
        inputs = [shapes[i] if i != INPUT else network.input_shape for i in layer.inputs]
        demand = wanted[current]
        if len(shapes[current]) - 1 != spatial:  # no spatial axes: every unit is wanted
            demand = [set(range(n)) for n in inputs[0][1:]] if len(inputs[0]) - 1 == spatial else [{0}] * spatial
        reads: list[list[set[int]]] = [[set() for _ in layer.inputs] for _ in range(spatial)]
        for axis, units in enumerate(demand):
            for u in units:
                for k, positions in enumerate(layer.op.receptive_reads(inputs, axis, u)):
                    reads[axis][k].update(positions)
        for k, source in enumerate(layer.inputs):
            axes = [reads[axis][k] for axis in range(spatial)]
            if len(inputs[k]) - 1 != spatial:
                axes = [{0}] * spatial  # a vector (a gate after global pooling): all of it
            elif not all(axes):
                continue  # padding only on some axis: nothing read
            into = wanted.setdefault(source, [set() for _ in range(spatial)])
            for target, positions in zip(into, axes):
                target.update(positions)
    if INPUT not in wanted:
        return (None,) * spatial
    return tuple((min(s), max(s)) for s in wanted[INPUT])


def field_json(field: Field) -> dict[str, Any] | None:
    """Araujo's size, jump and effective padding per spatial axis; null where all is seen.

    Where the field depends on the unit's position, `size` is the largest over all units,
    `smallest_size` the smallest, `stride` and `padding` null, and `reason` says why."""
    if not isinstance(field, ReceptiveField):
        return None
    return {
        "size": plain(field.size),
        "stride": plain(field.stride),
        "padding": plain(field.padding),
        "misaligned": field.misaligned,
        "position_dependent": field.position_dependent,
        "smallest_size": plain(field.smallest),
        "reason": field.varies or None,
    }


def sees_whole_input(field: Field, input_shape: Shape) -> bool:
    """The layer sees all of the input, or its (largest) field covers it on every axis."""
    return field == "global" or (isinstance(field, ReceptiveField) and field.covers(input_shape))


def last_spatial_field(analysis: Analysis) -> tuple[Dim, ...] | None:
    """Receptive-field size of the last layer that still has spatial axes (before global pooling)."""
    spatial = [
        r for r in analysis.layers
        if r.receptive_field is not None and any(not (isinstance(d, int) and d == 1) for d in r.output_shape[1:])
    ]
    field = spatial[-1].receptive_field if spatial else None
    return field.size if isinstance(field, ReceptiveField) else None  # None: the whole input


def field_text(size: tuple[Dim, ...] | None) -> str:
    """A field's size for people: one number when every axis agrees, `whole input` for None."""
    if size is None:
        return "whole input"
    return str(size[0]) if len(set(size)) == 1 else "×".join(map(str, size))


def _closed_form(field: Field) -> dict[str, Any]:
    """Size, jump and padding per axis where Araujo's closed forms hold; {} elsewhere."""
    if not isinstance(field, ReceptiveField) or field.varies:
        return {}
    return {
        **{f"size{i}": v for i, v in enumerate(field.size)},
        **{f"stride{i}": v for i, v in enumerate(field.stride)},
        **{f"padding{i}": v for i, v in enumerate(field.padding)},
    }


RECEPTIVE_FIELD = Figure(
    "rf", "Receptive field", "field", lower_is_better=None,
    needs=("shapes",),
    run=lambda network, done, options: receptive_fields(network, done["shapes"]),
    layer_json=lambda field, analysis: {
        "receptive_field": field_json(field),
        "sees_whole_input": sees_whole_input(field, analysis.network.input_shape),
    },
    totals=(Total("receptive_field", "Receptive field (last spatial)", "field", last_spatial_field, json=False, compare=40),),
    formula=Formula(_closed_form, lambda a: {}),
    glance=GlanceRow(
        50, lambda a: {"receptive_field": last_spatial_field(a)},
        lambda g: ("Receptive field", f"{field_text(g['receptive_field'])} at the last spatial layer"),
    ),
)
