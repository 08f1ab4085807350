"""Receptive fields by Araujo et al.'s closed forms: hand derivations and published figures."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import SPECS, zoo

from archcalc.cli import main
from archcalc.figures.receptive_field import ReceptiveField


def fields(result):
    return {r.path: r.receptive_field for r in result.layers}


def test_published_alexnet_and_vgg16() -> None:
    # Araujo, Norris & Sim (Distill 2019), Table 1: AlexNet 195, VGG-16 212, effective stride 32.
    alex = fields(zoo("alexnet"))["features.12"]
    vgg = fields(zoo("vgg16"))["features.30"]  # the last max pooling
    assert alex.size == (195, 195) and alex.stride == (32, 32)
    assert vgg.size == (212, 212) and vgg.stride == (32, 32)


def test_dilated_stack(analyse_text) -> None:
    # 3x3 kernels with dilation 1, 2, 4 span 3, 5, 9; r = 1 + 2 + 4 + 8 = 15, stride 1,
    # padding 1 + 2 + 4 = 7 (the 'same' padding of each layer).
    result = analyse_text(
        "name: d\ninput: [1, 32, 32]\nlayers:\n"
        "  - {op: conv2d, out: 1, kernel: 3, dilation: 1, padding: 1}\n"
        "  - {op: conv2d, out: 1, kernel: 3, dilation: 2, padding: 2}\n"
        "  - {name: last, op: conv2d, out: 1, kernel: 3, dilation: 4, padding: 4}\n"
    )
    assert fields(result)["last"] == ReceptiveField((15, 15), (1, 1), (7, 7))


def test_strided_stack(analyse_text) -> None:
    # r: 1 -> 3 (jump 2) -> 3 + 2*2 = 7 (jump 4) -> 7 + 2*4 = 15 (jump 4)
    # P: 1 -> 1 + 1*2 = 3 -> 3 + 1*4 = 7; unit 0 sees [-7, 7], centred on 0.
    result = analyse_text(
        "name: s\ninput: [1, 32, 32]\nlayers:\n"
        "  - {op: conv2d, out: 1, kernel: 3, stride: 2, padding: 1}\n"
        "  - {op: max_pool2d, kernel: 3, stride: 2, padding: 1}\n"
        "  - {name: last, op: conv2d, out: 1, kernel: 3, padding: 1}\n"
    )
    field = fields(result)["last"]
    assert field == ReceptiveField((15, 15), (4, 4), (7, 7))
    assert field.center == (0.0, 0.0)


def test_residual_block_is_the_union_of_its_paths(analyse_text) -> None:
    # body: two 3x3 p1 convs: r = 5, P = 2; skip: r = 1, P = 0. Union [-2, 2]: r = 5, P = 2;
    # both centred on 0, so aligned.
    result = analyse_text(
        "name: r\ninput: [2, 8, 8]\nlayers:\n"
        "  - {name: a, op: conv2d, out: 2, kernel: 3, padding: 1}\n"
        "  - {name: b, op: conv2d, out: 2, kernel: 3, padding: 1}\n"
        "  - {name: add, op: add, from: [b, input]}\n"
    )
    assert fields(result)["add"] == ReceptiveField((5, 5), (1, 1), (2, 2), misaligned=False)


def test_shifted_branch_is_misaligned(analyse_text) -> None:
    # padding only before: the branch sees [-2, 0] (centre -1), the skip [0, 0] (centre 0).
    # Union [-2, 0]: r = 3, P = 2, flagged misaligned.
    result = analyse_text(
        "name: m\ninput: [2, 8, 8]\nlayers:\n"
        "  - {name: a, op: conv2d, out: 2, kernel: 3, padding: [[2, 0], [2, 0]]}\n"
        "  - {name: add, op: add, from: [a, input]}\n"
    )
    assert fields(result)["add"] == ReceptiveField((3, 3), (1, 1), (2, 2), misaligned=True)


def test_global_layers_see_the_whole_input_and_coverage_is_reported() -> None:
    result = zoo("resnet18")
    f = fields(result)
    assert f["avgpool"] == "global" and f["fc"] == "global"
    # ResNet-18's last block sees 435 pixels (Araujo et al. list 435 for ResNet-18 style stacks
    # too), more than the 224 input.
    assert f["layer4.1.relu2"].size == (435, 435)
    assert f["layer4.1.relu2"].covers(result.network.input_shape)
    assert not f["layer1.0.conv1"].covers(result.network.input_shape)


def test_rf_command_and_json() -> None:
    import json

    result = CliRunner().invoke(main, ["rf", str(SPECS / "alexnet.yaml")])
    assert result.exit_code == 0 and "195" in result.stdout and "whole input" in result.stdout
    out = CliRunner().invoke(main, ["analyze", str(SPECS / "alexnet.yaml"), "--json"]).stdout
    layers = {layer["name"]: layer for layer in json.loads(out)["layers"]}
    assert layers["features.12"]["receptive_field"]["size"] == [195, 195]
    assert layers["classifier.6"]["receptive_field"] is None


# --- where the closed forms fail: fields that depend on the unit's position ---------------------


def unit(result, layer: str, *index: int):
    """The exact input interval per axis of one unit, propagated backward (the --at query)."""
    from archcalc.figures.receptive_field import unit_field
    from archcalc.figures.shapes import output_shapes

    return unit_field(result.network, output_shapes(result.network), layer, index)


def test_transposed_convolution_has_a_field_per_unit(analyse_text) -> None:
    # conv_transpose1d k 3, s 2, p 0 on 4 inputs -> 9 outputs; output o sums input i with tap t
    # where 2i + t = o: o even reads i = o/2 - 1 and o/2 (t = 2, 0); o odd reads (o-1)/2 (t = 1).
    # o = 0 -> [0, 0]; o = 1 -> [0, 0]; o = 2 -> [0, 1]; o = 7 -> [3, 3]; o = 8 -> [3, 3].
    result = analyse_text(
        "name: t\ninput: [1, 4]\nlayers:\n"
        "  - {name: up, op: conv_transpose1d, out: 1, kernel: 3, stride: 2}\n"
    )
    field = fields(result)["up"]
    assert field.position_dependent and "transposed" in field.varies
    assert field.size == (2,) and field.smallest == (1,) and field.stride == (None,)
    assert [unit(result, "up", o) for o in (0, 1, 2, 7, 8)] == [((0, 0),), ((0, 0),), ((0, 1),), ((3, 3),), ((3, 3),)]


def test_stride_one_transposed_convolution_keeps_a_closed_form(analyse_text) -> None:
    # Stride 1: a convolution with padding span-1-p = 3-1-1 = 1 before: r = 3, j = 1, P = 1.
    result = analyse_text(
        "name: t\ninput: [1, 6]\nlayers:\n"
        "  - {name: up, op: conv_transpose1d, out: 1, kernel: 3, padding: 1}\n"
    )
    assert fields(result)["up"] == ReceptiveField((3,), (1,), (1,))


def test_unet_head_counts_the_deep_path(analyse_text) -> None:
    # The old pass kept only the skip's 3x3 field at the concat. Head unit (8, 8) on a 16x16
    # input: up (k 2, s 2) reads c2 unit 4; c2 reads down units 3..5; down (2x2 pool) reads c1
    # units 6..11; c1 (3x3 p1) reads input 5..12: 8 wide. The skip path (c1 unit 8: 7..9) lies
    # inside. Unit 9 reads c2 unit 4 too: input 5..12 again; unit 0: c2 0 -> down 0..1 -> c1
    # 0..3 -> input 0..4 (5 wide, clipped by the border).
    result = analyse_text(
        "name: unet\ninput: [1, 16, 16]\nlayers:\n"
        "  - {name: c1, op: conv2d, out: 2, kernel: 3, padding: 1}\n"
        "  - {name: down, op: max_pool2d, kernel: 2}\n"
        "  - {name: c2, op: conv2d, out: 2, kernel: 3, padding: 1}\n"
        "  - {name: up, op: conv_transpose2d, out: 2, kernel: 2, stride: 2}\n"
        "  - {name: cat, op: concat, from: [up, c1]}\n"
        "  - {name: head, op: conv2d, out: 1, kernel: 1}\n"
    )
    head = fields(result)["head"]
    assert head.position_dependent and head.misaligned is False
    assert head.size == (8, 8) and head.smallest == (5, 5)
    assert unit(result, "head", 8, 9) == ((5, 12), (5, 12))
    assert unit(result, "head", 0, 15) == ((0, 4), (11, 15))


def test_uneven_adaptive_pool_windows(analyse_text) -> None:
    # PyTorch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o)) for n = 5, o = 3:
    # [0, 2), [1, 4), [3, 5): sizes 2, 3, 2, overlapping and unevenly spaced.
    result = analyse_text(
        "name: a\ninput: [1, 5]\nlayers:\n  - {name: pool, op: adaptive_avg_pool1d, output: 3}\n"
    )
    field = fields(result)["pool"]
    assert field.position_dependent and field.size == (3,) and field.smallest == (2,)
    assert [unit(result, "pool", i) for i in range(3)] == [((0, 1),), ((1, 3),), ((3, 4),)]


def test_even_adaptive_pool_is_a_window(analyse_text) -> None:
    # n = 6, o = 3: windows [2i, 2i + 2): a 2-wide window with stride 2.
    result = analyse_text(
        "name: a\ninput: [1, 6]\nlayers:\n  - {name: pool, op: adaptive_avg_pool1d, output: 3}\n"
    )
    assert fields(result)["pool"] == ReceptiveField((2,), (2,), (0,))


def test_circular_padding_wraps_around(analyse_text) -> None:
    # k 3, p 1 circular on 8 positions: unit 0 reads -1 -> 7, 0, 1: the hull is the whole axis.
    result = analyse_text(
        "name: c\ninput: [1, 8]\nlayers:\n"
        "  - {name: conv, op: conv1d, out: 1, kernel: 3, padding: 1, padding_mode: circular}\n"
    )
    field = fields(result)["conv"]
    assert field.position_dependent and "circular" in field.varies
    assert unit(result, "conv", 0) == ((0, 7),) and unit(result, "conv", 4) == ((3, 5),)
    assert field.size == (8,) and field.smallest == (3,)


def test_reflect_padding_within_the_window_keeps_the_closed_form(analyse_text) -> None:
    # k 3, p 1 reflect: unit 0 reads -1 -> 1, 0, 1: inside its window [-1, 1], so the closed
    # form holds (r 3, P 1) and the unit sees [0, 1] on the input, as with zero padding.
    result = analyse_text(
        "name: r\ninput: [1, 8]\nlayers:\n"
        "  - {name: conv, op: conv1d, out: 1, kernel: 3, padding: 1, padding_mode: reflect}\n"
    )
    assert fields(result)["conv"] == ReceptiveField((3,), (1,), (1,))
    assert unit(result, "conv", 0) == ((0, 1),)


def test_reflect_padding_past_the_window_is_position_dependent(analyse_text) -> None:
    # k 3, padding [2, 0] reflect: unit 0's window is [-2, 0]; -2 -> 2 and -1 -> 1, so it reads
    # [0, 2], not the [0, 0] the closed form clipped to the input would say.
    result = analyse_text(
        "name: r\ninput: [1, 8]\nlayers:\n"
        "  - {name: conv, op: conv1d, out: 1, kernel: 3, padding: [[2, 0]], padding_mode: reflect}\n"
    )
    field = fields(result)["conv"]
    assert field.position_dependent and "reflect" in field.varies
    assert unit(result, "conv", 0) == ((0, 2),) and unit(result, "conv", 5) == ((3, 5),)


def test_paths_with_different_strides(analyse_text) -> None:
    # Branch a: k 2, s 2 on 8 positions -> 4, unit u reads [2u, 2u + 1] (jump 2). Branch b: the
    # slice [0, 4), unit u reads u (jump 1). Their sum: [u, 2u + 1], sizes 2, 3, 4, 5.
    result = analyse_text(
        "name: m\ninput: [1, 8]\nlayers:\n"
        "  - {name: a, op: conv1d, out: 1, kernel: 2, stride: 2}\n"
        "  - {name: b, op: slice, dim: 2, start: 0, end: 4, from: input}\n"
        "  - {name: add, op: add, from: [a, b]}\n"
    )
    field = fields(result)["add"]
    assert field.position_dependent and field.misaligned and "effective strides" in field.varies
    assert field.size == (5,) and field.smallest == (2,)
    assert [unit(result, "add", u) for u in range(4)] == [((0, 1),), ((1, 3),), ((2, 5),), ((3, 7),)]


def test_dilated_taps_leave_border_gaps(analyse_text) -> None:
    # k 3, d 2, p 1: unit 0 reads -1 (padding), 1, 3: the closed form's region is [-1, 3], but on
    # the input the unit sees 1..3 (position 0 is a gap between taps).
    result = analyse_text(
        "name: d\ninput: [1, 8]\nlayers:\n  - {name: conv, op: conv1d, out: 1, kernel: 3, dilation: 2, padding: 1}\n"
    )
    assert fields(result)["conv"] == ReceptiveField((5,), (1,), (1,))
    assert unit(result, "conv", 0) == ((1, 3),)


def test_global_and_mixing_ops(analyse_text) -> None:
    # groupnorm's statistics cover every position; a unit after it sees the whole input.
    result = analyse_text(
        "name: g\ninput: [4, 8, 8]\nlayers:\n"
        "  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}\n"
        "  - {name: norm, op: groupnorm, groups: 2}\n"
    )
    assert fields(result)["norm"] == "global"
    assert unit(result, "norm", 3, 3) == ((0, 7), (0, 7))


def test_unit_query_cli_and_errors(tmp_path) -> None:
    import json

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: n\ninput: [1, 8, 8]\nlayers:\n  - {name: conv, op: conv2d, out: 1, kernel: 3, padding: 1}\n"
        "  - {name: fc, op: flatten}\n"
    )
    run = CliRunner().invoke
    ok = run(main, ["rf", str(spec), "--at", "conv", "--unit", "0,4", "--json"])
    assert ok.exit_code == 0
    assert json.loads(ok.stdout) == {"layer": "conv", "unit": [0, 4], "interval": [[0, 1], [3, 5]], "size": [2, 3]}
    text = run(main, ["rf", str(spec), "--at", "conv", "--unit", "7,7"])
    assert text.exit_code == 0 and "rows 6..7 (2), columns 6..7 (2)" in text.stdout
    for args, message in [
        (["--at", "cnv", "--unit", "0,0"], "did you mean 'conv'"),
        (["--at", "conv", "--unit", "0"], "needs 2 indices"),
        (["--at", "conv", "--unit", "0,8"], "outside 0..7"),
        (["--at", "conv", "--unit", "a,b"], "whole numbers"),
        (["--at", "conv", "--unit", "²,3"], "whole numbers"),  # a digit to str.isdigit, not to int()
        (["--at", "conv"], "go together"),
        (["--at", "fc", "--unit", "0,0"], "spatial axes"),
    ]:
        bad = run(main, ["rf", str(spec), *args])
        assert bad.exit_code == 2 and message in bad.stderr, (args, bad.stderr)


def test_position_dependent_fields_in_json_and_table(tmp_path) -> None:
    import json

    spec = tmp_path / "net.yaml"
    spec.write_text("name: a\ninput: [1, 5]\nlayers:\n  - {name: pool, op: adaptive_avg_pool1d, output: 3}\n")
    out = CliRunner().invoke(main, ["analyze", str(spec), "--json"]).stdout
    field = json.loads(out)["layers"][0]["receptive_field"]
    assert field["position_dependent"] is True and field["size"] == [3] and field["smallest_size"] == [2]
    assert field["stride"] == [None] and field["padding"] == [None] and "adaptive" in field["reason"]
    table = CliRunner().invoke(main, ["rf", str(spec)], env={"COLUMNS": "80"}).stdout
    assert "2–3 *1" in table and "varies" in table and "*1: from 'pool'" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def check_boxes(result, boxes) -> None:
    """Every output unit's interval, and the layer's largest and smallest field, against boxes
    measured elsewhere (torch's gradients)."""
    network = result.network
    for u, box in boxes.items():
        assert unit(result, network.output, *u) == box, (u, box)
    field = fields(result)[network.output]
    spans = [[b[a][1] - b[a][0] + 1 for b in boxes.values() if b[a] is not None] for a in range(len(network.input_shape) - 1)]
    assert field.position_dependent
    assert field.size == tuple(map(max, spans)) and field.smallest == tuple(map(min, spans))


def test_fields_equal_torch_recorded_gradient_support(analyse_text) -> None:
    # PyTorch 2.14's gradient support of every output unit, recorded by
    # tests/receptive_field_reference.py (a U-Net; circular/reflect padding, ceil mode, adaptive
    # pools and a transposed convolution in 1-D; a U-Net with bilinear up-sampling; pad modes,
    # nearest-exact, bicubic, pixel_shuffle and area interpolation in 2-D).
    from receptive_field_reference import NETWORKS, recorded

    for name, boxes in recorded().items():
        check_boxes(analyse_text(NETWORKS[name][0]), boxes)
