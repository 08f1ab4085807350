"""Resampling: interpolation (torch.nn.functional.interpolate, nn.Upsample) and pixel shuffles.

The index and weight rules are PyTorch's CPU kernels (ATen/native/UpSample.h): a source
coordinate per output index, from a scale that is the user's 1/scale_factor when it is given and
not recomputed, in/out otherwise, (in-1)/(out-1) with align_corners.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Literal

from pydantic import PositiveFloat, PositiveInt, model_validator

from ..arith import Dim, Shape, provably_below
from ..errors import ShapeError
from .base import (
    NOTHING,
    UNDEFINED,
    Op,
    ReceptiveStep,
    Saved,
    elements,
)
from .pool import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, _AdaptiveAvgPool
from .window import np

Mode = Literal["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"]

# the interpolating modes: each takes align_corners and works at one spatial rank only
_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
# input samples each output element combines, per spatial axis
_TAPS = {"linear": 2, "bilinear": 2, "trilinear": 2, "bicubic": 4}
_AREA: dict[int, type[_AdaptiveAvgPool]] = {1: AdaptiveAvgPool1d, 2: AdaptiveAvgPool2d, 3: AdaptiveAvgPool3d}
_CUBIC_A = -0.75  # PyTorch's bicubic convolution constant (get_cubic_upsample_coefficients)


def scaled_size(n: Dim, scale: float) -> Dim:
    """floor(n * scale_factor): F.interpolate's output size, a double product truncated.

    Symbolic sizes read the factor as written, p/q (0.3 is 3/10): (n * p) // q. That equals the
    rounded double product for most sizes, not all (0.7 at n = 90: the double gives 62, not 63).
    """
    if isinstance(n, int):
        return math.floor(n * scale)
    ratio = Fraction(repr(scale))
    return (n * ratio.numerator) // ratio.denominator


class Interpolate(Op):
    """Resizes the spatial axes of [C, *spatial], as torch.nn.functional.interpolate and
    nn.Upsample: to `size`, or by `scale_factor` (output floor(n * scale_factor))."""

    kind = "interpolate"
    aliases = ("upsample",)

    size: PositiveInt | list[PositiveInt] | None = None
    scale_factor: PositiveFloat | list[PositiveFloat] | None = None
    mode: Mode = "nearest"
    align_corners: bool | None = None
    recompute_scale_factor: bool | None = None

    @model_validator(mode="after")
    def _check_fields(self) -> Interpolate:
        if (self.size is None) == (self.scale_factor is None):
            raise ValueError("give exactly one of size and scale_factor (as F.interpolate)")
        if self.align_corners is not None and self.mode not in _RANK:
            raise ValueError(
                "align_corners is only for the interpolating modes linear, bilinear, bicubic and "
                f"trilinear, not {self.mode} (PyTorch refuses it)"
            )
        if self.recompute_scale_factor and self.size is not None:
            raise ValueError("recompute_scale_factor is only meaningful with scale_factor, not size")
        return self

    def _dims(self, shape: Shape) -> int:
        """The spatial rank, checked against the mode and the per-axis fields."""
        dims = len(shape) - 1
        if not 1 <= dims <= 3:
            raise ShapeError(
                f"interpolate expects [C, L], [C, H, W] or [C, D, H, W] (batch excluded), "
                f"got {list(shape)}"
            )
        rank = _RANK.get(self.mode)
        if rank is not None and rank != dims:
            raise ShapeError(
                f"mode {self.mode} works on {rank} spatial axes, the input {list(shape)} has "
                f"{dims} (use {['linear', 'bilinear', 'trilinear'][dims - 1]}, or nearest/area)"
            )
        for field in ("size", "scale_factor"):
            value = getattr(self, field)
            if isinstance(value, list) and len(value) != dims:
                raise ShapeError(
                    f"{field} {value} needs one value per spatial axis: {dims} for {list(shape)}"
                )
        return dims

    def _per_axis(self, field: str, dims: int) -> tuple[Any, ...]:
        value = getattr(self, field)
        return tuple(value) if isinstance(value, list) else (value,) * dims

    def _kernel_scales(self, dims: int) -> tuple[float | None, ...]:
        """The scale factors PyTorch's kernels see: the user's, unless recomputed (area always)."""
        if self.scale_factor is None or self.recompute_scale_factor or self.mode == "area":
            return (None,) * dims
        return self._per_axis("scale_factor", dims)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        dims = self._dims(shape)
        if self.size is not None:
            sizes: tuple[Dim, ...] = self._per_axis("size", dims)
        else:
            sizes = tuple(scaled_size(n, s) for n, s in zip(shape[1:], self._per_axis("scale_factor", dims)))
        for axis, (n, o) in enumerate(zip(shape[1:], sizes), start=1):
            if provably_below(o, 1):
                raise ShapeError(
                    f"spatial axis {axis}: input size {n} times scale_factor gives an output of "
                    f"size {o}; PyTorch needs at least 1"
                )
        return (shape[0], *sizes)

    def _area(self, inputs: list[Shape]) -> _AdaptiveAvgPool:
        """Area interpolation is adaptive average pooling to the output size (as F.interpolate)."""
        out = self.output_shape(inputs)
        return _AREA[len(out) - 1].model_construct(output=list(out[1:]))

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        """Nearest modes gather (0); the interpolating ones weigh taps**dims inputs per output
        element (2, 4, 8; bicubic 16), one operation each, as pooling counts its window."""
        if self.mode == "area":
            return self._area(inputs).elementwise_flops(inputs, output)
        taps = _TAPS.get(self.mode, 0)
        return elements(output) * taps ** (len(output) - 1)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Area is adaptive average pooling; the other modes' fractional steps are not closed."""
        return self._area(inputs).receptive_step(inputs) if self.mode == "area" else UNDEFINED

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """upsample_*_backward takes only sizes and scales; area keeps what adaptive pooling does."""
        return self._area(inputs).saved_for_backward(inputs, output) if self.mode == "area" else NOTHING

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """One spatial axis at a time (every mode is separable): gather and weigh source taps."""
        x = xs[0]
        if self.mode == "area":
            return self._area([x.shape[1:]]).forward(xs, weights)
        dims = self._dims(x.shape[1:])
        out = self.output_shape([x.shape[1:]])[1:]
        for axis, (o, scale) in enumerate(zip(out, self._kernel_scales(dims)), start=2):
            index, weight = self._taps(x.shape[axis], o, scale, x.dtype, dims)
            gathered = np.take(x, index, axis=axis)  # index (o, taps): a new axis after `axis`
            shape = [1] * gathered.ndim
            shape[axis : axis + 2] = weight.shape
            x = (gathered * weight.reshape(shape)).sum(axis=axis + 1)
        return np.ascontiguousarray(x)

    def _taps(self, n: int, o: int, scale: float | None, dtype: Any, dims: int) -> tuple[Any, Any]:
        """(source indices, weights), each (o, taps), of one axis from n to o elements."""
        dst = np.arange(o)
        if self.mode in ("nearest", "nearest-exact"):
            return self._nearest(n, o, scale, dst, dims)[:, None], np.ones((o, 1), dtype=dtype)
        if self.align_corners:
            ratio = (n - 1) / (o - 1) if o > 1 else 0.0
            source = ratio * dst.astype(dtype)
        else:
            ratio = 1.0 / scale if scale is not None else n / o
            source = ratio * (dst + 0.5) - 0.5
        source = source.astype(dtype)
        if self.mode == "bicubic":
            first = np.floor(source).astype(np.int64)
            t = (source - first)[:, None]
            distance = np.abs(np.array([-1.0, 0.0, 1.0, 2.0]) - t)  # taps first-1 .. first+2
            a = _CUBIC_A
            near = ((a + 2) * distance - (a + 3)) * distance * distance + 1
            far = ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a
            weight = np.where(distance <= 1, near, far)
            index = np.clip(first[:, None] + np.arange(-1, 3), 0, n - 1)
            return index, weight.astype(dtype)
        if o == n:  # PyTorch copies when the size is unchanged, whatever the scale
            return dst[:, None], np.ones((o, 1), dtype=dtype)
        source = np.maximum(source, 0)  # linear modes clamp a negative coordinate to 0
        first = np.minimum(np.floor(source).astype(np.int64), n - 1)
        upper = np.clip(source - first, 0, 1)
        index = np.stack([first, first + (first < n - 1)], axis=1)
        return index, np.stack([1 - upper, upper], axis=1).astype(dtype)

    def _nearest(self, n: int, o: int, scale: float | None, dst: Any, dims: int) -> Any:
        """PyTorch's CPU source index: floor(dst * s) (nearest) or floor((dst + 0.5) * s)
        (nearest-exact), at most n - 1, with s = 1/scale_factor or n/o held in float32.

        Its 2-D nearest kernel (nearest_idx) copies at o == n and halves at o == 2n whatever the
        scale_factor; the 1-D and 3-D kernels do not (measured on torch 2.14's CPU kernels).
        """
        s = np.float32(1.0 / scale) if scale is not None else np.float32(n) / np.float32(o)
        if self.mode == "nearest":
            if dims == 2 and o == n:
                return dst
            if dims == 2 and o == 2 * n:
                return dst >> 1
            position = dst.astype(np.float32) * s
        else:
            position = ((dst + 0.5) * np.float64(s)).astype(np.float32)
        return np.minimum(np.floor(position).astype(np.int64), n - 1)

    def describe(self) -> str:
        if self.size is not None:
            target = "->" + "x".join(map(str, self.size if isinstance(self.size, list) else [self.size]))
        else:
            factors = self.scale_factor if isinstance(self.scale_factor, list) else [self.scale_factor]
            target = "x" + "x".join(f"{f:g}" for f in factors)
        corners = " corners" if self.align_corners else ""
        return f"{target} {self.mode}{corners}"
