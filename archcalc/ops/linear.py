"""Fully connected (affine) layers: y = x W^T + b over the last axis, as torch.nn.Linear."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.arith import Dim, Shape
from archcalc.errors import ShapeError
from archcalc.ops.base import (
    GLOBAL,
    Op,
    ReceptiveStep,
    Saved,
    TensorParallel,
    TorchCode,
    Width,
    elements,
    literal,
    whole_axes_reads,
)

CONV1D = '''\
class Conv1D(nn.Module):
    """transformers' Conv1D: y = x W + b, the weight stored [in, out] (GPT-2's c_attn, c_proj, c_fc)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight
        return y if self.bias is None else y + self.bias
'''
"""Source of the Conv1D class an exported file defines for a `transposed: true` linear layer."""


class Linear(Op):
    """Maps the last axis to `out` features; input features are inferred. `transposed: true`
    stores the weight [in, out] and computes x W + b, as transformers' Conv1D (GPT-2's c_attn,
    c_proj and c_fc: torch.addmm(bias, x, weight)); the same figures, the array shaped as HF's.
    `parallel`: its split under tensor parallelism (`--tp`), as Megatron-LM's ColumnParallelLinear
    (weight and bias split by output features) or RowParallelLinear (weight split by input
    features, bias whole)."""

    kind = "linear"
    autocast = "lower"  # linear and addmm (transformers' Conv1D): CPU autocast's lower_precision_fp list
    aliases = ("dense", "affine")
    connectivity = "dense"
    init = {"weight": "fan_in"}

    out: Width
    bias: bool = True
    transposed: bool = False
    parallel: TensorParallel | None = None

    @property
    def tensor_parallel(self) -> TensorParallel | None:
        return self.parallel

    def split_parameters(self, inputs: list[Shape]) -> Dim:
        """Column: every parameter; row: the weight (each device adds the whole bias after the all-reduce)."""
        if self.parallel is None:
            return 0
        weight = inputs[0][-1] * self.out
        return weight + self.out if self.bias and self.parallel == "column" else weight

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if not shape:
            raise ShapeError("linear needs at least one axis of features")
        return (*shape[:-1], self.out)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        weight = (inputs[0][-1], self.out) if self.transposed else (self.out, inputs[0][-1])
        return {"weight": weight, "bias": (self.out,)} if self.bias else {"weight": weight}

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(output) * inputs[0][-1]

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(output) if self.bias else 0

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return GLOBAL if len(inputs[0]) == 1 else None  # mixes all features, or acts per position

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """On a map [C, ..., L] each output mixes every position of the last axis."""
        return whole_axes_reads(inputs, axis, unit, (len(inputs[0]) - 2,))

    def receptive_varies(self, inputs: list[Shape]) -> str:
        if len(inputs[0]) < 2:
            return ""
        return "linear mixes every position of its last axis, so no window describes that axis"

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """The input, for the weight gradient only: autograd's addmm/mm keeps mat1 when mat2 (the
        weight) needs a gradient, so a frozen linear layer keeps nothing that grows with the batch."""
        return Saved(for_weights=(0,))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        y = xs[0] @ (weights["weight"] if self.transposed else weights["weight"].T)
        return y + weights["bias"] if self.bias else y

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.Linear, or (transposed) Conv1D, a class written into the file; tied to another
        layer, F.linear (x @ weight + bias transposed) of that layer's arrays."""
        args = f"{literal(inputs[0][-1])}, {literal(self.out)}" + ("" if self.bias else ", bias=False")
        bias = ", {m}.bias" if self.bias else ""
        if self.transposed:
            tied = "{0} @ {m}.weight" + (" + {m}.bias" if self.bias else "")
            return TorchCode(f"Conv1D({args})", defines=(CONV1D,), functional=tied)
        return TorchCode(f"nn.Linear({args})", functional=f"F.linear({{0}}, {{m}}.weight{bias})")

    def describe(self) -> str:
        return f"->{self.out}" + (" transposed" if self.transposed else "") + (f" {self.parallel}-parallel" if self.parallel else "")
