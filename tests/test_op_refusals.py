"""Resampling, padding and view ops refuse what PyTorch refuses, with a message saying what is wrong.

Each case is a one-layer spec that archcalc must refuse with an ArchcalcError whose message holds
the given words; where torch is installed, the same call must fail in torch too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from archcalc.errors import ArchcalcError
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import load


@dataclass(frozen=True)
class Refusal:
    input: tuple[int, ...]  # batch excluded
    layer: dict[str, Any]
    torch_call: Callable[[Any, Any], Any]  # (torch, x) -> y, which must raise
    words: tuple[str, ...]


def interpolate(**settings: Any) -> Callable[[Any, Any], Any]:
    return lambda torch, x: torch.nn.functional.interpolate(x, **settings)


REFUSALS = {
    "size and scale_factor": Refusal(
        (3, 8, 8), {"op": "interpolate", "size": 4, "scale_factor": 2},
        interpolate(size=4, scale_factor=2), ("exactly one of size and scale_factor",)),
    "neither size nor scale_factor": Refusal(
        (3, 8, 8), {"op": "interpolate"}, interpolate(), ("exactly one of size and scale_factor",)),
    "bilinear on a sequence": Refusal(
        (3, 8), {"op": "interpolate", "scale_factor": 2, "mode": "bilinear"},
        interpolate(scale_factor=2, mode="bilinear"), ("bilinear", "2 spatial axes", "linear")),
    "trilinear on an image": Refusal(
        (3, 8, 8), {"op": "interpolate", "scale_factor": 2, "mode": "trilinear"},
        interpolate(scale_factor=2, mode="trilinear"), ("trilinear", "3 spatial axes", "bilinear")),
    "align_corners with nearest": Refusal(
        (3, 8, 8), {"op": "interpolate", "scale_factor": 2, "align_corners": False},
        interpolate(scale_factor=2, align_corners=False), ("align_corners", "nearest")),
    "a size per axis, too few": Refusal(
        (3, 8, 8, 8), {"op": "interpolate", "size": [4, 4]}, interpolate(size=[4, 4]),
        ("size", "3", "one value per spatial axis")),
    "an output below 1": Refusal(
        (3, 8, 3), {"op": "interpolate", "scale_factor": 0.3}, interpolate(scale_factor=0.3),
        ("spatial axis 2", "size 0")),
    "recompute with a size": Refusal(
        (3, 8, 8), {"op": "interpolate", "size": 4, "recompute_scale_factor": True},
        interpolate(size=4, recompute_scale_factor=True), ("recompute_scale_factor", "scale_factor")),
    "no spatial axis": Refusal(
        (3,), {"op": "interpolate", "scale_factor": 2}, interpolate(scale_factor=2),
        ("[C, L]", "[3]")),
    "pixel_shuffle channels not divisible": Refusal(
        (6, 3, 3), {"op": "pixel_shuffle", "upscale_factor": 2},
        lambda torch, x: torch.nn.functional.pixel_shuffle(x, 2), ("divisible", "4", "6")),
    "pixel_unshuffle width not divisible": Refusal(
        (2, 4, 5), {"op": "pixel_unshuffle", "downscale_factor": 2},
        lambda torch, x: torch.nn.functional.pixel_unshuffle(x, 2), ("width", "divisible", "5")),
    "pixel_shuffle on a sequence": Refusal(
        (4, 6), {"op": "pixel_shuffle", "upscale_factor": 2},
        lambda torch, x: torch.nn.functional.pixel_shuffle(x, 2), ("[C, H, W]", "[4, 6]")),
    "reflect pad as large as the axis": Refusal(
        (2, 4, 5), {"op": "pad", "padding": [[4, 0], [1, 1]], "mode": "reflect"},
        lambda torch, x: torch.nn.functional.pad(x, (1, 1, 4, 0), mode="reflect"),
        ("reflect", "smaller than", "4")),
    "circular pad beyond the axis": Refusal(
        (2, 4, 5), {"op": "pad", "padding": [[1, 1], [0, 6]], "mode": "circular"},
        lambda torch, x: torch.nn.functional.pad(x, (0, 6, 1, 1), mode="circular"),
        ("circular", "at most", "5")),
    "reflect pad of one spatial axis of two": Refusal(
        (2, 4, 5), {"op": "pad", "padding": [[1, 1]], "mode": "reflect"},
        lambda torch, x: torch.nn.functional.pad(x, (1, 1), mode="reflect"),
        ("all spatial axes", "2 or 3 pairs")),
    "padding the batch": Refusal(
        (2, 4), {"op": "pad", "padding": [[1, 1], [0, 0], [1, 1]]},
        lambda torch, x: torch.nn.functional.pad(x, (1, 1, 0, 0, 1, 1, 0, 0, 0, 0)),
        ("batch axis cannot be padded",)),
    "cropping more than the axis": Refusal(
        (2, 4), {"op": "pad", "padding": [[-5, 2]]},
        lambda torch, x: torch.nn.functional.pad(x, (-5, 2)), ("crops more", "4 elements")),
    "a value for reflect": Refusal(
        (2, 4, 5), {"op": "pad", "padding": [[1, 1], [1, 1]], "mode": "reflect", "value": 1.0},
        lambda torch, x: torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect", value=1.0),
        ("value", "reflect")),
    "avg_pool3d kernel beyond the input, padding or not": Refusal(
        (1, 1, 1, 2), {"op": "avg_pool3d", "kernel": 2, "padding": 1},
        lambda torch, x: torch.nn.functional.avg_pool3d(x, 2, padding=1), ("smaller than the kernel", "2")),
    "lp_pool3d kernel beyond the input in ceil mode": Refusal(
        (1, 1, 1, 2), {"op": "lp_pool3d", "kernel": 2, "norm_type": 2, "ceil_mode": True},
        lambda torch, x: torch.nn.functional.lp_pool3d(x, 2, 2, ceil_mode=True), ("smaller than the kernel",)),
    "reshape to another element count": Refusal(
        (3, 4, 5), {"op": "reshape", "shape": [7, 8]},
        lambda torch, x: x.reshape(x.shape[0], 7, 8), ("60 elements", "[7, 8]", "56")),
    "reshape not divisible": Refusal(
        (3, 4, 5), {"op": "view", "shape": [7, -1]},
        lambda torch, x: x.view(x.shape[0], 7, -1), ("not divisible by 7",)),
    "two sizes inferred": Refusal(
        (3, 4, 5), {"op": "reshape", "shape": [-1, -1]},
        lambda torch, x: x.reshape(x.shape[0], -1, -1), ("only one size can be -1",)),
    "permute naming an axis twice": Refusal(
        (3, 4, 5), {"op": "permute", "dims": [0, 1, 1, 2]},
        lambda torch, x: x.permute(0, 1, 1, 2), ("each of the 4 axes", "once")),
    "transpose beyond the axes": Refusal(
        (3, 4), {"op": "transpose", "dim0": 1, "dim1": 3},
        lambda torch, x: x.transpose(1, 3), ("dim1 3", "rank-3")),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_archcalc_refuses_with_a_reason(case: Refusal, tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    spec = {"name": "case", "input": list(case.input), "layers": [{"name": "op", **case.layer}]}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ArchcalcError) as caught:
        output_shapes(load(str(path)))
    message = str(caught.value)
    assert "net.yaml" in message and "'op'" in message
    for word in case.words:
        assert word.lower() in message.lower(), message


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_torch_refuses_it_too(case: Refusal) -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError, IndexError)):
        case.torch_call(torch, torch.randn(2, *case.input))


def test_pad_takes_pairs_not_torch_flat_list(tmp_path: Path) -> None:
    """F.pad's flat (left, right, top, bottom) is ambiguous beside per-axis pairs; the spec takes
    pairs only, and says how to write torch's list."""
    path = tmp_path / "net.yaml"
    layer = {"name": "op", "op": "pad", "padding": [1, 1, 2, 2]}
    path.write_text(yaml.safe_dump({"name": "case", "input": [2, 4, 5], "layers": [layer]}))
    with pytest.raises(ArchcalcError, match=r"\[before, after\] pairs.*\[\[top, bottom\], \[left, right\]\]"):
        output_shapes(load(str(path)))


