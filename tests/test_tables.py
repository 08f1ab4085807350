"""Tables never cut a number or a shape: every command at 60, 80 and 200 columns on a terminal,
and piped, prints each figure whole (no `…`), leaving out named optional columns when narrow."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from archcalc.cli import main

# a forced terminal (rich honours TTY_COMPATIBLE and COLUMNS), and a pipe (CliRunner is no tty)
WIDTHS = [
    pytest.param({"COLUMNS": "60", "TTY_COMPATIBLE": "1"}, id="tty60"),
    pytest.param({"COLUMNS": "80", "TTY_COMPATIBLE": "1"}, id="tty80"),
    pytest.param({"COLUMNS": "200", "TTY_COMPATIBLE": "1"}, id="tty200"),
    pytest.param({"TTY_COMPATIBLE": "0"}, id="piped"),
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(env: dict[str, str], *args: str) -> str:
    """The command's stdout as text (styles stripped), after checking it succeeded."""
    result = CliRunner().invoke(main, [*args, "-q"], env=env)
    assert result.exit_code == 0, result.output
    text = ANSI.sub("", result.stdout)
    assert "…" not in text
    return text


def layers(spec: str, *args: str) -> list[dict]:
    """analyze --json's per-layer records: the figures each table must show whole."""
    return json.loads(run({}, "analyze", spec, "--json", *args))["layers"]


def shape(dims: list[int]) -> str:
    return "×".join(map(str, dims))


@pytest.mark.parametrize("env", WIDTHS)
def test_flops_vgg16_prints_every_figure_whole(env: dict[str, str]) -> None:
    text = run(env, "flops", "vgg16")
    # torch.utils.flop_counter at 3x224x224, one image (docs/flops.md): VGG-16 30,940,528,640
    assert "30,940,528,640" in text
    for layer in layers("vgg16"):
        if layer["flops"]:
            assert f"{layer['flops']:,}" in text, layer["name"]


@pytest.mark.parametrize("env", WIDTHS)
def test_summary_efficientnet_prints_every_shape_whole(env: dict[str, str]) -> None:
    text = run(env, "summary", "efficientnet_b0")
    # torchvision docs: EfficientNet-B0 has 5,288,548 parameters
    assert "5,288,548" in text
    for layer in layers("efficientnet_b0"):
        assert shape(layer["output_shape"]) in text, layer["name"]
        if layer["params"]:
            assert f"{layer['params']:,}" in text, layer["name"]


@pytest.mark.parametrize("env", WIDTHS)
def test_analyze_prints_every_figure_whole(env: dict[str, str]) -> None:
    text = run(env, "analyze", "resnet18", "--batch", "8")
    # torchvision docs: ResNet-18 has 11,689,512 parameters; torch.utils.flop_counter 3,628,146,688 FLOPs
    assert "11,689,512" in text and "3,628,146,688" in text
    narrow = "Left out to fit" in text
    for layer in layers("resnet18", "--batch", "8"):
        assert shape(layer["output_shape"]) in text, layer["name"]
        assert f"{layer['flops']:,}" in text, layer["name"]
        if not narrow:  # the JSON's bytes are per example, the table's at the batch
            assert f"{8 * layer['output_bytes']:,}" in text and f"{8 * layer['saved_for_backward_bytes']:,}" in text


def test_analyze_shows_flops_fields_and_bytes_not_the_summary() -> None:
    text = run({"COLUMNS": "200", "TTY_COMPATIBLE": "1"}, "analyze", "resnet18", "--batch", "2")
    header = next(line for line in text.splitlines() if "Layer" in line)
    assert [h.strip() for h in header.strip("┃").split("┃")] == [
        "Layer", "Op", "Output shape", "Params", "FLOPs", "RF", "Output bytes", "Saved bytes",
    ]
    # conv1: 64x112x112 float32 outputs at batch 2 = 2 * 64 * 112 * 112 * 4 = 6,422,528 bytes; a 7x7 field
    conv1 = next(line for line in text.splitlines() if line.startswith("│ conv1 "))
    assert "6,422,528" in conv1 and "│   7 │" in conv1


@pytest.mark.parametrize("env", WIDTHS)
def test_memory_prints_every_byte_count_whole(env: dict[str, str]) -> None:
    text = run(env, "memory", "resnet50", "--fit", "16GiB", "--reserve", "1GiB")
    # torchvision: ResNet-50's 25,557,032 float32 parameters = 102,228,128 bytes
    assert "102,228,128" in text
    # the per-image sum of outputs (tests/test_memory.py) is not torchinfo's 177,831,744
    assert "150,247,328" in text and "torchinfo's forward pass" not in text
    assert "Not counted: the CUDA context" in text


