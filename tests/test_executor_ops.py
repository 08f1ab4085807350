"""Every op's NumPy forward, checked number by number against two independent routes.

1. A naive reference written here from the op's definition: plain Python loops over tiny float64
   arrays, every index computed by hand (padding modes by their index mapping, never np.pad).
2. PyTorch (torch.nn.functional and torch.nn modules) on the same arrays and weights, where torch
   is installed; CI does not install it, so those tests skip and the naive ones still run.

Then the executor's own checks: arrays that do not fit the network name the layer and the
expected shape.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from itertools import product
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from archcalc.executor import ExecutionError, execute, random_weights
from archcalc.ops import REGISTRY, Op
from archcalc.spec.graph import load

Array = Any
Shapes = list[tuple[int, ...]]  # batched input shapes
Weights = dict[str, dict[str, Any]]  # layer path -> array name -> array

MODES = ("zeros", "reflect", "replicate", "circular")


def case(kind: str, *shapes: tuple[int, ...], **fields: Any) -> Any:
    """(kind, fields, batched input shapes) with an id like `conv2d[out=4,kernel=3](2,4,7,6)`."""
    settings = ",".join(f"{k}={v}" for k, v in fields.items()).replace(" ", "")
    inputs = "*".join(str(s).replace(" ", "") for s in shapes)
    return pytest.param(kind, fields, list(shapes), id=f"{kind}[{settings}]{inputs}")


# --- the naive references ---------------------------------------------------------------------


def per_axis(value: Any, dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def sides(
    padding: Any, sizes: tuple[int, ...], spans: list[int], strides: tuple[int, ...]
) -> list[tuple[int, int]]:
    """(before, after) per axis for every padding form.

    'same' pads span-1 in total, the odd element after (PyTorch); with stride above 1 TensorFlow's
    rule: out = ceil(n/s), total = max((out-1)*s + span - n, 0), the odd element after.
    """
    if padding == "valid":
        return [(0, 0)] * len(sizes)
    if padding == "same":
        result = []
        for n, span, s in zip(sizes, spans, strides):
            total = span - 1 if s == 1 else max((math.ceil(n / s) - 1) * s + span - n, 0)
            result.append((total // 2, total - total // 2))
        return result
    if isinstance(padding, int):
        return [(padding, padding)] * len(sizes)
    return [(p[0], p[1]) if isinstance(p, list) else (p, p) for p in padding]


def source(i: int, n: int, mode: str) -> int | None:
    """The input index that position i of a padded axis of size n reads (None: a zero)."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "reflect":  # mirror about the edge element, which is not repeated: -1 -> 1, n -> n-2
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    return i % n  # circular: -1 -> n-1, n -> 0


