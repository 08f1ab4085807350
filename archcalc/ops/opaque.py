"""A layer archcalc has no op for, kept by `archcalc import --opaque` so nothing is dropped: its
traced output shape and parameter count are known; its FLOPs, what it keeps for backward and its
receptive-field step are not, and every report says so (`known_costs`)."""

from __future__ import annotations

from typing import Any, ClassVar

from archcalc.arith import Shape
from archcalc.errors import ShapeError
from archcalc.model import Field
from archcalc.ops.base import UNDEFINED, Op, PositiveInt, ReceptiveStep


class Opaque(Op):
    """An imported operation of known output shape and parameter count (one flat array `params`,
    counted as the model counts them) and unknown costs: its MACs, FLOPs and saved tensors count
    0 in the totals, which name it as unknown; it cannot run (verify) or be exported."""

    kind = "opaque"
    min_inputs: ClassVar[int] = 0
    max_inputs: ClassVar[int | None] = None
    known_costs: ClassVar[bool] = False

    shape: list[PositiveInt] = Field(min_length=1)  # the traced output shape, batch excluded
    params: int = Field(default=0, ge=0)
    traced: str = Field(default="", max_length=200)  # what the importer saw, e.g. aten.erf.default

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return tuple(self.shape)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        return {"params": (self.params,)} if self.params else {}

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return UNDEFINED

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        raise ShapeError(f"an opaque layer ({self.traced or 'unknown operation'}) cannot be run: archcalc does not know what it computes")

    def describe(self) -> str:
        return self.traced
