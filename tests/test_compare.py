"""`archcalc compare`: networks side by side, the best cost per row, ratios to the first."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import zoo

from archcalc.cli import main
from archcalc.compare import compare
from archcalc.figures.depth import depth, weighted_layers
from archcalc.figures.receptive_field import last_spatial_field

# torchvision docs: ResNet-18 has 11,689,512 parameters, ResNet-50 25,557,032.
RESNET18_PARAMS = 11_689_512
RESNET50_PARAMS = 25_557_032


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "120"})
    return result.exit_code, result.stdout, result.stderr


def test_resnet18_and_resnet50_side_by_side() -> None:
    code, out, _ = run("compare", "resnet18", "resnet50")
    assert code == 0
    assert "11,689,512" in out and "25,557,032" in out
    assert f"×{RESNET50_PARAMS / RESNET18_PARAMS:.2f}" in out  # ×2.19
    for label in ("Params", "Trainable params", "FLOPs", "MACs", "Training memory, batch 1", "Inference peak", "Receptive field", "Depth", "Output"):
        assert label in out


def test_json_carries_values_ratios_and_the_best() -> None:
    code, out, _ = run("compare", "resnet18", "resnet50", "--json", "--batch", "8")
    assert code == 0
    data = json.loads(out)
    assert data["batch"] == 8 and data["reference"] == "resnet18"
    first, second = data["networks"]
    assert (first["name"], second["name"]) == ("resnet18", "resnet50")
    assert first["values"]["params"] == RESNET18_PARAMS
    assert second["values"]["params"] == RESNET50_PARAMS
    assert second["ratios"]["params"] == RESNET50_PARAMS / RESNET18_PARAMS
    assert first["ratios"]["params"] == 1.0
    assert (first["values"]["depth"], second["values"]["depth"]) == (18, 50)  # the names' depths
    assert second["values"]["output"] == [1000]
    assert data["best"]["params"] == ["resnet18"] and data["best"]["flops"] == ["resnet18"]


def test_figures_agree_with_each_networks_own_analysis() -> None:
    a, b = zoo("resnet18"), zoo("mobilenet_v2")
    rows = {m.key: m for m in compare([a, b]).metrics}
    assert rows["flops"].values == (a.totals.flops, b.totals.flops)
    assert rows["training_memory"].values == (a.memory.training_total, b.memory.training_total)
    assert rows["inference_peak"].values == (a.memory.inference_peak, b.memory.inference_peak)
    assert rows["params"].best == (1,)  # MobileNetV2 is the smaller
    assert rows["depth"].best == ()  # descriptive rows are not ranked
    assert rows["output"].ratio(1) is None


def test_depth_counts_weighted_layers_on_the_longest_path() -> None:
    r18 = zoo("resnet18")
    # conv1, 8 basic blocks x 2 convs, fc: 18 on the main path; + 3 projection shortcuts beside it
    assert depth(r18) == 1 + 8 * 2 + 1
    assert weighted_layers(r18) == 1 + 8 * 2 + 3 + 1
    # 13 convolutions and 3 linear layers, all on one path
    assert depth(zoo("vgg16")) == weighted_layers(zoo("vgg16")) == 16


def test_receptive_field_of_the_last_spatial_layer() -> None:
    # Araujo's r' = r + (k-1)j, j' = js along ResNet-18's main path:
    # conv1 7x7 s2: r 7, j 2; maxpool 3 s2: 7 + 2*2 = 11, j 4;
    # layer1, four 3x3: 11 + 4*2*4 = 43; layer2: 43 + 2*4 = 51, j 8, then three 3x3: 51 + 3*2*8 = 99;
    # layer3: 99 + 2*8 = 115, j 16, + 3*2*16 = 211; layer4: 211 + 2*16 = 243, j 32, + 3*2*32 = 435.
    assert last_spatial_field(zoo("resnet18")) == (435, 435)


def test_three_networks_including_the_zoo_names(tmp_path: Path) -> None:
    code, out, _ = run("compare", "resnet18", "resnet50", "mobilenet_v2")
    assert code == 0
    assert "mobilenet_v2" in out and "3,504,872" in out  # torchvision docs: MobileNet V2


def test_two_specs_with_one_name_are_refused(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    for path in (one, two):
        path.write_text("name: same\ninput: [4]\nlayers:\n  - {op: linear, out: 2}\n")
    code, out, err = run("compare", str(one), str(two))
    assert code == 2 and out == ""
    assert "'same'" in err and str(one) in err and str(two) in err
    code, _, err = run("compare", "resnet18", "resnet18")
    assert code == 2 and "given twice" in err


def test_one_spec_is_not_a_comparison() -> None:
    code, _, err = run("compare", "resnet18")
    assert code == 2 and "at least two" in err


def test_help_has_examples() -> None:
    code, out, _ = run("compare", "-h")
    assert code == 0 and "Example" in out
