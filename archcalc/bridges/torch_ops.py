"""PyTorch's ATen operators as archcalc ops: each mapped operator's archcalc op and fields, read
from the operator's arguments as torch.export records them (schema names, defaults filled in).

A rule returns (op, fields) or None when this use of the operator has no archcalc op (say,
adding a number rather than a tensor); `PASS_THROUGH` operators change nothing archcalc
measures (an alias, a clone, an assertion) and are skipped, their output read as their input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Arguments = dict[str, Any]  # schema name -> value; a tensor argument is its traced shape (a tuple)
Rule = Callable[[Arguments, tuple[int, ...]], "tuple[str, dict[str, Any]] | None"]


def _one(value: Any) -> Any:
    """[3, 3] -> 3: a size the same along every axis written once, as the zoo writes it."""
    if isinstance(value, (list, tuple)):
        values = [int(v) for v in value]
        return values[0] if values and all(v == values[0] for v in values) else values
    return value


def _rank(args: Arguments, key: str = "input") -> int:
    """Spatial axes of a batched [N, C, *spatial] tensor argument."""
    return len(args[key]) - 2


def _conv(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    weight = args["weight"]
    padding = args["padding"]
    return f"conv{len(weight) - 2}d", {
        "out": weight[0], "kernel": _one(weight[2:]), "stride": _one(args["stride"]),
        "padding": padding if isinstance(padding, str) else _one(padding),
        "dilation": _one(args["dilation"]), "groups": args["groups"], "bias": args["bias"] is not None,
    }


def _conv_transpose(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    weight = args["weight"]
    return f"conv_transpose{len(weight) - 2}d", {
        "out": weight[1] * args["groups"], "kernel": _one(weight[2:]), "stride": _one(args["stride"]),
        "padding": _one(args["padding"]), "output_padding": _one(args["output_padding"]),
        "dilation": _one(args["dilation"]), "groups": args["groups"], "bias": args["bias"] is not None,
    }


def _linear(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "linear", {"out": args["weight"][0], "bias": args["bias"] is not None}


def _batch_norm(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]] | None:
    spatial = max(len(args["input"]) - 2, 1)
    return f"batchnorm{spatial}d", {
        "eps": float(args["eps"]), "momentum": float(args["momentum"]) if args["momentum"] is not None else None,
        "affine": args["weight"] is not None, "track_running_stats": args["running_mean"] is not None,
    }


def _layer_norm(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "layernorm", {
        "normalized_shape": _one(args["normalized_shape"]) if len(args["normalized_shape"]) == 1 else list(args["normalized_shape"]),
        "eps": float(args["eps"]), "elementwise_affine": args["weight"] is not None, "bias": args["bias"] is not None,
    }


def _group_norm(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "groupnorm", {"groups": args["num_groups"], "eps": float(args["eps"]), "affine": args["weight"] is not None}


def _activation(kind: str, inplace: bool, **fields: str) -> Rule:
    """An elementwise op; `fields` maps archcalc field -> schema argument."""
    return lambda args, out: (kind, {"inplace": inplace, **{f: args[a] for f, a in fields.items()}})


def _hardtanh(inplace: bool) -> Rule:
    """hardtanh(x, 0, 6) is ReLU6 (nn.ReLU6 calls it); other bounds have no archcalc op."""
    def rule(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]] | None:
        return ("relu6", {"inplace": inplace}) if (args["min_val"], args["max_val"]) == (0, 6) else None
    return rule


def _max_pool(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return f"max_pool{_rank(args, 'self')}d", {
        "kernel": _one(args["kernel_size"]), "stride": _one(args["stride"]) if args["stride"] else None,
        "padding": _one(args["padding"]), "dilation": _one(args["dilation"]), "ceil_mode": args["ceil_mode"],
    }


def _avg_pool(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return f"avg_pool{_rank(args, 'self')}d", {
        "kernel": _one(args["kernel_size"]), "stride": _one(args["stride"]) if args["stride"] else None,
        "padding": _one(args["padding"]), "ceil_mode": args["ceil_mode"],
        "count_include_pad": args["count_include_pad"], "divisor_override": args["divisor_override"],
    }


def _adaptive(reduce: str) -> Rule:
    return lambda args, out: (f"adaptive_{reduce}_pool{_rank(args, 'self')}d", {"output": _one(args["output_size"])})


def _binary(kind: str) -> Rule:
    """add/mul of two tensors (a number instead of a tensor, or add's alpha, has no archcalc op)."""
    def rule(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]] | None:
        tensors = isinstance(args["self"], tuple) and isinstance(args["other"], tuple)
        return (kind, {}) if tensors and args.get("alpha", 1) == 1 else None
    return rule


