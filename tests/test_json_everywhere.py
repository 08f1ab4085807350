"""`--json` on every command: pure JSON on stdout, valid against its schema (archcalc/schemas,
docs/json.md), and the same figures under the same keys as the `analyze --json` contract."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main

SCHEMAS = Path(__file__).resolve().parent.parent / "archcalc" / "schemas"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
LENET = str(SPECS / "lenet5.yaml")
RESNET18 = str(SPECS / "resnet18.yaml")
# a transposed convolution with stride 2: the field depends on the unit's position (docs/json.md)
UPSAMPLE = """
name: upsample
input: [2, 8, 8]
layers:
  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {name: up, op: conv_transpose2d, out: 2, kernel: 2, stride: 2}
  - {name: head, op: conv2d, out: 2, kernel: 3}
"""

# command -> its schema; sweep writes its grid with -o FILE.json instead (docs/json.md)
CASES: list[tuple[str, list[str]]] = [
    ("analyze", ["analyze", LENET, "--json"]),
    ("analyze", ["analyze", "-", "--json", "--input", "2,H,W"]),  # UPSAMPLE: a field unknown on every axis
    ("summary", ["summary", LENET, "--json"]),
    ("summary", ["summary", RESNET18, "--json", "--depth", "1"]),
    ("summary", ["summary", RESNET18, "--json", "--input", "3,H,W"]),
    ("memory", ["memory", RESNET18, "--json", "--batch", "8"]),
    ("memory", ["memory", RESNET18, "--json", "--fit", "16GiB"]),
    ("memory", ["memory", LENET, "--json", "--infer", "--fit", "1MiB"]),
    ("memory", ["memory", RESNET18, "--json", "--fit", "16GiB", "--input", "3,H,W", "--batch", "32"]),
    ("flops", ["flops", RESNET18, "--json", "--batch", "4"]),
    ("rf", ["rf", LENET, "--json"]),
    ("rf", ["rf", RESNET18, "--json", "--at", "layer2.0.conv2", "--unit", "5,9"]),
    ("solve", ["solve", RESNET18, "--valid-inputs", "--json"]),
    ("verify", ["verify", LENET, "--json"]),
    ("verify", ["verify", RESNET18, "--json", "--input", "3,32,32"]),
    ("compare", ["compare", LENET, RESNET18, "--json"]),
    ("compare", ["compare", LENET, "-", "--json", "--input", "2,H,W", "--batch", "B"]),
    ("report", ["report", LENET, "--json"]),
    ("report", ["report", RESNET18, "--format", "json"]),
    ("formula", ["formula", LENET, "--json", "--what", "params"]),
    ("graph", ["graph", RESNET18, "--json", "--depth", "1"]),
    ("graph", ["graph", LENET, "--json"]),
]


def schema(name: str) -> dict[str, Any]:
    document = json.loads((SCHEMAS / f"{name}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return document  # type: ignore[no-any-return]


def run(args: list[str]) -> tuple[dict[str, Any], str]:
    """The command's JSON (stdout must be nothing else) and its stderr; `-` reads UPSAMPLE."""
    result = CliRunner().invoke(main, args, input=UPSAMPLE)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def valid(name: str, document: Any) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(document)


@pytest.mark.parametrize(("name", "args"), CASES, ids=[" ".join(a[:1] + a[2:]) for _, a in CASES])
def test_json_parses_and_matches_its_schema(name: str, args: list[str]) -> None:
    document, _ = run(args)
    valid(name, document)


def test_every_command_takes_json() -> None:
    without = {name for name, command in main.commands.items() if not any("--json" in p.opts for p in command.params)}
    assert without == {"sweep", "import", "export"}  # each writes a file (a grid; a spec; PyTorch source or ONNX), no document


@pytest.mark.parametrize("case", ["resnet18", "inception_v3", "unet", "neon_cnn1_symbolic", "transfer"])
def test_pinned_analyze_outputs_match_the_schema(case: str) -> None:
    valid("analyze", json.loads((GOLDEN / f"{case}.json").read_text()))


def test_pinned_compare_and_report_match_their_schemas() -> None:
    valid("compare", json.loads((GOLDEN / "compare.json").read_text()))
    valid("report", json.loads((GOLDEN / "report_resnet50.json").read_text()))


def test_a_zoo_name_leaves_its_note_on_stderr_and_stdout_pure() -> None:
    for command in (["summary"], ["flops"], ["memory", "--fit", "8GiB"], ["solve", "--valid-inputs"], ["verify"]):
        document, err = run([command[0], "lenet5", "--json", *command[1:]])
        assert "using the built-in spec" in err
        assert document["name"] == "lenet5"


