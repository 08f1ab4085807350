"""Ops that only rearrange or pass data: flatten and identity."""

from __future__ import annotations

from typing import Any

from ..arith import Shape, product
from ..errors import ShapeError
from .base import GLOBAL, Op, ReceptiveStep, Whole


class Flatten(Op):
    """Joins axes start_dim..end_dim into one; dims count the batch as 0, as torch.flatten does."""

    kind = "flatten"

    start_dim: Whole = 1
    end_dim: Whole = -1

    @property
    def inplace_output(self) -> bool:
        return True  # a view of the input, as torch.flatten returns

    def output_shape(self, inputs: list[Shape]) -> Shape:
        full = (None, *inputs[0])  # the batch axis, so indices mean what they mean in torch
        rank = len(full)
        start = self.start_dim % rank if -rank <= self.start_dim < rank else None
        end = self.end_dim % rank if -rank <= self.end_dim < rank else None
        if start is None or end is None or start == 0 or start > end:
            raise ShapeError(
                f"cannot flatten dims {self.start_dim}..{self.end_dim} of a rank-{rank} tensor "
                "(dims count the batch axis as 0; the batch cannot be flattened)"
            )
        joined = product(list(full[start : end + 1]))
        return (*full[1:start], joined, *full[end + 1 :])

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].reshape(xs[0].shape[0], *self.output_shape([xs[0].shape[1:]]))

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Spatial positions merge into features: later layers see every position at once."""
        return GLOBAL if len(self.output_shape(inputs)) < len(inputs[0]) and len(inputs[0]) > 1 else None


class Identity(Op):
    """Passes its input through unchanged."""

    kind = "identity"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0]

    @property
    def inplace_output(self) -> bool:
        return True
