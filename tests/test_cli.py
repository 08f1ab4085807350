"""The command line: tables, the JSON contract, options, and a clean start-up."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main

RESNET18 = str(SPECS / "resnet18.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_summary_prints_layers_and_totals() -> None:
    code, out, _ = run("summary", RESNET18)
    assert code == 0
    assert "layer2.0.downsample.0" in out
    assert "11,689,512" in out


def test_summary_depth_folds_blocks() -> None:
    code, out, _ = run("summary", RESNET18, "--depth", "1")
    assert code == 0
    assert "layer2.0" not in out
    assert "layer2" in out and "basic" in out
    # layer2's parameters summed: 2 blocks of two 3x3 convs + BN, plus the projection
    layer2 = (128 * 64 * 9 + 128 * 128 * 9 + 2 * 128 * 2) + (128 * 128 * 9 * 2 + 2 * 128 * 2) + (128 * 64 + 2 * 128)
    assert f"{layer2:,}" in out


def test_analyze_json_contract() -> None:
    code, out, err = run("analyze", RESNET18, "--json", "--input", "3,64,64")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["name"] == "resnet18"
    assert data["input"] == [3, 64, 64]
    assert set(data["totals"]) >= {"params", "trainable_params", "frozen_params", "buffers"}
    assert data["totals"]["params"] == 11_689_512
    first = data["layers"][0]
    assert set(first) >= {"name", "op", "inputs", "output_shape", "params"}
    assert first == {**first, "name": "conv1", "op": "conv2d", "inputs": ["input"], "output_shape": [64, 32, 32], "params": 9408}
    assert data["layers"][-1]["output_shape"] == [1000]


def test_help_has_examples_everywhere() -> None:
    for command in ([], ["summary"], ["analyze"], ["schema"]):
        code, out, _ = run(*command, "-h")
        assert code == 0 and "Example" in out


def test_numeric_commands_do_not_import_sympy() -> None:
    """Nor does JSON output import what only tables need (rich), nor the spec's validators
    (pydantic) on a valid spec: start-up cost."""
    code = (
        "import sys\nfrom archcalc.cli import main\n"
        "try:\n    main(['analyze', sys.argv[1], '--json'])\nexcept SystemExit:\n    pass\n"
        "for name in ('sympy', 'rich', 'pydantic', 'networkx'):\n"
        "    assert name not in sys.modules, name + ' was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code, RESNET18], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_zoo_names_work_from_any_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("resnet18", "resnet18.yaml"):
        result = CliRunner().invoke(main, ["analyze", name, "--json"])
        assert result.exit_code == 0
        assert json.loads(result.stdout)["totals"]["params"] == 11_689_512
        assert "built-in spec" in result.stderr


def test_a_local_file_wins_over_the_zoo(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet18.yaml").write_text("name: mine\ninput: [4]\nlayers:\n  - {op: linear, out: 2}\n")
    result = CliRunner().invoke(main, ["analyze", "resnet18.yaml", "--json"])
    assert json.loads(result.stdout)["name"] == "mine" and result.stderr == ""


def test_unknown_zoo_name_suggests_the_nearest(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["summary", "resnt50"])
    assert result.exit_code == 2 and "did you mean resnet50" in result.stderr


def test_zoo_lists_the_built_in_specs() -> None:
    result = CliRunner().invoke(main, ["zoo"])
    assert result.exit_code == 0
    assert "resnet50" in result.stdout and "25,557,032" in result.stdout
