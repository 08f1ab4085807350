"""ONNX operators as archcalc ops: for each op type, the archcalc op, its fields from the node's
attributes and constant inputs, the inputs it reads and which initializers are its arrays.

ONNX semantics as the operator documentation (onnx.ai/onnx/operators) states them; axes count
the batch as 0, as archcalc's `dim` fields do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np


class NotMapped(Exception):
    """The node's op type is known, but not in the form it takes here (the reason says which)."""


@dataclass(frozen=True)
class Weight:
    """An initializer that is one of the op's arrays: the node input holding it, and whether ONNX
    stores it transposed relative to archcalc (MatMul's [in, out] for linear's [out, in])."""

    input: int
    transposed: bool = False


@dataclass(frozen=True)
class Mapped:
    """One archcalc layer a node becomes: op, fields, the node inputs it reads in order (an
    initializer read as a tensor becomes a `parameter` layer), its arrays, and which node output
    it is."""

    op: str
    fields: dict[str, Any]
    reads: tuple[int, ...] = (0,)
    weights: dict[str, Weight] = field(default_factory=dict)
    output: int = 0


@dataclass(frozen=True)
class NodeView:
    """What a mapping sees of a node: attributes, and per input its constant value (None for an
    activation or an absent input) or its activation shape (batch excluded, None otherwise)."""

    op_type: str
    attrs: dict[str, Any]
    values: list[Any]
    shapes: list[tuple[int, ...] | None]
    opset: int
    outputs: int

    def value(self, i: int) -> Any:
        return self.values[i] if i < len(self.values) else None

    def shape(self, i: int = 0) -> tuple[int, ...]:
        shape = self.shapes[i] if i < len(self.shapes) else None
        if shape is None:
            raise NotMapped(f"input {i} is not an activation of known shape")
        return shape

    def present(self, i: int) -> bool:
        return i < len(self.values) and (self.values[i] is not None or self.shapes[i] is not None)

    def constant(self, i: int) -> bool:
        return self.value(i) is not None


Mapping = Callable[[NodeView], list[Mapped]]


def _f32(value: float) -> float:
    """A float attribute as written in the model's source: ONNX stores float32, so 1e-5 arrives
    as 9.999999747378752e-06; its shortest float32 str gives 1e-05 back."""
    return float(str(np.float32(value)))


def _spatial(view: NodeView, name: str, default: int) -> list[int]:
    dims = len(view.shape()) - 1
    values = [int(v) for v in view.attrs.get(name, [default] * dims)]
    if len(values) != dims:
        raise NotMapped(f"{name} has {len(values)} values for {dims} spatial axes")
    return values


def _one(values: list[int]) -> int | list[int]:
    """One int when every axis agrees (the spec reads as PyTorch's), else the list."""
    return values[0] if len(set(values)) == 1 else values


def _padding(view: NodeView, kernel: list[int], pairs: bool) -> Any:
    """ONNX `pads` [x1_begin, x2_begin, ..., x1_end, x2_end] or `auto_pad` as archcalc padding."""
    auto = view.attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto == "VALID":
        return 0
    if auto == "SAME_UPPER":  # the odd element after, as archcalc's 'same'
        return "same"
    if auto != "NOTSET":
        raise NotMapped(f"auto_pad {auto} (archcalc's 'same' pads the odd element after, as SAME_UPPER)")
    pads = [int(p) for p in view.attrs.get("pads", [0] * 2 * len(kernel))]
    begin, end = pads[: len(kernel)], pads[len(kernel) :]
    if begin == end:
        return _one(begin)
    if not pairs:
        raise NotMapped(f"asymmetric pads {pads} (archcalc pools pad both sides alike)")
    return [[b, e] for b, e in zip(begin, end)]


