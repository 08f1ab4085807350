"""Which input sizes leave trailing input unread: the one rule `solve` and the report share.

A floor-rounding window layer with input size m, padding (before, after), span k and stride s
reads up to the last window's end; leftover = (m + before + after - k) mod s padded elements lie
past it, and when leftover > after the last leftover - after input rows (or columns) are unread
(torch.nn.Conv2d documents the floor). Sizes repeat their rounding with a period: the lcm of the
numerators of the effective strides (a stride of 3/2 after an up-sampling repeats every 3 input
elements), so one period decides every size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

from archcalc.arith import Shape
from archcalc.errors import ArchcalcError
from archcalc.figures.figure import PerOp
from archcalc.figures.shapes import output_shapes
from archcalc.ops.base import Op, ReceptiveStep, Window
from archcalc.spec.graph import INPUT, Network


@dataclass(frozen=True)
class Drop:
    """Trailing input a floor-rounding window never reads: `lost` of the layer's `size` on an axis."""

    path: str
    size: int
    lost: int


@dataclass(frozen=True)
class _WindowStep:
    out: int  # slot of the output size
    source: int  # slot of the input size
    span: int
    stride: int
    before: int
    after: int
    path: str
    op: Op | None  # set when the padding depends on the size (TensorFlow's 'same' with a stride)
    template: tuple[Shape, ...]


@dataclass(frozen=True)
class _SameStep:
    a: int
    b: int  # element-wise inputs that must keep one size (a residual add, a concat)


@dataclass(frozen=True)
class _ShapeStep:
    out: int
    op: Op
    template: tuple[Shape, ...]
    tracked: tuple[tuple[int, int], ...]  # (input index, slot)


PROBES = 4096  # input sizes tried at most per axis: a stride of 10**9 must not mean 10**9 trials


def _step_or_none(op: Op, in_shapes: tuple[Shape, ...]) -> ReceptiveStep | None:
    """The op's receptive step, or None where it has none to give on these shapes."""
    try:
        return op.receptive_step(list(in_shapes))
    except ArchcalcError:
        return None


def with_size(shape: Shape, axis: int, n: int) -> Shape:
    """`shape` with size n on `axis` (0 is the channels)."""
    return (*shape[:axis], n, *shape[axis + 1 :])