@pytest.mark.parametrize("env", WIDTHS)
@pytest.mark.parametrize("args", [
    ("rf", "resnet18"),
    ("report", "resnet18"),
    ("solve", "resnet18", "--valid-inputs"),
    ("sweep", "resnet18", "--batch", "1..3", "--input", "3,224..226,224"),
], ids=lambda a: a[0])
def test_other_tables_never_cut(env: dict[str, str], args: tuple[str, ...]) -> None:
    run(env, *args)


@pytest.mark.parametrize("env", WIDTHS)
def test_compare_keeps_each_figure_whole(env: dict[str, str]) -> None:
    text = run(env, "compare", "resnet18", "resnet50", "vgg16", "densenet121")
    # torchvision docs: parameters of ResNet-18, ResNet-50, VGG-16, DenseNet-121
    for params in ("11,689,512", "25,557,032", "138,357,544", "7,978,856"):
        assert params in text


@pytest.mark.parametrize("env", WIDTHS[:2] + WIDTHS[3:])
def test_zoo_keeps_each_count_whole(env: dict[str, str]) -> None:
    text = run(env, "zoo")
    assert "138,357,544" in text  # torchvision docs: VGG-16


def test_narrow_terminal_says_which_columns_it_left_out() -> None:
    text = run({"COLUMNS": "60", "TTY_COMPATIBLE": "1"}, "flops", "vgg16")
    assert "Left out to fit 60 columns: Element-wise, Share" in text
    assert all(len(line) <= 60 for line in text.splitlines())
    wide = run({"COLUMNS": "200", "TTY_COMPATIBLE": "1"}, "flops", "vgg16")
    assert "Left out" not in wide and "Element-wise" in wide


def test_flops_depth_sums_each_block() -> None:
    text = run({}, "flops", "resnet18", "--depth", "1")
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")}
    assert set(rows) >= {"conv1", "layer1", "layer4", "fc"} and "layer1.0.conv1" not in rows
    # layer1: four 3x3 convolutions 64 -> 64 on 56x56, 2 * 56*56*64 * 64*9 FLOPs each = 924,844,032
    assert "924,844,032" in rows["layer1"]


def test_reserve_comes_off_the_budget() -> None:
    plain = run({}, "memory", "resnet18", "--fit", "16GiB")
    reserved = run({}, "memory", "resnet18", "--fit", "16GiB", "--reserve", "2GiB")
    batch = int(re.search(r"\(training; [^)]*\): ([\d,]+)", plain).group(1).replace(",", ""))
    less = int(re.search(r"\(training; [^)]*\): ([\d,]+)", reserved).group(1).replace(",", ""))
    assert less < batch and "2,147,483,648 bytes reserved" in reserved
    lone = CliRunner().invoke(main, ["memory", "resnet18", "--reserve", "1GiB", "-q"])
    assert lone.exit_code == 2 and "--fit" in lone.output
    over = CliRunner().invoke(main, ["memory", "resnet18", "--fit", "1GiB", "--reserve", "2GiB", "-q"])
    assert over.exit_code == 2 and "leaves nothing" in over.output


def test_formula_prints_totals_first() -> None:
    text = run({}, "formula", "resnet18", "--what", "params")
    assert text.index("totals:") < text.index("conv1")
    assert "params = 11689512" in text  # torchvision docs: ResNet-18
    latex = run({}, "formula", "resnet18", "--what", "params", "--format", "latex")
    assert latex.index(r"\begin{align*}") < latex.index(r"\begin{longtable}")


def test_verify_mismatch_table_keeps_figures_whole() -> None:
    from types import SimpleNamespace

    from archcalc.render.tables import mismatch_table
    from archcalc.render.terminal import Console

    long = "layer" + ".block" * 12
    mismatch = SimpleNamespace(layer=long, figure="output shape", analysed="256×1,024×1,024", measured="256×1,024×1,023")
    console = Console(width=40, record=True, force_terminal=True)
    console.print(mismatch_table(SimpleNamespace(mismatches=[mismatch])), crop=False)
    text = console.export_text()
    assert "…" not in text and "256×1,024×1,024" in text and "256×1,024×1,023" in text