def _conv(view: NodeView) -> list[Mapped]:
    weight = view.value(1)
    if weight is None:
        raise NotMapped("the weight is computed, not an initializer")
    dims = weight.ndim - 2
    kernel = [int(k) for k in weight.shape[2:]]
    groups = int(view.attrs.get("group", 1))
    transposed = view.op_type == "ConvTranspose"
    if transposed and "output_shape" in view.attrs:
        raise NotMapped("output_shape (archcalc takes output_padding)")
    fields: dict[str, Any] = {
        "out": int(weight.shape[1]) * groups if transposed else int(weight.shape[0]),
        "kernel": _one(kernel),
        "stride": _one(_spatial(view, "strides", 1)),
        "padding": _padding(view, kernel, pairs=not transposed),
        "dilation": _one(_spatial(view, "dilations", 1)),
        "groups": groups,
        "bias": view.present(2),
    }
    if transposed:
        fields["output_padding"] = _one(_spatial(view, "output_paddings", 0))
    weights = {"weight": Weight(1)} | ({"bias": Weight(2)} if view.present(2) else {})
    kind = f"conv_transpose{dims}d" if transposed else f"conv{dims}d"
    return [Mapped(kind, {k: v for k, v in fields.items() if v != _CONV_DEFAULTS.get(k)}, (0,), weights)]


_CONV_DEFAULTS: dict[str, Any] = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True, "output_padding": 0}


def _pool(kind: str) -> Mapping:
    def mapping(view: NodeView) -> list[Mapped]:
        if view.outputs > 1:
            raise NotMapped("the indices output (archcalc's max pool returns the values only)")
        kernel = [int(k) for k in view.attrs["kernel_shape"]]
        fields: dict[str, Any] = {
            "kernel": _one(kernel),
            "stride": _one(_spatial(view, "strides", 1)),
            "padding": _padding(view, kernel, pairs=False),
            "ceil_mode": bool(view.attrs.get("ceil_mode", 0)),
        }
        if kind == "max_pool":
            fields["dilation"] = _one(_spatial(view, "dilations", 1))
        else:
            fields["count_include_pad"] = bool(view.attrs.get("count_include_pad", 0))
        defaults = {"padding": 0, "ceil_mode": False, "dilation": 1}
        fields = {k: v for k, v in fields.items() if defaults.get(k, object()) != v}
        return [Mapped(f"{kind}{len(kernel)}d", fields)]

    return mapping


def _global_pool(kind: str) -> Mapping:
    """GlobalAveragePool keeps the spatial axes at size 1, as torch's adaptive pool to 1 does."""
    return lambda view: [Mapped(f"{kind}{len(view.shape()) - 1}d", {"output": 1})]


def _batchnorm(view: NodeView) -> list[Mapped]:
    if view.outputs > 1 or view.attrs.get("training_mode", 0):
        raise NotMapped("training mode (export the model in eval mode)")
    rank = len(view.shape())
    if rank not in (1, 2, 3, 4):
        raise NotMapped(f"an input of rank {rank + 1}")
    momentum = float(Decimal(1) - Decimal(str(np.float32(view.attrs.get("momentum", 0.9)))))
    fields = {"eps": _f32(view.attrs.get("epsilon", 1e-5)), "momentum": momentum}
    names = ("weight", "bias", "running_mean", "running_var")
    kind = "batchnorm2d" if rank == 3 else "batchnorm3d" if rank == 4 else "batchnorm1d"
    return [Mapped(kind, {k: v for k, v in fields.items() if v != {"eps": 1e-5, "momentum": 0.1}[k]}, (0,), {n: Weight(i + 1) for i, n in enumerate(names)})]


def _layernorm(view: NodeView) -> list[Mapped]:
    shape = view.shape()
    axis = int(view.attrs.get("axis", -1)) % (len(shape) + 1)
    if axis == 0:
        raise NotMapped("normalising over the batch axis")
    normalized = [int(d) for d in shape[axis - 1 :]]
    fields: dict[str, Any] = {"normalized_shape": _one(normalized) if len(normalized) == 1 else normalized}
    eps = _f32(view.attrs.get("epsilon", 1e-5))
    if eps != 1e-5:
        fields["eps"] = eps
    if not view.present(2):
        fields["bias"] = False
    weights = {"weight": Weight(1)} | ({"bias": Weight(2)} if view.present(2) else {})
    return [Mapped("layernorm", fields, (0,), weights)]


