"""`archcalc report`: the design review in every format, its figures, silencing and bad options."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main
from archcalc.figures.memory import MemoryOptions
from archcalc.review.report import build_report
from archcalc.spec.graph import load


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_glance_figures_are_the_analysis() -> None:
    report = build_report(load(str(SPECS / "resnet50.yaml")), MemoryOptions(batch=32))
    g = report.glance
    assert g.params == 25_557_032  # torchvision docs
    assert g.flops == 8_178_368_512  # torch.utils.flop_counter
    assert g.depth == 50 and g.receptive_field == (427, 427)
    # the stages: 112, 56, 28, 14, 7, 1 and the head; their parameters add up to the total
    assert [s.resolution for s in report.stages] == [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7), (1, 1), ()]
    assert sum(s.params for s in report.stages) == g.params
    # 32 images x 64x112x112 float32 per stem output (conv1, bn1; relu works in place but is an
    # output of its own): 3 x 32 x 64 x 112 x 112 x 4 bytes
    assert report.stages[0].activation_bytes == 3 * 32 * 64 * 112 * 112 * 4


def test_block_tree_groups_repeats() -> None:
    report = build_report(load(str(SPECS / "resnet18.yaml")), MemoryOptions())
    layer2 = next(n for n in report.tree if n.name == "layer2")
    assert layer2.kind == "basic ×2" and [c.name for c in layer2.children] == ["layer2.0", "layer2.1"]
    # layer2: conv 3x3 64->128 + conv 3x3 128->128 + 2 BN, the projection 1x1 + BN, then a
    # second block of two 3x3 128->128 convs and 2 BN
    assert layer2.params == (73_728 + 147_456 + 512) + (8_192 + 256) + (2 * 147_456 + 512)


def test_terminal_report_has_every_section() -> None:
    code, out, _ = run("report", str(SPECS / "resnet50.yaml"))
    assert code == 0
    for text in ("design review: resnet50", "25,557,032", "layer3", "Stages", "Findings", "dropped-pixels", "225"):
        assert text in out


@pytest.mark.parametrize("fmt", ["markdown", "html", "json"])
def test_file_formats(fmt: str, tmp_path) -> None:
    target = tmp_path / f"review.{fmt}"
    code, _, err = run("report", str(SPECS / "vgg16.yaml"), "--format", fmt, "-o", str(target))
    assert code == 0 and "wrote" in err
    text = target.read_text()
    if fmt == "json":
        data = json.loads(text)
        assert data["glance"]["params"] == 138_357_544
        assert any(f["rule"] == "dense-heavy" for f in data["findings"])
    elif fmt == "markdown":
        assert text.startswith("# Design review: vgg16") and "| Layers |" in text and "dense-heavy" in text
    else:
        assert text.lstrip().lower().startswith("<!doctype html") and "dense-heavy" in text


def test_rules_can_be_silenced_on_the_command_line_and_in_the_spec(tmp_path) -> None:
    _, out, _ = run("report", str(SPECS / "vgg16.yaml"), "--format", "json", "--ignore", "dense-heavy")
    assert not any(f["rule"] == "dense-heavy" for f in json.loads(out)["findings"])
    text = (SPECS / "vgg16.yaml").read_text() + "ignore: [dense-heavy]\n"
    spec = tmp_path / "vgg16_quiet.yaml"
    spec.write_text(text)
    _, out, _ = run("report", str(spec), "--format", "json")
    data = json.loads(out)
    assert data["ignored"] == ["dense-heavy"]
    assert not any(f["rule"] == "dense-heavy" for f in data["findings"])


def test_bad_options_exit_2(tmp_path) -> None:
    code, _, err = run("report", str(SPECS / "resnet18.yaml"), "--ignore", "no-such-rule")
    assert code == 2 and "no-such-rule" in err and "dropped-pixels" in err
    code, _, err = run("report", str(SPECS / "resnet18.yaml"), "--format", "markdown", "-o", str(tmp_path / "missing" / "r.md"))
    assert code == 2 and "cannot write" in err
    code, _, err = run("report", "resnet1800")
    assert code == 2 and "did you mean" in err


def test_resnet50_stages_are_he_et_al_table_1() -> None:
    """He et al. 2016, Table 1 (and torchvision's resnet.py): conv1 7x7/2 gives 64 channels at
    112x112; conv2_x (the 3x3/2 max pool and layer1's three bottlenecks) gives 256 at 56x56;
    conv3_x (layer2, whose first block starts with a 1x1 at 56x56 and reduces in its 3x3) 512 at
    28x28; conv4_x 1024 at 14x14; conv5_x 2048 at 7x7; then global pooling and the classifier."""
    report = build_report(load(str(SPECS / "resnet50.yaml")), MemoryOptions())
    stages = [(s.first, s.last, s.resolution, s.channels) for s in report.stages]
    assert stages == [
        ("conv1", "relu", (112, 112), 64),
        ("maxpool", "layer1.2.relu3", (56, 56), 256),
        ("layer2.0.conv1", "layer2.3.relu3", (28, 28), 512),
        ("layer3.0.conv1", "layer3.5.relu3", (14, 14), 1024),
        ("layer4.0.conv1", "layer4.2.relu3", (7, 7), 2048),
        ("avgpool", "avgpool", (1, 1), 2048),
        ("flatten", "fc", (), 1000),
    ]
    # layers: stem conv, bn, relu; the max pool and 3 blocks of 10 layers (conv, bn, relu x2,
    # conv, bn, add, relu) plus the first block's projection (conv, bn): 1 + 3 * 10 + 2 = 33;
    # layer2: 4 blocks and a projection, 4 * 10 + 2 = 42; layer3: 6 * 10 + 2; layer4: 3 * 10 + 2
    assert [s.layers for s in report.stages[:5]] == [3, 33, 42, 62, 32]
    # the receptive field of each stage's last layer: 7x7/2 gives 7 (stride 2); the 3x3/2 max
    # pool adds 2 * 2 = 11 (stride 4); each of layer1's three 3x3 adds 2 * 4: 35; layer2's
    # strided 3x3 adds 2 * 4 = 43 (stride 8), its three others 3 * 2 * 8: 91; layer3: 91 + 2 * 8
    # + 5 * 2 * 16 = 267; layer4: 267 + 2 * 16 + 2 * 2 * 32 = 427
    assert [s.receptive_field for s in report.stages[:5]] == [(7, 7), (35, 35), (91, 91), (267, 267), (427, 427)]


def test_a_block_that_reduces_in_its_middle_joins_the_next_stage() -> None:
    """MobileNetV2 (Sandler et al. 2018, Table 2): the 112x112 stage ends with the first block's
    16 channels; the next block expands at 112x112 and reduces in its depthwise 3x3, so it starts
    the 56x56 stage, whose output has 24 channels. DenseNet-121 (Huang et al. 2017, Table 1)
    lists its transition's 1x1 convolution at the resolution before its pooling: the 56x56 stage
    ends with it, at 128 channels."""
    mobilenet = build_report(load(str(SPECS / "mobilenet_v2.yaml")), MemoryOptions())
    assert [(s.resolution, s.channels) for s in mobilenet.stages[:5]] == [
        ((112, 112), 16), ((56, 56), 24), ((28, 28), 32), ((14, 14), 96), ((7, 7), 1280)
    ]
    densenet = build_report(load(str(SPECS / "densenet121.yaml")), MemoryOptions())
    assert [(s.resolution, s.channels) for s in densenet.stages[:5]] == [
        ((112, 112), 64), ((56, 56), 128), ((28, 28), 256), ((14, 14), 512), ((7, 7), 1024)
    ]


def test_default_batch_is_one_as_in_the_other_commands() -> None:
    # memory, analyze and flops default to --batch 1; the report does too, and says so.
    code, out, _ = run("report", str(SPECS / "resnet18.yaml"), "--format", "json")
    assert code == 0 and json.loads(out)["glance"]["batch"] == 1
    code, out, _ = run("report", str(SPECS / "resnet18.yaml"))
    assert code == 0 and "Memory at batch 1" in out
    for command in ("memory", "analyze", "flops"):
        default = next(p.default for p in main.commands[command].params if p.name == "batch")
        assert str(default) == "1", command


def test_squeeze_and_excitation_stays_inside_its_stage() -> None:
    """MobileNetV3-Large (Howard et al. 2019, Table 1): stages end at 112x112 with 16 channels, 56x56
    with 24, 28x28 with 40, 14x14 with 112 and 7x7 with 960; the 1x1 maps of the
    squeeze-and-excitation blocks inside them are no stages of their own."""
    report = build_report(load(str(SPECS / "mobilenet_v3_large.yaml")), MemoryOptions())
    assert [(s.resolution, s.channels) for s in report.stages] == [
        ((112, 112), 16), ((56, 56), 24), ((28, 28), 40), ((14, 14), 112), ((7, 7), 960),
        ((1, 1), 960), ((), 1000),
    ]
