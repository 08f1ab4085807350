"""The receptive-field pass, by the closed forms of Araujo, Norris & Sim (Distill, 2019).

Going forward through a layer with (dilated) span k, stride s and padding p before:
    size r' = r + (k - 1) * j,  jump j' = j * s,  effective padding P' = P + p * j.
Unit u of a layer sees input elements [u*j - P, u*j - P + r - 1]. Over several paths the field is
their union; paths whose jump or centre disagree are flagged as misaligned. Once a layer mixes all
positions (linear on flattened maps, global pooling) its field is the whole input. After a
transposed convolution (a fractional stride) the closed forms do not apply: no field is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from .arith import Dim, Shape, maximum
from .errors import ArchcalcError
from .graph import INPUT, Network
from .ops.base import GLOBAL, UNDEFINED, Window


@dataclass(frozen=True)
class ReceptiveField:
    """Per spatial axis: field size, jump (effective stride) and effective padding of unit 0."""

    size: tuple[Dim, ...]
    stride: tuple[Dim, ...]
    padding: tuple[Dim, ...]
    misaligned: bool = False

    @property
    def center(self) -> tuple[Dim, ...]:
        """Centre of unit 0's field in input coordinates: (r - 1)/2 - P (may be a half)."""
        return tuple((r - 1) / 2 - p for r, p in zip(self.size, self.padding))

    def covers(self, input_shape: Shape) -> bool:
        """True when the field is at least as large as the input on every spatial axis."""
        return all(
            isinstance(r, int) and isinstance(n, int) and r >= n
            for r, n in zip(self.size, input_shape[1:])
        )


Field = Union[ReceptiveField, Literal["global"], None]  # None: no spatial axes to speak of


def _minimum(a: Dim, b: Dim) -> Dim:
    return -maximum(-a, -b)


def _union(fields: list[ReceptiveField]) -> ReceptiveField:
    """The smallest field containing every path's field for unit 0."""
    first = fields[0]
    size, stride, padding = list(first.size), list(first.stride), list(first.padding)
    misaligned = any(f.misaligned for f in fields)
    for f in fields[1:]:
        if f.stride != first.stride or f.center != first.center:
            misaligned = True
        for axis in range(len(size)):
            start = _minimum(-padding[axis], -f.padding[axis])
            end = maximum(size[axis] - 1 - padding[axis], f.size[axis] - 1 - f.padding[axis])
            padding[axis] = -start
            size[axis] = end - start + 1
            stride[axis] = maximum(stride[axis], f.stride[axis])
    return ReceptiveField(tuple(size), tuple(stride), tuple(padding), misaligned)


def _step(field: ReceptiveField, window: Window) -> ReceptiveField:
    return ReceptiveField(
        tuple(r + (k - 1) * j for r, k, j in zip(field.size, window.spans, field.stride)),
        tuple(j * s for j, s in zip(field.stride, window.strides)),
        tuple(p + b * j for p, b, j in zip(field.padding, window.before, field.stride)),
        field.misaligned,
    )


def receptive_fields(network: Network, shapes: dict[str, Shape]) -> dict[str, Field]:
    """Every layer's receptive field on the input; GLOBAL once it sees the whole input."""
    spatial = len(network.input_shape) - 1
    fields: dict[str, Field] = {
        INPUT: ReceptiveField((1,) * spatial, (1,) * spatial, (0,) * spatial) if spatial else None
    }
    for layer in network.layers:
        incoming = [fields[i] for i in layer.inputs]
        if any(f == GLOBAL for f in incoming):
            fields[layer.path] = GLOBAL
            continue
        known = [f for f in incoming if isinstance(f, ReceptiveField)]
        if not known:
            fields[layer.path] = None
            continue
        field = _union(known) if len(known) > 1 else known[0]
        try:
            step = layer.op.receptive_step([shapes[i] for i in layer.inputs])
        except ArchcalcError as exc:
            raise exc.located(layer.location, layer.path) from None
        if step == GLOBAL:
            fields[layer.path] = GLOBAL
        elif step == UNDEFINED:
            fields[layer.path] = None
        elif isinstance(step, Window):
            fields[layer.path] = _step(field, step)
        else:
            fields[layer.path] = field if len(shapes[layer.path]) - 1 == spatial else None
    return fields