def _gemm(view: NodeView) -> list[Mapped]:
    if view.value(1) is None or view.constant(0):
        raise NotMapped("B is not an initializer (only x W + b is a linear layer)")
    if view.attrs.get("transA", 0) or _f32(view.attrs.get("alpha", 1.0)) != 1 or _f32(view.attrs.get("beta", 1.0)) != 1:
        raise NotMapped("transA, alpha or beta other than the linear layer's 0, 1, 1")
    trans = bool(view.attrs.get("transB", 0))
    weight = view.value(1)
    out = int(weight.shape[0] if trans else weight.shape[1])
    bias = view.value(2)
    weights = {"weight": Weight(1, transposed=not trans)}
    if bias is not None and bias.size == out and bias.ndim <= 2:
        weights["bias"] = Weight(2)
    elif view.present(2):
        raise NotMapped("C is not a bias vector of the output width")
    return [Mapped("linear", {"out": out} | ({} if view.present(2) else {"bias": False}), (0,), weights)]


def _linear(view: NodeView) -> list[Mapped]:
    """archcalc.Linear, what onnx_fuse makes of MatMul(x, W) and its bias Add: x W + b."""
    weight = view.value(1)
    weights = {"weight": Weight(1, transposed=True)} | ({"bias": Weight(2)} if view.present(2) else {})
    return [Mapped("linear", {"out": int(weight.shape[1])} | ({} if view.present(2) else {"bias": False}), (0,), weights)]


def _matmul(view: NodeView) -> list[Mapped]:
    if view.constant(0) or view.constant(1):
        raise NotMapped("a constant factor that is not a 2-D weight on the right")
    return [Mapped("matmul", {}, (0, 1))]


def _binary(kind: str, scalar: Callable[[float], float] | None) -> Mapping:
    """Add/Mul of two activations, or of an activation and an initializer (a `parameter` layer);
    a scalar factor (Mul, Div) is archcalc's `scale`."""

    def mapping(view: NodeView) -> list[Mapped]:
        constants = [i for i in (0, 1) if view.constant(i)]
        if constants and np.size(view.value(constants[0])) == 1:
            if scalar is None or constants != [1] and view.op_type == "Div":
                raise NotMapped("a scalar constant operand (archcalc has no op adding a constant)")
            factor = scalar(float(np.ravel(view.value(constants[0]))[0]))
            return [Mapped("scale", {"factor": factor}, (1 - constants[0],))]
        if view.op_type == "Div":
            raise NotMapped("division by a tensor")
        return [Mapped(kind, {}, (0, 1))]

    return mapping


def _unary(kind: str) -> Mapping:
    return lambda view: [Mapped(kind, {})]


def _clip(view: NodeView) -> list[Mapped]:
    """Clip(0, 6) is relu6, Clip(0, inf) relu, anything else clamp."""
    low = view.value(1) if view.opset >= 11 else view.attrs.get("min")
    high = view.value(2) if view.opset >= 11 else view.attrs.get("max")
    bounds = [None if b is None or not np.isfinite(float(np.ravel(b)[0])) else _f32(float(np.ravel(b)[0])) for b in (low, high)]
    if bounds == [0.0, 6.0]:
        return [Mapped("relu6", {})]
    if bounds == [0.0, None]:
        return [Mapped("relu", {})]
    return [Mapped("clamp", {"min": bounds[0], "max": bounds[1]})]


def _hardsigmoid(view: NodeView) -> list[Mapped]:
    if (_f32(view.attrs.get("alpha", 0.2)), _f32(view.attrs.get("beta", 0.5))) != (_f32(1 / 6), 0.5):
        raise NotMapped("alpha and beta other than torch's 1/6 and 1/2")
    return [Mapped("hardsigmoid", {})]


def _leaky_relu(view: NodeView) -> list[Mapped]:
    return [Mapped("leaky_relu", {"negative_slope": _f32(view.attrs.get("alpha", 0.01))})]


def _gelu(view: NodeView) -> list[Mapped]:
    approximate = view.attrs.get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else str(approximate)
    return [Mapped("gelu", {} if approximate == "none" else {"approximate": approximate})]


