"""Property: every unit's receptive field equals its gradient support, measured without torch.

A network with positive weights and no biases, fed one input position at a time (a one-hot
batch, every channel 1 there), is monotone: every activation is >= 0 and is > 0 exactly when a
chain of reads connects it to the hot position (sums, averages, maxima, ReLU and products of
positive weights keep that). So the positions whose one-hot input makes a unit positive are
exactly the input elements its value depends on: its gradient support. The executor runs random
1-D and 2-D networks (convolutions with every padding form and mode, transposed convolutions,
max/avg/Lp pools with ceil mode, adaptive pools, slices, rolls, adds and concatenations,
interpolation in every monotone mode, pad in every mode with crops) and the
bounding box of that support, per axis, must equal the interval archcalc derives for every unit:
by the backward query (`rf --at`), by the per-unit pass, and by the closed forms where they hold.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from archcalc.errors import ArchcalcError
from archcalc.executor import execute, random_weights
from archcalc.figures.receptive_field import (
    ReceptiveField,
    receptive_fields,
    unit_extents,
    unit_field,
)
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import INPUT, expand
from archcalc.spec.spec import parse_spec

D = {1: "1d", 2: "2d"}


def _network(dims: int, sizes: list[int], layers: list[dict[str, Any]]) -> Any:
    spec = {"name": "random", "input": [2, *sizes], "layers": layers}
    return expand(parse_spec(spec, None), spec, None)


@st.composite
def entry(draw: st.DrawFn, dims: int, names: list[str]) -> dict[str, Any]:
    """One random layer reading the previous one (merges also read an earlier layer)."""
    kind = draw(st.sampled_from(["conv", "conv", "transpose", "pool", "adaptive", "slice", "merge", "relu", "resize", "pad", "roll"]))
    k = draw(st.integers(1, 3))
    if kind == "resize":  # bicubic's negative taps break the monotone network: tested by hand
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "area", "linear"]))
        found: dict[str, Any] = {"op": "interpolate", "mode": mode if mode != "linear" else ["linear", "bilinear"][dims - 1]}
        if draw(st.booleans()):
            found["size"] = draw(st.lists(st.integers(1, 14), min_size=dims, max_size=dims))
        else:
            found["scale_factor"] = draw(st.sampled_from([0.5, 1 / 3, 0.7, 1.5, 2.0, 3.0]))
        if mode == "linear":
            found["align_corners"] = draw(st.booleans())
        return found
    if kind == "pad":
        mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        return {"op": "pad", "mode": mode, "padding": draw(st.lists(st.lists(st.integers(-2, 3), min_size=2, max_size=2), min_size=dims, max_size=dims))}
    if kind == "conv":
        padding = draw(st.one_of(st.integers(0, 2), st.just("same"), st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=dims, max_size=dims)))
        return {
            "op": f"conv{D[dims]}", "out": 2, "kernel": k, "stride": draw(st.integers(1, 3)) if padding != "same" else 1,
            "dilation": draw(st.integers(1, 2)), "padding": padding,
            "padding_mode": draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
        }
    if kind == "transpose":
        stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        return {
            "op": f"conv_transpose{D[dims]}", "out": 2, "kernel": k, "stride": stride, "dilation": dilation,
            "padding": draw(st.integers(0, 1)), "output_padding": draw(st.integers(0, max(stride, dilation) - 1)),
        }
    if kind == "pool":
        pool = draw(st.sampled_from(["max", "avg", "lp"]))
        found = {"op": f"{pool}_pool{D[dims]}", "kernel": k, "stride": draw(st.integers(1, 3)), "ceil_mode": draw(st.booleans())}
        if pool == "lp":
            found["norm_type"] = 2
        else:
            found["padding"] = draw(st.integers(0, k // 2))
        if pool == "max":
            found["dilation"] = draw(st.integers(1, 2))
        return found
    if kind == "adaptive":
        return {"op": f"adaptive_{draw(st.sampled_from(['avg', 'max']))}_pool{D[dims]}", "output": draw(st.integers(1, 5))}
    if kind == "slice":
        start = draw(st.integers(0, 2))
        return {"op": "slice", "dim": 2 + draw(st.integers(0, dims - 1)), "start": start, "end": start + draw(st.integers(1, 4))}
    if kind == "roll":  # Swin's shifted windows: positions move cyclically
        return {"op": "roll", "shifts": draw(st.integers(-3, 3)), "dims": 2 + draw(st.integers(0, dims - 1))}
    if kind == "merge":
        return {"op": draw(st.sampled_from(["add", "concat"])), "from": [names[-1], draw(st.sampled_from(names))]}
    return {"op": "relu"}


@st.composite
def networks(draw: st.DrawFn) -> Any:
    """A valid random network: each drawn layer is kept only if the whole network still fits."""
    dims = draw(st.integers(1, 2))
    sizes = draw(st.lists(st.integers(3, 12 if dims == 1 else 8), min_size=dims, max_size=dims))
    layers: list[dict[str, Any]] = []
    names = [INPUT]
    for i in range(draw(st.integers(1, 6))):
        candidate = {**draw(entry(dims, names)), "name": f"l{i}"}
        try:
            network = _network(dims, sizes, [*layers, candidate])
            output_shapes(network)
        except ArchcalcError:
            continue
        layers.append(candidate)
        names.append(candidate["name"])
    assume(layers)
    return _network(dims, sizes, layers)


def support(network: Any) -> dict[tuple[int, ...], tuple[Any, ...]]:
    """Per output unit, the bounding box per axis of the input positions it depends on."""
    sizes = network.input_shape[1:]
    positions = list(itertools.product(*(range(n) for n in sizes)))
    x = np.zeros((len(positions), *network.input_shape))
    for b, p in enumerate(positions):
        x[(b, slice(None), *p)] = 1.0
    # float32, torch's default dtype: interpolation taps of weight exactly 0 there read nothing
    weights = random_weights(network, seed=1, dtype="float32")
    for arrays in weights.values():
        for name, array in arrays.items():
            array[...] = 0.0 if name == "bias" else np.abs(array) + 0.5
    out = execute(network, x.astype(np.float32), dtype="float32", weights=weights).output
    reached = (out > 0).any(axis=1)  # (batch, *unit): any channel of the unit
    boxes = {}
    for u in itertools.product(*(range(m) for m in reached.shape[1:])):
        hot = [positions[b] for b in np.flatnonzero(reached[(slice(None), *u)])]
        boxes[u] = tuple((min(p[a] for p in hot), max(p[a] for p in hot)) for a in range(len(sizes))) if hot else (None,) * len(sizes)
    return boxes


def _crops(op: object) -> bool:
    """The op drops part of its input's extent: a later layer's padding can then fall inside the
    closed-form region of a unit."""
    kind = getattr(op, "kind", "")
    if kind.startswith(("slice", "conv_transpose", "interpolate")):
        return True
    return kind == "pad" and any(p < 0 for side in getattr(op, "padding") for p in side)


@settings(max_examples=60, deadline=None)
@given(networks())
def test_every_unit_field_is_its_gradient_support(network: Any) -> None:
    note(repr([layer.op for layer in network.layers]))
    shapes = output_shapes(network)
    fields = receptive_fields(network, shapes)
    measured = support(network)
    out = network.output
    for u, box in measured.items():
        assert unit_field(network, shapes, out, u) == box, (u, box)
    field = fields[out]
    n = network.input_shape[1:]
    if field == "global":
        return  # the whole input, or what global pooling after a crop keeps (checked above)
    boxes = [box for box in measured.values() if box[0] is not None]
    sizes = [[box[axis][1] - box[axis][0] + 1 for box in boxes] or [0] for axis in range(len(n))]
    if field.position_dependent:
        assert field.size == tuple(max(s) for s in sizes) and field.smallest == tuple(min(s) for s in sizes)
        return
    # Closed form: unit u spans [u*j - P, u*j - P + r - 1]; wherever that lies inside the input
    # it is exactly the support (its ends are always read: a window's first and last taps), unless
    # a crop (a slice, a transposed convolution's padding, a negative pad, a down-sampling
    # interpolate flooring 3 x 0.5 to 1 and so dropping the input's tail) put padding of a later
    # layer inside it.
    assert isinstance(field, ReceptiveField)
    if any(_crops(layer.op) for layer in network.layers):
        return
    for u, box in measured.items():
        region = [(i * j - p, i * j - p + r - 1) for i, j, p, r in zip(u, field.stride, field.padding, field.size)]
        if all(0 <= a and b < m for (a, b), m in zip(region, n)):
            assert box == tuple(region), (u, box, region)


@settings(max_examples=40, deadline=None)
@given(networks())
def test_per_unit_pass_matches_support_in_1d(network: Any) -> None:
    # One axis, so no unit reads padding on one axis while reading input on another.
    assume(len(network.input_shape) == 2)
    shapes = output_shapes(network)
    lo, hi = unit_extents(network, shapes)[network.output][0]
    for (u,), (box,) in support(network).items():
        assert (box if box is not None else (network.input_shape[1], -1)) == (lo[u], hi[u])
