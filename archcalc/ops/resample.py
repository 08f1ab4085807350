"""Resampling: interpolation (torch.nn.functional.interpolate, nn.Upsample) and pixel shuffles.

The index and weight rules are PyTorch's CPU kernels (ATen/native/UpSample.h): a source
coordinate per output index, from a scale that is the user's 1/scale_factor when it is given and
not recomputed, in/out otherwise, (in-1)/(out-1) with align_corners.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Literal

from archcalc.arith import Dim, Shape, provably_below
from archcalc.errors import ShapeError
from archcalc.model import PositiveFloat, PositiveInt, model_validator
from archcalc.ops.base import (
    NOTHING,
    UNDEFINED,
    Op,
    ReceptiveStep,
    Saved,
    TorchCode,
    Window,
    elements,
    literal,
)
from archcalc.ops.pool import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    _AdaptiveAvgPool,
)
from archcalc.ops.window import np

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


def source_taps(
    mode: str, align_corners: bool, n: int, o: int, scale: float | None, dtype: Any, dims: int
) -> tuple[Any, Any]:
    """(source indices, weights), each (o, taps), of one axis resized from n to o elements:
    PyTorch's CPU kernels' index and weight rules (UpSample.h), in `dtype`'s arithmetic."""
    dst = np.arange(o)
    if mode in ("nearest", "nearest-exact"):
        return _nearest(mode, n, o, scale, dst, dims)[:, None], np.ones((o, 1), dtype=dtype)
    if align_corners:
        ratio = (n - 1) / (o - 1) if o > 1 else 0.0
        source = ratio * dst.astype(dtype)
    else:
        ratio = 1.0 / scale if scale is not None else n / o
        source = ratio * (dst + 0.5) - 0.5
    source = source.astype(dtype)
    if mode == "bicubic":
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


def _nearest(mode: str, n: int, o: int, scale: float | None, dst: Any, dims: int) -> Any:
    """PyTorch's CPU source index: floor(dst * s) (nearest) or floor((dst + 0.5) * s)
    (nearest-exact), at most n - 1, with s = 1/scale_factor or n/o held in float32.

    Its 2-D nearest kernel (nearest_idx) copies at o == n and halves at o == 2n whatever the
    scale_factor; the 1-D and 3-D kernels do not (measured on torch 2.14's CPU kernels).
    """
    s = np.float32(1.0 / scale) if scale is not None else np.float32(n) / np.float32(o)
    if mode == "nearest":
        if dims == 2 and o == n:
            return dst
        if dims == 2 and o == 2 * n:
            return dst >> 1
        position = dst.astype(np.float32) * s
    else:
        position = ((dst + 0.5) * np.float64(s)).astype(np.float32)
    return np.minimum(np.floor(position).astype(np.int64), n - 1)


@functools.lru_cache(maxsize=256)
def source_reads(
    mode: str, align_corners: bool, n: int, o: int, scale: float | None, dims: int
) -> tuple[tuple[int, ...], ...]:
    """Per output index, the source indices it reads: source_taps' indices whose summed weight is
    nonzero in float32 (torch's default dtype). A tap of weight exactly 0 (a linear coordinate
    landing on a sample, bicubic's outer taps there) gets a zero gradient in PyTorch, so it is
    not read."""
    index, weight = source_taps(mode, align_corners, n, o, scale, np.float32, dims)
    reads = []
    for taps, weights in zip(index.tolist(), weight.tolist()):
        total: dict[int, float] = {}
        for i, w in zip(taps, weights):
            total[i] = total.get(i, 0.0) + w
        reads.append(tuple(sorted(i for i, w in total.items() if w != 0)))
    return tuple(reads)