def _softmax(view: NodeView) -> list[Mapped]:
    rank = len(view.shape()) + 1
    axis = int(view.attrs.get("axis", -1 if view.opset >= 13 else 1))
    if view.opset < 13 and axis % rank != rank - 1:
        raise NotMapped("a softmax over the flattened trailing axes (opset < 13) of more than one axis")
    return [Mapped("softmax", {"dim": axis})]


def _concat(view: NodeView) -> list[Mapped]:
    if any(view.constant(i) for i in range(len(view.values))):
        raise NotMapped("a constant operand")
    return [Mapped("concat", {"dim": int(view.attrs["axis"])}, tuple(range(len(view.values))))]


def _flatten(view: NodeView) -> list[Mapped]:
    axis = int(view.attrs.get("axis", 1)) % (len(view.shape()) + 1)
    if axis == 1:
        return [Mapped("flatten", {})]
    if axis == 0:
        raise NotMapped("flattening the batch axis into the features")
    shape = view.shape()
    return [Mapped("reshape", {"shape": [int(np.prod(shape[: axis - 1])), int(np.prod(shape[axis - 1 :]))]})]


def _reshape(view: NodeView) -> list[Mapped]:
    target = view.value(1)
    if target is None:
        raise NotMapped("the target shape is computed from the input at run time")
    dims = [int(d) for d in np.ravel(target)]
    shape = view.shape()
    if len(dims) < 2 or dims[0] not in (-1, 0, 1) or dims[0] == -1 and -1 in dims[1:]:
        raise NotMapped(f"target {dims} does not keep the batch axis first")
    if dims[0] == 1 and 0 not in dims[1:] and -1 not in dims[1:] and int(np.prod(dims[1:])) != int(np.prod(shape)):
        raise NotMapped(f"target {dims} merges the batch axis")
    zero = not view.attrs.get("allowzero", 0)
    rest = [shape[i] if d == 0 and zero and i < len(shape) else d for i, d in enumerate(dims[1:])]
    return [Mapped("reshape", {"shape": rest})]


def _transpose(view: NodeView) -> list[Mapped]:
    rank = len(view.shape()) + 1
    perm = [int(p) for p in view.attrs.get("perm", range(rank - 1, -1, -1))]
    if perm[0] != 0:
        raise NotMapped(f"perm {perm} moves the batch axis")
    return [Mapped("permute", {"dims": perm})]


def _squeeze(kind: str) -> Mapping:
    def mapping(view: NodeView) -> list[Mapped]:
        axes = view.value(1) if view.opset >= 13 else view.attrs.get("axes")
        if axes is None:
            if kind == "unsqueeze":
                raise NotMapped("no axes")
            return [Mapped("squeeze", {})]
        axes = [int(a) for a in np.ravel(axes)]
        if kind == "squeeze":
            return [Mapped("squeeze", {"dim": axes[0] if len(axes) == 1 else axes})]
        shape = view.shape()
        rank = len(shape) + 1 + len(axes)
        ordered = sorted(a % rank for a in axes)
        if ordered[0] == 0:
            raise NotMapped("a new axis before the batch")
        if len(ordered) == 1:
            return [Mapped("unsqueeze", {"dim": ordered[0]})]
        sizes = list(shape)
        for axis in ordered:
            sizes.insert(axis - 1, 1)
        return [Mapped("reshape", {"shape": sizes})]

    return mapping


def _dropout(view: NodeView) -> list[Mapped]:
    ratio = view.value(1) if view.opset >= 12 else view.attrs.get("ratio", 0.5)
    p = 0.5 if ratio is None else _f32(float(np.ravel(ratio)[0]))
    return [Mapped("dropout", {} if p == 0.5 else {"p": p})]


