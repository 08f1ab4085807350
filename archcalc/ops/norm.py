"""Normalisation layers: batch, layer, RMS and group norm with their affine parameters and buffers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from archcalc.arith import Dim, Shape, equal
from archcalc.errors import ShapeError
from archcalc.model import Field
from archcalc.ops.base import (
    GLOBAL,
    INPUT,
    PARAMETERS,
    Op,
    PositiveInt,
    ReceptiveStep,
    Saved,
    TorchCode,
    elements,
    literal,
    whole_axes_reads,
)
from archcalc.ops.window import np


def _channel_affine(y: Any, weights: dict[str, Any], affine: bool) -> Any:
    """y * weight + bias with per-channel (axis 1) parameters, when the layer has them."""
    if not affine:
        return y
    shape = (1, -1, *(1,) * (y.ndim - 2))
    return y * weights["weight"].reshape(shape) + weights["bias"].reshape(shape)

_LAYOUT = {1: ("C] or [C, L", (1, 2)), 2: ("C, H, W", (3,)), 3: ("C, D, H, W", (4,))}


def _settings(values: dict[str, tuple[Any, Any]]) -> list[str]:
    """`name=value` for each (value, torch's default) that differs from the default."""
    return [f"{name}={literal(value)}" for name, (value, default) in values.items() if value != default]


class _BatchNorm(Op):
    """Per-channel affine weight and bias (if `affine`); running mean/var buffers, as PyTorch."""

    dims: ClassVar[int] = 2
    normalizes_channels = True
    init = {"weight": "scale", "running_var": "variance", "num_batches_tracked": "count"}

    eps: float = Field(default=1e-5, gt=0)
    momentum: float = Field(default=0.1, ge=0, le=1)
    affine: bool = True
    track_running_stats: bool = True

    def output_shape(self, inputs: list[Shape]) -> Shape:
        layout, ranks = _LAYOUT[self.dims]
        if len(inputs[0]) not in ranks:
            raise ShapeError(f"{self.kind} expects [{layout}] (batch excluded), got {list(inputs[0])}")
        return inputs[0]

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        c = inputs[0][0]
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return 2 * elements(output)  # inference: a per-channel scale and shift

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return INPUT  # plus per-channel mean and inverse std, which do not grow with the batch

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """Inference: normalise with the running statistics (batch statistics without them)."""
        x = xs[0]
        axes = (0, *range(2, x.ndim))
        shape = (1, -1, *(1,) * (x.ndim - 2))
        if self.track_running_stats:
            mean, var = weights["running_mean"].reshape(shape), weights["running_var"].reshape(shape)
        else:
            mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
        return _channel_affine((x - mean) / np.sqrt(var + self.eps), weights, self.affine)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        args = [literal(inputs[0][0]), *_settings({"eps": (self.eps, 1e-5), "momentum": (self.momentum, 0.1)})]
        args += [f"{name}=False" for name in ("affine", "track_running_stats") if not getattr(self, name)]
        return TorchCode(f"nn.BatchNorm{self.dims}d({', '.join(args)})")

    def buffers(self, inputs: list[Shape]) -> dict[str, Shape]:
        c = inputs[0][0]
        if not self.track_running_stats:
            return {}
        # num_batches_tracked is a scalar int64 in PyTorch's state dict
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}


class BatchNorm1d(_BatchNorm):
    kind = "batchnorm1d"
    dims = 1


class BatchNorm2d(_BatchNorm):
    kind = "batchnorm2d"
    aliases = ("batchnorm",)
    dims = 2


class BatchNorm3d(_BatchNorm):
    kind = "batchnorm3d"
    dims = 3


