"""Ops that join several inputs: element-wise add and multiply, and concatenation."""

from __future__ import annotations

from typing import Any

from archcalc.arith import Dim, Shape, may_equal
from archcalc.errors import ShapeError
from archcalc.ops.base import Op, Saved, TorchCode, Whole, elements
from archcalc.ops.window import np


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


def _wide(sizes: tuple[Dim, ...]) -> list[Dim]:
    """The sizes of one axis that do not broadcast (every size but a literal 1)."""
    return [d for d in sizes if not (isinstance(d, int) and d == 1)]


class Add(Op):
    """Element-wise sum: inputs of identical shape (a residual connection), or of one rank
    broadcast as torch.add broadcasts the batched tensors, per axis the sizes agree or one is 1
    (Swin adds a [1, heads, N, N] position bias the batch shares to [windows, heads, N, N] scores)."""

    kind = "add"
    min_inputs = 2
    max_inputs = None

    def must_match(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        """Per axis, every size other than a literal 1 against the first such (a 1 broadcasts)."""
        return [(wide[0], d) for sizes in zip(*inputs) for wide in [_wide(sizes)] for d in wide[1:]]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(first) or not all(may_equal(a, b) for a, b in self.must_match([first, other])):
                raise ShapeError(f"cannot add shapes {_show(inputs)}{_projection_hint(first, other)}")
        return tuple(_wide(sizes)[0] if _wide(sizes) else 1 for sizes in zip(*inputs))

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return (len(inputs) - 1) * elements(output)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call=" + ".join(f"{{{i}}}" for i in range(len(inputs))))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        total = xs[0] + xs[1]
        for x in xs[2:]:
            total = total + x  # may broadcast to a larger shape than the first sum's
        return total


class Mul(Op):
    """Element-wise product with PyTorch's broadcasting of the batched tensors (squeeze-and-
    excitation's channel scaling: [C, H, W] times [C, 1, 1])."""

    kind = "mul"
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: list[Shape]) -> Shape:
        """torch.mul broadcasts the whole tensors, batch axis first: shapes align from the right,
        so inputs of different ranks would pair one's batch axis with the other's features, which
        holds at batch 1 only. Ranks must match; per axis the sizes agree or one is 1."""
        first = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(first):
                low, high = (other, first) if len(other) < len(first) else (first, other)
                fix = [*low, *(1,) * (len(high) - len(low))]
                raise ShapeError(
                    f"cannot multiply shapes {_show(inputs)} (batch excluded): PyTorch broadcasts "
                    f"the batched tensors [N, ...], so the batch axis of the {len(low)}-axis input "
                    f"would meet axis {len(high) - len(low)} of the other, and the product fails "
                    f"at any batch above 1; give it the shape {fix} (a reshape or unsqueeze) so "
                    "its sizes line up with the same axes"
                )
        if any(not may_equal(a, b) for a, b in self.must_match(inputs)):
            raise ShapeError(
                f"cannot broadcast shapes {_show(inputs)} together: on each axis the sizes "
                "must agree or be 1"
            )
        return tuple(_wide(sizes)[0] if _wide(sizes) else 1 for sizes in zip(*inputs))

    def must_match(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        """Per axis, every size other than 1 against the first such (a 1 broadcasts)."""
        if len({len(s) for s in inputs}) != 1:
            return []
        return [(wide[0], d) for sizes in zip(*inputs) for wide in [_wide(sizes)] for d in wide[1:]]

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return (len(inputs) - 1) * elements(output)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return Saved(for_partners=tuple(range(len(inputs))))  # each factor's gradient needs the others

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call=" * ".join(f"{{{i}}}" for i in range(len(inputs))))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """NumPy broadcasting of the batched arrays, as torch.mul (output_shape checks the ranks)."""
        result = xs[0]
        for x in xs[1:]:
            result = result * x
        return result


CAT = '''\
def cat(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """torch.cat, a tensor the whole batch shares (batch 1, a class token) expanded to the batch first."""
    batch = max(t.shape[0] for t in tensors)
    return torch.cat([t.expand(batch, *t.shape[1:]) for t in tensors], dim)
'''
"""Source of the cat function an exported file defines for a concatenation."""


class Concat(Op):
    """Joins inputs along `dim` (dims count the batch as 0, as torch.cat; default 1, channels)."""

    kind = "concat"
    min_inputs = 2
    max_inputs = None

    dim: Whole = 1

    @property
    def joins_along(self) -> int:
        return self.dim

    def _axis(self, inputs: list[Shape]) -> int:
        """The joined axis, batch excluded; a ShapeError unless `dim` names a feature axis."""
        rank = len(inputs[0]) + 1
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ShapeError(f"concat dim {self.dim} is not a feature axis of a rank-{rank} tensor")
        return self.dim % rank - 1

    def must_match(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        axis = self._axis(inputs)
        return [(a, b) for other in inputs[1:] for i, (a, b) in enumerate(zip(inputs[0], other)) if i != axis]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        axis = self._axis(inputs)
        for other in inputs[1:]:
            same_rest = len(other) == len(inputs[0]) and all(
                may_equal(a, b) for i, (a, b) in enumerate(zip(inputs[0], other)) if i != axis
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

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call=f"cat([{{x}}], dim={self.dim})", defines=(CAT,))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """A tensor the batch shares (batch axis 1, a class token) is expanded first, as
        torch code does before torch.cat."""
        batch = max(x.shape[0] for x in xs)
        xs = [np.broadcast_to(x, (batch, *x.shape[1:])) for x in xs]
        return np.concatenate(xs, axis=self.dim % xs[0].ndim)
