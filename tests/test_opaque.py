"""The `opaque` op (what `archcalc import --opaque` keeps of an operation archcalc has no op
for): its shape and parameter count are counted, its FLOPs and memory are reported unknown in
every table and JSON document, never as a silent 0. No torch needed; `archcalc import torch`
without torch names the extra to install."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc import api
from archcalc.cli import main

SPEC = """
name: gated
input: [3, 8, 8]
layers:
  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {name: gate, op: opaque, shape: [4, 8, 8], params: 4, traced: aten.addcmul.default}
  - {name: pool, op: adaptive_avg_pool2d, output: 1}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out: 10}
"""


@pytest.fixture
def spec(tmp_path: Path) -> str:
    path = tmp_path / "gated.yaml"
    path.write_text(SPEC)
    return str(path)


def test_an_opaque_layer_counts_its_shape_and_parameters() -> None:
    analysis = api.analyze(api.loads(SPEC))
    # conv 4*3*3*3 + 4 = 112, gate 4, fc 4*10 + 10 = 50
    assert analysis.totals.params == 112 + 4 + 50
    assert analysis.layer("gate").output_shape == (4, 8, 8)
    assert analysis.layer("gate").flops.flops == 0  # counted as nothing, and said to be unknown:


def test_json_and_tables_say_the_costs_are_unknown(spec: str) -> None:
    runner = CliRunner()
    for command in (["analyze", spec, "--json"], ["flops", spec, "--json"], ["memory", spec, "--json"]):
        assert json.loads(runner.invoke(main, command).output)["unknown"] == ["gate"], command
    for command in (["analyze", spec], ["flops", spec], ["memory", spec]):
        text = " ".join(runner.invoke(main, command).output.split())
        assert "WARNING: FLOPs and memory are unknown for 1 opaque layer(s) (gate)" in text, command


def test_a_network_without_opaque_layers_has_no_unknown_key() -> None:
    result = CliRunner().invoke(main, ["analyze", "resnet18", "--json", "--quiet"])
    assert "unknown" not in json.loads(result.output)


def test_an_opaque_layer_cannot_run(spec: str) -> None:
    result = CliRunner().invoke(main, ["verify", spec])
    assert result.exit_code == 2
    assert "opaque layer (aten.addcmul.default) cannot be run" in result.output


def test_import_torch_without_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed (CI has none anyway)
    result = CliRunner().invoke(main, ["import", "torch", "torchvision.models:resnet18", "--input", "3,8,8", "-o", str(tmp_path / "r.yaml")])
    assert result.exit_code == 2
    assert "pip install 'archcalc[torch]'" in result.output
    assert not (tmp_path / "r.yaml").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--args", "[1]"], "--args must be a JSON object"),
    (["--args", "{"], "--args must be a JSON object"),
    (["--input", "3,x,8"], "--input must be sizes >= 1"),
])
def test_import_torch_option_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["import", "torch", "torchvision.models:resnet18", "--input", "3,8,8", *args, "-o", str(tmp_path / "r.yaml")])
    assert result.exit_code == 2
    assert message in result.output
