"""Sliding-window arithmetic shared by convolutions and pooling: padding forms and output sizes."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import NonNegativeInt

from ..arith import Dim, ceil_div, maximum, provably_below, where_at_least
from ..errors import ShapeError

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
    return where_at_least((out - 1) * stride, n + before, out - 1, out)


def check_window_fits(n: Dim, before: Dim, after: Dim, span: int, axis: int) -> None:
    """A ShapeError when the padded input is shorter than the window on this axis."""
    if provably_below(n + before + after - span, 0):
        raise ShapeError(
            f"spatial axis {axis}: input size {n} with padding ({before}, {after}) is smaller "
            f"than the window span {span}; the output would have size below 1 "
            "(use a smaller kernel or stride, more padding, or a larger input)"
        )