class _TrailingNorm(Op):
    """Normalises the trailing `normalized_shape` axes (an int is one axis; default: the last
    axis), with a weight of that shape: torch.nn.LayerNorm's and torch.nn.RMSNorm's layout."""

    init = {"weight": "scale"}

    normalized_shape: PositiveInt | list[PositiveInt] | None = None

    def _normalized(self, shape: Shape) -> Shape:
        if self.normalized_shape is None:
            return shape[-1:]
        given = self.normalized_shape
        wanted = tuple(given) if isinstance(given, list) else (given,)  # nn.LayerNorm(128)
        tail = shape[len(shape) - len(wanted) :] if len(wanted) <= len(shape) else ()
        if len(tail) != len(wanted) or not all(equal(a, b) for a, b in zip(tail, wanted)):
            raise ShapeError(
                f"normalized_shape {list(wanted)} must match the trailing axes of {list(shape)}"
            )
        return wanted

    def _rows(self, shape: Shape) -> Dim:
        """How many independent sets of statistics: the elements outside the normalised axes."""
        return elements(shape) // elements(self._normalized(shape))

    def output_shape(self, inputs: list[Shape]) -> Shape:
        if not inputs[0]:
            raise ShapeError(f"{self.kind} needs at least one axis")
        self._normalized(inputs[0])
        return inputs[0]

    def _mixed_axes(self, shape: Shape) -> tuple[int, ...]:
        """Spatial axes (0: the first after the channels) the statistics are taken over."""
        return tuple(a - 1 for a in range(len(shape) - len(self._normalized(shape)), len(shape)) if a >= 1)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Statistics over every spatial axis: each output sees the whole input."""
        mixed = self._mixed_axes(inputs[0])
        return GLOBAL if mixed and len(mixed) == len(inputs[0]) - 1 else None

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        return whole_axes_reads(inputs, axis, unit, self._mixed_axes(inputs[0]))

    def receptive_varies(self, inputs: list[Shape]) -> str:
        if not self._mixed_axes(inputs[0]) or self.receptive_step(inputs) == GLOBAL:
            return ""
        return f"{self.kind}'s statistics mix every position of the normalised spatial axes"


class LayerNorm(_TrailingNorm):
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing axes, as torch.nn.LayerNorm."""

    kind = "layernorm"

    eps: float = Field(default=1e-5, gt=0)
    elementwise_affine: bool = True
    bias: bool = True

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return 7 * elements(output)  # mean, variance (3), normalise (2), scale and shift

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """The input, and a mean and rstd per row of the parameters' type (the input's without
        them): float32 under autocast, where the mixed-type kernel accumulates in the weight's."""
        stats = PARAMETERS if self.elementwise_affine else None
        return Saved(inputs=(0,), extra=((2 * self._rows(inputs[0]), stats),))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        axes = tuple(range(x.ndim - len(self._normalized(x.shape[1:])), x.ndim))
        y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + self.eps)
        if self.elementwise_affine:
            y = y * weights["weight"]
            if self.bias:
                y = y + weights["bias"]
        return y

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        args = [literal(tuple(self._normalized(inputs[0]))), *_settings({"eps": (self.eps, 1e-5)})]
        args += [f"{name}=False" for name in ("elementwise_affine", "bias") if not getattr(self, name)]
        return TorchCode(f"nn.LayerNorm({', '.join(args)})")

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        if not self.elementwise_affine:
            return {}
        shape = self._normalized(inputs[0])
        return {"weight": shape, "bias": shape} if self.bias else {"weight": shape}