def test_zoo_lists_every_builtin_spec_with_the_analyze_totals() -> None:
    document, _ = run(["zoo", "--json"])
    valid("zoo", document)
    by_name = {s["name"]: s for s in document["specs"]}
    assert Path(by_name["lenet5"]["file"]).name == "lenet5.yaml"
    analyzed, _ = run(["analyze", LENET, "--json"])
    assert by_name["lenet5"]["totals"] == analyzed["totals"]
    assert by_name["resnet18"]["totals"]["params"] == 11_689_512  # torchvision docs: ResNet-18, 11,689,512 params


def _analyze_layers(args: list[str]) -> dict[str, dict[str, Any]]:
    document, _ = run(["analyze", *args, "--json"])
    return {layer["name"]: layer for layer in document["layers"]}


def test_summary_rows_are_analyze_layers_and_folded_blocks_sum_them() -> None:
    layers = _analyze_layers([RESNET18])
    keys = ("op", "output_shape", "params", "trainable", "buffers")
    flat, _ = run(["summary", RESNET18, "--json"])
    assert [row["name"] for row in flat["layers"]] == list(layers)
    for row in flat["layers"]:
        assert {k: row[k] for k in keys} == {k: layers[row["name"]][k] for k in keys}
    folded, _ = run(["summary", RESNET18, "--json", "--depth", "1"])
    block = next(row for row in folded["layers"] if row["name"] == "layer1")
    assert block["block"] and not any(row["block"] for row in flat["layers"])
    assert block["params"] == sum(layers[p]["params"] for p in block["layers"])
    assert block["output_shape"] == layers[block["layers"][-1]]["output_shape"]
    # every layer in exactly one row, in order
    assert [p for row in folded["layers"] for p in row["layers"]] == list(layers)
    assert sum(row["params"] for row in folded["layers"]) == folded["totals"]["params"] == 11_689_512


def test_flops_layers_and_batch_figures() -> None:
    layers = _analyze_layers([RESNET18])
    document, _ = run(["flops", RESNET18, "--json", "--batch", "4"])
    for row in document["layers"]:
        assert {k: row[k] for k in ("macs", "flops", "elementwise_flops")} == {k: layers[row["name"]][k] for k in ("macs", "flops", "elementwise_flops")}
    assert document["totals"]["flops"] == 2 * sum(r["macs"] for r in document["layers"])
    assert document["flops_at_batch"] == 4 * document["totals"]["flops"]
    assert document["training_step_flops"] == 3 * 4 * document["totals"]["flops"]


def test_memory_block_is_analyze_s_and_the_fit_is_the_largest_batch() -> None:
    analyzed, _ = run(["analyze", RESNET18, "--json", "--batch", "8", "--optimizer", "sgd"])
    document, _ = run(["memory", RESNET18, "--json", "--batch", "8", "--optimizer", "sgd"])
    assert document["memory"] == analyzed["totals"]["memory"]
    m = document["memory"]
    assert document["inference_total"] == m["weights"] + m["buffers"] + m["inference_peak"]
    assert document["fit"] is None
    # the fit, by hand from the batch-1 memory block: training total = fixed + batch * per example
    one, _ = run(["memory", RESNET18, "--json"])
    fitted, _ = run(["memory", RESNET18, "--json", "--fit", "16GiB"])
    b1 = one["memory"]
    fixed = b1["weights"] + b1["buffers"] + b1["gradients"] + b1["optimizer_state"]
    fit = fitted["fit"]
    assert (fit["budget"], fit["fixed"], fit["per_example"]) == (16 * 2**30, fixed, b1["training_activations"])
    assert fixed + fit["batch"] * fit["per_example"] <= fit["budget"] < fixed + (fit["batch"] + 1) * fit["per_example"]


def test_symbolic_fit_is_the_numeric_fit_at_every_size() -> None:
    import sympy

    numeric, _ = run(["memory", RESNET18, "--json", "--fit", "16GiB"])
    symbolic, _ = run(["memory", RESNET18, "--json", "--fit", "16GiB", "--input", "3,H,W", "--batch", "32"])
    fit = symbolic["fit"]
    h, w = sympy.symbols("H W", integer=True, positive=True)
    at = {"H": h, "W": w}
    assert sympy.sympify(fit["batch"], locals=at).subs({h: 224, w: 224}) == numeric["fit"]["batch"]
    # the largest square input at batch 32: the total fits there and not one size up
    total = fit["fixed"] + 32 * sympy.sympify(fit["per_example"], locals=at)
    side = fit["square_input"]
    assert total.subs({h: side, w: side}) <= fit["budget"] < total.subs({h: side + 1, w: side + 1})


