"""Ops that join several inputs: element-wise add and multiply, and concatenation."""

from __future__ import annotations

from typing import Any

from ..arith import Dim, Shape, equal
from ..errors import ShapeError
from .base import Op, Saved, Whole, elements
from .window import np


def _show(shapes: list[Shape]) -> str:
    return " and ".join(str(list(s)) for s in shapes)


def _projection_hint(a: Shape, b: Shape) -> str:
    """The 1x1 convolution that would map the larger map onto the smaller, as ResNet does."""
    if len(a) != len(b) or len(a) < 2 or not all(isinstance(d, int) for d in (*a, *b)):
        return ""
    big, small = (a, b) if a[1] >= b[1] else (b, a)
    strides = {(n + s - 1) // s for n, s in zip(big[1:], small[1:])}
    if len(strides) != 1 or any((n - 1) // next(iter(strides)) + 1 != m for n, m in zip(big[1:], small[1:])):
        return " (their sizes differ by no single stride)"
    stride = strides.pop()
    what = f"stride {stride}, " if stride > 1 else ""
    return (
        f" (the path giving {list(big)} needs a 1x1 convolution, {what}to {small[0]} channels "
        "on its side of the connection, as ResNet's downsample does)"
    )


class Add(Op):
    """Element-wise sum of inputs of identical shape (a residual connection)."""

    kind = "add"
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: list[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(first) or not all(equal(a, b) for a, b in zip(first, other)):
                raise ShapeError(f"cannot add shapes {_show(inputs)}{_projection_hint(first, other)}")
        return first

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return (len(inputs) - 1) * elements(output)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        total = xs[0] + xs[1]
        for x in xs[2:]:
            total += x
        return total


class Mul(Op):
    """Element-wise product with NumPy broadcasting (squeeze-and-excitation's channel scaling)."""

    kind = "mul"
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: list[Shape]) -> Shape:
        rank = max(len(s) for s in inputs)
        padded = [(1,) * (rank - len(s)) + tuple(s) for s in inputs]
        result: list[Dim] = []
        for sizes in zip(*padded):
            wide = [d for d in sizes if not (isinstance(d, int) and d == 1)]
            if any(not equal(d, wide[0]) for d in wide[1:]):
                raise ShapeError(f"cannot broadcast shapes {_show(inputs)} together")
            result.append(wide[0] if wide else 1)
        return tuple(result)

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return (len(inputs) - 1) * elements(output)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return Saved(inputs=tuple(range(len(inputs))))  # each factor's gradient needs the others

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """Broadcasts the per-example shapes (batch kept on axis 0), as output_shape does."""
        rank = max(x.ndim for x in xs)
        result = xs[0].reshape(xs[0].shape[0], *(1,) * (rank - xs[0].ndim), *xs[0].shape[1:])
        for x in xs[1:]:
            result = result * x.reshape(x.shape[0], *(1,) * (rank - x.ndim), *x.shape[1:])
        return result


class Concat(Op):
    """Joins inputs along `dim` (dims count the batch as 0, as torch.cat; default 1, channels)."""

    kind = "concat"
    min_inputs = 2
    max_inputs = None

    dim: Whole = 1

    def output_shape(self, inputs: list[Shape]) -> Shape:
        rank = len(inputs[0]) + 1
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ShapeError(f"concat dim {self.dim} is not a feature axis of a rank-{rank} tensor")
        axis = self.dim % rank - 1
        for other in inputs[1:]:
            same_rest = len(other) == len(inputs[0]) and all(
                equal(a, b) for i, (a, b) in enumerate(zip(inputs[0], other)) if i != axis
            )
            if not same_rest:
                raise ShapeError(
                    f"cannot concatenate shapes {_show(inputs)} along dim {self.dim}: "
                    "all other axes must match"
                )
        joined = inputs[0][axis]
        for other in inputs[1:]:
            joined = joined + other[axis]
        return (*inputs[0][:axis], joined, *inputs[0][axis + 1 :])

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return np.concatenate(xs, axis=self.dim % xs[0].ndim)