def _flatten(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "flatten", {"start_dim": args["start_dim"], "end_dim": args["end_dim"]}


def _reshape(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    """view/reshape to the traced shape without its batch axis (what archcalc's `shape` is)."""
    return "reshape", {"shape": list(out[1:])}


def _reduce(kind: str) -> Rule:
    def rule(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]] | None:
        if args.get("dtype") is not None or not args["dim"]:
            return None
        return kind, {"dim": _one(args["dim"]) if len(args["dim"]) == 1 else list(args["dim"]), "keepdim": args["keepdim"]}
    return rule


def _cat(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "concat", {"dim": args["dim"]}


def _dropout(inplace: bool) -> Rule:
    return lambda args, out: ("dropout", {"p": float(args["p"]), "inplace": inplace})


def _upsample(mode: str) -> Rule:
    """F.interpolate as export records it: an output size (torch computes it from a scale)."""
    def rule(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
        fields: dict[str, Any] = {"size": _one(out[2:]), "mode": mode}
        if "align_corners" in args:
            fields["align_corners"] = args["align_corners"]
        return "interpolate", fields
    return rule


def _axes(kind: str, **fields: str) -> Rule:
    return lambda args, out: (kind, {f: (list(args[a]) if isinstance(args[a], (list, tuple)) else args[a]) for f, a in fields.items()})


def _select(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]] | None:
    """x.select(dim, i) (x[:, i]) of a feature axis: written as a `slice` of one and a `squeeze`
    (the importer's two layers; "select" is no archcalc op of its own)."""
    rank = len(args["self"])
    dim = args["dim"] % rank
    return ("select", {"dim": dim, "index": args["index"] % args["self"][dim]}) if dim else None


def _slice(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]] | None:
    """x[:, start:end] (aten.slice of a feature axis, step 1) as archcalc's `slice`: the view
    torch.narrow gives; an end past the axis (x[:, 2:]) is the axis's size."""
    rank = len(args["self"])
    dim = args["dim"] % rank
    size = args["self"][dim]
    start = args["start"] if args["start"] is not None else 0
    end = min(args["end"], size) if args["end"] is not None else size
    if not dim or args.get("step", 1) != 1 or not 0 <= start < end:
        return None
    return "slice", {"dim": dim, "start": start, "end": end}


def _softmax(args: Arguments, out: tuple[int, ...]) -> tuple[str, dict[str, Any]] | None:
    return ("softmax", {"dim": args["dim"]}) if not args.get("half_to_float") else None


RULES: dict[str, Rule] = {
    "aten.conv1d.default": _conv, "aten.conv2d.default": _conv, "aten.conv3d.default": _conv,
    "aten.conv1d.padding": _conv, "aten.conv2d.padding": _conv, "aten.conv3d.padding": _conv,
    "aten.conv_transpose1d.default": _conv_transpose, "aten.conv_transpose2d.input": _conv_transpose,
    "aten.conv_transpose3d.input": _conv_transpose,
    "aten.linear.default": _linear,
    "aten.batch_norm.default": _batch_norm,
    "aten.layer_norm.default": _layer_norm,
    "aten.group_norm.default": _group_norm,
    "aten.relu.default": _activation("relu", False), "aten.relu_.default": _activation("relu", True),
    "aten.hardtanh.default": _hardtanh(False), "aten.hardtanh_.default": _hardtanh(True),
    "aten.sigmoid.default": _activation("sigmoid", False), "aten.sigmoid_.default": _activation("sigmoid", True),
    "aten.tanh.default": _activation("tanh", False), "aten.tanh_.default": _activation("tanh", True),
    "aten.hardswish.default": _activation("hardswish", False), "aten.hardswish_.default": _activation("hardswish", True),
    "aten.hardsigmoid.default": _activation("hardsigmoid", False), "aten.hardsigmoid_.default": _activation("hardsigmoid", True),
    "aten.silu.default": _activation("silu", False), "aten.silu_.default": _activation("silu", True),
    "aten.mish.default": _activation("mish", False), "aten.mish_.default": _activation("mish", True),
    "aten.gelu.default": _activation("gelu", False, approximate="approximate"),
    "aten.gelu_.default": _activation("gelu", True, approximate="approximate"),
    "aten.leaky_relu.default": _activation("leaky_relu", False, negative_slope="negative_slope"),
    "aten.leaky_relu_.default": _activation("leaky_relu", True, negative_slope="negative_slope"),
    "aten.elu.default": _activation("elu", False, alpha="alpha"), "aten.elu_.default": _activation("elu", True, alpha="alpha"),
    "aten.max_pool1d.default": _max_pool, "aten.max_pool2d.default": _max_pool, "aten.max_pool3d.default": _max_pool,
    "aten.avg_pool1d.default": _avg_pool, "aten.avg_pool2d.default": _avg_pool, "aten.avg_pool3d.default": _avg_pool,
    "aten.adaptive_avg_pool1d.default": _adaptive("avg"), "aten.adaptive_avg_pool2d.default": _adaptive("avg"),
    "aten.adaptive_avg_pool3d.default": _adaptive("avg"), "aten.adaptive_max_pool1d.default": _adaptive("max"),
    "aten.adaptive_max_pool2d.default": _adaptive("max"), "aten.adaptive_max_pool3d.default": _adaptive("max"),
    "aten.add.Tensor": _binary("add"), "aten.add_.Tensor": _binary("add"),
    "aten.mul.Tensor": _binary("mul"), "aten.mul_.Tensor": _binary("mul"),
    "aten.matmul.default": lambda args, out: ("matmul", {}),
    "aten.flatten.using_ints": _flatten,
    "aten.view.default": _reshape, "aten.reshape.default": _reshape, "aten._unsafe_view.default": _reshape,
    "aten.mean.dim": _reduce("mean"), "aten.sum.dim_IntList": _reduce("sum"),
    "aten.cat.default": _cat, "aten.concat.default": _cat,
    "aten.dropout.default": _dropout(False), "aten.dropout_.default": _dropout(True),
    "aten.feature_dropout.default": _dropout(False), "aten.feature_dropout_.default": _dropout(True),
    "aten.upsample_bilinear2d.vec": _upsample("bilinear"), "aten.upsample_nearest2d.vec": _upsample("nearest"),
    "aten.upsample_bicubic2d.vec": _upsample("bicubic"), "aten.upsample_trilinear3d.vec": _upsample("trilinear"),
    "aten.permute.default": _axes("permute", dims="dims"),
    "aten.transpose.int": _axes("transpose", dim0="dim0", dim1="dim1"),
    "aten.unsqueeze.default": _axes("unsqueeze", dim="dim"),
    "aten.squeeze.dim": _axes("squeeze", dim="dim"), "aten.squeeze.dims": _axes("squeeze", dim="dim"),
    "aten.contiguous.default": lambda args, out: ("contiguous", {}),
    "aten.select.int": _select,
    "aten.slice.Tensor": _slice,
    "aten.softmax.int": _softmax, "aten._softmax.default": _softmax,
    "aten.channel_shuffle.default": _axes("channel_shuffle", groups="groups"),
    "aten.pixel_shuffle.default": _axes("pixel_shuffle", upscale_factor="upscale_factor"),
    "aten.pixel_unshuffle.default": _axes("pixel_unshuffle", downscale_factor="downscale_factor"),
}

WEIGHTED = frozenset(t for t, rule in RULES.items() if rule in (_conv, _conv_transpose, _linear, _batch_norm, _layer_norm, _group_norm))
"""The operators whose parameter and buffer arguments are their archcalc op's own."""

PASS_THROUGH = frozenset({
    "aten.clone.default", "aten.alias.default", "aten.detach.default", "aten.detach_.default",
    "aten.lift_fresh_copy.default", "aten._assert_tensor_metadata.default", "aten.identity.default",
})


Operators = list[tuple[str, Arguments]]  # a module call's operators: (target, arguments) in order
ModuleRule = Callable[[Operators, set[str]], "tuple[str, dict[str, Any]] | None"]


def _multihead_attention(operators: Operators, parameters: set[str]) -> tuple[str, dict[str, Any]] | None:
    """nn.MultiheadAttention as self-attention: the heads from the query its attention reads
    ([N, heads, S, D]), dropout from the same call, bias when it has in_proj_bias."""
    attention = [args for target, args in operators if target == "aten.scaled_dot_product_attention.default"]
    if len(attention) != 1:
        return None
    query = attention[0]["query"]
    return "multihead_attention", {"heads": query[1], "dropout": float(attention[0]["dropout_p"]), "bias": "in_proj_bias" in parameters}


def _stochastic_depth(operators: Operators, parameters: set[str]) -> tuple[str, dict[str, Any]] | None:
    """torchvision's StochasticDepth in training: a Bernoulli(1 - p) noise of shape [N, 1, ...]
    (mode `row`) or [1, ...] (mode `batch`), divided by 1 - p, times the input."""
    noise = [args for target, args in operators if target == "aten.bernoulli_.float"]
    if len(noise) != 1:
        return None
    shape = noise[0]["self"]
    p = float(f"{1 - noise[0]['p']:.12g}")  # 1 - (1 - p) in floats: 0.025000000000000022 is 0.025
    return "stochastic_depth", {"p": p, "mode": "row" if shape[0] > 1 else "batch"}


MODULES: dict[str, ModuleRule] = {
    "torch.nn.modules.activation.MultiheadAttention": _multihead_attention,
    "torchvision.ops.stochastic_depth.StochasticDepth": _stochastic_depth,
}
"""Modules mapped whole to one archcalc op, by class (as nn_module_stack names it), from the
operators one call runs and the names of the parameters it reads (relative to the module)."""

EXPORTED: dict[str, ModuleRule] = {"StochasticDepth": _stochastic_depth}
"""The classes `archcalc export` defines in the file it writes (archcalc.ops.dropout), by bare
name: the file's module name is the user's. Each rule still checks the operators it is given."""


def module_rule(kind: str) -> ModuleRule | None:
    """The rule mapping a module of class `kind` (qualified) whole, if any."""
    return MODULES.get(kind) or EXPORTED.get(kind.rpartition(".")[2])
