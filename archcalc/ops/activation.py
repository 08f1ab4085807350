"""Element-wise activations: the output has the input's shape; only ACON-C learns parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..arith import Shape
from ..errors import ShapeError
from .base import Op


class _Activation(Op):
    """An element-wise function; `inplace` overwrites its input, as PyTorch's inplace=True."""

    inplace: bool = False


class ReLU(_Activation):
    kind = "relu"
    aliases = ("rectlin",)  # neon's name


class ReLU6(_Activation):
    kind = "relu6"


class LeakyReLU(_Activation):
    kind = "leaky_relu"

    negative_slope: float = 0.01


class ELU(_Activation):
    kind = "elu"
    aliases = ("explin",)  # neon's name

    alpha: float = 1.0


class Softplus(_Activation):
    kind = "softplus"

    beta: float = 1.0
    threshold: float = 20.0


class Sigmoid(_Activation):
    kind = "sigmoid"
    aliases = ("logistic",)  # neon's name


class Tanh(_Activation):
    kind = "tanh"


class SiLU(_Activation):
    """x * sigmoid(x): Swish with beta = 1 (Ramachandran et al. 2017), torch.nn.SiLU."""

    kind = "silu"
    aliases = ("swish",)


class Mish(_Activation):
    kind = "mish"


class GELU(_Activation):
    kind = "gelu"

    approximate: Literal["none", "tanh"] = "none"


class Hardswish(_Activation):
    kind = "hardswish"


class Hardsigmoid(_Activation):
    kind = "hardsigmoid"


class Softmax(_Activation):
    """Normalises along `dim` (dims count the batch as 0, as torch; default: the last axis)."""

    kind = "softmax"

    dim: int = -1

    def output_shape(self, inputs: list[Shape]) -> Shape:
        rank = len(inputs[0]) + 1
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ShapeError(f"softmax dim {self.dim} is not a feature axis of a rank-{rank} tensor")
        return inputs[0]


class AconC(_Activation):
    """ACON-C (Ma et al. 2021): (p1-p2)x * sigmoid(beta (p1-p2) x) + p2 x, learnable per channel."""

    kind = "acon_c"

    beta_init: float = Field(default=1.0)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        if not inputs[0]:
            raise ShapeError("acon_c needs a channel axis")
        c = inputs[0][0]
        broadcast = (1,) * (len(inputs[0]) - 1)
        return {"p1": (c, *broadcast), "p2": (c, *broadcast), "beta": (c, *broadcast)}