# Valid in torch, but they move or change the batch axis, which a spec's shapes exclude
BATCH_MOVES = {
    "unsqueeze before the batch": {"op": "unsqueeze", "dim": 0},
    "squeeze the batch": {"op": "squeeze", "dim": 0},
    "transpose the batch": {"op": "transpose", "dim0": 0, "dim1": 1},
    "permute the batch": {"op": "permute", "dims": [1, 0, 2]},
}


@pytest.mark.parametrize("layer", BATCH_MOVES.values(), ids=BATCH_MOVES.keys())
def test_the_batch_axis_stays_first(layer: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump({"name": "case", "input": [3, 4], "layers": [{"name": "op", **layer}]}))
    with pytest.raises(ArchcalcError, match="batch"):
        output_shapes(load(str(path)))


# --- property: random interpolations and pads, archcalc against torch ----------------------------


@st.composite
def resampling_layers(draw: st.DrawFn) -> tuple[tuple[int, ...], dict[str, Any], Callable[[Any, Any], Any]]:
    """A random interpolate or pad layer on a small random input, and the same call in torch."""
    dims = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), *draw(st.lists(st.integers(1, 6), min_size=dims, max_size=dims)))
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "area", "linear", "bilinear", "bicubic", "trilinear"]))
        settings: dict[str, Any] = {"mode": mode}
        if draw(st.booleans()):
            settings["size"] = draw(st.integers(1, 9) | st.lists(st.integers(1, 9), min_size=dims, max_size=dims))
        else:
            settings["scale_factor"] = draw(st.sampled_from([0.3, 0.5, 0.7, 1.2, 1.5, 2, 2.1, 3]))
            settings["recompute_scale_factor"] = draw(st.sampled_from([None, True, False]))
        if mode not in ("nearest", "nearest-exact", "area"):
            settings["align_corners"] = draw(st.sampled_from([None, True, False]))
        return shape, {"op": "interpolate", **settings}, interpolate(**settings)
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    k = draw(st.integers(1, len(shape)))
    pairs = [draw(st.lists(st.integers(-3, 6), min_size=2, max_size=2)) for _ in range(k)]
    for n, (before, after) in zip(shape[len(shape) - k :], pairs):
        # torch checks circular pads against the size before cropping, then copies overlapping
        # memory (an error or undefined values); archcalc refuses those, so they are not drawn
        assume(mode != "circular" or max(before, after) <= n + min(before, 0) + min(after, 0))
    flat = [side for pair in reversed(pairs) for side in pair]
    return shape, {"op": "pad", "padding": pairs, "mode": mode}, (
        lambda torch, x: torch.nn.functional.pad(x, flat, mode=mode)
    )


@settings(max_examples=150, deadline=None)
@given(resampling_layers())
def test_random_resampling_agrees_with_torch(drawn: tuple) -> None:
    """archcalc refuses exactly the layers torch refuses (or that torch answers with an empty
    tensor, which archcalc refuses), and agrees on the rest's output, value for value."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from archcalc.ops import REGISTRY

    shape, layer, call = drawn
    x = np.random.default_rng(0).standard_normal((2, *shape))
    try:
        expected = call(torch, torch.from_numpy(x)).numpy()
        expected = None if 0 in expected.shape else expected
    except (RuntimeError, ValueError, TypeError, NotImplementedError, IndexError):
        expected = None
    try:
        op = REGISTRY[layer["op"]](**{k: v for k, v in layer.items() if k != "op"})
        assert op.output_shape([shape]) == (None if expected is None else expected.shape[1:])
        got = op.forward([x], {})
    except (ArchcalcError, ValidationError):
        got = None
    assert (got is None) == (expected is None), layer
    if got is not None:
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
