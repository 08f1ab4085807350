"""Fully connected (affine) layers: y = x W^T + b over the last axis, as torch.nn.Linear."""

from __future__ import annotations

from pydantic import PositiveInt

from ..arith import Shape
from ..errors import ShapeError
from .base import Op


class Linear(Op):
    """Maps the last axis to `out` features; input features are inferred."""

    kind = "linear"
    aliases = ("dense", "affine")

    out: PositiveInt
    bias: bool = True

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if not shape:
            raise ShapeError("linear needs at least one axis of features")
        return (*shape[:-1], self.out)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        weight = (self.out, inputs[0][-1])
        return {"weight": weight, "bias": (self.out,)} if self.bias else {"weight": weight}

    def describe(self) -> str:
        return f"->{self.out}"