class AxisProgram:
    """One spatial axis of a numeric network as plain integer arithmetic: every layer's size on
    that axis as a function of the network input's (the other axes held at the network's sizes).

    Floor-rounding windows apply floor((m + before + after - span) / stride) + 1; element-wise
    layers keep their input's size (and merges require their inputs' sizes to agree); anything
    else (adaptive pooling, ceil-mode windows, transposed convolutions) asks its op for the shape.
    """

    def __init__(self, network: Network, axis: int) -> None:
        self.axis = axis
        self.network = network
        shapes = output_shapes(network)
        slots: dict[str, int | None] = {INPUT: 0}
        self.steps: list[_WindowStep | _SameStep | _ShapeStep] = []
        count = 1
        steps: PerOp[ReceptiveStep | None] = PerOp()
        varies: PerOp[bool] = PerOp()
        steps_append = self.steps.append
        for layer in network.layers:
            path, inputs = layer.path, layer.inputs
            output = shapes[path]
            in_shapes = tuple([shapes[i] for i in inputs])
            tracked = tuple([(k, s) for k, i in enumerate(inputs) if (s := slots[i]) is not None])
            if not tracked or len(output) != len(in_shapes[0]) or len(output) <= axis:
                slots[path] = None
                continue
            step = steps(layer.op, in_shapes, lambda: _step_or_none(layer.op, in_shapes))
            first = slots[inputs[0]]
            if first is not None and type(step) is Window and step.rounds_down:
                i = axis - 1
                window = _WindowStep(
                    count, first, int(step.spans[i]), int(step.strides[i]), int(step.before[i]),
                    int(step.after[i]), path, None, in_shapes,
                )
                if varies(layer.op, in_shapes, lambda: self._padding_varies(layer.op, window, in_shapes)):
                    window = replace(window, op=layer.op)
                steps_append(window)
                slots[path] = count
                count += 1
                continue
            if step is None:
                size = output[axis]
                same = [s for k, s in tracked if in_shapes[k][axis] == size]
                if same:
                    slots[path] = same[0]
                    for s in same[1:]:
                        steps_append(_SameStep(same[0], s))
                    continue
            steps_append(_ShapeStep(count, layer.op, in_shapes, tracked))
            slots[path] = count
            count += 1
        self.slots = count

    def _padding_varies(self, op: Op, window: _WindowStep, in_shapes: tuple[Shape, ...]) -> bool:
        """Whether the padding changes with the size: probed over one stride period (padding
        that depends on the size, TensorFlow's 'same', repeats with the stride)."""
        m = in_shapes[0][self.axis]
        if window.stride > PROBES:
            return True  # too long a period to probe: treated as varying, which is always right
        for extra in range(1, max(window.stride, 2)):
            try:
                probe = op.receptive_step([with_size(in_shapes[0], self.axis, m + extra), *in_shapes[1:]])
            except ArchcalcError:
                return True
            if not isinstance(probe, Window) or (
                probe.before[self.axis - 1], probe.after[self.axis - 1]
            ) != (window.before, window.after):
                return True
        return False

    def run(self, n: int) -> list[Drop] | None:
        """The windows that drop trailing input at input size n; None if the size is invalid."""
        sizes = [0] * self.slots
        sizes[0] = n
        drops = []
        axis = self.axis
        for step in self.steps:
            if isinstance(step, _WindowStep):
                m = sizes[step.source]
                before, after = step.before, step.after
                if step.op is not None:
                    window = step.op.receptive_step([with_size(step.template[0], axis, m), *step.template[1:]])
                    assert isinstance(window, Window)
                    before, after = int(window.before[axis - 1]), int(window.after[axis - 1])
                reach = m + before + after - step.span
                if reach < 0:
                    return None
                sizes[step.out] = reach // step.stride + 1
                leftover = reach % step.stride  # padded input past the last window's end
                if leftover > after:
                    drops.append(Drop(step.path, m, leftover - after))
            elif isinstance(step, _SameStep):
                if sizes[step.a] != sizes[step.b]:
                    return None
            else:
                shapes = list(step.template)
                for k, slot in step.tracked:
                    shapes[k] = with_size(shapes[k], axis, sizes[slot])
                try:
                    size = step.op.output_shape(shapes)[axis]
                except ArchcalcError:
                    return None
                if not isinstance(size, int) or size < 1:
                    return None
                sizes[step.out] = size
        return drops

    def accepts(self, n: int) -> bool:
        """Whether every layer accepts size n on the axis (the full shape pass, every check)."""
        try:
            output_shapes(self.network.with_input(with_size(self.network.input_shape, self.axis, n)))
        except ArchcalcError:
            return False
        return True

    def clean(self, n: int) -> bool:
        """Size n is valid and no window leaves input unread."""
        return self.run(n) == [] and self.accepts(n)


def period(network: Network, axis: int) -> int:
    """Input sizes that differ by this round alike on the axis: the lcm of the numerators of the
    effective strides (Araujo et al.'s jumps) of every layer with a closed-form field."""
    from archcalc.figures.receptive_field import ReceptiveField, receptive_fields

    numerators = []
    for field in receptive_fields(network, output_shapes(network)).values():
        if isinstance(field, ReceptiveField):
            try:
                numerators.append(Fraction(str(field.stride[axis - 1])).numerator)
            except (ValueError, ZeroDivisionError):
                continue  # a symbolic jump: no period to read
    return math.lcm(1, *numerators)


def nearest_clean(program: AxisProgram, n: int, cycle: int) -> int | None:
    """The smallest size >= n that is valid and drops nothing, or None: sizes round alike every
    `cycle`, so one cycle from n decides."""
    return next((c for c in range(n, n + cycle) if program.clean(c)), None)


def residues(program: AxisProgram, start: int, cycle: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(valid, clean): the residues r mod `cycle` of sizes above `start` that every layer accepts,
    and of those that also drop nothing."""
    base = start + (-start) % cycle + cycle
    valid = tuple(r for r in range(cycle) if program.run(base + r) is not None and program.accepts(base + r))
    clean = tuple(r for r in valid if program.run(base + r) == [])
    return valid, clean
