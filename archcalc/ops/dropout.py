"""Dropout: zeroes elements at random while training; an identity at inference."""

from __future__ import annotations

from typing import Any, Literal

from archcalc.arith import Shape
from archcalc.model import Field
from archcalc.ops.base import MASK, NOTHING, Op, Saved, elements


class Dropout(Op):
    """Element-wise dropout with drop probability `p` (PyTorch's default 0.5); `inplace`
    overwrites its input, as nn.Dropout(inplace=True), so what reads the output reads (and a
    layer that keeps it keeps) the input's storage (MViT's head drops x[:, 0] of the norm's output)."""

    kind = "dropout"

    p: float = Field(default=0.5, ge=0, lt=1)
    inplace: bool = False

    @property
    def inplace_output(self) -> bool:
        return self.inplace

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        # PyTorch on the CPU keeps the scaled mask in the input's dtype, CUDA's fused kernel a bool
        # mask: MASK, priced by --dropout-mask
        return Saved(extra=((elements(output), MASK),)) if self.p > 0 else NOTHING

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0]  # inference: the identity

    def describe(self) -> str:
        return f"p={self.p}"


class StochasticDepth(Op):
    """Drops a residual branch at random while training (Huang et al. 2016), torchvision's
    StochasticDepth: per example (`row`) or for the whole batch; the identity at inference."""

    kind = "stochastic_depth"

    p: float = Field(ge=0, le=1)
    mode: Literal["row", "batch"] = "row"

    @property
    def inplace_output(self) -> bool:
        return True  # at inference the input passes through unchanged

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        # the [N, 1, ...] noise it multiplies by: one element per example in row mode
        return Saved(extra=((1, None),)) if self.mode == "row" and self.p > 0 else NOTHING

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0]

    def describe(self) -> str:
        return f"p={self.p} {self.mode}"