def as_window(reads: Sequence[Sequence[int]], n: int) -> tuple[int, int, int] | None:
    """(span, stride, before) of the one window, moved by a whole stride per output and clipped
    to the n inputs, that reads exactly `reads` (Araujo's closed forms then hold); None when no
    such window does. Stride and offset come from the reads that start inside the input, the
    span from those that end inside it; every unit is then checked."""
    starts = [(u, r[0]) for u, r in enumerate(reads) if r and r[0] > 0]
    ends = [(u, r[-1]) for u, r in enumerate(reads) if r and r[-1] < n - 1]
    if len(reads) == 1:
        stride, before = 1, -reads[0][0] if reads[0] else 0
    elif len(starts) >= 2 and (starts[1][1] - starts[0][1]) % (starts[1][0] - starts[0][0]) == 0:
        (u, a), (v, b) = starts[:2]
        stride = (b - a) // (v - u)
        before = u * stride - a
    else:
        return None
    span = max(len(r) for r in reads) if not ends else ends[0][1] - (ends[0][0] * stride - before) + 1
    if stride < 1 or span < 1:
        return None
    for u, r in enumerate(reads):
        first = u * stride - before
        if tuple(r) != tuple(range(max(first, 0), min(first + span, n))):
            return None
    return span, stride, before


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

    def _axis_reads(self, inputs: list[Shape]) -> list[tuple[tuple[int, ...], ...]] | None:
        """Per spatial axis, what each output index reads (source_reads); None when symbolic."""
        shape = inputs[0]
        dims = self._dims(shape)
        out = self.output_shape(inputs)[1:]
        if not all(isinstance(d, int) for d in (*shape[1:], *out)):
            return None
        return [
            source_reads(self.mode, bool(self.align_corners), n, o, scale, dims)
            for n, o, scale in zip(shape[1:], out, self._kernel_scales(dims))
        ]

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Area is adaptive average pooling. Other modes: a window when every axis's reads are
        one window moved by a whole stride (an integer down-sampling factor, an unchanged size),
        else undefined (receptive_varies says why, receptive_reads gives the exact taps)."""
        if self.mode == "area":
            return self._area(inputs).receptive_step(inputs)
        reads = self._axis_reads(inputs)
        windows = [as_window(r, n) for r, n in zip(reads or [], inputs[0][1:])]
        if reads is None or None in windows:
            return UNDEFINED
        spans, strides, before = zip(*windows)  # type: ignore[misc]
        after = tuple(
            (len(r) - 1) * s + k - n - b for r, n, k, s, b in zip(reads, inputs[0][1:], spans, strides, before)
        )
        return Window(spans, strides, before, after, rounds_down=False)

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """The source indices PyTorch's kernel reads for output `unit` with a nonzero weight
        (source_reads); area: adaptive pooling's windows."""
        if self.mode == "area":
            return self._area(inputs).receptive_reads(inputs, axis, unit)
        reads = self._axis_reads(inputs)
        if reads is None:
            return [range(inputs[0][axis + 1])]
        return [reads[axis][unit]]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        """'' when receptive_step found one window; else why not (up-sampling, uneven factors)."""
        if self.mode == "area":
            return self._area(inputs).receptive_varies(inputs)
        if self.receptive_step(inputs) != UNDEFINED:
            return ""
        if self._axis_reads(inputs) is None:
            return f"{self.mode} interpolation of symbolic sizes: its taps depend on the sizes"
        sizes = " and ".join(f"{n}->{o}" for n, o in zip(inputs[0][1:], self.output_shape(inputs)[1:]) if n != o)
        return f"{self.mode} resizing {sizes}: its taps are not one window moved by a whole stride"

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
            index, weight = source_taps(self.mode, bool(self.align_corners), x.shape[axis], o, scale, x.dtype, dims)
            gathered = np.take(x, index, axis=axis)  # index (o, taps): a new axis after `axis`
            shape = [1] * gathered.ndim
            shape[axis : axis + 2] = weight.shape
            x = (gathered * weight.reshape(shape)).sum(axis=axis + 1)
        return np.ascontiguousarray(x)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        settings = {
            "size": self.size, "scale_factor": self.scale_factor, "mode": self.mode,
            "align_corners": self.align_corners, "recompute_scale_factor": self.recompute_scale_factor,
        }
        return TorchCode(call=f"F.interpolate({{0}}, {', '.join(f'{k}={literal(v)}' for k, v in settings.items())})")

    def describe(self) -> str:
        if self.size is not None:
            target = "->" + "x".join(map(str, self.size if isinstance(self.size, list) else [self.size]))
        else:
            factors = self.scale_factor if isinstance(self.scale_factor, list) else [self.scale_factor]
            target = "x" + "x".join(f"{f:g}" for f in factors)
        corners = " corners" if self.align_corners else ""
        return f"{target} {self.mode}{corners}"


