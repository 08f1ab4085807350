"""Reductions over named axes, torch.mean and torch.sum: a transformer's pooling over tokens,
ConvNeXt's and Swin's mean over positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from archcalc.arith import Dim, Shape
from archcalc.errors import ShapeError
from archcalc.ops.base import (
    GLOBAL,
    Op,
    ReceptiveStep,
    TorchCode,
    Whole,
    elements,
    literal,
    whole_axes_reads,
)
from archcalc.ops.window import np


class _Reduction(Op):
    """x.<reduce>(dim, keepdim): `dim` an int or a list (the batch is dim 0 and cannot be reduced,
    negative from the end, as torch counts); `keepdim` leaves each reduced axis as size 1.
    Autograd keeps nothing that grows with the batch (MeanBackward1 and SumBackward1 keep only
    the input's sizes and the dims)."""

    reduce: ClassVar[str] = ""

    dim: Whole | list[Whole]
    keepdim: bool = False

    def _axes(self, shape: Shape) -> tuple[int, ...]:
        """The reduced per-example axes (0: the first after the batch), in order."""
        rank = len(shape) + 1
        dims = self.dim if isinstance(self.dim, list) else [self.dim]
        if not dims:
            raise ShapeError(f"{self.kind} needs at least one dim (an empty list would reduce the batch too)")
        for d in dims:
            if not -rank <= d < rank or d % rank == 0:
                raise ShapeError(
                    f"{self.kind} dim {d} is not a feature axis of a rank-{rank} tensor (dims count "
                    f"the batch axis as 0, valid: 1..{rank - 1} or -{rank - 1}..-1; the batch cannot be reduced)"
                )
        axes = sorted(d % rank - 1 for d in dims)
        if len(set(axes)) != len(axes):
            raise ShapeError(f"{self.kind} dims {dims} name an axis twice")
        return tuple(axes)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        axes = self._axes(inputs[0])
        if self.keepdim:
            return tuple(1 if a in axes else n for a, n in enumerate(inputs[0]))
        return tuple(n for a, n in enumerate(inputs[0]) if a not in axes)

    def _mixed_axes(self, shape: Shape) -> tuple[int, ...]:
        """Reduced spatial axes (0: the first after the channels)."""
        return tuple(a - 1 for a in self._axes(shape) if a >= 1)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """GLOBAL when every spatial axis is reduced, or a reduced spatial axis is dropped (the
        remaining axes no longer line up with the input's); else element-wise with reads."""
        mixed = self._mixed_axes(inputs[0])
        if mixed and (not self.keepdim or len(mixed) == len(inputs[0]) - 1):
            return GLOBAL
        return None

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        return whole_axes_reads(inputs, axis, unit, self._mixed_axes(inputs[0]))

    def receptive_varies(self, inputs: list[Shape]) -> str:
        if not self._mixed_axes(inputs[0]) or self.receptive_step(inputs) == GLOBAL:
            return ""
        return f"{self.kind} reads every position of the reduced spatial axes"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        axes = tuple(a + 1 for a in self._axes(xs[0].shape[1:]))
        return getattr(np, self.reduce)(xs[0], axis=axes, keepdims=self.keepdim)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """x.mean(dim, keepdim) or x.sum(...): dims count the batch, as here."""
        dim = tuple(self.dim) if isinstance(self.dim, list) else self.dim
        return TorchCode(call=f"{{0}}.{self.reduce}(dim={literal(dim)}, keepdim={self.keepdim})")

    def describe(self) -> str:
        return f"dim {self.dim}" + (" keepdim" if self.keepdim else "")


class Mean(_Reduction):
    """The mean over `dim`: n - 1 additions and one division per output, one per input element."""

    kind = "mean"
    reduce = "mean"

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(inputs[0])


class Sum(_Reduction):
    """The sum over `dim`: n - 1 additions per output."""

    kind = "sum"
    reduce = "sum"

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(inputs[0]) - elements(output)
