"""Sliding-window arithmetic shared by convolutions and pooling: padding forms and output sizes."""

from __future__ import annotations

from typing import Any, Literal, Union

from archcalc.arith import Dim, ceil_div, maximum, provably_below, where_at_least
from archcalc.errors import ShapeError
from archcalc.lazy import lazy_import
from archcalc.ops.base import NonNegativeInt

np = lazy_import("numpy")

Padding = Union[
    Literal["same", "valid"], NonNegativeInt, list[NonNegativeInt], list[list[NonNegativeInt]]
]


def check_padding_form(padding: Padding, dims: int) -> None:
    """Raise ValueError unless padding is an int, `dims` ints, or `dims` [before, after] pairs."""
    if isinstance(padding, (str, int)):
        return
    if len(padding) != dims:
        raise ValueError(f"padding needs 1 or {dims} entries (one per spatial axis), got {len(padding)}")
    sides = [isinstance(p, list) for p in padding]
    if any(sides) and not all(sides):
        raise ValueError("padding mixes plain values and [before, after] pairs")
    if all(sides) and any(len(p) != 2 for p in padding):  # type: ignore[arg-type]
        raise ValueError("a per-side padding entry must be [before, after]")


def effective_kernel(kernel: int, dilation: int) -> int:
    """d*(k-1)+1: the span of a dilated kernel (PyTorch's and Araujo et al.'s definition)."""
    return dilation * (kernel - 1) + 1


def resolve_padding(
    padding: Padding, sizes: tuple[Dim, ...], spans: tuple[int, ...], strides: tuple[int, ...]
) -> list[tuple[Dim, Dim]]:
    """Explicit (before, after) per spatial axis for any padding form.

    'same' pads span-1 in total with the odd element after, as torch.nn.Conv2d does; with a
    stride above 1 (which PyTorch refuses) it follows TensorFlow: the output is ceil(n/stride).
    """
    dims = len(sizes)
    if padding == "valid":
        return [(0, 0)] * dims
    if padding == "same":
        pads: list[tuple[Dim, Dim]] = []
        for n, span, s in zip(sizes, spans, strides):
            total = span - 1 if s == 1 else maximum((ceil_div(n, s) - 1) * s + span - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        return [(padding, padding)] * dims
    return [tuple(p) if isinstance(p, list) else (p, p) for p in padding]  # type: ignore[misc]


def window_output(
    n: Dim, span: int, stride: int, before: Dim, after: Dim, ceil_mode: bool = False
) -> Dim:
    """floor((n + before + after - span) / stride) + 1, as torch.nn.Conv2d documents.

    With ceil_mode (pooling only) the division rounds up, but the last window must start inside
    the input or its leading padding (PyTorch's pooling_output_shape rule).
    """
    reach = n + before + after - span
    if not ceil_mode:
        return reach // stride + 1
    out = ceil_div(reach, stride) + 1
    if isinstance(after, int) and after + stride <= span:
        # (out-1)*stride < reach + stride <= n + before: the last window always starts in time
        return out
    return where_at_least((out - 1) * stride, n + before, out - 1, out)


def check_window_fits(n: Dim, before: Dim, after: Dim, span: int, axis: int) -> None:
    """A ShapeError when the padded input is shorter than the window on this axis."""
    if provably_below(n + before + after - span, 0):
        raise ShapeError(
            f"spatial axis {axis}: input size {n} with padding ({before}, {after}) is smaller "
            f"than the window span {span}; the output would have size below 1 "
            "(use a smaller kernel or stride, more padding, or a larger input)"
        )


def window_reads(
    n: int, unit: int, kernel: int, stride: int, before: int, dilation: int = 1, mode: str = "zeros"
) -> tuple[int, ...]:
    """The input positions window `unit` reads: unit*stride - before + t*dilation for t < kernel,
    where positions in the padding copy the input as F.pad's modes do (reflect: -x -> x and
    n-1+x -> n-1-x; replicate: the nearest end; circular: modulo n) or read nothing (zeros)."""
    read = set()
    for t in range(kernel):
        x = unit * stride - before + t * dilation
        if 0 <= x < n:
            read.add(x)
        elif mode == "reflect":
            read.add(-x if x < 0 else 2 * (n - 1) - x)
        elif mode == "replicate":
            read.add(0 if x < 0 else n - 1)
        elif mode == "circular":
            read.add(x % n)
    return tuple(sorted(read))


def padding_escapes(mode: str, before: Dim, after: Dim, span: int) -> str:
    """Why padding of this mode maps a window's padded positions outside the part of the window
    that lies in the input ('' when it never does, so the closed forms still hold): circular
    padding wraps to the far end; reflect mirrors x past the border to x inside, beyond the window
    when 2*pad > span-1; replicate copies the border, beyond a window that holds padding only."""
    if mode == "zeros" or (isinstance(before, int) and isinstance(after, int) and before == after == 0):
        return ""
    if not (isinstance(before, int) and isinstance(after, int)):
        return f"{mode} padding may map the field past the window (symbolic padding)"
    if mode == "circular":
        return "circular padding wraps the field around to the far border"
    if mode == "reflect" and 2 * max(before, after) > span - 1:
        return f"reflect padding of {max(before, after)} mirrors positions beyond a span-{span} window"
    if mode == "replicate" and max(before, after) > span - 1:
        return f"replicate padding of {max(before, after)} copies the border into windows of padding only"
    return ""


# --- NumPy kernels for the executor: one padded copy, one strided window view -------------------

_NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def padded(x: Any, pads: list[tuple[int, int]], mode: str = "zeros", value: float = 0.0) -> Any:
    """`x` (batch, channels, *spatial) padded per spatial axis with PyTorch's padding modes."""
    if not any(b or a for b, a in pads):
        return x
    width = [(0, 0), (0, 0), *pads]
    if mode == "zeros":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=_NP_MODES[mode])  # type: ignore[call-overload]


def sliding_windows(
    x: Any, kernel: tuple[int, ...], strides: tuple[int, ...], dilations: tuple[int, ...],
    out_sizes: tuple[int, ...],
) -> Any:
    """A read-only view (batch, channels, *out_sizes, *kernel) of every window of padded `x`."""
    spatial = x.strides[2:]
    return np.lib.stride_tricks.as_strided(
        x,
        shape=(*x.shape[:2], *out_sizes, *kernel),
        strides=(
            *x.strides[:2],
            *(st * s for st, s in zip(spatial, strides)),
            *(st * d for st, d in zip(spatial, dilations)),
        ),
        writeable=False,
    )


def overhang(n: int, before: int, after: int, span: int, stride: int, out: int) -> int:
    """Extra elements after the padding that ceil-mode windows reach past the input's end."""
    return max(0, (out - 1) * stride + span - (n + before + after))


def window_sizes(n: int, before: int, after: int, kernel: int, stride: int, out: int, include_pad: bool) -> Any:
    """Elements each window covers: inside the padded input, or (include_pad false) the input alone.

    PyTorch's avg_pool divisor: a ceil-mode window that overhangs the padded input counts only
    the part inside it.
    """
    start = np.arange(out) * stride - before
    end = np.minimum(start + kernel, n + after)
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, n)
    return end - start