def naive_conv(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[b, o, p] = bias[o] + sum over c in o's group and kernel offsets t of
    weight[o, c, t] * padded_x[b, c, p*stride + t*dilation - before]."""
    x = xs[0]
    dims = x.ndim - 2
    kernel = w["weight"].shape[2:]
    stride, dilation = per_axis(op.stride, dims), per_axis(op.dilation, dims)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    pads = sides(op.padding, x.shape[2:], spans, stride)
    out_sizes = [
        (n + b + a - span) // s + 1 for n, (b, a), span, s in zip(x.shape[2:], pads, spans, stride)
    ]
    per_group_in, per_group_out = x.shape[1] // op.groups, op.out // op.groups
    y = np.zeros((x.shape[0], op.out, *out_sizes))
    for batch, o in product(range(x.shape[0]), range(op.out)):
        first = (o // per_group_out) * per_group_in
        for pos in product(*map(range, out_sizes)):
            total = float(w["bias"][o]) if op.bias else 0.0
            for c in range(per_group_in):
                for offset in product(*map(range, kernel)):
                    axes = zip(pos, stride, offset, dilation, pads, x.shape[2:])
                    index = tuple(
                        source(p * s + t * d - b, n, op.padding_mode)
                        for p, s, t, d, (b, _), n in axes
                    )
                    if None not in index:
                        total += w["weight"][(o, c, *offset)] * x[(batch, first + c, *index)]
            y[(batch, o, *pos)] = total
    return y


def naive_head_conv(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Each head's [C, T, H, W] convolved by the one weight, head by head."""
    x = xs[0]
    return np.stack([naive_conv(op, [x[:, h]], w) for h in range(x.shape[1])], axis=1)


def naive_relative_distance(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """MViTv2 (Li et al. 2022, eq. 4 as torchvision scales it): query i and key j of grids q and k
    sit at i * max(k/q, 1) and j * max(q/k, 1); their distance, shifted by the farthest key
    (k - 1) * max(q/k, 1) so that it starts at 0."""
    q_step, k_step = max(op.k / op.q, 1.0), max(op.q / op.k, 1.0)
    y = np.zeros((1, op.q, op.k), dtype=np.int64)
    for i in range(op.q):
        for j in range(op.k):
            y[0, i, j] = int(i * q_step - j * k_step + (op.k - 1) * k_step)
    return y


def naive_conv_transpose(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Every input element scatters value * weight[c, o, t] to i*stride + t*dilation of a canvas of
    (n-1)*stride + dilation*(k-1) + 1 + output_padding; padding then crops before and after."""
    x = xs[0]
    dims = x.ndim - 2
    kernel = w["weight"].shape[2:]
    stride, dilation = per_axis(op.stride, dims), per_axis(op.dilation, dims)
    extra = per_axis(op.output_padding, dims)
    full = [
        (n - 1) * s + d * (k - 1) + 1 + e
        for n, s, d, k, e in zip(x.shape[2:], stride, dilation, kernel, extra)
    ]
    per_group_in, per_group_out = x.shape[1] // op.groups, op.out // op.groups
    canvas = np.zeros((x.shape[0], op.out, *full))
    for batch, c in product(range(x.shape[0]), range(x.shape[1])):
        group = c // per_group_in
        for pos in product(*map(range, x.shape[2:])):
            for o in range(per_group_out):
                for offset in product(*map(range, kernel)):
                    axes = zip(pos, stride, offset, dilation)
                    target = tuple(p * s + t * d for p, s, t, d in axes)
                    canvas[(batch, group * per_group_out + o, *target)] += (
                        x[(batch, c, *pos)] * w["weight"][(c, o, *offset)]
                    )
    pads = sides(op.padding, x.shape[2:], [1] * dims, stride)
    crop = tuple(slice(b, f - a) for (b, a), f in zip(pads, full))
    y = canvas[(slice(None), slice(None), *crop)].copy()
    if op.bias:
        for o in range(op.out):
            y[:, o] += w["bias"][o]
    return y


def pool_output_size(
    n: int, before: int, after: int, span: int, stride: int, ceil_mode: bool
) -> int:
    """floor (or ceil) of (n + before + after - span) / stride, plus 1; in ceil mode a last window
    starting beyond the input and its leading padding is dropped (torch.nn.MaxPool2d docs)."""
    reach = n + before + after - span
    if not ceil_mode:
        return reach // stride + 1
    out = -(-reach // stride) + 1
    return out - 1 if (out - 1) * stride >= n + before else out


def naive_pool(op: Op, x: Array, reduce: Callable[[list[float], int], float]) -> Array:
    """Slides the window; `reduce(values inside the input, elements inside the padded input)`."""
    dims = x.ndim - 2
    kernel = per_axis(op.kernel, dims)
    stride = per_axis(op.kernel if op.stride is None else op.stride, dims)
    dilation = per_axis(getattr(op, "dilation", 1), dims)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    pads = sides(op.padding, x.shape[2:], spans, stride)
    out_sizes = [
        pool_output_size(n, b, a, span, s, op.ceil_mode)
        for n, (b, a), span, s in zip(x.shape[2:], pads, spans, stride)
    ]
    y = np.zeros((*x.shape[:2], *out_sizes))
    for batch, c in product(range(x.shape[0]), range(x.shape[1])):
        for pos in product(*map(range, out_sizes)):
            taps, padded_count = [], 1
            for p, s, k, d, (b, a), n in zip(pos, stride, kernel, dilation, pads, x.shape[2:]):
                start = p * s - b
                taps.append([start + j * d for j in range(k) if 0 <= start + j * d < n])
                padded_count *= min(start + k, n + a) - start  # a ceil-mode overhang is not counted
            values = [float(x[(batch, c, *index)]) for index in product(*taps)]
            y[(batch, c, *pos)] = reduce(values, padded_count)
    return y


def naive_max_pool(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    return naive_pool(op, xs[0], lambda values, _: max(values))


def naive_avg_pool(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Divides by the window's elements inside the padded input (count_include_pad) or the input."""

    def reduce(values: list[float], padded: int) -> float:
        if op.divisor_override is not None:
            return math.fsum(values) / op.divisor_override
        return math.fsum(values) / (padded if op.count_include_pad else len(values))

    return naive_pool(op, xs[0], reduce)


def naive_lp_pool(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """(sum x^p)^(1/p); PyTorch computes it as avg_pool(x^p) * kernel elements, so a ceil-mode
    window that overhangs the input is scaled by kernel elements / elements inside."""
    elements = math.prod(per_axis(op.kernel, xs[0].ndim - 2))

    def reduce(values: list[float], inside: int) -> float:
        powers = math.fsum(v**op.norm_type for v in values)
        return (powers * elements / inside) ** (1 / op.norm_type)

    return naive_pool(op, xs[0], reduce)


def naive_adaptive(op: Op, x: Array, reduce: Callable[[list[float]], float]) -> Array:
    """Output i of an axis pools inputs [floor(i*n/o), ceil((i+1)*n/o)), as PyTorch does."""
    dims = x.ndim - 2
    wanted = per_axis(op.output, dims)
    out_sizes = [n if o is None else o for n, o in zip(x.shape[2:], wanted)]
    y = np.zeros((*x.shape[:2], *out_sizes))
    for batch, c in product(range(x.shape[0]), range(x.shape[1])):
        for pos in product(*map(range, out_sizes)):
            axes = zip(pos, x.shape[2:], out_sizes)
            ranges = [range(i * n // o, ((i + 1) * n + o - 1) // o) for i, n, o in axes]
            values = [float(x[(batch, c, *index)]) for index in product(*ranges)]
            y[(batch, c, *pos)] = reduce(values)
    return y


def naive_adaptive_avg_pool(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    return naive_adaptive(op, xs[0], lambda values: math.fsum(values) / len(values))


def naive_adaptive_max_pool(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    return naive_adaptive(op, xs[0], max)


def naive_global(op: Op, x: Array, reduce: Callable[[list[float]], float]) -> Array:
    y = np.zeros(x.shape[:2] + ((1,) * (x.ndim - 2) if op.keepdims else ()))
    for batch, c in product(range(x.shape[0]), range(x.shape[1])):
        values = [float(x[(batch, c, *index)]) for index in product(*map(range, x.shape[2:]))]
        y[batch, c] = reduce(values)
    return y


def naive_global_avg_pool(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    return naive_global(op, xs[0], lambda values: math.fsum(values) / len(values))


def naive_global_max_pool(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    return naive_global(op, xs[0], max)


def mean_var(values: list[float]) -> tuple[float, float]:
    """Mean and biased variance (what normalisation layers divide by)."""
    mean = math.fsum(values) / len(values)
    return mean, math.fsum((v - mean) ** 2 for v in values) / len(values)


def naive_batchnorm(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Per channel (x - mean) / sqrt(var + eps) * weight + bias; mean and var are the running
    statistics, or the batch's (over batch and spatial axes) without them."""
    x = xs[0]
    y = np.zeros_like(x)
    for c in range(x.shape[1]):
        cells = [(b, c, *i) for b in range(x.shape[0]) for i in product(*map(range, x.shape[2:]))]
        if op.track_running_stats:
            mean, var = float(w["running_mean"][c]), float(w["running_var"][c])
        else:
            mean, var = mean_var([float(x[i]) for i in cells])
        scale, shift = (float(w["weight"][c]), float(w["bias"][c])) if op.affine else (1.0, 0.0)
        for i in cells:
            y[i] = (x[i] - mean) / math.sqrt(var + op.eps) * scale + shift
    return y


def naive_layernorm(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Each example's trailing normalized_shape axes (default: the last) normalised together."""
    x = xs[0]
    count = len(op.normalized_shape) if isinstance(op.normalized_shape, list) else 1
    lead, tail = x.shape[: x.ndim - count], x.shape[x.ndim - count :]
    y = np.zeros_like(x)
    for row in product(*map(range, lead)):
        mean, var = mean_var([float(x[row + i]) for i in product(*map(range, tail))])
        for i in product(*map(range, tail)):
            value = (x[row + i] - mean) / math.sqrt(var + op.eps)
            if op.elementwise_affine:
                value = value * w["weight"][i] + (w["bias"][i] if op.bias else 0.0)
            y[row + i] = value
    return y


def naive_rmsnorm(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """x / sqrt(mean of x^2 over the trailing axes + eps) * weight; eps None is float32's
    machine epsilon (torch.nn.RMSNorm's default; archcalc's float64 inputs take float64's)."""
    x = xs[0]
    count = len(op.normalized_shape) if isinstance(op.normalized_shape, list) else 1
    lead, tail = x.shape[: x.ndim - count], x.shape[x.ndim - count :]
    eps = float(np.finfo(x.dtype).eps) if op.eps is None else op.eps
    y = np.zeros_like(x)
    for row in product(*map(range, lead)):
        cells = [row + i for i in product(*map(range, tail))]
        scale = 1 / math.sqrt(math.fsum(float(x[c]) ** 2 for c in cells) / len(cells) + eps)
        for i in product(*map(range, tail)):
            y[row + i] = x[row + i] * scale * (w["weight"][i] if op.elementwise_affine else 1.0)
    return y


def naive_groupnorm(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Channels split into `groups` runs; each run of each example normalised together."""
    x = xs[0]
    per_group = x.shape[1] // op.groups
    y = np.zeros_like(x)
    for batch, group in product(range(x.shape[0]), range(op.groups)):
        channels = range(group * per_group, (group + 1) * per_group)
        cells = [(batch, c, *i) for c in channels for i in product(*map(range, x.shape[2:]))]
        mean, var = mean_var([float(x[i]) for i in cells])
        for i in cells:
            scale, shift = (w["weight"][i[1]], w["bias"][i[1]]) if op.affine else (1.0, 0.0)
            y[i] = (x[i] - mean) / math.sqrt(var + op.eps) * scale + shift
    return y


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


# each activation from its formula in the PyTorch docs, one Python float at a time
FORMULAS: dict[str, Callable[[Any, float], float]] = {
    "relu": lambda op, v: max(v, 0.0),
    "relu6": lambda op, v: min(max(v, 0.0), 6.0),
    "leaky_relu": lambda op, v: v if v > 0 else op.negative_slope * v,
    "elu": lambda op, v: v if v > 0 else op.alpha * (math.exp(v) - 1),
    # linear once beta*x exceeds the threshold (strictly), as torch.nn.Softplus
    "softplus": lambda op, v: (
        v if op.beta * v > op.threshold else math.log1p(math.exp(op.beta * v)) / op.beta
    ),
    "sigmoid": lambda op, v: _sigmoid(v),
    "tanh": lambda op, v: math.tanh(v),
    "silu": lambda op, v: v * _sigmoid(v),
    "mish": lambda op, v: v * math.tanh(math.log1p(math.exp(v))),
    "gelu": lambda op, v: (
        0.5 * v * (1 + math.erf(v / math.sqrt(2)))
        if op.approximate == "none"
        else 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    ),
    "hardswish": lambda op, v: v * min(max(v + 3, 0.0), 6.0) / 6,
    "hardsigmoid": lambda op, v: min(max(v + 3, 0.0), 6.0) / 6,
    "scale": lambda op, v: v * op.factor,
    "exp": lambda op, v: math.exp(v),
    "clamp": lambda op, v: min(max(v, -math.inf if op.min is None else op.min), math.inf if op.max is None else op.max),
}


def naive_elementwise(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    x = xs[0]
    y = np.zeros_like(x)
    for i in product(*map(range, x.shape)):
        y[i] = FORMULAS[op.kind](op, float(x[i]))
    return y


def naive_softmax(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """exp(x_i) / sum_j exp(x_j) along `dim` (the batch is dim 0)."""
    x = xs[0]
    axis = op.dim % x.ndim
    y = np.zeros_like(x)
    rest = [range(n) if a != axis else range(1) for a, n in enumerate(x.shape)]
    for start in product(*rest):
        line = [start[:axis] + (j,) + start[axis + 1 :] for j in range(x.shape[axis])]
        exps = [math.exp(float(x[i])) for i in line]
        for i, e in zip(line, exps):
            y[i] = e / math.fsum(exps)
    return y


def naive_acon_c(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """ACON-C (Ma et al. 2021, eq. 4): (p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x, per channel."""
    x = xs[0]
    y = np.zeros_like(x)
    for i in product(*map(range, x.shape)):
        c = (i[1],) + (0,) * (x.ndim - 2)
        p1, p2, beta, v = float(w["p1"][c]), float(w["p2"][c]), float(w["beta"][c]), float(x[i])
        y[i] = (p1 - p2) * v * _sigmoid(beta * (p1 - p2) * v) + p2 * v
    return y


def naive_meta_acon(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Per example: m_c = mean of channel c; h_j = sum_c fc1[j, c] m_c + b1_j (then batch norm
    with running statistics, official); z_c = sum_j fc2[c, j] h_j + b2_c (batch norm);
    beta_c = sigmoid(z_c); y = ACON-C of x with p1_c, p2_c and beta_c (Ma et al. 2021, eq. 4)."""
    x = xs[0]
    normed = op.implementation == "official"

    def norm(v: float, bn: str, j: int) -> float:
        if not normed:
            return v
        mean, var = w[f"{bn}.running_mean"][j], w[f"{bn}.running_var"][j]
        return (v - mean) / math.sqrt(var + 1e-5) * w[f"{bn}.weight"][j] + w[f"{bn}.bias"][j]

    channels, hidden = x.shape[1], w["fc1.weight"].shape[0]
    y = np.zeros_like(x)
    for n in range(x.shape[0]):
        m = [math.fsum(float(v) for v in x[n, c].flat) / x[n, c].size for c in range(channels)]
        h = [norm(math.fsum(w["fc1.weight"][j, c, 0, 0] * m[c] for c in range(channels)) + w["fc1.bias"][j], "bn1", j)
             for j in range(hidden)]
        for c in range(channels):
            z = norm(math.fsum(w["fc2.weight"][c, j, 0, 0] * h[j] for j in range(hidden)) + w["fc2.bias"][c], "bn2", c)
            p1, p2, beta = float(w["p1"][0, c, 0, 0]), float(w["p2"][0, c, 0, 0]), _sigmoid(z)
            for i in product(*map(range, x.shape[2:])):
                v = float(x[(n, c, *i)])
                y[(n, c, *i)] = (p1 - p2) * v * _sigmoid(beta * (p1 - p2) * v) + p2 * v
    return y


def naive_add(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Per axis the sizes agree or one is 1, which is repeated (the batch too: a shared tensor)."""
    shape = tuple(max(sizes) for sizes in zip(*(x.shape for x in xs)))
    y = np.zeros(shape)
    for i in product(*map(range, shape)):
        y[i] = math.fsum(float(x[tuple(0 if n == 1 else j for n, j in zip(x.shape, i))]) for x in xs)
    return y


def naive_mul(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Per-example shapes of one rank (mul requires it), a size-1 axis repeated; batch kept."""
    aligned = [x.shape[1:] for x in xs]
    out = tuple(max(sizes) for sizes in zip(*aligned))
    y = np.zeros((xs[0].shape[0], *out))
    for batch in range(y.shape[0]):
        for i in product(*map(range, out)):
            value = 1.0
            for x, shape in zip(xs, aligned):
                index = tuple(0 if n == 1 else j for n, j in zip(shape, i))
                value *= float(x[(batch, *index)])
            y[(batch, *i)] = value
    return y


def naive_concat(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    axis = op.dim % xs[0].ndim
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    y = np.zeros(shape)
    for i in product(*map(range, shape)):
        j = i[axis]
        for x in xs:  # walk along the joined axis to the input that holds position j
            if j < x.shape[axis]:
                y[i] = x[i[:axis] + (j,) + i[axis + 1 :]]
                break
            j -= x.shape[axis]
    return y


def naive_channel_shuffle(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Channel c = g * (C / groups) + i (group g, position i in it) moves to i * groups + g."""
    x = xs[0]
    per_group = x.shape[1] // op.groups
    y = np.zeros_like(x)
    for batch, g, i in product(range(x.shape[0]), range(op.groups), range(per_group)):
        for pos in product(*map(range, x.shape[2:])):
            y[(batch, i * op.groups + g, *pos)] = x[(batch, g * per_group + i, *pos)]
    return y


def naive_slice(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[..., j, ...] = x[..., start + j, ...] along `dim` (the batch is dim 0), j < end - start."""
    x = xs[0]
    axis = op.dim % x.ndim
    shape = list(x.shape)
    shape[axis] = op.end - op.start
    y = np.zeros(shape)
    for i in product(*map(range, shape)):
        y[i] = x[i[:axis] + (op.start + i[axis],) + i[axis + 1 :]]
    return y


def naive_linear(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[..., o] = sum_f x[..., f] * weight[o, f] + bias[o] (weight[f, o] when transposed: HF's Conv1D)."""
    x = xs[0]
    y = np.zeros((*x.shape[:-1], op.out))
    weight = w["weight"].T if op.transposed else w["weight"]
    for row in product(*map(range, x.shape[:-1])):
        for o in range(op.out):
            features = range(x.shape[-1])
            total = math.fsum(float(x[row + (f,)]) * float(weight[o, f]) for f in features)
            y[row + (o,)] = total + (float(w["bias"][o]) if op.bias else 0.0)
    return y


def naive_matmul(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[n, *i, m, p] = sum_k a[n, *i', m, k] * b[n, *i'', k, p], where a size-1 leading axis
    reads its position 0 (broadcast)."""
    a, b = xs
    lead = tuple(max(x, y) for x, y in zip(a.shape[:-2], b.shape[:-2]))
    y = np.zeros((*lead, a.shape[-2], b.shape[-1]))
    for i in product(*map(range, lead)):
        ia = tuple(0 if n == 1 else j for n, j in zip(a.shape[:-2], i))
        ib = tuple(0 if n == 1 else j for n, j in zip(b.shape[:-2], i))
        for m, p in product(range(a.shape[-2]), range(b.shape[-1])):
            y[(*i, m, p)] = math.fsum(
                float(a[(*ia, m, k)]) * float(b[(*ib, k, p)]) for k in range(a.shape[-1])
            )
    return y


def naive_roll(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[i] = x[i with each rolled axis' index moved back by its shift, wrapped], the shifts
    applied one (shift, dim) pair at a time, as torch.roll."""
    x = xs[0]
    shifts = op.shifts if isinstance(op.shifts, list) else [op.shifts]
    dims = op.dims if isinstance(op.dims, list) else [op.dims]
    for shift, dim in zip(shifts, dims):
        axis = dim % x.ndim
        y = np.zeros_like(x)
        for i in product(*map(range, x.shape)):
            j = list(i)
            j[axis] = (i[axis] - shift) % x.shape[axis]
            y[i] = x[tuple(j)]
        x = y
    return x


def naive_reduction(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Per output element, math.fsum of the input elements that agree with it on every axis not
    in `dim` (divided by their count for a mean); keepdim leaves the reduced axes as size 1."""
    x = xs[0]
    dims = op.dim if isinstance(op.dim, list) else [op.dim]
    axes = sorted(d % x.ndim for d in dims)
    kept = [a for a in range(x.ndim) if a not in axes]
    y = np.zeros([x.shape[a] for a in kept])
    for i in product(*(range(x.shape[a]) for a in kept)):
        cells = [c for c in product(*map(range, x.shape)) if all(c[a] == j for a, j in zip(kept, i))]
        total = math.fsum(float(x[c]) for c in cells)
        y[i] = total / len(cells) if op.kind == "mean" else total
    return y.reshape([1 if a in axes else n for a, n in enumerate(x.shape)]) if op.keepdim else y


def naive_scores(q: Array, k: Array, v: Array, heads: int, kv_heads: int, causal: bool, scale: float, bias: Array | None) -> Array:
    """Attention one example, head and query at a time: softmax over the keys j (j <= i when
    causal) of scale * q.k + bias, then the weighted sum of the values; query head h reads
    key/value head h // (heads / kv_heads)."""
    n, s, width = q.shape
    d = width // heads
    out = np.zeros(q.shape)
    for b, h, i in product(range(n), range(heads), range(s)):
        g = h // (heads // kv_heads)
        keys = range(min(i + 1, k.shape[1])) if causal else range(k.shape[1])
        scores = [
            scale * math.fsum(float(q[b, i, h * d + c]) * float(k[b, j, g * d + c]) for c in range(d))
            + (float(bias[b, h, i, j]) if bias is not None else 0.0)
            for j in keys
        ]
        weights = [math.exp(x - max(scores)) for x in scores]
        for c in range(d):
            out[b, i, h * d + c] = math.fsum(wt * float(v[b, j, g * d + c]) for wt, j in zip(weights, keys)) / math.fsum(weights)
    return out


def naive_attention(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Scaled dot-product attention; a bias [N, *b] broadcast to [N, heads, S, S_kv]."""
    q, k, v = xs[:3]
    bias = None
    if len(xs) == 4:
        bias = np.broadcast_to(
            xs[3].reshape(xs[3].shape[0], *(1,) * (4 - xs[3].ndim), *xs[3].shape[1:]),
            (q.shape[0], op.heads, q.shape[1], k.shape[1]),
        )
    scale = op.scale if op.scale is not None else 1 / math.sqrt(q.shape[-1] // op.heads)
    return naive_scores(q, k, v, op.heads, op.kv_heads or op.heads, op.causal, scale, bias)


def naive_multihead_attention(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """x in_proj_weight^T + in_proj_bias, split into q, k, v; attention; then out_proj."""
    x = xs[0]
    e = x.shape[-1]

    def affine(y: Array, weight: Array, bias: Array | None) -> Array:
        out = np.zeros((*y.shape[:-1], weight.shape[0]))
        for row in product(*map(range, y.shape[:-1])):
            for o in range(weight.shape[0]):
                total = math.fsum(float(y[row + (f,)]) * float(weight[o, f]) for f in range(y.shape[-1]))
                out[row + (o,)] = total + (float(bias[o]) if bias is not None else 0.0)
        return out

    packed = affine(x, w["in_proj_weight"], w.get("in_proj_bias"))
    q, k, v = packed[..., :e], packed[..., e : 2 * e], packed[..., 2 * e :]
    merged = naive_scores(q, k, v, op.heads, op.heads, False, 1 / math.sqrt(e // op.heads), None)
    return affine(merged, w["out_proj.weight"], w.get("out_proj.bias"))


def naive_flatten(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Axes start..end joined into one; elements keep their row-major order."""
    x = xs[0]
    start, end = op.start_dim % x.ndim, op.end_dim % x.ndim
    shape = (*x.shape[:start], math.prod(x.shape[start : end + 1]), *x.shape[end + 1 :])
    flat = [x[i] for i in product(*map(range, x.shape))]
    y = np.zeros(shape)
    for k, i in enumerate(product(*map(range, shape))):
        y[i] = flat[k]
    return y


def nearest_source(mode: str, i: int, n: int, o: int, scale: float | None, dims: int) -> int:
    """torch's nearest index (ATen/native/UpSample.h) with s = 1/scale_factor or n/o as a float32:
    floor(i * s) (nearest; the 2-D kernel copies at o == n and halves at o == 2n) or
    floor((i + 0.5) * s) rounded to float32 first (nearest-exact); at most n - 1."""
    s = np.float32(1.0 / scale) if scale is not None else np.float32(n) / np.float32(o)
    if mode == "nearest":
        if dims == 2 and o in (n, 2 * n):
            return i * n // o
        return min(math.floor(np.float32(i) * s), n - 1)
    return min(math.floor(np.float32((i + 0.5) * float(s))), n - 1)


def cubic_weights(t: float) -> list[float]:
    """Keys' cubic convolution with A = -0.75 at distances 1+t, t, 1-t, 2-t (torch's bicubic)."""
    a = -0.75
    near = lambda d: ((a + 2) * d - (a + 3)) * d * d + 1  # |d| <= 1
    far = lambda d: ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # 1 < |d| < 2
    return [far(1 + t), near(t), near(1 - t), far(2 - t)]


def interpolation_taps(
    op: Op, i: int, n: int, o: int, scale: float | None, dims: int
) -> list[tuple[int, float]]:
    """(input index, weight) pairs that output i of an axis of n -> o elements reads.

    Source coordinate: i * (n-1)/(o-1) with align_corners, else (i + 0.5) * r - 0.5 with
    r = 1/scale_factor (given, not recomputed) or n/o; linear modes clamp it at 0 and copy when
    o == n; bicubic reads floor-1 .. floor+2, each index clamped into the input.
    """
    if op.mode in ("nearest", "nearest-exact"):
        return [(nearest_source(op.mode, i, n, o, scale, dims), 1.0)]
    if op.mode != "bicubic" and o == n:
        return [(i, 1.0)]
    if op.align_corners:
        source = i * ((n - 1) / (o - 1) if o > 1 else 0.0)
    else:
        ratio = 1.0 / scale if scale is not None else n / o
        source = ratio * (i + 0.5) - 0.5
    if op.mode == "bicubic":
        first = math.floor(source)
        weights = cubic_weights(source - first)
        return [(min(max(first - 1 + k, 0), n - 1), weights[k]) for k in range(4)]
    source = max(source, 0.0)
    first = min(math.floor(source), n - 1)
    upper = min(max(source - first, 0.0), 1.0)
    return [(first, 1 - upper), (first + 1 if first < n - 1 else first, upper)]


def naive_interpolate(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Output sizes floor(n * scale_factor) or `size`; area pools adaptively to them; the other
    modes sum x[taps] * (product of the per-axis weights) over every combination of taps."""
    x = xs[0]
    dims = x.ndim - 2
    sizes = x.shape[2:]
    if op.size is not None:
        out = per_axis(op.size, dims)
    else:
        factors = per_axis(op.scale_factor, dims) if isinstance(op.scale_factor, list) else (op.scale_factor,) * dims
        out = tuple(math.floor(n * f) for n, f in zip(sizes, factors))
    if op.mode == "area":
        return naive_adaptive(SimpleNamespace(output=list(out)), x, lambda v: math.fsum(v) / len(v))
    given = op.scale_factor is not None and not op.recompute_scale_factor
    scales = per_axis(op.scale_factor, dims) if given and isinstance(op.scale_factor, list) else (
        (op.scale_factor if given else None,) * dims
    )
    y = np.zeros((*x.shape[:2], *out))
    for pos in product(*map(range, out)):
        axes = [interpolation_taps(op, i, n, o, s, dims) for i, n, o, s in zip(pos, sizes, out, scales)]
        for batch, c in product(range(x.shape[0]), range(x.shape[1])):
            y[(batch, c, *pos)] = math.fsum(
                float(x[(batch, c, *(t[0] for t in taps))]) * math.prod(t[1] for t in taps)
                for taps in product(*axes)
            )
    return y


def naive_pixel_shuffle(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[c, h*r + i, w*r + j] = x[c*r*r + i*r + j, h, w] (torch.nn.PixelShuffle's definition);
    pixel_unshuffle is its inverse."""
    x = xs[0]
    shuffle = op.kind == "pixel_shuffle"
    r = op.upscale_factor if shuffle else op.downscale_factor
    n, c, h, wide = x.shape
    small = (n, c, h, wide) if shuffle else (n, c * r * r, h // r, wide // r)
    y = np.zeros((n, small[1] // (r * r), small[2] * r, small[3] * r) if shuffle else small)
    for b, k, row, col in product(*map(range, small)):
        i, j = divmod(k % (r * r), r)
        big = (b, k // (r * r), row * r + i, col * r + j)
        if shuffle:
            y[big] = x[b, k, row, col]
        else:
            y[b, k, row, col] = x[big]
    return y


def naive_pad(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Output position i of a padded axis reads input i - before (`source`'s mapping: mirrored,
    clamped, or a constant); circular crops first, then wraps the kept elements."""
    x = xs[0]
    lead = x.ndim - len(op.padding)
    sizes = list(x.shape)
    for axis, (before, after) in enumerate(op.padding, start=lead):
        sizes[axis] += before + after
    mode = {"constant": "zeros"}.get(op.mode, op.mode)
    y = np.zeros(sizes)
    for out in product(*map(range, sizes)):
        index: list[int | None] = list(out)
        for axis, (before, after) in enumerate(op.padding, start=lead):
            n = x.shape[axis]
            if op.mode == "circular":  # wrap within the kept run [first, first + kept)
                first, kept = max(-before, 0), n + min(before, 0) + min(after, 0)
                index[axis] = first + (out[axis] - max(before, 0)) % kept
            else:
                index[axis] = source(out[axis] - before, n, mode)
        y[out] = (op.value or 0.0) if None in index else x[tuple(index)]
    return y


def naive_view(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Reshape, squeeze and unsqueeze keep the row-major order of the elements (batch first);
    permute and transpose move element (b, i_1, ..., i_k) to the permuted position."""
    x = xs[0]
    if op.kind in ("permute", "transpose"):
        order = list(range(x.ndim))
        if op.kind == "permute":
            order = [d % x.ndim for d in op.dims]
        else:
            a, b = op.dim0 % x.ndim, op.dim1 % x.ndim
            order[a], order[b] = order[b], order[a]
        y = np.zeros([x.shape[a] for a in order])
        for i in product(*map(range, x.shape)):
            y[tuple(i[a] for a in order)] = x[i]
        return y
    shape = (x.shape[0], *op.output_shape([x.shape[1:]]))
    flat = [x[i] for b in range(x.shape[0]) for i in product([b], *map(range, x.shape[1:]))]
    y = np.zeros(shape)
    for k, i in enumerate(product(*map(range, shape))):
        y[i] = flat[k]
    return y


def naive_pass(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Inference: dropout and identity hand the input on unchanged (kv_cache a copy of it)."""
    return xs[0].copy()


def naive_embedding(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[..., :] = weight[id] for each id: a row copied per token."""
    ids = xs[0]
    y = np.zeros((*ids.shape, op.dim))
    for index in product(*map(range, ids.shape)):
        y[index] = [float(v) for v in w["weight"][int(ids[index])]]
    return y


def naive_parameter(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """The array itself, [1, *shape]: one copy the batch shares (a batch axis of 1 put in front
    when PyTorch's shape has none)."""
    return np.array(w[""] if op.batch_axis else w[""][None], copy=True)


def naive_index(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """y[n, *i, ...] = table[n, ids[n, *i], ...]: a row per id (a shared table's batch axis is 1)."""
    table, ids = xs
    batch = max(len(table), len(ids))
    y = np.zeros((batch, *ids.shape[1:], *table.shape[2:]))
    for n in range(batch):
        for i in product(*map(range, ids.shape[1:])):
            y[(n, *i)] = table[min(n, len(table) - 1)][int(ids[(min(n, len(ids) - 1), *i)])]
    return y


def naive_normalize(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Each vector along `dim` divided by its Euclidean length (at least eps)."""
    x = xs[0]
    axis = op.dim % x.ndim
    y = np.zeros_like(x)
    rest = [range(n) if a != axis else [slice(None)] for a, n in enumerate(x.shape)]
    for i in product(*rest):
        length = math.sqrt(math.fsum(float(v) ** 2 for v in x[i]))
        y[i] = x[i] / max(length, op.eps)
    return y


def naive_shift_mask(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Liu et al. 2021, fig. 4: after the cyclic shift, a position belongs to region 0 (never
    wrapped), 1 (the last window's unshifted part) or 2 (wrapped in) along each axis; two
    positions of one window see each other (0) when their regions agree on every axis, else -100."""
    dims = len(op.size)
    grids = [n // w for n, w in zip(op.size, op.window)]
    windows = list(product(*map(range, grids)))
    cells = list(product(*map(range, op.window)))
    y = np.zeros((1, len(windows), 1, len(cells), len(cells)))

    def region(window: tuple[int, ...], cell: tuple[int, ...]) -> tuple[int, ...]:
        where = [g * w + c for g, w, c in zip(window, op.window, cell)]
        return tuple(0 if p < n - w else 1 if p < n - s else 2
                     for p, n, w, s in zip(where, op.size, op.window, op.shift))

    for k, window in enumerate(windows):
        for a, cell_a in enumerate(cells):
            for b, cell_b in enumerate(cells):
                y[0, k, 0, a, b] = 0.0 if region(window, cell_a) == region(window, cell_b) else -100.0
    assert dims == len(op.window)
    return y


def naive_sequence_ids(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """[1, S]: 0, 1, ..., S-1 (positions) or S zeros (token types), whatever the ids are."""
    length = xs[0].shape[1]
    return np.array([[i if op.values == "positions" else 0 for i in range(length)]], dtype=np.int64)


def naive_rotary_embedding(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """[1, 2, S, D]: cos and sin of p * theta^(-2i/D) at feature i and i + D/2, per position p."""
    positions = xs[0][0]
    half = op.head_dim // 2
    y = np.zeros((1, 2, len(positions), op.head_dim))
    for s, p in enumerate(positions):
        for i in range(op.head_dim):
            angle = float(p) * op.theta ** (-2 * (i % half) / op.head_dim)
            y[0, 0, s, i], y[0, 1, s, i] = math.cos(angle), math.sin(angle)
    return y


def naive_rotary(op: Op, xs: list[Array], w: dict[str, Array]) -> Array:
    """Per head, feature i < D/2: x_i cos_i - x_{i+D/2} sin_i; i >= D/2: x_i cos_i + x_{i-D/2} sin_i."""
    x, table = xs
    head_dim = table.shape[-1]
    half = head_dim // 2
    y = np.zeros(x.shape)
    for index in product(*map(range, x.shape)):
        n, s, f = index
        i = f % head_dim
        partner = x[n, s, f + half] if i < half else x[n, s, f - half]
        sign = -1.0 if i < half else 1.0
        y[index] = float(x[index]) * float(table[0, 0, s, i]) + sign * float(partner) * float(table[0, 1, s, i])
    return y


def family(kind: str) -> str:
    """conv2d -> conv, max_pool3d -> max_pool, batchnorm1d -> batchnorm; an alias as its op."""
    return re.sub(r"[123]d$", "", REGISTRY[kind].kind)


NAIVE: dict[str, Callable[[Op, list[Array], dict[str, Array]], Array]] = {
    "embedding": naive_embedding,
    "parameter": naive_parameter,
    "sequence_ids": naive_sequence_ids,
    "rotary_embedding": naive_rotary_embedding,
    "rotary": naive_rotary,
    "kv_cache": naive_pass,
    "buffer": naive_parameter,
    "index": naive_index,
    "normalize": naive_normalize,
    "shift_mask": naive_shift_mask,
    "relative_distance": naive_relative_distance,
    "head_conv": naive_head_conv,
    "contiguous": naive_pass,
    "conv": naive_conv,
    "conv_transpose": naive_conv_transpose,
    "max_pool": naive_max_pool,
    "avg_pool": naive_avg_pool,
    "lp_pool": naive_lp_pool,
    "adaptive_avg_pool": naive_adaptive_avg_pool,
    "adaptive_max_pool": naive_adaptive_max_pool,
    "global_avg_pool": naive_global_avg_pool,
    "global_max_pool": naive_global_max_pool,
    "batchnorm": naive_batchnorm,
    "layernorm": naive_layernorm,
    "rmsnorm": naive_rmsnorm,
    "groupnorm": naive_groupnorm,
    **{kind: naive_elementwise for kind in FORMULAS},
    "softmax": naive_softmax,
    "acon_c": naive_acon_c,
    "meta_acon": naive_meta_acon,
    "add": naive_add,
    "mul": naive_mul,
    "concat": naive_concat,
    "channel_shuffle": naive_channel_shuffle,
    "slice": naive_slice,
    "linear": naive_linear,
    "matmul": naive_matmul,
    "roll": naive_roll,
    "mean": naive_reduction,
    "sum": naive_reduction,
    "attention": naive_attention,
    "multihead_attention": naive_multihead_attention,
    "flatten": naive_flatten,
    "interpolate": naive_interpolate,
    "pixel_shuffle": naive_pixel_shuffle,
    "pixel_unshuffle": naive_pixel_shuffle,
    "pad": naive_pad,
    **{kind: naive_view for kind in ("reshape", "unsqueeze", "squeeze", "permute", "transpose")},
    "dropout": naive_pass,
    "stochastic_depth": naive_pass,
    "identity": naive_pass,
}


# --- the cases ----------------------------------------------------------------------------------


def every_mode(kind: str, *shapes: tuple[int, ...], **fields: Any) -> list[Any]:
    """The case once per padding mode."""
    return [case(kind, *shapes, **fields, padding_mode=mode) for mode in MODES]


# Every padding form of each rank, each with stride, dilation or groups (depthwise among them),
# crossed with every padding mode; sizes odd and even. Reflect pads stay below the size,
# circular pads at most the size, as PyTorch requires.
CONV = [
    *every_mode("conv1d", (2, 4, 9), out=6, kernel=3, stride=2, padding=2, groups=2),
    *every_mode("conv1d", (2, 3, 8), out=3, kernel=2, padding=[1]),
    *every_mode("conv1d", (1, 2, 7), out=4, kernel=3, dilation=2, padding=[[2, 0]]),
    # 'same' with an even kernel (the odd element after), depthwise
    *every_mode("conv1d", (2, 4, 6), out=4, kernel=4, padding="same", groups=4),
    *every_mode("conv1d", (1, 2, 7), out=2, kernel=3, dilation=2, padding="same"),
    # 'same' with a stride: TensorFlow's rule
    *every_mode("conv1d", (1, 2, 8), out=3, kernel=3, stride=2, padding="same"),
    *every_mode("conv1d", (2, 2, 7), out=3, kernel=2, stride=3, padding="valid", bias=False),
    *every_mode("conv2d", (2, 4, 7, 6), out=4, kernel=3, stride=2, padding=1, groups=2),
    *every_mode("conv2d", (1, 3, 6, 5), out=2, kernel=[3, 2], padding=[2, 0], dilation=[1, 2]),
    *every_mode(
        "conv2d", (2, 2, 6, 7),
        out=4, kernel=3, stride=2, padding=[[0, 2], [1, 1]], dilation=2, groups=2,
    ),
    # depthwise with a channel multiplier of 2
    *every_mode("conv2d", (1, 4, 5, 6), out=8, kernel=[2, 4], padding="same", groups=4),
    *every_mode("conv2d", (1, 2, 5, 5), out=3, kernel=3, padding="same", dilation=[1, 2]),
    *every_mode("conv2d", (1, 2, 5, 7), out=2, kernel=[2, 3], stride=[2, 3], padding="same"),
    *every_mode("conv2d", (1, 2, 6, 5), out=2, kernel=[1, 3], stride=[1, 2], padding="valid"),
    *every_mode("conv3d", (1, 2, 4, 5, 4), out=2, kernel=2, padding=1),
    *every_mode(
        "conv3d", (2, 2, 5, 4, 3),
        out=4, kernel=[3, 2, 2], stride=[2, 1, 1], padding=[[1, 0], [0, 1], [2, 1]], groups=2,
    ),
    *every_mode("conv3d", (1, 3, 4, 4, 5), out=3, kernel=[2, 3, 2], padding="same", groups=3),
    *every_mode("conv3d", (1, 2, 5, 4, 4), out=2, kernel=2, padding=[1, 0, 2], dilation=[2, 1, 1]),
    *every_mode("conv3d", (1, 1, 4, 5, 4), out=2, kernel=[1, 2, 3], padding="valid", bias=False),
]

CONV_TRANSPOSE = [
    case("conv_transpose1d", (2, 4, 5), out=6, kernel=3, stride=2, padding=1, output_padding=1,
         groups=2),
    case("conv_transpose1d", (1, 2, 4), out=3, kernel=2, stride=3, dilation=2, output_padding=2),
    case("conv_transpose1d", (2, 3, 6), out=2, kernel=4, padding=[[2, 1]]),
    case("conv_transpose1d", (1, 2, 5), out=2, kernel=1, bias=False),
    case("conv_transpose2d", (2, 4, 3, 4), out=4, kernel=3, stride=2, padding=1, output_padding=1,
         groups=2),
    case(
        "conv_transpose2d", (1, 2, 4, 3),
        out=3, kernel=[2, 3], stride=[1, 2], dilation=[2, 1], padding=[0, 1], output_padding=[1, 0],
    ),
    case("conv_transpose2d", (1, 3, 3, 3), out=6, kernel=2, stride=2, groups=3),  # depthwise x2
    case("conv_transpose2d", (2, 2, 3, 4), out=2, kernel=3, stride=2, padding=[[1, 0], [2, 1]]),
    case("conv_transpose3d", (1, 2, 3, 2, 3), out=2, kernel=2, stride=2, padding=[0, 1, 0],
         output_padding=1),
    case(
        "conv_transpose3d", (1, 4, 2, 3, 2),
        out=4, kernel=[3, 2, 2], stride=[1, 2, 2], dilation=[2, 1, 1], groups=2, padding=1,
        output_padding=[1, 1, 0],
    ),
]

POOL = [
    # n=8, k=3, s=2: ceil((8-3)/2)+1 = 4 windows, the last reads 6, 7 and one past the end
    case("max_pool1d", (2, 3, 8), kernel=3, stride=2, ceil_mode=True),
    # n=5, k=2, s=2, p=1: ceil(5/2)+1 = 4, but window 3 would start at 6-1 = 5, past the input: 3
    case("max_pool1d", (1, 2, 5), kernel=2, stride=2, padding=1, ceil_mode=True),
    case("max_pool1d", (2, 2, 6), kernel=2, stride=1, padding=1, dilation=2),
    case("max_pool1d", (1, 2, 8), kernel=3, stride=2, padding=1, dilation=2, ceil_mode=True),
    case("max_pool2d", (2, 2, 7, 6), kernel=3, stride=2, padding=1),
    case("max_pool2d", (1, 2, 6, 5), kernel=[3, 2], stride=[2, 1], padding=[1, 0], ceil_mode=True),
    case("max_pool2d", (1, 3, 5, 7), kernel=2, dilation=[1, 2], stride=2, padding=1,
         ceil_mode=True),
    case("max_pool2d", (1, 2, 5, 6), kernel=2, padding="same"),  # TensorFlow's 'same'
    case("max_pool3d", (1, 2, 3, 4, 5), kernel=2, ceil_mode=True),
    case("max_pool3d", (1, 2, 5, 6, 4), kernel=[3, 2, 2], stride=2, padding=[1, 1, 0],
         dilation=[1, 2, 1]),
    case("avg_pool1d", (2, 2, 8), kernel=3, stride=2, padding=1, ceil_mode=True),
    case("avg_pool1d", (2, 2, 8), kernel=3, stride=2, padding=1, ceil_mode=True,
         count_include_pad=False),
    case("avg_pool1d", (1, 2, 5), kernel=2, stride=2, padding=1, ceil_mode=True),  # one dropped
    case("avg_pool1d", (1, 2, 9), kernel=4, stride=3),
    case("avg_pool1d", (2, 2, 8), kernel=3, stride=2, padding=1, ceil_mode=True, divisor_override=2),
    case("avg_pool2d", (1, 2, 5, 6), kernel=[2, 3], padding=1, divisor_override=5),
    case("avg_pool3d", (1, 1, 3, 4, 5), kernel=2, stride=1, divisor_override=3),
    case("avg_pool2d", (2, 2, 7, 6), kernel=3, stride=2, padding=1),
    case("avg_pool2d", (2, 2, 7, 6), kernel=3, stride=2, padding=1, count_include_pad=False),
    case("avg_pool2d", (1, 2, 6, 8), kernel=[2, 3], stride=2, padding=[1, 0], ceil_mode=True),
    case(
        "avg_pool2d", (1, 2, 6, 8),
        kernel=[2, 3], stride=2, padding=[1, 0], ceil_mode=True, count_include_pad=False,
    ),
    case("avg_pool2d", (1, 1, 5, 7), kernel=3, padding="same", count_include_pad=False),
    case("avg_pool3d", (1, 2, 3, 5, 4), kernel=2, stride=[1, 2, 2], padding=1, ceil_mode=True),
    case(
        "avg_pool3d", (2, 1, 4, 5, 5),
        kernel=[3, 2, 2], stride=2, padding=[1, 0, 1], ceil_mode=True, count_include_pad=False,
    ),
    case("lp_pool1d", (2, 2, 7), kernel=3, norm_type=2),
    case("lp_pool1d", (1, 2, 8), kernel=3, stride=2, norm_type=3, ceil_mode=True),
    case("lp_pool2d", (2, 2, 4, 5), kernel=2, norm_type=1.5),
    case("lp_pool2d", (1, 2, 6, 5), kernel=[3, 2], stride=2, norm_type=2, ceil_mode=True),
    case("lp_pool3d", (1, 2, 4, 4, 5), kernel=2, norm_type=2),
    case("lp_pool3d", (1, 1, 3, 5, 5), kernel=2, stride=[1, 2, 2], norm_type=1, ceil_mode=True),
    case("adaptive_avg_pool1d", (2, 2, 7), output=3),  # windows [0,3) [2,5) [4,7) overlap
    case("adaptive_avg_pool1d", (1, 2, 8), output=4),  # divides: plain 2-windows
    case("adaptive_avg_pool1d", (1, 2, 5), output=7),  # more outputs than inputs
    case("adaptive_avg_pool2d", (2, 2, 7, 6), output=[3, None]),
    case("adaptive_avg_pool2d", (1, 2, 6, 6), output=2),
    case("adaptive_avg_pool2d", (1, 2, 5, 7), output=[2, 3]),
    case("adaptive_avg_pool2d", (2, 3, 5, 4), output=1),
    case("adaptive_avg_pool3d", (1, 2, 4, 5, 6), output=[2, 3, 4]),
    case("adaptive_avg_pool3d", (1, 2, 3, 4, 7), output=[1, None, 3]),
    case("adaptive_max_pool1d", (2, 2, 7), output=3),
    case("adaptive_max_pool1d", (1, 2, 4), output=6),
    case("adaptive_max_pool2d", (2, 2, 7, 6), output=[3, None]),
    case("adaptive_max_pool2d", (1, 2, 6, 5), output=[2, 4]),
    case("adaptive_max_pool3d", (1, 2, 4, 5, 3), output=[2, 3, 2]),
    case("adaptive_max_pool3d", (2, 2, 3, 2, 3), output=1),
    *(
        case(kind, shape, keepdims=keep)
        for kind in ("global_avg_pool", "global_max_pool")
        for keep in (False, True)
        for shape in ((2, 3, 7), (1, 2, 4, 5), (2, 2, 3, 2, 3))
    ),
]

NORM = [
    case("batchnorm1d", (3, 4)),
    case("batchnorm1d", (2, 3, 5), eps=0.1),
    case("batchnorm1d", (4, 3), track_running_stats=False),
    case("batchnorm1d", (2, 3, 5), track_running_stats=False, affine=False),
    case("batchnorm2d", (2, 3, 4, 5)),
    case("batchnorm2d", (1, 2, 3, 3), affine=False),
    case("batchnorm2d", (2, 3, 4, 5), track_running_stats=False),
    case("batchnorm3d", (1, 2, 3, 4, 3)),
    case("batchnorm3d", (2, 2, 2, 3, 3), track_running_stats=False, eps=1e-3),
    case("layernorm", (2, 7)),
    case("layernorm", (3, 7), normalized_shape=[7]),
    case("layernorm", (3, 2, 7), normalized_shape=7),  # an int, as nn.LayerNorm(7)
    case("layernorm", (2, 3, 4, 5)),
    case("layernorm", (2, 3, 4, 5), normalized_shape=[4, 5]),
    case("layernorm", (2, 3, 4, 5), normalized_shape=[3, 4, 5], eps=0.01),
    case("layernorm", (2, 5, 6), elementwise_affine=False),
    case("layernorm", (2, 5, 6), bias=False),
    case("rmsnorm", (2, 7)),
    case("rmsnorm", (3, 2, 7), normalized_shape=7, eps=1e-6, implementation="hf"),
    case("rmsnorm", (2, 3, 4, 5), normalized_shape=[4, 5]),
    case("rmsnorm", (2, 5, 6), elementwise_affine=False, eps=0.1),
    case("groupnorm", (2, 4, 3, 5), groups=2),
    case("groupnorm", (2, 3, 4), groups=1),
    case("groupnorm", (2, 3, 5, 2), groups=3, affine=False),
    case("groupnorm", (3, 6), groups=2, eps=0.1),
    case("groupnorm", (1, 6, 2, 3, 2), groups=3),
]

_ACTIVATION_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("relu", {}),
    ("relu6", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 10.0}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("silu", {}),
    ("mish", {}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
    ("hardswish", {}),
    ("hardsigmoid", {}),
    ("acon_c", {}),
]
ACTIVATION = [
    case(kind, shape, **fields)
    for kind, fields in _ACTIVATION_SETTINGS
    for shape in ((2, 3, 5), (3, 7), (1, 2, 3, 4))
] + [
    case("gelu", (2, 3, 5), approximate="tanh", implementation="hf"),  # GPT-2's gelu_new
    case("meta_acon", (2, 20, 3, 4)),  # hidden max(16, 20 // 16) = 16
    case("meta_acon", (2, 20, 3, 4), implementation="yolov5"),
    case("meta_acon", (1, 40, 2, 3), r=4),  # hidden max(4, 10) = 10
    case("softmax", (2, 3, 5)),
    case("scale", (2, 3, 5), factor=0.125),
    case("exp", (2, 3)),
    case("clamp", (2, 3, 5), max=0.5),
    case("clamp", (2, 3, 5), min=-0.5, max=1.0),
    case("softmax", (2, 3, 4, 5), dim=1),
    case("softmax", (2, 3, 4, 5), dim=2),
    case("softmax", (2, 3, 4, 5), dim=-2),
    case("softmax", (3, 7), dim=1),
]

MERGE = [
    case("matmul", (2, 3, 4), (2, 4, 5)),  # one matrix pair per example: bmm
    case("matmul", (2, 2, 3, 4), (2, 2, 4, 1)),  # heads: q @ k^T
    case("matmul", (2, 1, 3, 4), (2, 3, 4, 2)),  # a leading 1 broadcast
    case("matmul", (2, 3, 1, 2, 4), (2, 1, 2, 4, 3)),  # broadcast on both sides
    case("add", (2, 3, 4, 5), (2, 3, 4, 5)),
    case("add", (2, 7), (2, 7), (2, 7)),
    case("add", (2, 4, 2, 3, 3), (1, 1, 2, 3, 3)),  # Swin's shared position bias over the windows
    case("add", (2, 4, 2, 3, 3), (1, 4, 1, 3, 3)),  # and its shift mask over the heads
    case("normalize", (2, 3, 4), dim=-1),
    case("normalize", (2, 3, 4)),
    case("contiguous", (2, 3, 4)),
    case("mul", (2, 3, 4, 5), (2, 3, 1, 1)),  # [C,H,W] * [C,1,1]: squeeze-and-excitation
    case("mul", (2, 3, 1, 1), (2, 3, 4, 5)),
    case("mul", (2, 3, 4, 5), (2, 3, 1, 1), (2, 1, 4, 1)),
    case("mul", (2, 3, 5), (2, 3, 5)),
    case("concat", (2, 3, 4, 5), (2, 2, 4, 5)),
    case("concat", (2, 3, 4, 5), (2, 3, 1, 5), (2, 3, 2, 5), dim=2),
    case("concat", (2, 3, 5), (2, 3, 4), dim=-1),
    case("concat", (2, 7), (2, 4), dim=1),
]

CHANNELS = [
    # output channels read input channels 0 3 1 4 2 5 (ShuffleNet V2's 2 groups), 0 2 4 1 3 5
    case("channel_shuffle", (2, 6, 3, 4), groups=2),
    case("channel_shuffle", (2, 6, 3, 4), groups=3),
    case("channel_shuffle", (1, 8, 5), groups=4),
    case("channel_shuffle", (2, 4, 2, 3, 2), groups=2),
    case("channel_shuffle", (2, 4, 3, 3), groups=4),  # one channel per group: unchanged
    case("channel_shuffle", (1, 3, 2, 2), groups=1),  # one group: unchanged
    case("slice", (2, 6, 3, 4), start=0, end=3),  # the two halves of x.chunk(2, dim=1)
    case("slice", (2, 6, 3, 4), start=3, end=6),
    case("slice", (2, 5, 3, 4), end=2),  # start defaults to 0
    case("slice", (2, 5, 4, 3), dim=2, start=1, end=3),
    case("slice", (2, 3, 4, 5), dim=-1, start=2, end=5),
    case("slice", (2, 2, 3, 4, 5), dim=4, start=1, end=2),
    case("slice", (3, 7), start=2, end=5),
]

OTHER = [
    case("linear", (3, 5), out=4),
    case("linear", (2, 6), out=3, bias=False),
    case("linear", (2, 3, 5), out=2),
    case("linear", (2, 3, 4, 3), out=5),
    case("linear", (2, 3, 5), out=4, transposed=True),
    case("flatten", (2, 3, 4, 5)),
    case("flatten", (2, 3, 4, 5), start_dim=2),
    case("flatten", (2, 3, 4, 5), start_dim=1, end_dim=2),
    case("flatten", (2, 3, 4, 5, 2), start_dim=2, end_dim=3),
    case("flatten", (2, 3, 4, 5), start_dim=-2, end_dim=-1),
    case("flatten", (3, 7)),
    case("dropout", (2, 3, 5)),
    case("dropout", (2, 4), p=0.1),
    case("stochastic_depth", (2, 3, 4, 5), p=0.2),
    case("stochastic_depth", (2, 6), p=0.5, mode="batch"),
    case("identity", (2, 3, 4, 5)),
]

# Every mode at each rank it takes; sizes up and down, odd ratios, align_corners both ways, a
# scale_factor kept for the index mapping or recomputed from the sizes
RESAMPLE = [
    case("interpolate", (2, 2, 5), scale_factor=2),
    case("interpolate", (2, 2, 6), scale_factor=2.1),  # 12 = 2n, but the 1-D kernel uses 1/2.1
    case("interpolate", (1, 2, 6, 5), scale_factor=2.1),  # the 2-D kernel halves at 2n
    case("interpolate", (1, 2, 3, 5), scale_factor=1.2),  # 3 -> 3 copies in 2-D; 5 -> 6
    case("interpolate", (1, 2, 3, 4, 5), size=[5, 3, 7]),
    case("interpolate", (1, 2, 7, 5), scale_factor=[0.5, 1.7], mode="nearest-exact"),
    case("interpolate", (2, 2, 7), size=4, mode="nearest-exact"),
    case("interpolate", (1, 2, 3, 4, 3), scale_factor=1.5, mode="nearest-exact"),
    case("interpolate", (2, 2, 5), scale_factor=2.5, mode="linear"),
    case("interpolate", (2, 2, 5), size=9, mode="linear", align_corners=True),
    case("interpolate", (1, 2, 7), scale_factor=0.6, mode="linear", recompute_scale_factor=True),
    case("interpolate", (1, 2, 4, 5), scale_factor=2, mode="bilinear"),
    case("interpolate", (1, 2, 4, 5), size=[7, 3], mode="bilinear", align_corners=True),
    case("interpolate", (2, 1, 6, 5), scale_factor=[0.7, 1.3], mode="bilinear"),
    case("interpolate", (1, 2, 4, 5), scale_factor=2, mode="bicubic"),
    case("interpolate", (1, 2, 5, 4), size=[3, 7], mode="bicubic", align_corners=True),
    case("interpolate", (1, 2, 5, 6), scale_factor=1.3, mode="bicubic", recompute_scale_factor=True),
    case("interpolate", (1, 2, 3, 4, 3), scale_factor=2, mode="trilinear"),
    case("interpolate", (1, 2, 3, 4, 5), size=[4, 2, 6], mode="trilinear", align_corners=True),
    case("interpolate", (2, 2, 7), size=3, mode="area"),
    case("interpolate", (1, 2, 6, 5), scale_factor=0.5, mode="area"),  # floor(2.5) = 2 columns
    case("interpolate", (1, 2, 4, 3, 5), size=[2, 3, 1], mode="area"),
    case("upsample", (1, 2, 3, 4), scale_factor=2),  # the alias, as nn.Upsample
    case("pixel_shuffle", (2, 8, 3, 2), upscale_factor=2),
    case("pixel_shuffle", (1, 9, 2, 2), upscale_factor=3),
    case("pixel_unshuffle", (2, 2, 4, 6), downscale_factor=2),
    case("pixel_unshuffle", (1, 1, 3, 6), downscale_factor=3),
]

# Every mode; one axis or all spatial axes or the channels too; negative values crop
PAD = [
    case("pad", (2, 3, 5), padding=[[1, 2]]),
    case("pad", (2, 3, 4, 5), padding=[[2, 0], [1, 3]], value=1.5),
    case("pad", (1, 3, 4, 5), padding=[[1, 1], [-1, 2]]),  # crops a column before
    case("pad", (1, 3, 4, 5), padding=[[1, 0], [0, 0], [-2, 1]]),  # channels too
    case("pad", (2, 5), padding=[[-1, -2]]),  # features of a [C] input
    case("pad", (2, 2, 4, 5), padding=[[3, 2], [4, 1]], mode="reflect"),
    case("pad", (1, 2, 3, 4, 3), padding=[[1, 1], [2, 0], [-1, 2]], mode="reflect"),
    case("pad", (1, 3, 4), padding=[[2, 1], [3, 3]], mode="reflect"),  # channels too
    case("pad", (2, 2, 3, 4), padding=[[5, 1], [0, 2]], mode="replicate"),
    case("pad", (1, 2, 5), padding=[[-3, 4]], mode="replicate"),
    case("pad", (1, 2, 3, 4, 3), padding=[[1, 0], [0, 2], [2, 2]], mode="replicate"),
    case("pad", (2, 2, 3, 4), padding=[[3, 3], [4, 2]], mode="circular"),
    case("pad", (1, 2, 5), padding=[[2, -2]], mode="circular"),  # wraps the 3 kept
    case("pad", (1, 2, 3, 2, 4), padding=[[1, 1], [2, 2], [-1, 3]], mode="circular"),
]

ROLL = [
    case("roll", (2, 3, 5, 4), shifts=[-2, -2], dims=[2, 3]),  # Swin's shift by -window // 2
    case("roll", (2, 3, 5, 4), shifts=[2, 2], dims=[2, 3]),  # and back
    case("roll", (2, 7, 3), shifts=9, dims=-2),  # more than the size: wraps
    case("roll", (2, 6, 4), shifts=[1, 2], dims=[1, 1]),  # one axis twice
    case("mean", (2, 5, 3), dim=1),  # over the tokens of [S, D]
    case("mean", (2, 3, 4, 5), dim=[-1, -2], keepdim=True),  # ConvNeXt's and Swin's pooling
    case("mean", (2, 3, 4, 5), dim=[3, 1]),
    case("sum", (2, 3, 4), dim=-1, keepdim=True),
    case("sum", (2, 3, 4, 2), dim=[1, 2]),
]

# dims count the batch as 0; -1 inferred; squeeze of a named axis that is not 1 keeps it
VIEWS = [
    case("reshape", (2, 3, 4, 5), shape=[12, 5]),
    case("reshape", (2, 3, 4, 5), shape=[-1]),
    case("reshape", (2, 6, 2), shape=[2, 3, -1]),
    case("view", (2, 3, 4), shape=[4, 3]),
    case("unsqueeze", (2, 3, 4), dim=1),
    case("unsqueeze", (2, 3, 4), dim=-1),
    case("unsqueeze", (2, 5), dim=2),
    case("squeeze", (2, 3, 1, 4, 1)),
    case("squeeze", (2, 3, 1, 4, 1), dim=2),
    case("squeeze", (2, 3, 1, 4, 1), dim=[-1, 3]),
    case("squeeze", (2, 1, 1), dim=1),
    case("permute", (2, 3, 4, 5), dims=[0, 2, 3, 1]),
    case("permute", (2, 3, 4, 5, 2), dims=[0, -1, 1, 3, 2]),
    case("transpose", (2, 3, 4, 5), dim0=1, dim1=2),
    case("transpose", (2, 3, 4), dim0=-1, dim1=1),
]

# token ids of any shape; a learned tensor reads nothing (its batch axis is 1, shared)
LEARNED = [
    case("embedding", (2, 5), vocab=7, dim=3),
    case("embedding", (1, 2, 3), vocab=4, dim=2, padding_idx=0),
    case("parameter", shape=[1, 4]),
    case("parameter", shape=[3, 2, 2]),
    case("sequence_ids", (2, 5)),
    case("sequence_ids", (3, 4, 6), values="zeros", buffer=9),
    case("rotary_embedding", (1, 5), head_dim=4),
    case("rotary_embedding", (1, 3), head_dim=6, theta=500.0),
    case("rotary", (2, 3, 8), (1, 2, 3, 4)),
    case("rotary", (1, 4, 6), (1, 2, 4, 6)),
    case("kv_cache", (2, 5, 6)),
    case("parameter", shape=[9, 2], batch_axis=False),  # Swin's bias table [(2W-1)^2, heads]
    case("buffer", shape=[2, 3]),
    case("buffer", shape=[16], dtype="int64", batch_axis=False),  # Swin's relative position index
    case("index", (1, 9, 2), (1, 16)),  # a shared table read by shared ids
    case("index", (2, 5, 3), (2, 2, 4)),  # per example
    case("shift_mask", size=[8, 8], window=[4, 4], shift=[2, 2]),
    case("shift_mask", size=[12, 8], window=[4, 4], shift=[2, 0]),
    case("shift_mask", size=[4, 6, 6], window=[2, 3, 3], shift=[1, 1, 1]),  # video Swin
    case("relative_distance", q=4, k=4),
    case("relative_distance", q=8, k=2),   # keys pooled 4 times more: MViTv2's first block
    case("relative_distance", q=2, k=4),   # queries pooled more (a stride-2 block with stride-1 keys)
    case("relative_distance", q=3, k=2),   # ratios 1 and 1.5
    case("head_conv3d", (2, 3, 2, 3, 4, 4), out=2, kernel=3, stride=[1, 2, 2], padding=1, groups=2, bias=False),  # MViT's pool
    case("head_conv3d", (1, 2, 2, 2, 3, 3), out=4, kernel=[1, 2, 2]),
]

# q [S, heads*D], k and v [S_kv, kv_heads*D]; grouped-query; a bias per head or broadcast over them
ATTENTION = [
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), heads=2),
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), heads=2, causal=True),
    case("attention", (2, 6, 4), (2, 3, 4), (2, 3, 4), heads=1, causal=True),  # more queries than keys
    case("attention", (2, 4, 12), (2, 5, 6), (2, 5, 6), heads=4, kv_heads=2),
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), (2, 2, 4, 5), heads=2, scale=0.5),
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), (2, 4, 5), heads=2),
    case("attention", (1, 3, 4), (1, 3, 4), (1, 3, 4), heads=2, dropout=0.1),  # inference: no dropout
    case("multihead_attention", (2, 5, 12), heads=3),
    case("multihead_attention", (2, 4, 8), heads=2, bias=False),
]

CASES = CONV + CONV_TRANSPOSE + POOL + NORM + ACTIVATION + MERGE + CHANNELS + OTHER + RESAMPLE + PAD + ROLL + VIEWS + LEARNED + ATTENTION

# values that sit on each activation's edges: clip points, softplus thresholds (beta*x == threshold
# stays on the log branch), far tails
EDGES = [-30.0, -6.0, -3.0, -0.5, 0.0, 1e-3, 2.5, 3.0, 5.0, 6.0, 7.0, 20.0, 25.0]


def arrays(
    kind: str, fields: dict[str, Any], shapes: Shapes
) -> tuple[Op, list[Array], dict[str, Array]]:
    """The op, seeded float64 inputs and weights shaped as op.parameters and op.buffers ask."""
    op = REGISTRY[kind](**fields)
    rng = np.random.default_rng(zlib.crc32(f"{kind}{fields}{shapes}".encode()))
    xs = [rng.standard_normal(shape) for shape in shapes]
    if op.index_bound:  # token ids below the table's size
        xs = [rng.integers(0, getattr(op, op.index_bound), shape) for shape in shapes]
    if kind == "index":  # row ids below the table's rows
        xs[1] = rng.integers(0, shapes[0][1], shapes[1])
    if kind in FORMULAS or kind == "acon_c":
        xs[0] *= 3
        xs[0].flat[: len(EDGES)] = EDGES[: xs[0].size]
    if family(kind) == "lp_pool" and op.norm_type % 2 != 0:
        xs = [np.abs(x) + 0.1 for x in xs]  # an odd or fractional power of a negative sum is NaN
    per_example = [shape[1:] for shape in shapes]
    weights: dict[str, Array] = {}
    for name, shape in {**op.parameters(per_example), **op.buffers(per_example)}.items():
        if name.endswith("num_batches_tracked"):
            weights[name] = np.zeros(shape, dtype=np.int64)
        elif name.endswith("running_var"):
            weights[name] = rng.uniform(0.5, 1.5, shape)
        else:
            weights[name] = rng.standard_normal(shape)
    return op, xs, weights


def tolerance(kind: str, fields: dict[str, Any]) -> float:
    """archcalc's exact GELU uses an erf approximation (Abramowitz & Stegun, error < 1.5e-7);
    transformers' rotary table (the torch route) multiplies its angles in float32."""
    if kind == "rotary_embedding":
        return 1e-6
    return 1e-6 if kind == "gelu" and fields.get("approximate", "none") == "none" else 1e-10


# --- archcalc against the naive references -------------------------------------------------------


def test_every_registered_op_has_cases() -> None:
    """Every op that runs (an opaque layer, of unknown costs, does not) has cases."""
    canonical = {name for name, cls in REGISTRY.items() if cls.kind == name and cls.known_costs}
    covered = {p.values[0] for p in CASES}
    assert canonical - covered == set()
    assert set(map(family, canonical)) <= set(NAIVE)


@pytest.mark.parametrize("kind, fields, shapes", CASES)
def test_forward_matches_naive(kind: str, fields: dict[str, Any], shapes: Shapes) -> None:
    op, xs, weights = arrays(kind, fields, shapes)
    expected = NAIVE[family(kind)](op, xs, weights)
    got = op.forward([x.copy() for x in xs], weights)
    assert got.shape == expected.shape
    assert tuple(got.shape[1:]) == tuple(op.output_shape([s[1:] for s in shapes]))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=tolerance(kind, fields))


INPLACE = [*_ACTIVATION_SETTINGS, ("softmax", {"dim": 1})]


@pytest.mark.parametrize("kind, fields", [pytest.param(k, f, id=f"{k}{f}") for k, f in INPLACE])
def test_inplace_activation_overwrites_its_input(kind: str, fields: dict[str, Any]) -> None:
    """inplace=True, as PyTorch: the result is the very array given, now holding the values."""
    op, xs, weights = arrays(kind, {**fields, "inplace": True}, [(2, 3, 5)])
    expected = NAIVE[family(kind)](op, xs, weights)
    x = xs[0].copy()
    got = op.forward([x], weights)
    assert got is x
    np.testing.assert_allclose(x, expected, rtol=1e-10, atol=tolerance(kind, fields))


@pytest.mark.parametrize("kind, fields, shapes", CASES)
def test_forward_keeps_float32(kind: str, fields: dict[str, Any], shapes: Shapes) -> None:
    """float32 in, float32 out: the executor measures its peak from the arrays it holds."""
    op, xs, weights = arrays(kind, fields, shapes)
    single = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in weights.items()}
    got = op.forward([x.astype(np.float32) if x.dtype.kind == "f" else x for x in xs], single)
    # ids (token positions, MViTv2's relative distances) stay int64, as the op declares
    assert got.dtype == np.float32 or (got.dtype == np.int64 and op.output_dtype([None] * len(xs)) == "int64")
    np.testing.assert_allclose(got, NAIVE[family(kind)](op, xs, weights), rtol=1e-3, atol=1e-3)


def test_out_of_place_activation_leaves_its_input() -> None:
    op, xs, _ = arrays("relu", {}, [(2, 3, 5)])
    x = xs[0].copy()
    got = op.forward([x], {})
    assert got is not x and np.array_equal(x, xs[0])


# --- archcalc against PyTorch ---------------------------------------------------------------------


def torch_conv(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """nn.ConvNd with the same weights; per-side padding and TensorFlow's strided 'same' (which
    torch does not take) as F.pad in the padding mode, then an unpadded convolution."""
    x = xs[0]
    dims = x.dim() - 2
    F = torch.nn.functional
    stride, dilation = per_axis(op.stride, dims), per_axis(op.dilation, dims)
    pairs = isinstance(op.padding, list) and isinstance(op.padding[0], list)
    if pairs or (op.padding == "same" and any(s > 1 for s in stride)):
        kernel = w["weight"].shape[2:]
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        pads = sides(op.padding, tuple(x.shape[2:]), spans, stride)
        flat = [side for before_after in reversed(pads) for side in before_after]  # last axis first
        x = F.pad(x, flat, mode="constant" if op.padding_mode == "zeros" else op.padding_mode)
        conv = getattr(F, f"conv{dims}d")
        return conv(x, w["weight"], w.get("bias"), stride, 0, dilation, op.groups)
    module = getattr(torch.nn, f"Conv{dims}d")(
        x.shape[1], op.out, tuple(w["weight"].shape[2:]), stride=stride, padding=op.padding,
        dilation=dilation, groups=op.groups, bias=op.bias, padding_mode=op.padding_mode,
        dtype=torch.float64,
    )
    with torch.no_grad():
        module.weight.copy_(w["weight"])
        if op.bias:
            module.bias.copy_(w["bias"])
        return module(x)


def torch_conv_transpose(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """F.conv_transposeNd; per-side padding (torch takes one value per axis) as a crop of the
    unpadded result."""
    x = xs[0]
    dims = x.dim() - 2
    transpose = getattr(torch.nn.functional, f"conv_transpose{dims}d")
    settings = {"output_padding": op.output_padding, "groups": op.groups, "dilation": op.dilation}
    if isinstance(op.padding, list) and isinstance(op.padding[0], list):
        y = transpose(x, w["weight"], w.get("bias"), op.stride, 0, **settings)
        crop = tuple(slice(b, n - a) for (b, a), n in zip(op.padding, y.shape[2:]))
        return y[(slice(None), slice(None), *crop)]
    return transpose(x, w["weight"], w.get("bias"), op.stride, op.padding, **settings)


def torch_pool(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    F = torch.nn.functional
    x = xs[0]
    dims = x.dim() - 2
    if isinstance(op.padding, str):
        pytest.skip("PyTorch pooling takes no 'same' padding")
    stride = op.kernel if op.stride is None else op.stride
    kind = family(op.kind)
    if kind == "max_pool":
        pool = getattr(F, f"max_pool{dims}d")
        return pool(x, op.kernel, stride, op.padding, op.dilation, op.ceil_mode)
    if kind == "avg_pool":
        pool = getattr(F, f"avg_pool{dims}d")
        settings = {} if op.divisor_override is None else {"divisor_override": op.divisor_override}
        if dims == 1 and settings:  # F.avg_pool1d takes no divisor_override: as a 2-D window
            one = lambda v: (1, *per_axis(v, 1))  # noqa: E731
            y = F.avg_pool2d(x[..., None, :], one(op.kernel), one(stride), (0, *per_axis(op.padding, 1)),
                             op.ceil_mode, op.count_include_pad, **settings)
            return y[..., 0, :]
        return pool(x, op.kernel, stride, op.padding, op.ceil_mode, op.count_include_pad, **settings)
    return getattr(F, f"lp_pool{dims}d")(x, op.norm_type, op.kernel, stride, op.ceil_mode)


def torch_adaptive(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    x = xs[0]
    name = f"{family(op.kind)}{x.dim() - 2}d"
    return getattr(torch.nn.functional, name)(x, op.output)


def torch_global(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    x = xs[0]
    axes = tuple(range(2, x.dim()))
    if op.kind == "global_avg_pool":
        return x.mean(dim=axes, keepdim=op.keepdims)
    return x.amax(dim=axes, keepdim=op.keepdims)


def torch_batchnorm(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """An nn.BatchNormNd module in eval mode, its buffers and parameters set to the same arrays."""
    x = xs[0]
    dims = int(op.kind[-2])
    module = getattr(torch.nn, f"BatchNorm{dims}d")(
        x.shape[1], eps=op.eps, momentum=op.momentum, affine=op.affine,
        track_running_stats=op.track_running_stats, dtype=torch.float64,
    )
    module.load_state_dict(w)
    return module.eval()(x)


def torch_layernorm(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    x = xs[0]
    shape = [x.shape[-1]] if op.normalized_shape is None else op.normalized_shape
    shape = [shape] if isinstance(shape, int) else shape  # nn.LayerNorm(7) is layer_norm(x, [7])
    return torch.nn.functional.layer_norm(x, shape, w.get("weight"), w.get("bias"), op.eps)


def torch_rmsnorm(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """F.rms_norm for both implementations (the same arithmetic; their saved tensors differ)."""
    x = xs[0]
    shape = [x.shape[-1]] if op.normalized_shape is None else op.normalized_shape
    shape = [shape] if isinstance(shape, int) else shape
    return torch.nn.functional.rms_norm(x, shape, w.get("weight"), op.eps)


def torch_groupnorm(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    return torch.nn.functional.group_norm(xs[0], op.groups, w.get("weight"), w.get("bias"), op.eps)


ACTIVATION_FIELDS = {
    "leaky_relu": ("negative_slope",),
    "elu": ("alpha",),
    "softplus": ("beta", "threshold"),
    "gelu": ("approximate",),
    "softmax": ("dim",),
}


def torch_activation(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """torch.nn.functional's function of the same name, with the op's settings."""
    module = torch if op.kind in ("sigmoid", "tanh") else torch.nn.functional
    settings = {name: getattr(op, name) for name in ACTIVATION_FIELDS.get(op.kind, ())}
    return getattr(module, op.kind)(xs[0], **settings)


def torch_acon_c(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """AconC.forward of the authors' code (github.com/nmaac/acon); parameters (1, C, 1, 1)."""
    x = xs[0]
    p1, p2, beta = (w[k][None] for k in ("p1", "p2", "beta"))
    return (p1 * x - p2 * x) * torch.sigmoid(beta * (p1 * x - p2 * x)) + p2 * x


def torch_meta_acon(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """MetaAconC.forward of the authors' code (github.com/nmaac/acon, acon.py) in eval mode, by
    functional calls: the batch norms (official only) use the running statistics."""
    F, x = torch.nn.functional, xs[0]

    def norm(v: Any, bn: str) -> Any:
        if op.implementation != "official":
            return v
        return F.batch_norm(v, w[f"{bn}.running_mean"], w[f"{bn}.running_var"], w[f"{bn}.weight"], w[f"{bn}.bias"])

    pooled = x.mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
    beta = torch.sigmoid(norm(F.conv2d(norm(F.conv2d(pooled, w["fc1.weight"], w["fc1.bias"]), "bn1"), w["fc2.weight"], w["fc2.bias"]), "bn2"))
    p1, p2 = w["p1"], w["p2"]
    return (p1 * x - p2 * x) * torch.sigmoid(beta * (p1 * x - p2 * x)) + p2 * x


def torch_merge(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    if op.kind == "concat":
        return torch.cat(xs, dim=op.dim)
    result = xs[0]
    for x in xs[1:]:  # torch's own broadcasting of the batched tensors
        result = result + x if op.kind == "add" else result * x
    return result


def torch_channels(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """nn.ChannelShuffle; a slice as torch.narrow (start and length, the batch is dim 0)."""
    if op.kind == "channel_shuffle":
        return torch.nn.ChannelShuffle(op.groups)(xs[0])
    return torch.narrow(xs[0], op.dim, op.start, op.end - op.start)


def torch_other(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    F, x = torch.nn.functional, xs[0]
    if op.kind == "linear" and op.transposed:  # transformers' Conv1D computes addmm(bias, x, weight)
        return x @ w["weight"] + (w["bias"] if op.bias else 0)
    if op.kind == "linear":
        return F.linear(x, w["weight"], w.get("bias"))
    if op.kind == "flatten":
        return torch.flatten(x, op.start_dim, op.end_dim)
    if op.kind == "dropout":
        return torch.nn.Dropout(op.p).eval()(x)
    if op.kind == "stochastic_depth":
        from torchvision.ops import StochasticDepth

        return StochasticDepth(op.p, op.mode).eval()(x)
    return torch.nn.Identity()(x)


def torch_sequence_ids(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """GPT2Model's torch.arange(S).unsqueeze(0); BertEmbeddings' buffers sliced [:, :S]."""
    length = xs[0].shape[1]
    if op.buffer is None:
        return torch.arange(length).unsqueeze(0)
    buffer = torch.arange(op.buffer).expand(1, -1) if op.values == "positions" else torch.zeros(1, op.buffer, dtype=torch.long)
    return buffer[:, :length]


def torch_rotary_embedding(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """transformers' LlamaRotaryEmbedding on the given positions, cos and sin stacked."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    config = transformers.LlamaConfig(hidden_size=op.head_dim, num_attention_heads=1,
                                       rope_parameters={"rope_type": "default", "rope_theta": op.theta})
    cos, sin = LlamaRotaryEmbedding(config)(xs[0].double(), xs[0])
    return torch.stack([cos, sin], dim=1)


def torch_rotary(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """transformers' apply_rotary_pos_emb on the heads [N, heads, S, D], as LlamaAttention calls it."""
    pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    x, table = xs
    n, s, width = x.shape
    head_dim = table.shape[-1]
    heads = x.view(n, s, width // head_dim, head_dim).transpose(1, 2)
    rotated, _ = apply_rotary_pos_emb(heads, heads, table[:, 0], table[:, 1])
    return rotated.transpose(1, 2).reshape(n, s, width)


def torch_interpolate(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    settings = op.model_dump(exclude_none=True)
    return torch.nn.functional.interpolate(xs[0], **settings)


def torch_pixel_shuffle(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    if op.kind == "pixel_shuffle":
        return torch.nn.PixelShuffle(op.upscale_factor)(xs[0])
    return torch.nn.PixelUnshuffle(op.downscale_factor)(xs[0])


def torch_pad(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """F.pad takes one flat list, the last axis first: [[t, b], [l, r]] is (l, r, t, b)."""
    flat = [side for pair in reversed(op.padding) for side in pair]
    value = {"value": op.value} if op.value is not None else {}
    return torch.nn.functional.pad(xs[0], flat, mode=op.mode, **value)


def torch_view(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """The tensor methods of the same name, with the batch axis kept first."""
    x = xs[0]
    if op.kind in ("reshape", "view"):
        return getattr(x, op.kind)(x.shape[0], *op.shape)
    if op.kind == "permute":
        return x.permute(*op.dims)
    if op.kind == "transpose":
        return x.transpose(op.dim0, op.dim1)
    if op.kind == "squeeze" and op.dim is None:
        return x.squeeze(dim=tuple(range(1, x.dim())))  # every axis but the batch
    return getattr(x, op.kind)(tuple(op.dim) if isinstance(op.dim, list) else op.dim)


def torch_learned(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """nn.Embedding with the same table; a bare nn.Parameter or buffer is the tensor itself (a
    batch axis of 1 put in front when it has none); `table[ids]` row by row."""
    if op.kind == "embedding":
        return torch.nn.functional.embedding(xs[0], w["weight"], op.padding_idx)
    if op.kind == "index":
        table, ids = xs
        return torch.stack([table[min(n, len(table) - 1)][ids[min(n, len(ids) - 1)]]
                            for n in range(max(len(table), len(ids)))])
    return torch.nn.Parameter(w[""]) if op.batch_axis else w[""][None]


def torch_head_conv(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """MViT's Pool: the heads folded into the batch, nn.Conv3d, unfolded."""
    x = xs[0]
    module = torch.nn.Conv3d(x.shape[2], op.out, tuple(w["weight"].shape[2:]), stride=op.stride, padding=op.padding,
                             groups=op.groups, bias=op.bias, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(w["weight"])
        if op.bias:
            module.bias.copy_(w["bias"])
        y = module(x.reshape(-1, *x.shape[2:]))
    return y.reshape(*x.shape[:2], *y.shape[1:])


def torch_relative_distance(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """The lines of torchvision's _add_rel_pos (torchvision/models/video/mvit.py) that build dist_h."""
    q_ratio, k_ratio = max(op.k / op.q, 1.0), max(op.q / op.k, 1.0)
    dist = torch.arange(op.q)[:, None] * q_ratio - (torch.arange(op.k)[None, :] + (1.0 - op.k)) * k_ratio
    return dist.long()[None]


def torch_shift_mask(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """torchvision's video Swin mask function; a 2-D map as a depth of one (one window, no shift),
    which labels the regions differently but pairs the same positions."""
    from torchvision.models.video.swin_transformer import _compute_attention_mask_3d

    pad = 3 - len(op.size)
    mask = _compute_attention_mask_3d(torch.zeros(1, dtype=torch.float64), (*(1,) * pad, *op.size),
                                      (*(1,) * pad, *op.window), (*(0,) * pad, *op.shift))
    return mask[None, :, None]


def torch_attention(torch: Any, op: Op, xs: list[Any], w: dict[str, Any]) -> Any:
    """F.scaled_dot_product_attention on the heads split as Hugging Face splits them (inference:
    no dropout); nn.MultiheadAttention(batch_first=True) with the same arrays as self-attention."""
    if op.kind == "multihead_attention":
        x = xs[0]
        module = torch.nn.MultiheadAttention(x.shape[-1], op.heads, bias=op.bias, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(w[name])
            return module.eval()(x, x, x, need_weights=False)[0]
    q, k, v = xs[:3]
    kv_heads = op.kv_heads or op.heads

    def heads(t: Any, count: int) -> Any:
        return t.view(t.shape[0], t.shape[1], count, -1).transpose(1, 2)

    mask = None
    if len(xs) == 4:
        mask = xs[3].reshape(xs[3].shape[0], *(1,) * (4 - xs[3].dim()), *xs[3].shape[1:])
    out = torch.nn.functional.scaled_dot_product_attention(
        heads(q, op.heads), heads(k, kv_heads), heads(v, kv_heads), attn_mask=mask, is_causal=op.causal,
        scale=op.scale, enable_gqa=kv_heads != op.heads,
    )
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[1], -1)


TORCH: dict[str, Callable[[Any, Op, list[Any], dict[str, Any]], Any]] = {
    "embedding": torch_learned,
    "parameter": torch_learned,
    "buffer": torch_learned,
    "index": torch_learned,
    "shift_mask": torch_shift_mask,
    "relative_distance": torch_relative_distance,
    "head_conv": torch_head_conv,
    "normalize": lambda torch, op, xs, w: torch.nn.functional.normalize(xs[0], dim=op.dim, eps=op.eps),
    "contiguous": lambda torch, op, xs, w: xs[0].contiguous(),
    "conv": torch_conv,
    "conv_transpose": torch_conv_transpose,
    "max_pool": torch_pool,
    "avg_pool": torch_pool,
    "lp_pool": torch_pool,
    "adaptive_avg_pool": torch_adaptive,
    "adaptive_max_pool": torch_adaptive,
    "global_avg_pool": torch_global,
    "global_max_pool": torch_global,
    "batchnorm": torch_batchnorm,
    "layernorm": torch_layernorm,
    "rmsnorm": torch_rmsnorm,
    "groupnorm": torch_groupnorm,
    **{kind: torch_activation for kind in (*FORMULAS, "softmax")},
    "scale": lambda torch, op, xs, w: xs[0] * op.factor,
    "exp": lambda torch, op, xs, w: torch.exp(xs[0]),
    "clamp": lambda torch, op, xs, w: torch.clamp(xs[0], op.min, op.max),
    "acon_c": torch_acon_c,
    "meta_acon": torch_meta_acon,
    "add": torch_merge,
    "mul": torch_merge,
    "concat": torch_merge,
    "channel_shuffle": torch_channels,
    "slice": torch_channels,
    "linear": torch_other,
    "sequence_ids": torch_sequence_ids,
    "rotary_embedding": torch_rotary_embedding,
    "rotary": torch_rotary,
    "kv_cache": lambda torch, op, xs, w: torch.cat([torch.empty(xs[0].shape[0], 0, xs[0].shape[2], dtype=xs[0].dtype), xs[0]], 1),
    "matmul": lambda torch, op, xs, w: torch.matmul(xs[0], xs[1]),
    "roll": lambda torch, op, xs, w: torch.roll(xs[0], op.shifts, op.dims),
    **{kind: lambda torch, op, xs, w: getattr(xs[0], op.kind)(op.dim, op.keepdim) for kind in ("mean", "sum")},
    "attention": torch_attention,
    "multihead_attention": torch_attention,
    "flatten": torch_other,
    "interpolate": torch_interpolate,
    "pixel_shuffle": torch_pixel_shuffle,
    "pixel_unshuffle": torch_pixel_shuffle,
    "pad": torch_pad,
    **{kind: torch_view for kind in ("reshape", "unsqueeze", "squeeze", "permute", "transpose")},
    "dropout": torch_other,
    "stochastic_depth": torch_other,
    "identity": torch_other,
}


def test_every_naive_reference_has_a_torch_route() -> None:
    assert set(TORCH) == set(NAIVE)


@pytest.mark.parametrize("kind, fields, shapes", CASES)
def test_forward_matches_torch(kind: str, fields: dict[str, Any], shapes: Shapes) -> None:
    torch = pytest.importorskip("torch")
    op, xs, weights = arrays(kind, fields, shapes)
    tensors = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    expected = TORCH[family(kind)](torch, op, [torch.from_numpy(x.copy()) for x in xs], tensors)
    got = op.forward([x.copy() for x in xs], weights)
    assert got.shape == tuple(expected.shape)
    expected = expected.detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=tolerance(kind, fields))


# --- the executor's checks of the arrays it is given ----------------------------------------------

NETWORK = """\
name: tiny
input: [3, 6, 5]
layers:
  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {name: bn, op: batchnorm2d}
  - {name: act, op: relu}
  - {name: pool, op: global_avg_pool}
  - {name: fc, op: linear, out: 2}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Any:
    path = tmp_path / "tiny.yaml"
    path.write_text(NETWORK)
    return load(str(path))


def test_given_weights_run_as_each_op_would(tiny: Any) -> None:
    """The executor feeds each layer's output to the next, with the arrays it was given."""
    weights = random_weights(tiny, seed=3, dtype="float64")
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 5))
    expected = x
    for layer in tiny.layers:
        expected = NAIVE[family(layer.op.kind)](layer.op, [expected], weights.get(layer.path, {}))
    run = execute(tiny, x, dtype="float64", weights=weights)
    np.testing.assert_allclose(run.output, expected, rtol=1e-10, atol=1e-10)


def broken(weights: Weights, change: Callable[[Weights], None]) -> Weights:
    copy = {path: dict(arrays) for path, arrays in weights.items()}
    change(copy)
    return copy


def pop(layer: str, name: str | None = None) -> Callable[[Weights], None]:
    """Drop one array of a layer, or (name None) all its arrays."""
    return lambda w: w[layer].pop(name) if name else w.pop(layer)


def put(layer: str, name: str, shape: tuple[int, ...]) -> Callable[[Weights], None]:
    """Set (or add) one array of a layer, made of zeros of the given shape."""
    return lambda w: w.setdefault(layer, {}).update({name: np.zeros(shape)})


@pytest.mark.parametrize(
    "change, layer, words",
    [
        pytest.param(
            pop("conv", "weight"), "conv", ["missing", "weight", "[4, 3, 3, 3]"], id="missing array"
        ),
        pytest.param(pop("fc"), "fc", ["missing", "weight", "[2, 4]"], id="missing layer"),
        pytest.param(
            pop("bn", "running_var"), "bn", ["missing", "running_var", "[4]"], id="missing buffer"
        ),
        pytest.param(
            put("fc", "weight", (4, 2)), "fc", ["[4, 2]", "expected [2, 4]"], id="transposed matrix"
        ),
        pytest.param(
            put("conv", "weight", (4, 3, 3)), "conv", ["[4, 3, 3]", "expected [4, 3, 3, 3]"],
            id="kernel missing an axis",
        ),
        pytest.param(
            put("bn", "bias", (3,)), "bn", ["bias", "[3]", "expected [4]"], id="short bias"
        ),
        pytest.param(
            put("conv", "scale", (4,)), "conv", ["unexpected", "scale", "weight, bias"],
            id="extra array",
        ),
        pytest.param(put("act", "weight", (4,)), "act", ["act"], id="layer without parameters"),
        pytest.param(put("conv2", "weight", (4,)), "conv2", ["conv2"], id="no such layer"),
    ],
)
def test_weights_that_do_not_fit_name_layer_and_shape(
    tiny: Any, change: Callable[[dict[str, dict[str, Any]]], None], layer: str, words: list[str]
) -> None:
    weights = broken(random_weights(tiny, dtype="float64"), change)
    with pytest.raises(ExecutionError) as caught:
        execute(tiny, dtype="float64", weights=weights)
    assert caught.value.layer == layer
    message = str(caught.value)
    assert f"layer '{layer}'" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("shape", [(1, 3, 5, 6), (2, 4, 6, 5), (3, 6, 5), (1, 1, 3, 6, 5)])
def test_input_of_the_wrong_shape_names_the_expected_one(tiny: Any, shape: tuple[int, ...]) -> None:
    with pytest.raises(ExecutionError) as caught:
        execute(tiny, np.zeros(shape))
    message = str(caught.value)
    assert str(list(shape)) in message
    assert "expected [batch, 3, 6, 5]" in message
