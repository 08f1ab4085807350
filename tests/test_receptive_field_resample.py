"""Receptive fields of interpolation, pad, pixel shuffles and views: hand derivations.

Interpolation source coordinates are PyTorch's (ATen/native/UpSample.h): align_corners false
reads x = (o + 0.5) * n/o' - 0.5 (clamped at 0 for the linear modes), true reads x = o * (n-1)/(o'-1),
with taps floor(x) and floor(x) + 1 (linear) or floor(x) - 1 .. floor(x) + 2 (bicubic), clamped
into the input; a tap of weight exactly 0 (x on a sample) has a zero gradient and is not read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_receptive_field import fields, unit

from archcalc.cli import main
from archcalc.figures.receptive_field import ReceptiveField


def spec(input_shape: str, *layers: str) -> str:
    return f"name: r\ninput: {input_shape}\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers)


def test_linear_up_sampling_reads_two_taps_or_one(analyse_text) -> None:
    # n = 4 -> 8: x = o/2 - 0.25. o = 0: -0.25, clamped to 0, weight 1 on input 0 alone;
    # o = 1: 0.25 -> 0, 1; o = 2: 0.75 -> 0, 1; o = 3: 1.25 -> 1, 2; o = 7: 3.25 -> 3 (the
    # upper tap clamps onto it). Neighbours share taps: no window moved by a whole stride.
    result = analyse_text(spec("[1, 4]", "{name: up, op: upsample, scale_factor: 2, mode: linear}"))
    field = fields(result)["up"]
    assert field.position_dependent and "linear" in field.varies
    assert field.size == (2,) and field.smallest == (1,)
    assert [unit(result, "up", o) for o in (0, 1, 2, 3, 7)] == [((0, 0),), ((0, 1),), ((0, 1),), ((1, 2),), ((3, 3),)]


def test_align_corners_lands_on_samples(analyse_text) -> None:
    # n = 4 -> 7 with align_corners: x = o * 3/6 = o/2. Even o lands on sample o/2 (the other
    # tap weighs 0); odd o reads (o-1)/2 and (o+1)/2.
    result = analyse_text(spec("[1, 4]", "{name: up, op: interpolate, size: 7, mode: linear, align_corners: true}"))
    assert [unit(result, "up", o) for o in range(7)] == [
        ((0, 0),), ((0, 1),), ((1, 1),), ((1, 2),), ((2, 2),), ((2, 3),), ((3, 3),)
    ]


def test_integer_down_sampling_is_a_window(analyse_text) -> None:
    # n = 8 -> 4. nearest: floor(o * 2) = 2o, one element with stride 2: r 1, j 2, P 0.
    # nearest-exact: floor((o + 0.5) * 2) = 2o + 1: the same window one later, P = -1.
    # linear: x = 2(o + 0.5) - 0.5 = 2o + 0.5, taps 2o and 2o + 1 at 1/2 each: r 2, j 2, P 0.
    # bicubic (2-D): x = 2o + 0.5, taps 2o - 1 .. 2o + 2, clamped into the input: r 4, j 2, P 1.
    for mode, expected in (
        ("nearest", ReceptiveField((1,), (2,), (0,))),
        ("nearest-exact", ReceptiveField((1,), (2,), (-1,))),
        ("linear", ReceptiveField((2,), (2,), (0,))),
    ):
        result = analyse_text(spec("[1, 8]", f"{{name: down, op: interpolate, scale_factor: 0.5, mode: {mode}}}"))
        assert fields(result)["down"] == expected, mode
    result = analyse_text(spec("[1, 8, 8]", "{name: down, op: interpolate, size: 4, mode: bicubic}"))
    assert fields(result)["down"] == ReceptiveField((4, 4), (2, 2), (1, 1))
    assert unit(result, "down", 0, 3) == ((0, 2), (5, 7))


def test_nearest_up_sampling_repeats_positions(analyse_text) -> None:
    # n = 3 -> 6: floor(o * 0.5) = o // 2, each input read by two outputs (a stride of 1/2).
    result = analyse_text(spec("[1, 3]", "{name: up, op: upsample, scale_factor: 2}"))
    field = fields(result)["up"]
    assert field.position_dependent and field.size == (1,) and field.smallest == (1,)
    assert [unit(result, "up", o) for o in range(6)] == [((o // 2, o // 2),) for o in range(6)]


def test_bicubic_up_sampling_reads_four_clamped_taps(analyse_text) -> None:
    # n = 4 -> 8: x = o/2 - 0.25. o = 0: x = -0.25, taps -2 .. 1 clamp to 0, 0, 0, 1;
    # o = 3: x = 1.25, taps 0 .. 3; o = 7: x = 3.25, taps 2 .. 5 clamp to 2, 3, 3, 3.
    result = analyse_text(spec("[1, 4, 4]", "{name: up, op: upsample, scale_factor: 2, mode: bicubic}"))
    field = fields(result)["up"]
    assert field.position_dependent and field.size == (4, 4) and field.smallest == (2, 2)
    assert unit(result, "up", 0, 3) == ((0, 1), (0, 3))
    assert unit(result, "up", 7, 7) == ((2, 3), (2, 3))


def test_area_interpolation_is_adaptive_pooling(analyse_text) -> None:
    # n = 5 -> 3: PyTorch's adaptive windows [floor(i*5/3), ceil((i+1)*5/3)): [0, 2), [1, 4), [3, 5).
    result = analyse_text(spec("[1, 5]", "{name: a, op: interpolate, size: 3, mode: area}"))
    assert fields(result)["a"].position_dependent
    assert [unit(result, "a", i) for i in range(3)] == [((0, 1),), ((1, 3),), ((3, 4),)]


def test_pad_modes_map_positions_back(analyse_text) -> None:
    # n = 4, [2, 1]: output i copies input i - 2. reflect: -2 -> 2, -1 -> 1, 4 -> 2;
    # replicate: -2, -1 -> 0, 4 -> 3; circular: -2 -> 2, -1 -> 3, 4 -> 0; constant: nothing.
    expected = {
        "reflect": [2, 1, 0, 1, 2, 3, 2],
        "replicate": [0, 0, 0, 1, 2, 3, 3],
        "circular": [2, 3, 0, 1, 2, 3, 0],
        "constant": [None, None, 0, 1, 2, 3, None],
    }
    for mode, sources in expected.items():
        result = analyse_text(spec("[1, 4]", f"{{name: p, op: pad, padding: [[2, 1]], mode: {mode}}}"))
        got = [unit(result, "p", i)[0] for i in range(7)]
        assert got == [None if s is None else (s, s) for s in sources], mode
        field = fields(result)["p"]
        assert field.position_dependent == (mode != "constant"), mode
    # constant padding (and cropping) is a span-1 window shifted by the padding: P = before
    result = analyse_text(spec("[1, 6]", "{name: p, op: pad, padding: [[2, -1]]}"))
    assert fields(result)["p"] == ReceptiveField((1,), (1,), (2,))
    result = analyse_text(spec("[1, 6]", "{name: p, op: pad, padding: [[-2, 0]], mode: reflect}"))
    assert fields(result)["p"] == ReceptiveField((1,), (1,), (-2,))  # a crop copies nothing


def test_pixel_shuffles(analyse_text) -> None:
    # pixel_shuffle r = 2: output (c, h, w) is input (4c + 2(h%2) + w%2, h//2, w//2).
    result = analyse_text(spec("[4, 3, 3]", "{name: s, op: pixel_shuffle, upscale_factor: 2}"))
    field = fields(result)["s"]
    assert field.position_dependent and "fractional" in field.varies
    assert unit(result, "s", 5, 0) == ((2, 2), (0, 0))
    # pixel_unshuffle r = 2: output (h, w) gathers, over its 4 channels, the 2x2 block at (2h, 2w)
    result = analyse_text(spec("[1, 6, 6]", "{name: u, op: pixel_unshuffle, downscale_factor: 2}"))
    assert fields(result)["u"] == ReceptiveField((2, 2), (2, 2), (0, 0))


def test_views_that_move_spatial_axes_say_so(analyse_text) -> None:
    # transpose of H and W: unit (i, j) reads input (j, i); a field kept per axis cannot follow,
    # so the whole axes are reported, said to be an upper bound.
    result = analyse_text(spec("[1, 4, 6]", "{name: t, op: transpose, dim0: 2, dim1: 3}"))
    field = fields(result)["t"]
    assert "upper bound" in field.varies and field.size == (4, 6)
    assert unit(result, "t", 0, 0) == ((0, 3), (0, 5))
    # H into the channels: unit (c, w) of [H, C, W], all channels, reads every row, column w
    result = analyse_text(spec("[2, 4, 6]", "{name: t, op: permute, dims: [0, 2, 1, 3]}"))
    assert "channels" in fields(result)["t"].varies
    assert unit(result, "t", 1, 3) == ((0, 3), (3, 3))
    # reshape to other spatial sizes regroups positions: the whole input, said so
    result = analyse_text(spec("[2, 4, 6]", "{name: v, op: reshape, shape: [2, 6, 4]}"))
    assert "regroups" in fields(result)["v"].varies and unit(result, "v", 0, 0) == ((0, 3), (0, 5))
    # a reshape that keeps the spatial axes is element-wise
    result = analyse_text(spec("[2, 4, 6]", "{name: v, op: reshape, shape: [-1, 4, 6]}"))
    assert fields(result)["v"] == ReceptiveField((1, 1), (1, 1), (0, 0))


def test_rf_command_has_a_rule_for_every_new_op(tmp_path: Path) -> None:
    text = spec(
        "[4, 8, 8]",
        "{op: pad, padding: [[1, 1], [1, 1]], mode: reflect}",
        "{op: interpolate, scale_factor: 0.5, mode: bilinear}",
        "{op: pixel_shuffle, upscale_factor: 2}",
        "{op: upsample, size: 11, mode: bicubic, align_corners: true}",
        "{op: transpose, dim0: 2, dim1: 3}",
    )
    path = tmp_path / "net.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["rf", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "no receptive-field rule" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_interpolation_reads_are_torch_gradient_support(analyse_text) -> None:
    # Each output unit's reads (as a set) against the input positions where torch's float32
    # gradient of that unit is nonzero, for every mode, up and down, by size and by scale_factor.
    torch = pytest.importorskip("torch")
    cases = [
        (mode, corners, n, field, value)
        for mode, corners in [
            ("nearest", None), ("nearest-exact", None), ("area", None), ("linear", False), ("linear", True),
            ("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True),
        ]
        for n, field, value in [(4, "size", 9), (9, "size", 4), (7, "size", 3), (5, "scale_factor", 2.5),
                                (10, "scale_factor", 0.3), (6, "scale_factor", 2.0), (6, "size", 6)]
    ]
    for mode, corners, n, field, value in cases:
        two_d = mode in ("bilinear", "bicubic")
        shape = [1, 2, n] if two_d else [1, n]
        option = ([2, value] if field == "size" else [1.0, value]) if two_d else value
        corner = f", align_corners: {str(corners).lower()}" if corners is not None else ""
        result = analyse_text(spec(str(shape), f"{{name: r, op: interpolate, {field}: {option}, mode: {mode}{corner}}}"))
        layer = result.network.layer("r")
        x = torch.rand(1, *shape, requires_grad=True)
        y = torch.nn.functional.interpolate(
            x, mode=mode, align_corners=corners, **{field: tuple(option) if two_d else option}
        )
        assert tuple(y.shape[1:]) == tuple(result.layers[-1].output_shape), (mode, n, field, value)
        for u in range(y.shape[-1]):
            (grad,) = torch.autograd.grad(y[..., u].sum(), x, retain_graph=True)
            hot = (grad[0].abs().sum(dim=tuple(range(grad.ndim - 2))) > 0).nonzero().flatten().tolist()
            reads = list(layer.op.receptive_reads([tuple(shape)], len(shape) - 2, u)[0])
            assert reads == hot, (mode, corners, n, field, value, u)
