"""`archcalc import torch`: a torchvision builder imported gives the figures of the hand-written
zoo spec (parameters, every layer's shape, FLOPs, saved-for-backward bytes, inference peak);
what archcalc cannot map is listed, or kept as opaque layers whose costs are reported unknown;
a saved .pt2 program imports like the module. Skipped without torch (CI has none); the zoo
specs themselves are checked against torch in tests/test_torch_measurements.py."""

from __future__ import annotations

import collections
import functools
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc import api
from archcalc.cli import main
from archcalc.errors import BridgeError

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from record_torch import TORCHVISION  # noqa: E402

from archcalc.bridges.torch_import import build, capture, import_model  # noqa: E402

# Small inputs where the spec allows (each import traces the model once, a few seconds; the
# others under ARCHCALC_VERIFY_ALL=1, as tests/test_verify.py runs the whole zoo).
FAST = {"resnet18": (3, 64, 64), "squeezenet1_1": (3, 64, 64), "mobilenet_v3_small": (3, 64, 64)}
SMALL = (3, 64, 64)
ALL = {
    **{name: SMALL for name in [
        "resnet34", "resnet50", "resnet101", "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2",
        "vgg11", "vgg11_bn", "vgg13_bn", "vgg16", "alexnet", "mobilenet_v2", "mobilenet_v3_large",
        "efficientnet_b0", "efficientnet_v2_s", "regnet_x_400mf", "regnet_x_800mf", "regnet_y_400mf",
        "regnet_y_800mf", "mnasnet0_5", "mnasnet1_0", "squeezenet1_0", "convnext_tiny",
        "shufflenet_v2_x0_5", "densenet121",
    ]},
    # at the zoo spec's input (Inception's pooling needs 75 pixels; video clips are small)
    **{name: tuple(TORCHVISION[name][2]) for name in ["googlenet", "inception_v3", "r3d_18", "mc3_18"]},
}
CHECKED = {**FAST, **(ALL if os.environ.get("ARCHCALC_VERIFY_ALL") == "1" else {})}
# Where torchvision computes a step otherwise than the zoo spec writes it, the figures that do
# not depend on it are compared, and the shapes of the layers both have:
OTHERWISE = {
    # torchvision's channel_shuffle is view-transpose-view: three layers for the zoo's one
    "shufflenet_v2_x0_5": ("params", "trainable", "flops", "saved", "inference_peak"),
    # each _DenseLayer concatenates all earlier features itself (the zoo chains one concat per
    # layer): the same parameters, FLOPs and saved tensors, other tensors alive at once
    "densenet121": ("params", "trainable", "flops", "saved"),
}


def figures(analysis: api.Analysis) -> dict[str, object]:
    t, m = analysis.totals, analysis.memory
    return {"params": t.params, "trainable": t.trainable_params, "flops": t.flops,
            "saved": m.training_activations, "inference_peak": m.inference_peak}


@functools.lru_cache(maxsize=None)
def imported(name: str) -> str:
    """The spec `archcalc import torch` writes for a torchvision builder (traced once per run)."""
    builder, kwargs, _ = TORCHVISION[name]
    package, _, function = builder.rpartition(".")
    text, warnings = import_model(f"{package}:{function}", kwargs, CHECKED[name], opaque=False)
    assert warnings == []
    return text


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_torchvision_import_equals_the_zoo_spec(name: str) -> None:
    shape = CHECKED[name]
    analysis = api.analyze(api.loads(imported(name)))
    zoo = api.analyze(api.load(name, input_shape=shape))
    compared = OTHERWISE.get(name, tuple(figures(zoo)))
    assert {k: v for k, v in figures(analysis).items() if k in compared} == {k: v for k, v in figures(zoo).items() if k in compared}
    ours = {r.path: r.output_shape for r in analysis.layers}
    # torchvision's StochasticDepth(p=0) returns its input: no operator to trace
    theirs = {r.path: r.output_shape for r in zoo.layers if not (r.op == "stochastic_depth" and zoo.network.layer(r.path).op.p == 0)}
    if name not in OTHERWISE:
        assert {p: ours[p] for p in ours.keys() & theirs.keys()} == {p: theirs[p] for p in ours.keys() & theirs.keys()}
        assert collections.Counter(ours.values()) == collections.Counter(theirs.values())


