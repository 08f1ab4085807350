"""A cyclic shift of positions, torch.roll: Swin's shifted windows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.arith import Shape
from archcalc.errors import ShapeError
from archcalc.model import model_validator
from archcalc.ops.base import Op, TorchCode, Whole, literal
from archcalc.ops.window import np


class Roll(Op):
    """torch.roll(x, shifts, dims): along each axis in `dims` (the batch is dim 0 and cannot roll,
    negative from the end, as concat's dim), output position i holds input position
    (i - shift) mod n. A copy with no arithmetic; its backward rolls the gradient back, keeping
    nothing (RollBackward0 keeps only the shifts and dims)."""

    kind = "roll"

    shifts: Whole | list[Whole]
    dims: Whole | list[Whole]

    @model_validator(mode="after")
    def _aligned(self) -> Roll:
        shifts = self.shifts if isinstance(self.shifts, list) else [self.shifts]
        dims = self.dims if isinstance(self.dims, list) else [self.dims]
        if len(shifts) != len(dims) or not dims:
            raise ValueError(
                f"shifts {self.shifts} and dims {self.dims} must align: as many shifts as dims, at "
                "least one (torch.roll; dims count the batch axis as 0)"
            )
        return self

    def _pairs_given(self) -> list[tuple[int, int]]:
        shifts = self.shifts if isinstance(self.shifts, list) else [self.shifts]
        dims = self.dims if isinstance(self.dims, list) else [self.dims]
        return list(zip(shifts, dims))

    def _shift_per_axis(self, shape: Shape) -> dict[int, int]:
        """The total shift of each rolled per-example axis (0: the first after the batch); a dim
        named twice rolls twice, as in torch."""
        rank = len(shape) + 1
        total: dict[int, int] = {}
        for shift, dim in self._pairs_given():
            if not -rank <= dim < rank or dim % rank == 0:
                raise ShapeError(
                    f"roll dim {dim} is not a feature axis of a rank-{rank} tensor (dims count the "
                    f"batch axis as 0, valid: 1..{rank - 1} or -{rank - 1}..-1; examples cannot be rolled into each other)"
                )
            total[dim % rank - 1] = total.get(dim % rank - 1, 0) + shift
        return total

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._shift_per_axis(inputs[0])
        return inputs[0]

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Unit u of a rolled spatial axis of size n reads input position (u - shift) mod n."""
        shift = self._shift_per_axis(inputs[0]).get(axis + 1, 0)
        return [((unit - shift) % inputs[0][axis + 1],)]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        rolled = [a - 1 for a, s in self._shift_per_axis(inputs[0]).items() if a >= 1 and s % inputs[0][a] != 0]
        if not rolled:
            return ""
        return f"roll moves positions cyclically along spatial axes {rolled}: unit u reads position u - shift, wrapped"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        pairs = self._shift_per_axis(xs[0].shape[1:])
        return np.roll(xs[0], tuple(pairs.values()), axis=tuple(a + 1 for a in pairs))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """torch.roll with the shifts and dims as given (a dim named twice rolls twice there too)."""
        return TorchCode(call=f"torch.roll({{0}}, shifts={literal(self.shifts)}, dims={literal(self.dims)})")

    def describe(self) -> str:
        return f"{self.shifts} along {self.dims}"
