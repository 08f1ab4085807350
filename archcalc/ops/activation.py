"""Element-wise activations: the output has the input's shape; ACON-C and meta-ACON-C learn parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from archcalc.arith import Dim, Shape, maximum
from archcalc.errors import ShapeError
from archcalc.model import Field, model_validator
from archcalc.ops.base import (
    GLOBAL,
    INPUT,
    NOTHING,
    OUTPUT,
    Op,
    PositiveInt,
    ReceptiveStep,
    Saved,
    TorchCode,
    Whole,
    elements,
    literal,
    whole_axes_reads,
)
from archcalc.ops.window import np


class _Activation(Op):
    """An element-wise function; `inplace` overwrites its input, as PyTorch's inplace=True.

    `flops_per_element` and `saves` follow PyTorch: functions whose derivative is cheap from the
    result (ReLU, sigmoid, tanh, softmax) keep their output, the others their input.
    """

    flops_per_element: ClassVar[int] = 1
    saves_output: ClassVar[bool] = False
    saves_output_inplace: ClassVar[bool] = False

    inplace: bool = False

    @property
    def inplace_output(self) -> bool:
        return self.inplace

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return self.flops_per_element * elements(output)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """Output or input, as the derivative needs; an in-place op whose derivative needs its
        input keeps a copy of it (PyTorch clones `self` for hardtanh_, hardswish_, silu_ ...)."""
        if self.saves_output or (self.inplace and self.saves_output_inplace):
            return OUTPUT
        return Saved(extra=((elements(output), None),)) if self.inplace else INPUT

    def function(self, x: Any) -> Any:
        """The element-wise function on a NumPy array."""
        raise NotImplementedError

    def _nn(self, module: str, *arguments: str) -> TorchCode:
        """torch.nn's `module` with `arguments` (Python source) and inplace, as nn.ReLU(inplace=True)."""
        return TorchCode(f"nn.{module}({', '.join((*arguments, f'inplace={self.inplace}'))})")

    def _tensor_method(self, method: str, arguments: str = "") -> TorchCode:
        """The tensor method `method` on the input, its in-place form (`method_`) with inplace."""
        return TorchCode(call=f"{{0}}.{method}{'_' if self.inplace else ''}({arguments})")

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return self._result(xs[0], self.function(xs[0]))

    def _result(self, x: Any, y: Any) -> Any:
        """`y`, or with inplace `x` overwritten by it: the output is the input's storage (PyTorch)."""
        if self.inplace:
            x[...] = y
            return x
        return y


def _sigmoid(x: Any) -> Any:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


def _erf(x: Any) -> Any:
    """erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7); NumPy has no erf."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


class ReLU(_Activation):
    kind = "relu"
    aliases = ("rectlin",)  # neon's name
    saves_output = True

    def function(self, x: Any) -> Any:
        return np.maximum(x, 0)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("ReLU")


class ReLU6(_Activation):
    kind = "relu6"
    flops_per_element = 2

    def function(self, x: Any) -> Any:
        return np.clip(x, 0, 6)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("ReLU6")


class LeakyReLU(_Activation):
    kind = "leaky_relu"
    saves_output_inplace = True  # leaky_relu_ differentiates from its result

    negative_slope: float = 0.01

    def function(self, x: Any) -> Any:
        return np.where(x > 0, x, x * self.negative_slope)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("LeakyReLU", literal(self.negative_slope))


class ELU(_Activation):
    kind = "elu"
    aliases = ("explin",)  # neon's name
    flops_per_element = 3
    saves_output_inplace = True  # elu_ differentiates from its result

    alpha: float = 1.0

    def function(self, x: Any) -> Any:
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("ELU", literal(self.alpha))


class Softplus(_Activation):
    kind = "softplus"
    flops_per_element = 3

    beta: float = 1.0
    threshold: float = 20.0

    def function(self, x: Any) -> Any:
        """log(1 + exp(beta x)) / beta, linear where beta x exceeds the threshold (PyTorch)."""
        bx = self.beta * x
        return np.where(bx > self.threshold, x, np.logaddexp(0, bx) / self.beta)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.Softplus, which has no in-place form: with inplace, written out of place (the same values)."""
        return TorchCode(f"nn.Softplus(beta={literal(self.beta)}, threshold={literal(self.threshold)})")


