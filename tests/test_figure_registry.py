"""The figure registry: a figure declared in one place reaches every consumer, and every pass's
errors carry the layer's file, line and path.

`bias_params` below is declared in this file only and registered for one test at a time; it then
appears in analyze --json (per layer and in the totals), formula --what, sweep --what, compare's
rows and the report's glance, with nothing else edited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from archcalc.arith import Dim, Shape, product
from archcalc.cli import main
from archcalc.errors import ShapeError
from archcalc.figures import FIGURES
from archcalc.figures.figure import (
    Figure,
    Formula,
    GlanceRow,
    Sweepable,
    Total,
    plain,
    register,
    walk,
)
from archcalc.ops.conv import Conv2d
from archcalc.spec.graph import Layer, Network

# conv: bias of 8; fc: bias of 10; relu and flatten have none: 18 in all
NET = """\
name: tiny
input: [3, 8, 8]
layers:
  - {name: conv, op: conv2d, out: 8, kernel: 3}
  - {name: relu, op: relu}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out: 10}
"""
OTHER = NET.replace("tiny", "tiny_nobias").replace("kernel: 3}", "kernel: 3, bias: false}")  # fc's 10 only
BIAS = {"conv": 8, "relu": 0, "flatten": 0, "fc": 10}


def bias_counts(network: Network, shapes: dict[str, Shape]) -> dict[str, Dim]:
    """Elements of each layer's `bias` array (0 without one)."""

    def step(layer: Layer) -> Dim:
        bias = layer.op.parameters([shapes[i] for i in layer.inputs]).get("bias")
        return 0 if bias is None else product(bias)

    return walk(network, step)


def _total(analysis: Any) -> Any:
    return sum(analysis.values["bias_params"].values(), 0)


BIAS_PARAMS = Figure(
    "bias_params", "Bias parameters", "count", lower_is_better=True,
    needs=("shapes",),
    run=lambda network, done, options: bias_counts(network, done["shapes"]),
    layer_json=lambda n, analysis: {"bias_params": plain(n)},
    totals=(Total("bias_params", "Bias params", "count", _total, lower_is_better=True, compare=200),),
    formula=Formula(lambda n: {"bias": n} if n != 0 else {}, lambda a: {"bias_params": a.total("bias_params")}),
    sweeps=(Sweepable("bias_params", "bias parameters", "count", lambda a: a.total("bias_params")),),
    glance=GlanceRow(100, lambda a: {"bias_params": a.total("bias_params")}, lambda g: ("Bias parameters", f"{g['bias_params']:,}")),
)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The toy figure registered (for this test only); the working directory holds the specs."""
    monkeypatch.setitem(FIGURES, "bias_params", BIAS_PARAMS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(NET)
    (tmp_path / "other.yaml").write_text(OTHER)
    return tmp_path


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_analyze_json_appends_its_fields(registered: Path) -> None:
    data = json.loads(run("analyze", "tiny.yaml", "--json"))
    assert list(data["totals"])[-1] == "bias_params" and data["totals"]["bias_params"] == 18
    assert {r["name"]: r["bias_params"] for r in data["layers"]} == BIAS
    assert all(list(r)[-1] == "bias_params" for r in data["layers"])


def test_formula_offers_and_writes_it(registered: Path) -> None:
    assert "bias_params" in run("formula", "--help")
    data = json.loads(run("formula", "tiny.yaml", "--what", "bias_params", "--format", "json"))
    assert [r["name"] for r in data["layers"]] == ["conv", "fc"]  # layers without a bias left out
    assert data["totals"]["bias_params"]["text"] == "18"


def test_sweep_offers_and_sweeps_it(registered: Path) -> None:
    assert "bias_params" in run("sweep", "--help")
    run("sweep", "tiny.yaml", "--what", "bias_params", "--batch", "1..3", "-o", "bias.csv")
    assert (registered / "bias.csv").read_text() == "B,bias_params\n1,18\n2,18\n3,18\n"


def test_compare_has_its_row(registered: Path) -> None:
    data = json.loads(run("compare", "tiny.yaml", "other.yaml", "--json"))
    assert [n["values"]["bias_params"] for n in data["networks"]] == [18, 10]
    assert list(data["networks"][0]["values"])[-1] == "bias_params"
    assert data["best"]["bias_params"] == ["tiny_nobias"]  # lower is better


def test_report_glance_has_its_row(registered: Path) -> None:
    data = json.loads(run("report", "tiny.yaml", "--format", "json"))
    assert list(data["glance"])[-1] == "bias_params" and data["glance"]["bias_params"] == 18
    assert "| Bias parameters | 18 |" in run("report", "tiny.yaml", "--format", "markdown")


def test_unregistered_it_is_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(NET)
    assert "bias_params" not in run("analyze", "tiny.yaml", "--json")
    assert "bias_params" not in run("formula", "--help")


def test_a_pass_is_registered_after_the_passes_it_needs() -> None:
    with pytest.raises(ValueError, match="needs the passes"):
        register(Figure("latency", "Latency", "count", lower_is_better=True, needs=("kernels",), run=lambda network, done, options: {}))
    assert "latency" not in FIGURES


# --- errors: one walk gives every pass's errors the layer's place ---------------------------------

@pytest.mark.parametrize("method", ["output_shape", "parameters", "macs", "receptive_step", "saved_for_backward"])
def test_every_pass_locates_its_errors(method: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A rule that fails (shapes, params, FLOPs, receptive field, memory) is reported at the layer."""

    def fails(*args: Any) -> Any:
        raise ShapeError("the rule failed")

    monkeypatch.setattr(Conv2d, method, fails)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(NET)
    result = CliRunner().invoke(main, ["analyze", "tiny.yaml", "--json"])
    assert result.exit_code == 2
    # conv is on line 4 of the spec
    assert result.stderr == "archcalc: error: tiny.yaml:4 layer 'conv': the rule failed\n"