def _pad(view: NodeView) -> list[Mapped]:
    pads = view.value(1) if view.opset >= 11 else view.attrs.get("pads")
    if pads is None or view.present(3):
        raise NotMapped("pads computed at run time, or an axes input")
    pads = [int(p) for p in np.ravel(pads)]
    rank = len(pads) // 2
    begin, end = pads[:rank], pads[rank:]
    if begin[0] or end[0]:
        raise NotMapped("padding the batch axis")
    first = next((i for i in range(1, rank) if begin[i] or end[i]), rank - 1)
    mode = view.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    if mode not in modes:
        raise NotMapped(f"mode {mode}")
    fields: dict[str, Any] = {"padding": [[begin[i], end[i]] for i in range(first, rank)]}
    if modes[mode] != "constant":
        fields["mode"] = modes[mode]
    value = view.value(2) if view.opset >= 11 else view.attrs.get("value")
    if value is not None and float(np.ravel(value)[0]) != 0:
        fields["value"] = float(np.ravel(value)[0])
    return [Mapped("pad", fields)]


def _resize(view: NodeView) -> list[Mapped]:
    shape = view.shape()
    dims = len(shape) - 1
    mode = view.attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    transform = view.attrs.get("coordinate_transformation_mode", b"half_pixel")
    transform = transform.decode() if isinstance(transform, bytes) else str(transform)
    kinds = {"nearest": "nearest", "linear": {1: "linear", 2: "bilinear", 3: "trilinear"}.get(dims), "cubic": "bicubic" if dims == 2 else None}
    kind = kinds.get(mode)
    if kind is None:
        raise NotMapped(f"mode {mode} on {dims} spatial axes")
    scales = view.value(2) if view.op_type == "Resize" and view.opset >= 11 else view.value(1) if view.op_type == "Upsample" else view.attrs.get("scales")
    sizes = view.value(3) if view.op_type == "Resize" else None
    fields: dict[str, Any] = {"mode": kind}
    if sizes is not None and np.size(sizes):
        sizes = [int(s) for s in np.ravel(sizes)]
        fields["size"] = _one(sizes[2:])
    elif scales is not None and np.size(scales):
        factors = [_f32(float(s)) for s in np.ravel(scales)]
        if factors[:2] != [1.0, 1.0]:
            raise NotMapped(f"scales {factors} resize the batch or channel axis")
        fields["scale_factor"] = _one(factors[2:])  # type: ignore[arg-type]
    else:
        raise NotMapped("scales or sizes computed at run time")
    if kind != "nearest":
        fields["align_corners"] = transform == "align_corners"
    elif transform not in ("asymmetric", "half_pixel", "pytorch_half_pixel") or view.attrs.get("nearest_mode", b"floor") not in (b"floor", "floor"):
        raise NotMapped(f"nearest with {transform} coordinates (torch's nearest is asymmetric, floor)")
    return [Mapped("interpolate", fields)]


