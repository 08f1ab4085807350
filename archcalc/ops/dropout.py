"""Dropout: zeroes elements at random while training; an identity at inference."""

from __future__ import annotations

from typing import Any, Literal

from archcalc.arith import Shape
from archcalc.model import Field
from archcalc.ops.base import MASK, NOTHING, Op, Saved, TorchCode, elements


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

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(f"nn.Dropout(p={self.p!r}{', inplace=True' if self.inplace else ''})")

    def describe(self) -> str:
        return f"p={self.p}"


STOCHASTIC_DEPTH = '''\
class StochasticDepth(nn.Module):
    """Drops the input at random in training, per example (row) or for the whole batch, and
    scales what survives by 1/(1 - p): torchvision.ops.StochasticDepth; the identity in eval()."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        size = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        survival = 1.0 - self.p
        noise = x.new_empty(size).bernoulli_(survival)
        return x * (noise / survival if survival > 0.0 else noise)
'''
"""Source of the StochasticDepth class an exported file defines (no torchvision needed)."""


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

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(f"StochasticDepth({self.p!r}, {self.mode!r})", defines=(STOCHASTIC_DEPTH,))

    def describe(self) -> str:
        return f"p={self.p} {self.mode}"
