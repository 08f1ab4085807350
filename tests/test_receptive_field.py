"""Receptive fields by Araujo et al.'s closed forms: hand derivations and published figures."""

from __future__ import annotations

from click.testing import CliRunner

from archcalc.cli import main
from archcalc.receptive_field import ReceptiveField
from conftest import SPECS, zoo


def fields(result):
    return {r.path: r.receptive_field for r in result.layers}


def test_published_alexnet_and_vgg16() -> None:
    # Araujo, Norris & Sim (Distill 2019), Table 1: AlexNet 195, VGG-16 212, effective stride 32.
    alex = fields(zoo("alexnet"))["features.12"]
    vgg = fields(zoo("vgg16"))["stage5.pool"]
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