def test_verify_shows_analysed_and_measured_figures() -> None:
    layers = _analyze_layers([LENET, "--batch", "2"])
    document, _ = run(["verify", LENET, "--json"])
    assert document["agree"] and document["mismatches"] == []
    assert document["measured_inference_peak"] == document["inference_peak"]
    for row in document["layers"]:
        assert row["params"] == row["measured_params"] == layers[row["name"]]["params"]
        assert row["output_shape"] == row["measured_output_shape"] == layers[row["name"]]["output_shape"]


def test_solve_lists_the_layers_that_drop_pixels() -> None:
    document, _ = run(["solve", RESNET18, "--valid-inputs", "--json"])
    height = document["axes"][0]
    assert height["size"] == 224 and height["modulus"] == 32
    # 1x1 stride-2 downsample on an even size n reads rows 0, 2, ..., n-2: the last row is unread
    assert [(d["layer"], d["size"], d["lost"]) for d in height["dropping"]] == [
        ("layer2.0.downsample.0", 56, 1), ("layer3.0.downsample.0", 28, 1), ("layer4.0.downsample.0", 14, 1),
    ]


@pytest.mark.parametrize("command", [["report", LENET], ["formula", LENET, "--what", "shapes"], ["graph", LENET]])
def test_json_is_format_json(command: list[str]) -> None:
    runner = CliRunner()
    assert runner.invoke(main, [*command, "--json"]).stdout == runner.invoke(main, [*command, "--format", "json"]).stdout
    clash = runner.invoke(main, [*command, "--json", "--format", "markdown" if command[0] == "report" else "latex" if command[0] == "formula" else "dot"])
    assert clash.exit_code == 2 and "--json is --format json" in clash.stderr and clash.stdout == ""


def test_schema_output_of_prints_each_shipped_schema() -> None:
    for path in SCHEMAS.glob("*.json"):
        out = CliRunner().invoke(main, ["schema", "--output-of", path.stem]).stdout
        assert json.loads(out) == json.loads(path.read_text())


def test_schema_json_is_the_spec_schema() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["schema", "--json"]).stdout
    assert out == runner.invoke(main, ["schema"]).stdout
    jsonschema.Draft202012Validator.check_schema(json.loads(out))


def test_verify_json_on_a_mismatch_exits_1_and_still_prints_the_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import archcalc.verify as verification

    real = verification.verify

    def disagreeing(network: Any, **kwargs: Any) -> Any:
        result = real(network, **kwargs)
        wrong = verification.Mismatch("c1", "parameters", "156", "155")
        return dataclasses.replace(result, mismatches=(wrong,))

    monkeypatch.setattr(verification, "verify", disagreeing)
    result = CliRunner().invoke(main, ["verify", LENET, "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    valid("verify", document)
    assert not document["agree"]
    assert document["mismatches"] == [{"layer": "c1", "figure": "parameters", "analysed": "156", "measured": "155"}]


def test_docs_link_every_schema_and_every_schema_is_tested() -> None:
    docs = (SCHEMAS.parent.parent / "docs" / "json.md").read_text()
    files = {p.name for p in SCHEMAS.glob("*.json")}
    assert {f for f in files if f"(../archcalc/schemas/{f})" in docs} == files
    assert {f"{name}.json" for name, _ in CASES} | {"zoo.json"} == files


def test_json_does_not_depend_on_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = CliRunner().invoke(main, ["summary", RESNET18, "--json"]).stdout
    monkeypatch.setenv("COLUMNS", "40")
    assert CliRunner().invoke(main, ["summary", RESNET18, "--json"]).stdout == wide


def test_memory_fit_reserve_solves_in_what_the_reserve_leaves() -> None:
    """--reserve 256MiB of a 1GiB budget fits what a 768MiB budget does; the document keeps both."""
    spec = str(SPECS / "resnet18.yaml")
    reserved, _ = run(["memory", spec, "--fit", "1GiB", "--reserve", "256MiB", "--json"])
    plain, _ = run(["memory", spec, "--fit", "768MiB", "--json"])
    valid("memory", reserved)
    assert reserved["fit"]["budget"] == 2**30 and reserved["fit"]["reserve"] == 2**28
    assert reserved["fit"]["batch"] == plain["fit"]["batch"] and plain["fit"]["reserve"] == 0