class RMSNorm(_TrailingNorm):
    """x / sqrt(mean(x^2) + eps) * weight over the trailing axes (Zhang & Sennrich 2019), as
    torch.nn.RMSNorm (eps None: the float32 machine epsilon, torch's default) or transformers'
    LlamaRMSNorm (`implementation: hf`, eps 1e-6 in LLaMA's config).

    Both are decompositions autograd records op by op (torch 2.14.1 on the CPU, measured with
    saved_tensors_hooks): the input upcast to float32 (for pow and for the product with the
    rsqrt), rsqrt(mean + eps) per row in float32, and the normalised float32 result for the
    weight's gradient. They differ in that last tensor: torch multiplies the weight into the
    float32 result, HF casts the result back to the input's dtype first and keeps that."""

    kind = "rmsnorm"

    eps: float | None = Field(default=None, gt=0)
    elementwise_affine: bool = True
    implementation: Literal["torch", "hf"] = "torch"

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        return {"weight": self._normalized(inputs[0])} if self.elementwise_affine else {}

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        """Per element: square, sum, scale (and the weight); per row: add eps, rsqrt."""
        per_element = 4 if self.elementwise_affine else 3
        return per_element * elements(output) + 2 * self._rows(inputs[0])

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """The input (for its gradient) and the per-row rsqrt in float32; with a weight, the
        normalised result (float32 in torch's, the input's dtype in HF's). Exact for float32
        activations with the input needing a gradient and the weight training (the usual
        case); the upcast copy that half-precision inputs get is counted as the input itself,
        and a frozen weight's product keeps the weight (not per example) instead of the result."""
        rows: tuple[Dim, str | None] = (self._rows(inputs[0]), "float32")
        if not self.elementwise_affine:
            return Saved(for_inputs=(0,), extra=(rows,))
        result = (elements(output), "float32" if self.implementation == "torch" else None)
        return Saved(for_inputs=(0,), extra=(rows, result))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        axes = tuple(range(x.ndim - len(self._normalized(x.shape[1:])), x.ndim))
        eps = float(np.finfo(np.promote_types(x.dtype, np.float32)).eps) if self.eps is None else self.eps
        y = x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
        return y * weights["weight"] if self.elementwise_affine else y

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.RMSNorm for both implementations: they compute the same (HF's differs only in what
        autograd keeps and, below float32, in rounding)."""
        args = [literal(tuple(self._normalized(inputs[0]))), *_settings({"eps": (self.eps, None)})]
        if not self.elementwise_affine:
            args.append("elementwise_affine=False")
        return TorchCode(f"nn.RMSNorm({', '.join(args)})")

    def describe(self) -> str:
        return "hf" if self.implementation == "hf" else ""


class GroupNorm(Op):
    """Normalises channel groups; per-channel affine weight and bias, torch.nn.GroupNorm."""

    kind = "groupnorm"
    init = {"weight": "scale"}

    groups: PositiveInt
    eps: float = Field(default=1e-5, gt=0)
    affine: bool = True

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if not shape:
            raise ShapeError("groupnorm needs a channel axis")
        if isinstance(shape[0], int) and shape[0] % self.groups:
            raise ShapeError(f"channels ({shape[0]}) must be divisible by groups ({self.groups})")
        return shape

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        c = inputs[0][0]
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return 7 * elements(output)  # as layer norm

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """The input, and a mean and rstd per group of the parameters' type, as layer norm's."""
        return Saved(inputs=(0,), extra=((2 * self.groups, PARAMETERS if self.affine else None),))

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Each group's mean and variance cover every spatial position: outputs see the whole input."""
        return GLOBAL if len(inputs[0]) > 1 else None

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        args = [str(self.groups), literal(inputs[0][0]), *_settings({"eps": (self.eps, 1e-5)})]
        return TorchCode(f"nn.GroupNorm({', '.join(args)}{'' if self.affine else ', affine=False'})")

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        grouped = x.reshape(x.shape[0], self.groups, -1)
        mean = grouped.mean(axis=2, keepdims=True)
        var = grouped.var(axis=2, keepdims=True)
        y = ((grouped - mean) / np.sqrt(var + self.eps)).reshape(x.shape)
        return _channel_affine(y, weights, self.affine)


class Normalize(Op):
    """x / max(||x||_2, eps) along `dim` (dims count the batch as 0, default 1), as
    F.normalize(x, p=2): Swin V2's cosine attention normalises q and k over the head's features.
    F.normalize runs norm, clamp_min, expand and div, and autograd keeps the input, the norm per
    row and the clamped norm per row (measured with saved_tensors_hooks, torch 2.14.1)."""

    kind = "normalize"

    dim: int = 1
    eps: float = Field(default=1e-12, gt=0)

    def _axis(self, shape: Shape) -> int:
        rank = len(shape) + 1
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ShapeError(
                f"normalize dim {self.dim} is not a feature axis of a rank-{rank} tensor "
                "(dims count the batch axis as 0)"
            )
        return self.dim % rank - 1

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._axis(inputs[0])
        return inputs[0]

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return 3 * elements(output)  # square and sum, divide

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        rows = elements(inputs[0]) // inputs[0][self._axis(inputs[0])]
        return Saved(inputs=(0,), extra=((2 * rows, None),))

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """The norm mixes every position of `dim` when it is a spatial axis."""
        mixed = self._axis(inputs[0]) - 1
        return whole_axes_reads(inputs, axis, unit, (mixed,) if mixed >= 0 else ())

    def receptive_varies(self, inputs: list[Shape]) -> str:
        return "normalize mixes every position of its axis" if self._axis(inputs[0]) >= 1 else ""

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        axis = self._axis(x.shape[1:]) + 1
        norm = np.sqrt((x * x).sum(axis=axis, keepdims=True))
        return x / np.maximum(norm, self.eps)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call=f"F.normalize({{0}}, dim={self.dim}, eps={literal(self.eps)})")

    def describe(self) -> str:
        return f"dim {self.dim}"