def _split(view: NodeView) -> list[Mapped]:
    shape = view.shape()
    axis = int(view.attrs.get("axis", 0)) % (len(shape) + 1)
    if axis == 0:
        raise NotMapped("splitting the batch axis")
    sizes = view.value(1) if view.opset >= 13 else view.attrs.get("split")
    size = shape[axis - 1]
    if sizes is None:
        parts = int(view.attrs.get("num_outputs", view.outputs))
        chunk = -(-size // parts)
        sizes = [min(chunk, size - k * chunk) for k in range(parts)]
    starts = np.cumsum([0, *[int(s) for s in np.ravel(sizes)]])
    return [Mapped("slice", {"dim": axis, "start": int(starts[k]), "end": int(starts[k + 1])}, output=k) for k in range(len(starts) - 1)]


def _slice(view: NodeView) -> list[Mapped]:
    shape = view.shape()
    if view.opset < 10:
        starts, ends, axes, steps = view.attrs.get("starts"), view.attrs.get("ends"), view.attrs.get("axes"), None
    else:
        starts, ends, axes, steps = (view.value(i) for i in (1, 2, 3, 4))
        if starts is None or ends is None or view.present(3) and axes is None or view.present(4) and steps is None:
            raise NotMapped("starts, ends, axes or steps computed at run time")
    starts, ends = [int(s) for s in np.ravel(starts)], [int(e) for e in np.ravel(ends)]
    axes = list(range(len(starts))) if axes is None else [int(a) for a in np.ravel(axes)]
    if steps is not None and any(int(s) != 1 for s in np.ravel(steps)):
        raise NotMapped("a step other than 1")
    rank = len(shape) + 1
    cut = [(a % rank, s, e) for a, s, e in zip(axes, starts, ends) if (s, e) != (0, np.iinfo(np.int64).max) and a % rank]
    if any(a % rank == 0 for a in axes if (starts[axes.index(a)], ends[axes.index(a)]) != (0, np.iinfo(np.int64).max)):
        raise NotMapped("slicing the batch axis")
    if len(cut) > 1:
        raise NotMapped("slicing more than one axis")
    if not cut:
        return [Mapped("identity", {})]
    axis, start, end = cut[0]
    size = shape[axis - 1]
    start, end = (min(max(v + size if v < 0 else v, 0), size) for v in (start, end))
    return [Mapped("slice", {"dim": axis, "start": start, "end": end})]


def _gather(view: NodeView) -> list[Mapped]:
    table = view.value(0)
    if table is None or view.constant(1) or int(view.attrs.get("axis", 0)) != 0 or table.ndim != 2:
        raise NotMapped("only rows of a 2-D initializer picked by computed ids (an embedding) are mapped")
    return [Mapped("embedding", {"vocab": int(table.shape[0]), "dim": int(table.shape[1])}, (1,), {"weight": Weight(0)})]


def _reduce_mean(view: NodeView) -> list[Mapped]:
    axes = view.value(1) if view.opset >= 18 else view.attrs.get("axes")
    if axes is None:
        raise NotMapped("no constant axes")
    axes = [int(a) for a in np.ravel(axes)]
    keep = bool(view.attrs.get("keepdims", 1))
    return [Mapped("mean", {"dim": axes[0] if len(axes) == 1 else axes, "keepdim": keep})]


def _channel_shuffle(view: NodeView) -> list[Mapped]:
    """archcalc.ChannelShuffle, what onnx_fuse makes of Reshape [N, g, C/g, H, W], Transpose, Reshape."""
    target = view.value(1)
    shape = view.shape()
    if target is None or np.size(target) != 5 or len(shape) != 3 or int(np.prod(np.ravel(target)[1:3])) != shape[0]:
        raise NotMapped("a reshape to [N, groups, C/groups, H, W] that is not a channel shuffle")
    return [Mapped("channel_shuffle", {"groups": int(np.ravel(target)[1])})]


def _silu(view: NodeView) -> list[Mapped]:
    """archcalc.SiLU, what onnx_fuse makes of Mul(x, Sigmoid(x))."""
    return [Mapped("silu", {})]


MAPPINGS: dict[str, Mapping] = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "Gemm": _gemm,
    "archcalc.Linear": _linear,
    "MatMul": _matmul,
    "BatchNormalization": _batchnorm,
    "LayerNormalization": _layernorm,
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "HardSwish": _unary("hardswish"),
    "HardSigmoid": _hardsigmoid,
    "LeakyRelu": _leaky_relu,
    "Elu": lambda view: [Mapped("elu", {"alpha": _f32(view.attrs.get("alpha", 1.0))})],
    "Softplus": _unary("softplus"),
    "Mish": _unary("mish"),
    "Gelu": _gelu,
    "archcalc.SiLU": _silu,
    "archcalc.ChannelShuffle": _channel_shuffle,
    "Clip": _clip,
    "Softmax": _softmax,
    "Add": _binary("add", None),
    "Mul": _binary("mul", lambda c: c),
    "Div": _binary("mul", lambda c: 1 / c),
    "Concat": _concat,
    "MaxPool": _pool("max_pool"),
    "AveragePool": _pool("avg_pool"),
    "GlobalAveragePool": _global_pool("adaptive_avg_pool"),
    "GlobalMaxPool": _global_pool("adaptive_max_pool"),
    "ReduceMean": _reduce_mean,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Squeeze": _squeeze("squeeze"),
    "Unsqueeze": _squeeze("unsqueeze"),
    "Dropout": _dropout,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
    "Split": _split,
    "Slice": _slice,
    "Gather": _gather,
}
"""ONNX op type -> how a node of it becomes archcalc layers (docs/import-export.md has the table)."""
