"""Property: on random networks, the analysis and the NumPy executor agree on every figure.

Random stacks of convolutions (1-D, 2-D, 3-D; kernel, stride, dilation, padding forms and modes,
groups), pooling (max/avg, ceil mode), merges (a residual add, a concatenation), interpolation
(every mode of the rank, by size or factor), explicit padding (every mode, crops too), pixel
unshuffle and transposes of spatial axes (views) are analysed and run; output shapes, parameter
counts and the activation peak must match exactly.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from archcalc.analysis import analyze
from archcalc.errors import ArchcalcError
from archcalc.executor import execute, parameter_sizes
from archcalc.spec.graph import expand
from archcalc.spec.spec import parse_spec

DIMS = {1: "1d", 2: "2d", 3: "3d"}


@st.composite
def padding(draw: st.DrawFn, dims: int) -> Any:
    form = draw(st.sampled_from(["int", "axis", "side", "same", "valid"]))
    if form == "int":
        return draw(st.integers(0, 2))
    if form == "axis":
        return draw(st.lists(st.integers(0, 2), min_size=dims, max_size=dims))
    if form == "side":
        return [draw(st.lists(st.integers(0, 2), min_size=2, max_size=2)) for _ in range(dims)]
    return form


@st.composite
def interpolation(draw: st.DrawFn, dims: int) -> dict[str, Any]:
    """An interpolate entry: a mode this rank takes, a size or a scale factor."""
    linear = {1: "linear", 2: draw(st.sampled_from(["bilinear", "bicubic"])), 3: "trilinear"}[dims]
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "area", linear]))
    entry: dict[str, Any] = {"op": "interpolate", "mode": mode}
    if draw(st.booleans()):
        entry["size"] = draw(st.integers(1, 9))
    else:
        entry["scale_factor"] = draw(st.sampled_from([0.5, 1.5, 2, 2.5]))
    if mode == linear:
        entry["align_corners"] = draw(st.booleans())
    return entry


@st.composite
def layer(draw: st.DrawFn, dims: int, channels: int) -> tuple[dict[str, Any], int]:
    """One random layer entry and the channels it outputs."""
    kind = draw(st.sampled_from(
        ["conv", "conv", "max", "avg", "add", "concat", "interpolate", "pad", "unshuffle", "transpose"]
    ))
    if kind == "interpolate":
        return draw(interpolation(dims)), channels
    if kind == "pad":
        mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        pairs = [draw(st.lists(st.integers(-1, 2), min_size=2, max_size=2)) for _ in range(dims)]
        return {"op": "pad", "padding": pairs, "mode": mode}, channels
    if kind == "unshuffle" and dims == 2:
        return {"op": "pixel_unshuffle", "downscale_factor": 2}, channels * 4
    if kind in ("unshuffle", "transpose") and dims > 1:  # swap the last two spatial axes
        return {"op": "transpose", "dim0": -1, "dim1": -2}, channels
    if kind in ("unshuffle", "transpose"):  # 1-D: a reshape that infers the length, a view
        return {"op": "reshape", "shape": [channels, -1]}, channels
    if kind in ("max", "avg"):
        kernel = draw(st.integers(1, 3))
        entry = {
            "op": f"{kind}_pool{DIMS[dims]}", "kernel": kernel, "stride": draw(st.integers(1, 2)),
            "padding": draw(st.integers(0, kernel // 2)), "ceil_mode": draw(st.booleans()),
        }
        if kind == "max":
            entry["dilation"] = draw(st.integers(1, 2))
        else:
            entry["count_include_pad"] = draw(st.booleans())
        return entry, channels
    if kind in ("add", "concat"):
        return {"block": kind}, channels * (2 if kind == "concat" else 1)
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
    out = groups * draw(st.integers(1, 3))
    return {
        "op": f"conv{DIMS[dims]}", "out": out, "kernel": draw(st.integers(1, 3)),
        "stride": draw(st.integers(1, 2)), "dilation": draw(st.integers(1, 2)), "groups": groups,
        "padding": draw(padding(dims)), "bias": draw(st.booleans()),
        "padding_mode": draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
    }, out


@st.composite
def networks(draw: st.DrawFn) -> dict[str, Any]:
    dims = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(4, 12 if dims < 3 else 6), min_size=dims, max_size=dims))
    channels = draw(st.integers(1, 4))
    entries = []
    c = channels
    for _ in range(draw(st.integers(1, 4))):
        entry, c = draw(layer(dims, c))
        entries.append(entry)
    conv = f"conv{DIMS[dims]}"
    return {
        "name": "random",
        "input": list((channels, *sizes)),
        "blocks": {  # a residual add and a dense-style concatenation around a 'same' convolution
            "add": {"layers": [
                {"name": "branch", "op": conv, "out": "$c", "kernel": 3, "padding": "same"},
                {"op": "relu", "inplace": True},
                {"op": "add", "from": [1, "input"]},
            ], "args": {"c": None}},
            "concat": {"layers": [
                {"name": "branch", "op": conv, "out": "$c", "kernel": 1},
                {"op": "concat", "from": ["input", "branch"]},
            ], "args": {"c": None}},
        },
        "layers": entries,
    }


def _with_channels(spec: dict[str, Any]) -> dict[str, Any]:
    """Give each block call the channel count of its input, known only from the shapes before it."""
    c = spec["input"][0]
    for entry in spec["layers"]:
        if "block" in entry:
            entry["c"] = c
            c = c * 2 if entry["block"] == "concat" else c
        elif "out" in entry:
            c = entry["out"]
        elif entry.get("op") == "pixel_unshuffle":
            c *= 4
    return spec


@given(networks())
def test_analysis_agrees_with_the_executor(spec: dict[str, Any]) -> None:
    spec = _with_channels(spec)
    try:
        network = expand(parse_spec(spec), spec)
        analysis = analyze(network)
    except ArchcalcError:
        assume(False)  # an invalid random network (a shape below 1, reflect padding too wide)
        return
    run = execute(network, batch=2, dtype="float64", seed=3)
    sizes = parameter_sizes(network, run.weights)
    for r in analysis.layers:
        assert run.shapes[r.path] == r.output_shape, r.path
        assert sizes.get(r.path, 0) == r.params.params, r.path
    assert run.peak_bytes == 2 * analysis.memory.inference_peak * 2  # batch 2, float64 = 2x float32
