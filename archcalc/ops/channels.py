"""Ops that regroup data without arithmetic: ShuffleNet's channel shuffle, and a slice.

Two slices of one input are torch's `x.chunk(2, dim=1)`; with `concat` and `channel_shuffle`
they make ShuffleNet V2's units. Neither op has parameters or arithmetic, and neither keeps a
tensor for backward: torch's SplitBackward, SliceBackward and the view, transpose and contiguous
copy of a channel shuffle (ChannelShuffleBackward for torch.nn.ChannelShuffle) keep only sizes.
"""

from __future__ import annotations

from typing import Annotated, Any

from archcalc.arith import Dim, Shape, provably_below
from archcalc.errors import ShapeError
from archcalc.model import BeforeValidator, WithJsonSchema, model_validator
from archcalc.ops.base import (
    NOTHING,
    Op,
    PositiveInt,
    ReceptiveStep,
    Saved,
    TorchCode,
    Whole,
    Window,
    whole_number,
)


def _index(value: Any) -> Any:
    """A position along an axis: a whole number >= 0, or a sympy expression (symbolic mode)."""
    return whole_number(value, 0)


Index = Annotated[Any, BeforeValidator(_index), WithJsonSchema({"type": "integer", "minimum": 0})]


class ChannelShuffle(Op):
    """ShuffleNet's channel shuffle, as torch.nn.ChannelShuffle: the C channels viewed as
    (groups, C/groups), transposed and flattened back, so output channel i*groups + g is input
    channel g*(C/groups) + i. Spatial positions are untouched (element-wise for receptive fields)."""

    kind = "channel_shuffle"

    groups: PositiveInt

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if len(shape) < 2:
            raise ShapeError(
                "channel_shuffle expects an input of shape [C, *spatial] with at least one "
                f"spatial axis (batch excluded), as torch.nn.ChannelShuffle; got {list(shape)}"
            )
        channels = shape[0]
        if isinstance(channels, int) and channels % self.groups:
            raise ShapeError(
                f"cannot shuffle {channels} channels in {self.groups} groups: the channels must be "
                "divisible by groups"
            )
        return shape

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return NOTHING  # backward is the inverse permutation of the gradient

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        n, c, rest = x.shape[0], x.shape[1], x.shape[2:]
        grouped = x.reshape(n, self.groups, c // self.groups, *rest)
        return grouped.swapaxes(1, 2).reshape(x.shape)  # a copy: the transpose is not contiguous

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(f"nn.ChannelShuffle({self.groups})")

    def describe(self) -> str:
        return f"g{self.groups}"


class Slice(Op):
    """Elements [start, end) along `dim` (dims count the batch as 0, default 1: channels), as
    torch.narrow(x, dim, start, end - start): a view sharing the input's storage."""

    kind = "slice"

    dim: Whole = 1
    start: Index = 0
    end: Index

    @model_validator(mode="after")
    def _check_range(self) -> Slice:
        if provably_below(self.end - self.start, 1):
            raise ValueError(f"end ({self.end}) must be greater than start ({self.start})")
        return self

    @property
    def inplace_output(self) -> bool:
        return True  # a view: the input's storage stays alive while the slice is used

    def _axis(self, shape: Shape) -> int:
        """The per-example axis (batch excluded) that `dim` names."""
        rank = len(shape) + 1
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ShapeError(
                f"slice dim {self.dim} is not a feature axis of a rank-{rank} tensor "
                "(dims count the batch axis as 0; the batch cannot be sliced)"
            )
        return self.dim % rank - 1

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        axis = self._axis(shape)
        size = shape[axis]
        if provably_below(size - self.end, 0):
            raise ShapeError(
                f"slice [{self.start}:{self.end}) along dim {self.dim} runs past the end of an axis "
                f"of {size} elements (input {list(shape)})"
            )
        return (*shape[:axis], self.end - self.start, *shape[axis + 1 :])

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """A slice of channels leaves fields alone; a slice of a spatial axis is a crop: unit 0
        sees input position `start` (padding -start before), trailing positions go unread."""
        shape = inputs[0]
        axis = self._axis(shape)
        if axis == 0:
            return None
        spatial = len(shape) - 1
        before: list[Dim] = [0] * spatial
        after: list[Dim] = [0] * spatial
        before[axis - 1] = -self.start
        after[axis - 1] = self.end - shape[axis]
        ones = (1,) * spatial
        return Window(ones, ones, tuple(before), tuple(after), rounds_down=False)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return NOTHING  # backward pads the gradient with zeros to the input's size

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        axis = self._axis(x.shape[1:]) + 1
        return x[(slice(None),) * axis + (slice(self.start, self.end),)]

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """x[:, ..., start:end], the view torch.narrow gives."""
        axis = self._axis(inputs[0]) + 1
        return TorchCode(call=f"{{0}}[{':, ' * axis}{self.start}:{self.end}]")

    def describe(self) -> str:
        where = "" if self.dim == 1 else f" dim {self.dim}"
        return f"[{self.start}:{self.end}){where}"
