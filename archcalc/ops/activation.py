"""Element-wise activations: the output has the input's shape; only ACON-C learns parameters."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..arith import Dim, Shape
from ..errors import ShapeError
from .base import INPUT, OUTPUT, Op, Saved, elements


class _Activation(Op):
    """An element-wise function; `inplace` overwrites its input, as PyTorch's inplace=True.

    `flops_per_element` and `saves` follow PyTorch: functions whose derivative is cheap from the
    result (ReLU, sigmoid, tanh, softmax) keep their output, the others their input.
    """

    flops_per_element: ClassVar[int] = 1
    saves_output: ClassVar[bool] = False

    inplace: bool = False

    @property
    def inplace_output(self) -> bool:
        return self.inplace

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return self.flops_per_element * elements(output)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return OUTPUT if self.saves_output or self.inplace else INPUT


class ReLU(_Activation):
    kind = "relu"
    aliases = ("rectlin",)  # neon's name
    saves_output = True


class ReLU6(_Activation):
    kind = "relu6"
    flops_per_element = 2


class LeakyReLU(_Activation):
    kind = "leaky_relu"

    negative_slope: float = 0.01


class ELU(_Activation):
    kind = "elu"
    aliases = ("explin",)  # neon's name
    flops_per_element = 3

    alpha: float = 1.0


class Softplus(_Activation):
    kind = "softplus"
    flops_per_element = 3

    beta: float = 1.0
    threshold: float = 20.0


class Sigmoid(_Activation):
    kind = "sigmoid"
    aliases = ("logistic",)  # neon's name
    saves_output = True
    flops_per_element = 4


class Tanh(_Activation):
    kind = "tanh"
    saves_output = True
    flops_per_element = 4


class SiLU(_Activation):
    """x * sigmoid(x): Swish with beta = 1 (Ramachandran et al. 2017), torch.nn.SiLU."""

    kind = "silu"
    aliases = ("swish",)
    flops_per_element = 5


class Mish(_Activation):
    kind = "mish"
    flops_per_element = 8


class GELU(_Activation):
    kind = "gelu"
    flops_per_element = 8

    approximate: Literal["none", "tanh"] = "none"


class Hardswish(_Activation):
    kind = "hardswish"
    flops_per_element = 4


class Hardsigmoid(_Activation):
    kind = "hardsigmoid"
    flops_per_element = 3


class Softmax(_Activation):
    """Normalises along `dim` (dims count the batch as 0, as torch; default: the last axis)."""

    kind = "softmax"
    saves_output = True
    flops_per_element = 3

    dim: int = -1

    def output_shape(self, inputs: list[Shape]) -> Shape:
        rank = len(inputs[0]) + 1
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ShapeError(f"softmax dim {self.dim} is not a feature axis of a rank-{rank} tensor")
        return inputs[0]


class AconC(_Activation):
    """ACON-C (Ma et al. 2021): (p1-p2)x * sigmoid(beta (p1-p2) x) + p2 x, learnable per channel."""

    kind = "acon_c"
    flops_per_element = 8

    beta_init: float = Field(default=1.0)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        if not inputs[0]:
            raise ShapeError("acon_c needs a channel axis")
        c = inputs[0][0]
        broadcast = (1,) * (len(inputs[0]) - 1)
        return {"p1": (c, *broadcast), "p2": (c, *broadcast), "beta": (c, *broadcast)}