def test_resnet_imports_with_blocks_and_repeats() -> None:
    """Torchvision's BasicBlock is one block; each stage one `repeat` entry."""
    text = imported("resnet18")
    assert "  basic_block:\n" in text
    assert "  - {name: layer2, block: basic_block, repeat: 2, out: 128, stride: 2 if $i == 0 else 1, has_downsample: $i == 0}" in text
    assert len(text.splitlines()) < 40


def test_an_operation_archcalc_lacks_stops_the_import_with_the_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["import", "torch", "torch_import_models:gated_net", "--input", "3,8,8", "-o", str(tmp_path / "g.yaml")])
    assert result.exit_code == 2
    assert "2 operation(s) have no archcalc op" in result.output
    assert "aten.addcmul.default at gate (node addcmul)" in result.output
    assert "aten.erf.default at gate" in result.output
    assert "--opaque" in result.output
    assert not (tmp_path / "g.yaml").exists()


def test_opaque_layers_keep_shape_and_parameters_and_report_unknown_costs(tmp_path: Path) -> None:
    target = tmp_path / "g.yaml"
    result = CliRunner().invoke(main, ["import", "torch", "torch_import_models:gated_net", "--args", '{"channels": 6}', "--input", "3,8,8", "--opaque", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.count("is opaque") == 2 and "FLOPs and saved tensors are unknown" in result.output
    network = api.load(str(target))
    model = build("torch_import_models:gated_net", {"channels": 6})
    analysis = api.analyze(network)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())  # 6 scales in the opaque addcmul
    assert [r.op for r in analysis.layers] == ["conv2d", "opaque", "opaque", "adaptive_avg_pool2d", "flatten", "linear"]
    assert analysis.layers[2].output_shape == (6, 8, 8)
    document = json.loads(CliRunner().invoke(main, ["analyze", str(target), "--json"]).output)
    assert document["unknown"] == ["gate.addcmul", "gate.erf"]
    table = CliRunner().invoke(main, ["flops", str(target)]).output
    assert "WARNING: FLOPs and memory are unknown for 2 opaque layer(s) (gate.addcmul, gate.erf)" in " ".join(table.split())


def test_a_saved_program_imports_like_the_module(tmp_path: Path) -> None:
    model = build("torch_import_models:small_cnn", {})
    program = capture(model, (3, 16, 16), "small_cnn").program
    path = tmp_path / "small_cnn.pt2"
    torch.export.save(program, str(path))
    from_file, _ = import_model(str(path), {}, None, opaque=False)
    from_module, _ = import_model("torch_import_models:small_cnn", {}, (3, 16, 16), opaque=False)
    assert from_file == from_module
    analysis = api.analyze(api.loads(from_file))
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert [r.path for r in analysis.layers][:3] == ["0.0", "0.1", "0.2"]


def test_parameters_the_forward_never_reads_are_named() -> None:
    text, warnings = import_model("torch_import_models:unused", {}, (4,), opaque=False)
    assert warnings == ["2 parameter(s) the traced forward never reads are not in the spec: skipped.weight, skipped.bias"]
    assert api.analyze(api.loads(text)).totals.params == 4 * 4 + 4


def test_bad_sources_are_clear_errors() -> None:
    with pytest.raises(BridgeError, match="PACKAGE.MODULE:CALLABLE"):
        import_model("torchvision.models.resnet18", {}, (3, 8, 8), opaque=False)
    with pytest.raises(BridgeError, match="has no callable"):
        import_model("torchvision.models:no_such_net", {}, (3, 8, 8), opaque=False)
    with pytest.raises(BridgeError, match="--input is needed"):
        import_model("torchvision.models:resnet18", {}, None, opaque=False)


def test_without_torch_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    result = CliRunner().invoke(main, ["import", "torch", "torchvision.models:resnet18", "--input", "3,8,8", "-o", str(tmp_path / "r.yaml")])
    assert result.exit_code == 2
    assert "pip install 'archcalc[torch]'" in result.output