class Sigmoid(_Activation):
    kind = "sigmoid"
    aliases = ("logistic",)  # neon's name
    saves_output = True
    flops_per_element = 4

    def function(self, x: Any) -> Any:
        return _sigmoid(x)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._tensor_method("sigmoid") if self.inplace else TorchCode("nn.Sigmoid()")


class Tanh(_Activation):
    kind = "tanh"
    saves_output = True
    flops_per_element = 4

    def function(self, x: Any) -> Any:
        return np.tanh(x)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._tensor_method("tanh") if self.inplace else TorchCode("nn.Tanh()")


class SiLU(_Activation):
    """x * sigmoid(x): Swish with beta = 1 (Ramachandran et al. 2017), torch.nn.SiLU."""

    kind = "silu"
    aliases = ("swish",)
    flops_per_element = 5

    def function(self, x: Any) -> Any:
        return x * _sigmoid(x)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("SiLU")


class Mish(_Activation):
    kind = "mish"
    flops_per_element = 8

    def function(self, x: Any) -> Any:
        return x * np.tanh(np.logaddexp(0, x))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("Mish")


_NEW_GELU = '''\
class NewGELU(nn.Module):
    """GELU's tanh approximation in tensor ops, as transformers' NewGELUActivation (GPT-2's gelu_new)."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh((2.0 / torch.pi) ** 0.5 * (x + 0.044715 * torch.pow(x, 3.0))))
'''