class _PixelShuffle(Op):
    """Moves r x r blocks between the channels and the last two (spatial) axes of [..., C, H, W]."""

    def _factor(self) -> int:
        raise NotImplementedError

    def _split(self, shape: Shape) -> tuple[Shape, Dim, Dim, Dim]:
        """(leading axes, C, H, W) of a [..., C, H, W] input; fewer than 3 axes is a ShapeError."""
        if len(shape) < 3:
            raise ShapeError(f"{self.kind} expects [C, H, W] (batch excluded), got {list(shape)}")
        return shape[:-3], shape[-3], shape[-2], shape[-1]

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return None if self._factor() == 1 else UNDEFINED

    def _moves(self, shape: Shape, axis: int, unit: int) -> Sequence[int]:
        """What output position `unit` reads on this op's channel, height or width axis."""
        raise NotImplementedError

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Leading axes element-wise; the last three as the shuffle moves them (_moves)."""
        shape = inputs[0]
        self._split(shape)
        return [self._moves(shape, axis + 1 - (len(shape) - 3), unit) if axis + 1 >= len(shape) - 3 else (unit,)]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        """With leading axes the shuffled channel axis is a spatial axis of the pass: say so."""
        r = self._factor()
        if len(inputs[0]) > 3 and r > 1:
            return f"{self.kind} moves positions between its channel axis, a spatial axis here, and H, W (factor {r})"
        return ""

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return NOTHING  # its backward is the inverse shuffle of the gradient

    def describe(self) -> str:
        return f"r{self._factor()}"


class PixelShuffle(_PixelShuffle):
    """[C*r^2, H, W] -> [C, H*r, W*r], as torch.nn.PixelShuffle (sub-pixel convolution's
    rearrangement): output (c, h*r + i, w*r + j) is input (c*r^2 + i*r + j, h, w)."""

    kind = "pixel_shuffle"

    upscale_factor: PositiveInt

    def _factor(self) -> int:
        return self.upscale_factor

    def output_shape(self, inputs: list[Shape]) -> Shape:
        lead, c, h, w = self._split(inputs[0])
        r = self.upscale_factor
        if isinstance(c, int) and c % (r * r):
            raise ShapeError(
                f"pixel_shuffle needs channels divisible by upscale_factor^2 = {r * r}, got {c} "
                f"(input {list(inputs[0])})"
            )
        return (*lead, c // (r * r), h * r, w * r)

    def receptive_varies(self, inputs: list[Shape]) -> str:
        """Up-sampling by r: a stride of 1/r, no closed form."""
        r = self.upscale_factor
        if r > 1 and len(inputs[0]) == 3:
            return (
                f"pixel_shuffle up-samples by {r}: output o reads o // {r}, a fractional stride 1/{r} "
                "(a unit's r^2 source channels are taken to read alike; an upper bound if they do not)"
            )
        return super().receptive_varies(inputs)

    def _moves(self, shape: Shape, axis: int, unit: int) -> Sequence[int]:
        """Output channel c gathers input channels c*r^2 .. c*r^2 + r^2 - 1; row or column o is
        input row or column o // r (of one of those channels)."""
        r = self.upscale_factor
        return range(unit * r * r, (unit + 1) * r * r) if axis == 0 else (unit // r,)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x, r = xs[0], self.upscale_factor
        *lead, c, h, w = x.shape
        blocks = x.reshape(*lead, c // (r * r), r, r, h, w)
        k = len(lead)
        order = (*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (..., C, H, r, W, r)
        return blocks.transpose(order).copy().reshape(*lead, c // (r * r), h * r, w * r)  # a new tensor

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(f"nn.PixelShuffle({literal(self.upscale_factor)})")


class PixelUnshuffle(_PixelShuffle):
    """[C, H*r, W*r] -> [C*r^2, H, W], as torch.nn.PixelUnshuffle, the inverse of pixel_shuffle."""

    kind = "pixel_unshuffle"

    downscale_factor: PositiveInt

    def _factor(self) -> int:
        return self.downscale_factor

    def output_shape(self, inputs: list[Shape]) -> Shape:
        lead, c, h, w = self._split(inputs[0])
        r = self.downscale_factor
        for name, n in (("height", h), ("width", w)):
            if isinstance(n, int) and n % r:
                raise ShapeError(
                    f"pixel_unshuffle needs the {name} divisible by downscale_factor {r}, got {n} "
                    f"(input {list(inputs[0])})"
                )
        return (*lead, c * r * r, h // r, w // r)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Output (h, w) gathers, over its r^2 channels, the r x r input block at (h*r, w*r)."""
        self._split(inputs[0])
        r = self.downscale_factor
        return Window((r, r), (r, r), (0, 0), (0, 0)) if len(inputs[0]) == 3 else UNDEFINED

    def _moves(self, shape: Shape, axis: int, unit: int) -> Sequence[int]:
        """Output channel c is input channel c // r^2; row or column o gathers, over its r^2
        channels, input rows or columns o*r .. o*r + r - 1."""
        r = self.downscale_factor
        return (unit // (r * r),) if axis == 0 else range(unit * r, (unit + 1) * r)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x, r = xs[0], self.downscale_factor
        *lead, c, h, w = x.shape
        blocks = x.reshape(*lead, c, h // r, r, w // r, r)
        k = len(lead)
        order = (*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (..., C, r, r, H, W)
        return blocks.transpose(order).copy().reshape(*lead, c * r * r, h // r, w // r)  # a new tensor

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(f"nn.PixelUnshuffle({literal(self.downscale_factor)})")
