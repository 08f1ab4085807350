"""Constant folding of an ONNX graph's shape arithmetic (Shape -> Gather -> Concat -> Reshape):
the NumPy value of a node whose inputs are all known, so such nodes never become layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from archcalc.errors import BridgeError

MAX_FOLDED = 1 << 20
"""Elements a folded constant may hold: shape arithmetic is small; a file asking more is refused."""

Folder = Callable[[list[Any], dict[str, Any]], Any]


def _int_div(a: Any, b: Any) -> Any:
    """ONNX Div: true division for floats, truncation toward zero for integers."""
    if np.issubdtype(np.asarray(a).dtype, np.integer) and np.issubdtype(np.asarray(b).dtype, np.integer):
        return (np.trunc(np.asarray(a) / np.asarray(b))).astype(np.result_type(a, b))
    return np.divide(a, b)


def _axes(xs: list[Any], attrs: dict[str, Any], index: int = 1) -> list[int] | None:
    """Axes given as an input (opset 13 and later) or as the `axes` attribute (earlier)."""
    if len(xs) > index and xs[index] is not None:
        return [int(a) for a in np.asarray(xs[index]).ravel()]
    return attrs.get("axes")


def _slice(xs: list[Any], attrs: dict[str, Any]) -> Any:
    """ONNX Slice: starts, ends, axes, steps as inputs (opset 10+) or attributes (opset 1)."""
    x = np.asarray(xs[0])
    starts = xs[1] if len(xs) > 1 else attrs["starts"]
    ends = xs[2] if len(xs) > 2 else attrs["ends"]
    axes = xs[3] if len(xs) > 3 and xs[3] is not None else attrs.get("axes", range(len(np.ravel(starts))))
    steps = xs[4] if len(xs) > 4 and xs[4] is not None else [1] * len(np.ravel(starts))
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(np.ravel(starts), np.ravel(ends), np.ravel(axes), np.ravel(steps)):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return x[tuple(index)]


def _squeeze(xs: list[Any], attrs: dict[str, Any]) -> Any:
    axes = _axes(xs, attrs)
    return np.squeeze(xs[0], axis=None if axes is None else tuple(axes))


def _unsqueeze(xs: list[Any], attrs: dict[str, Any]) -> Any:
    x, axes = np.asarray(xs[0]), _axes(xs, attrs) or []
    rank = x.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = np.expand_dims(x, axis)
    return x


def _constant(xs: list[Any], attrs: dict[str, Any]) -> Any:
    """ONNX Constant: `value` (a tensor) or one of the value_* attributes."""
    for key, dtype in (("value", None), ("value_int", np.int64), ("value_ints", np.int64),
                       ("value_float", np.float32), ("value_floats", np.float32)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise BridgeError("a Constant node without a numeric value (value, value_int(s), value_float(s))")


def _sized(shape: Any) -> tuple[int, ...]:
    """A shape to allocate, refused beyond MAX_FOLDED elements."""
    dims = tuple(int(d) for d in np.ravel(shape))
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=object)) > MAX_FOLDED:
        raise BridgeError(f"a constant of shape {list(dims)} is beyond the {MAX_FOLDED:,} elements shape arithmetic needs")
    return dims


def _constant_of_shape(xs: list[Any], attrs: dict[str, Any]) -> Any:
    value = np.asarray(attrs.get("value", np.zeros(1, np.float32))).ravel()
    return np.full(_sized(xs[0]), value[0], dtype=value.dtype)


def _range(xs: list[Any], attrs: dict[str, Any]) -> Any:
    start, limit, delta = (np.asarray(x).item() for x in xs[:3])
    _sized([max(0, int(np.ceil((limit - start) / delta)))])
    return np.arange(start, limit, delta, dtype=np.asarray(xs[0]).dtype)


def _expand(xs: list[Any], attrs: dict[str, Any]) -> Any:
    x = np.asarray(xs[0])
    shape = _sized(xs[1])
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, shape)).copy()


def _reshape(xs: list[Any], attrs: dict[str, Any]) -> Any:
    x = np.asarray(xs[0])
    target = [x.shape[i] if int(d) == 0 and not attrs.get("allowzero") else int(d) for i, d in enumerate(np.ravel(xs[1]))]
    return x.reshape(target)


FOLD: dict[str, Folder] = {
    "Constant": _constant,
    "Identity": lambda xs, a: xs[0],
    "Cast": lambda xs, a: np.asarray(xs[0]).astype(_CAST.get(a.get("to", 1), np.float32)),
    "Shape": lambda xs, a: np.asarray(np.shape(xs[0])[a.get("start", 0) : a.get("end")], dtype=np.int64),
    "Size": lambda xs, a: np.asarray(np.size(xs[0]), dtype=np.int64),
    "Gather": lambda xs, a: np.take(xs[0], np.asarray(xs[1]).astype(np.int64), axis=a.get("axis", 0)),
    "Concat": lambda xs, a: np.concatenate([np.atleast_1d(x) for x in xs], axis=a.get("axis", 0)),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Add": lambda xs, a: np.add(xs[0], xs[1]),
    "Sub": lambda xs, a: np.subtract(xs[0], xs[1]),
    "Mul": lambda xs, a: np.multiply(xs[0], xs[1]),
    "Div": lambda xs, a: _int_div(xs[0], xs[1]),
    "Neg": lambda xs, a: np.negative(xs[0]),
    "Floor": lambda xs, a: np.floor(xs[0]),
    "Ceil": lambda xs, a: np.ceil(xs[0]),
    "Sqrt": lambda xs, a: np.sqrt(xs[0]),
    "Min": lambda xs, a: np.minimum.reduce([np.asarray(x) for x in xs]),
    "Max": lambda xs, a: np.maximum.reduce([np.asarray(x) for x in xs]),
    "Equal": lambda xs, a: np.equal(xs[0], xs[1]),
    "Where": lambda xs, a: np.where(xs[0], xs[1], xs[2]),
    "ReduceProd": lambda xs, a: np.prod(xs[0], axis=None if _axes(xs, a) is None else tuple(_axes(xs, a) or ()), keepdims=bool(a.get("keepdims", 1))),
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Expand": _expand,
    "Reshape": _reshape,
    "Transpose": lambda xs, a: np.transpose(xs[0], a.get("perm")),
}
"""Every op whose value is folded when its inputs are known, as NumPy computes it."""

_CAST: dict[int, Any] = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}
"""ONNX TensorProto element types Cast folds to (FLOAT, INT32, INT64, BOOL, FLOAT16, DOUBLE)."""


_BROADCAST = {"Add", "Sub", "Mul", "Div", "Min", "Max", "Equal", "Where"}
"""Folded ops whose result has the broadcast shape of their inputs."""


def fold(op_type: str, xs: list[Any], attrs: dict[str, Any], where: str) -> Any | None:
    """The value of a node all of whose inputs are known, or None when `op_type` is not folded."""
    folder = FOLD.get(op_type)
    if folder is None:
        return None
    try:
        if op_type in _BROADCAST:  # two bounded operands can still broadcast to a huge result
            _sized(np.broadcast_shapes(*(np.shape(x) for x in xs if x is not None)))
        value = np.asarray(folder(xs, attrs))
    except BridgeError as exc:
        raise BridgeError(f"ONNX node {where}: {exc.message}") from None
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise BridgeError(f"ONNX node {where} ({op_type}) cannot be evaluated on its constant inputs: {exc}") from None
    if value.size > MAX_FOLDED:
        raise BridgeError(f"ONNX node {where} ({op_type}) makes a constant of {value.size:,} elements, beyond the {MAX_FOLDED:,} shape arithmetic needs")
    return value
