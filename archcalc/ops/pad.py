"""Explicit padding, as torch.nn.functional.pad: constant, reflect, replicate or circular, any side.

The spec gives one [before, after] pair per padded axis, for the trailing axes in axis order:
F.pad(x, (left, right, top, bottom)) is `padding: [[top, bottom], [left, right]]`. Negative
values crop, as F.pad allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from archcalc.arith import Shape, provably_below
from archcalc.errors import ShapeError
from archcalc.model import field_validator, model_validator
from archcalc.ops.base import (
    INPUT,
    NOTHING,
    Autocast,
    Op,
    ReceptiveStep,
    Saved,
    TorchCode,
    Window,
    literal,
)
from archcalc.ops.window import np, padding_escapes


def pad_source(mode: str, n: int, before: int, after: int) -> tuple[Any, Any]:
    """Per output position i of a padded axis, the input position it copies and whether it copies
    one (only constant padding fills): i - before, mirrored without repeating the edge (reflect),
    clamped (replicate), or, after cropping, wrapped around what is left (circular), as F.pad."""
    source = np.arange(n + before + after) - before
    if mode == "reflect":
        source = np.abs(source)
        source = np.where(source > n - 1, 2 * (n - 1) - source, source)
    elif mode == "circular":
        kept = n + min(before, 0) + min(after, 0)
        source = (source + min(before, 0)) % kept - min(before, 0)
    inside = (source >= 0) & (source < n) if mode == "constant" else np.ones(source.shape, dtype=bool)
    return np.clip(source, 0, n - 1), inside


class Pad(Op):
    """Pads (or, with negative values, crops) the trailing axes; a new tensor, never a view."""

    kind = "pad"

    padding: list[list[int]]
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: float | None = None

    @field_validator("padding", mode="before")
    @classmethod
    def _pairs(cls, padding: Any) -> Any:
        pairs = isinstance(padding, list) and padding and all(isinstance(p, list) for p in padding)
        if not pairs or any(len(pair) != 2 for pair in padding):
            raise ValueError(
                "padding is a list of [before, after] pairs, one per padded trailing axis in axis "
                "order: F.pad(x, (left, right, top, bottom)) is [[top, bottom], [left, right]]"
            )
        return padding

    @model_validator(mode="after")
    def _value_only_for_constant(self) -> Pad:
        if self.value is not None and self.mode != "constant":
            raise ValueError(f"value is for constant padding; {self.mode} padding takes none (as F.pad)")
        return self

    def _check(self, shape: Shape) -> None:
        """F.pad's rules: constant pads up to every axis but the batch; the other modes pad the
        spatial axes (1 to 3 of them), optionally with the channels; reflect pads stay below the
        size, circular pads at most the size."""
        rank, k = len(shape), len(self.padding)
        if k > rank:
            raise ShapeError(
                f"{k} [before, after] pairs for an input of {rank} axes {list(shape)}: the batch axis "
                "cannot be padded"
            )
        if self.mode != "constant" and (k not in (rank - 1, rank) or k > 3):
            raise ShapeError(
                f"{self.mode} padding pads all spatial axes (1 to 3), optionally with the channels: "
                f"{max(rank - 1, 1)} or {rank} pairs for {list(shape)}, got {k}"
            )
        for axis, (n, (before, after)) in enumerate(zip(shape[rank - k :], self.padding), start=rank - k):
            kept = n + min(before, 0) + min(after, 0)  # what cropping first leaves of the axis
            cropped_first = self.mode in ("constant", "circular")  # the others map indices
            if cropped_first and provably_below(kept, 1 if self.mode == "circular" else 0):
                raise ShapeError(
                    f"padding ({before}, {after}) crops more than axis {axis} holds ({n} elements)"
                )
            for side, pad in (("before", before), ("after", after)):
                if self.mode == "reflect" and provably_below(n - pad, 1):
                    raise ShapeError(
                        f"reflect padding {side} axis {axis} ({pad}) must be smaller than its size {n}"
                    )
                if self.mode == "circular" and provably_below(kept - pad, 0):
                    raise ShapeError(
                        f"circular padding {side} axis {axis} ({pad}) must be at most the "
                        f"{kept} elements it wraps (it would wrap around more than once)"
                    )
            if provably_below(n + before + after, 1):
                raise ShapeError(
                    f"padding ({before}, {after}) leaves axis {axis} of size {n} with "
                    f"{n + before + after} elements; at least 1 is needed"
                )

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        self._check(shape)
        lead = len(shape) - len(self.padding)
        padded = (n + before + after for n, (before, after) in zip(shape[lead:], self.padding))
        return (*shape[:lead], *padded)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """A unit window moved by the padding on each spatial axis (channel padding does not
        move fields). Reflected, replicated or wrapped positions count as padding, as for a
        convolution's padding_mode; negative padding crops."""
        spatial = len(inputs[0]) - 1
        pairs = [(0, 0)] * spatial + [tuple(p) for p in self.padding]
        before, after = zip(*pairs[len(pairs) - spatial :]) if spatial else ((), ())
        ones = (1,) * spatial
        return Window(ones, ones, tuple(before), tuple(after), rounds_down=False)

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Output position i reads input i - before, mapped into the input by the mode (pad_source,
        the forward's own index rule); a constant-filled position reads nothing."""
        shape = inputs[0]
        pair = axis + 1 - (len(shape) - len(self.padding))
        if pair < 0:
            return [(unit,)]
        before, after = self.padding[pair]
        source, inside = pad_source(self.mode, shape[axis + 1], before, after)
        return [(int(source[unit]),) if inside[unit] else ()]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        """The closed forms hold unless the mode copies input into the padding (padding_escapes
        with a span-1 window; cropping never escapes)."""
        spatial = self.padding[max(len(self.padding) - (len(inputs[0]) - 1), 0) :]
        mode = "zeros" if self.mode == "constant" else self.mode
        for before, after in spatial:
            reason = padding_escapes(mode, max(before, 0), max(after, 0), 1)
            if reason:
                return reason
        return ""

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """reflection_pad/replication_pad backward take the input; constant and circular (a
        composite of slices and copies) keep nothing (measured with saved-tensor hooks)."""
        return INPUT if self.mode in ("reflect", "replicate") else NOTHING

    @property
    def autocast(self) -> Autocast:  # type: ignore[override]
        """reflection_pad1d/2d and replication_pad1d-3d are on CPU autocast's fp32 list
        (reflection_pad3d is not: measured, torch 2.14.1); constant and circular padding follow."""
        axes = len(self.padding)
        return "fp32" if self.mode == "replicate" or self.mode == "reflect" and axes <= 2 else "follow"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """Per padded axis, gather pad_source's indices; constant fills where it reads nothing."""
        x = xs[0]
        lead = x.ndim - len(self.padding)
        for axis, (before, after) in enumerate(self.padding, start=lead):
            source, inside = pad_source(self.mode, x.shape[axis], before, after)
            x = np.take(x, source, axis=axis)
            if self.mode == "constant" and not inside.all():
                mask = inside.reshape((-1,) + (1,) * (x.ndim - axis - 1))
                x = np.where(mask, x, np.asarray(self.value or 0.0, dtype=x.dtype))
        return x

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """F.pad, whose sides run from the last axis back: [[top, bottom], [left, right]] is
        (left, right, top, bottom)."""
        sides = tuple(side for pair in reversed(self.padding) for side in pair)
        value = f", value={literal(self.value)}" if self.value is not None else ""
        return TorchCode(call=f"F.pad({{0}}, {literal(sides)}, mode={self.mode!r}{value})")

    def describe(self) -> str:
        value = f"={self.value:g}" if self.value else ""
        return f"{self.mode}{value} {self.padding}"

