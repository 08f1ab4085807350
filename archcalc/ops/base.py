"""The contract every op (layer kind) fulfils, and the registry that maps spec names to ops.

An op is a pydantic model of its spec fields that also answers each question a pass asks
(output shape, parameter arrays, ...). Passes call these methods and never switch on op names.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..arith import Shape
from ..errors import ShapeError

REGISTRY: dict[str, type[Op]] = {}


class Op(BaseModel):
    """Base of all ops. Subclasses set `kind` (the spec name) and override what differs."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            for name in (cls.kind, *cls.aliases):
                REGISTRY[name] = cls

    def output_shape(self, inputs: list[Shape]) -> Shape:
        """The output shape (batch axis excluded) for the given input shapes."""
        return inputs[0]

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        """Learnable arrays by name, shaped as PyTorch shapes them (conv weight: out, in/g, *k)."""
        return {}

    def buffers(self, inputs: list[Shape]) -> dict[str, Shape]:
        """Non-learnable state by name (batch norm's running statistics)."""
        return {}

    def describe(self) -> str:
        """A short human summary of the op's settings for tables, e.g. `3x3 s2 p1`."""
        return ""


def expect_rank(op: Op, shape: Shape, rank: int, layout: str) -> None:
    """Raise a ShapeError unless `shape` has `rank` axes (batch excluded)."""
    if len(shape) != rank:
        raise ShapeError(
            f"{op.kind} expects an input of shape [{layout}] (batch excluded), "
            f"got {list(shape)}"
        )


def spatial_tuple(value: int | list[int], dims: int, field: str) -> tuple[int, ...]:
    """An int or per-axis list as a tuple of `dims` values; a wrong length is a ValueError."""
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        raise ValueError(f"{field} needs 1 or {dims} values, got {len(value)}")
    return tuple(value)