class GELU(_Activation):
    """x * Phi(x) (Hendrycks & Gimpel 2016); `approximate: tanh` is 0.5 x (1 + tanh(sqrt(2/pi)
    (x + 0.044715 x^3))), torch's approximate='tanh' and GPT-2's gelu_new. `implementation`
    says which code runs, for the tensors it keeps: `torch`, F.gelu, one kernel keeping its
    input; `hf`, transformers' activation of that name: "gelu" calls F.gelu (the same), but
    "gelu_new" (NewGELUActivation, GPT-2's) writes the tanh formula in Python ops, and autograd
    keeps x (for x^3), tanh's result, 0.5 x and 1 + tanh (the last product's two factors):
    measured with saved_tensors_hooks, torch 2.14.1 and transformers."""

    kind = "gelu"
    flops_per_element = 8

    approximate: Literal["none", "tanh"] = "none"
    implementation: Literal["torch", "hf"] = "torch"

    @model_validator(mode="after")
    def _composite_not_inplace(self) -> GELU:
        if self.inplace and self.implementation == "hf":
            raise ValueError("implementation 'hf' (transformers' GELU activations) has no in-place form")
        return self

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        if self.implementation == "hf" and self.approximate == "tanh":
            return Saved(inputs=(0,), extra=((elements(output), None),) * 3)
        return super().saved_for_backward(inputs, output)

    def function(self, x: Any) -> Any:
        # Python float constants: a NumPy float64 scalar would promote float32 input to float64
        if self.approximate == "tanh":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.GELU (no in-place form: with inplace, written out of place); transformers' gelu_new
        as the Python ops it is written in, so autograd keeps what it keeps there."""
        if self.implementation == "hf" and self.approximate == "tanh":
            return TorchCode("NewGELU()", defines=(_NEW_GELU,))
        return TorchCode(f"nn.GELU(approximate={literal(self.approximate)})")


class Hardswish(_Activation):
    kind = "hardswish"
    flops_per_element = 4

    def function(self, x: Any) -> Any:
        return x * np.clip(x + 3, 0, 6) / 6

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("Hardswish")


class Hardsigmoid(_Activation):
    kind = "hardsigmoid"
    flops_per_element = 3

    def function(self, x: Any) -> Any:
        return np.clip(x + 3, 0, 6) / 6

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._nn("Hardsigmoid")


class Scale(_Activation):
    """x * factor, a constant: attention's q * d**-0.5 and Swin V2's 16 * sigmoid(bias). Keeps
    nothing per example (torch's mul keeps only the 0-dim constant for the input's gradient)."""

    kind = "scale"

    factor: float

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return NOTHING

    def function(self, x: Any) -> Any:
        return x * self.factor

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._tensor_method("mul", literal(self.factor))

    def describe(self) -> str:
        return f"x{self.factor:g}"


class Exp(_Activation):
    """e**x, as torch.exp (Swin V2's logit scale); keeps its result, its own derivative."""

    kind = "exp"
    saves_output = True

    def function(self, x: Any) -> Any:
        return np.exp(x)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._tensor_method("exp")


class Clamp(_Activation):
    """x limited to [min, max] (either may be absent, not both), as torch.clamp; keeps its input,
    whose position against the limits routes the gradient (Swin V2 clamps its logit scale at
    log 100 before exp)."""

    kind = "clamp"

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_limit(self) -> Clamp:
        if self.min is None and self.max is None:
            raise ValueError("clamp needs min, max or both (torch.clamp refuses neither)")
        return self

    def function(self, x: Any) -> Any:
        return np.clip(x, self.min, self.max)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return self._tensor_method("clamp", f"min={literal(self.min)}, max={literal(self.max)}")

    def describe(self) -> str:
        return f"[{'' if self.min is None else f'{self.min:g}'}, {'' if self.max is None else f'{self.max:g}'}]"


class Softmax(_Activation):
    """Normalises along `dim` (dims count the batch as 0, as torch; default: the last axis)."""

    kind = "softmax"
    saves_output = True
    flops_per_element = 3

    dim: Whole = -1

    def output_shape(self, inputs: list[Shape]) -> Shape:
        rank = len(inputs[0]) + 1
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ShapeError(f"softmax dim {self.dim} is not a feature axis of a rank-{rank} tensor")
        return inputs[0]

    def _mixed_axes(self, shape: Shape) -> tuple[int, ...]:
        """The spatial axis (0: the first after the channels) the softmax normalises, if any."""
        axis = self.dim % (len(shape) + 1) - 2
        return (axis,) if axis >= 0 else ()

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """A softmax over the only spatial axis makes each output see the whole input."""
        return GLOBAL if self._mixed_axes(inputs[0]) and len(inputs[0]) == 2 else None

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        return whole_axes_reads(inputs, axis, unit, self._mixed_axes(inputs[0]))

    def receptive_varies(self, inputs: list[Shape]) -> str:
        if not self._mixed_axes(inputs[0]) or len(inputs[0]) == 2:
            return ""
        return "softmax over a spatial axis mixes every position of that axis"

    def function(self, x: Any) -> Any:
        shifted = np.exp(x - x.max(axis=self.dim, keepdims=True))
        return shifted / shifted.sum(axis=self.dim, keepdims=True)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.Softmax (no in-place form: with inplace, written out of place); dims count the batch, as here."""
        return TorchCode(f"nn.Softmax(dim={literal(self.dim)})")


_ACON_C = '''\
class AconC(nn.Module):
    """ACON-C (Ma et al. 2021): (p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x, learned per channel."""

    def __init__(self, shape, beta=1.0):
        super().__init__()
        self.p1 = nn.Parameter(torch.randn(shape))
        self.p2 = nn.Parameter(torch.randn(shape))
        self.beta = nn.Parameter(torch.full(shape, beta))

    def forward(self, x):
        dpx = (self.p1 - self.p2) * x
        return dpx * torch.sigmoid(self.beta * dpx) + self.p2 * x
'''


class AconC(_Activation):
    """ACON-C (Ma et al. 2021): (p1-p2)x * sigmoid(beta (p1-p2) x) + p2 x, learnable per channel."""

    kind = "acon_c"
    autocast = "promote"  # x times its fp32 p1 - p2 and p2: promoted to fp32 under autocast
    init = {"p1": "scale", "beta": "scale"}
    flops_per_element = 8

    beta_init: float = Field(default=1.0)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        if not inputs[0]:
            raise ShapeError("acon_c needs a channel axis")
        c = inputs[0][0]
        broadcast = (1,) * (len(inputs[0]) - 1)
        return {"p1": (c, *broadcast), "p2": (c, *broadcast), "beta": (c, *broadcast)}

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        p1, p2, beta = (weights[k][None] for k in ("p1", "p2", "beta"))
        dpx = (p1 - p2) * x
        return self._result(x, dpx * _sigmoid(beta * dpx) + p2 * x)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """AconC (defined in the file: torch has none) with p1, p2 and beta shaped as `parameters`;
        with inplace, written out of place (the same values)."""
        shape = self.parameters(inputs)["p1"]
        return TorchCode(f"AconC({literal(tuple(shape))}, {literal(self.beta_init)})", defines=(_ACON_C,))


_META_ACON_C = '''\
class MetaAconC(nn.Module):
    """meta-ACON-C (Ma et al. 2021): ACON-C with beta = sigmoid(fc2(fc1(mean of x over H, W))), fc1 and
    fc2 1x1 convolutions, each followed by a batch norm if `normed` (the authors' code; yolov5's has none)."""

    def __init__(self, width, hidden, normed=True):
        super().__init__()
        self.p1 = nn.Parameter(torch.randn(1, width, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, width, 1, 1))
        self.fc1 = nn.Conv2d(width, hidden, 1)
        self.bn1 = nn.BatchNorm2d(hidden) if normed else nn.Identity()
        self.fc2 = nn.Conv2d(hidden, width, 1)
        self.bn2 = nn.BatchNorm2d(width) if normed else nn.Identity()
        self.normed = normed

    def forward(self, x):
        beta = torch.sigmoid(self.bn2(self.fc2(self.bn1(self.fc1(x.mean(dim=(2, 3), keepdim=True))))))
        if self.normed:  # the authors' code computes p1 x - p2 x twice
            return (self.p1 * x - self.p2 * x) * torch.sigmoid(beta * (self.p1 * x - self.p2 * x)) + self.p2 * x
        dpx = (self.p1 - self.p2) * x
        return dpx * torch.sigmoid(beta * dpx) + self.p2 * x
'''


class MetaAconC(Op):
    """meta-ACON-C (Ma et al. 2021, "Activate or Not", §3.2 and Table 5's channel-wise design):
    ACON-C, (p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x, whose switch beta is generated per
    example and channel: beta = sigmoid(fc2(fc1(mean of x over H, W))), fc1 and fc2 1x1
    convolutions C -> max(r, C // r) -> C with biases, r = 16. `implementation: official` is
    the authors' MetaAconC (github.com/nmaac/acon, acon.py): a BatchNorm2d after each 1x1
    convolution, and p1 x - p2 x computed twice in the forward; `yolov5` is ultralytics'
    MetaAconC (yolov5 utils/activations.py): no batch norms, (p1 - p2) x computed once.
    Parameters and buffers are named and shaped as those modules' state dicts."""

    kind = "meta_acon"
    autocast = "promote"  # x times its fp32 p1 - p2 and p2: promoted to fp32 under autocast
    init = {
        "p1": "scale", "fc1.weight": "fan_in", "fc2.weight": "fan_in",  # batch norms: official only
        **{f"bn{i}.{name}": scheme for i in (1, 2) for name, scheme in (
            ("weight", "scale"), ("running_var", "variance"), ("num_batches_tracked", "count"))},
    }

    r: PositiveInt = 16
    implementation: Literal["official", "yolov5"] = "official"

    @property
    def _normed(self) -> bool:
        return self.implementation == "official"

    def _hidden(self, c: Dim) -> Dim:
        return maximum(self.r, c // self.r)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        if len(inputs[0]) != 3:
            raise ShapeError(f"meta_acon expects [C, H, W] (batch excluded; beta is pooled over H and W), got {list(inputs[0])}")
        return inputs[0]

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        c = inputs[0][0]
        h = self._hidden(c)
        params: dict[str, Shape] = {"p1": (1, c, 1, 1), "p2": (1, c, 1, 1), "fc1.weight": (h, c, 1, 1), "fc1.bias": (h,)}
        if self._normed:
            params.update({"bn1.weight": (h,), "bn1.bias": (h,)})
        params.update({"fc2.weight": (c, h, 1, 1), "fc2.bias": (c,)})
        if self._normed:
            params.update({"bn2.weight": (c,), "bn2.bias": (c,)})
        return params

    def buffers(self, inputs: list[Shape]) -> dict[str, Shape]:
        if not self._normed:
            return {}
        c = inputs[0][0]
        return {
            f"{bn}.{name}": shape
            for bn, n in (("bn1", self._hidden(c)), ("bn2", c))
            for name, shape in (("running_mean", (n,)), ("running_var", (n,)), ("num_batches_tracked", ()))
        }

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        """The two 1x1 convolutions on the pooled [C, 1, 1]: C*hidden each."""
        return 2 * inputs[0][0] * self._hidden(inputs[0][0])

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        """The mean (one per element), the convolutions' biases, the batch norms' scale and
        shift (inference), beta's sigmoid (4 per channel, as sigmoid) and ACON-C (8 per element)."""
        c = inputs[0][0]
        h = self._hidden(c)
        norms = 2 * (h + c) if self._normed else 0
        return 9 * elements(output) + h + c + norms + 4 * c

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return GLOBAL  # beta pools every position

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """Measured with saved_tensors_hooks (torch 2.14.1, a module written from each source):
        the input (p1 x and p2 x keep it); per element, official: both p1 x - p2 x and the
        sigmoid's result, yolov5: (p1 - p2) x and the sigmoid's result; per channel, the pooled
        mean (fc1's input), fc2's input, beta (sigmoid's output) and, official, each batch
        norm's input (fc1's and fc2's outputs)."""
        c = inputs[0][0]
        h = self._hidden(c)
        if self._normed:
            per_element, per_channel = 3 * elements(output), 3 * c + 2 * h
        else:
            per_element, per_channel = 2 * elements(output), 2 * c + h
        return Saved(inputs=(0,), extra=((per_element, None), (per_channel, None)))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """Inference: the batch norms use their running statistics (eps 1e-5, BatchNorm2d's)."""
        x = xs[0]
        hidden = x.mean(axis=(2, 3)) @ weights["fc1.weight"][:, :, 0, 0].T + weights["fc1.bias"]
        if self._normed:
            hidden = self._norm(hidden, weights, "bn1")
        z = hidden @ weights["fc2.weight"][:, :, 0, 0].T + weights["fc2.bias"]
        if self._normed:
            z = self._norm(z, weights, "bn2")
        beta = _sigmoid(z)[:, :, None, None]
        dpx = (weights["p1"] - weights["p2"]) * x
        return dpx * _sigmoid(beta * dpx) + weights["p2"] * x

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """MetaAconC (defined in the file), its arrays registered in `parameters`' order."""
        c = inputs[0][0]
        return TorchCode(f"MetaAconC({literal(c)}, {literal(self._hidden(c))}, normed={self._normed})", defines=(_META_ACON_C,))

    @staticmethod
    def _norm(v: Any, weights: dict[str, Any], bn: str) -> Any:
        scale = weights[f"{bn}.weight"] / np.sqrt(weights[f"{bn}.running_var"] + 1e-5)
        return (v - weights[f"{bn}.running_mean"]) * scale + weights[f"{bn}.bias"]

    def describe(self) -> str:
        return f"r={self.r}" + ("" if self._normed else " yolov5")
