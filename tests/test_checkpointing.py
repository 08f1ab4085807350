"""Activation checkpointing: which blocks a spec or --checkpoint names, what a checkpointed block
keeps (its inputs) and what its recomputation adds at the peak, by hand and symbolically."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import OptionError, SpecError
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load, load_data
from archcalc.spec.source import read_file


def residual(checkpoint: Any = None, shape: list[Any] | None = None) -> dict[str, Any]:
    """A 1x1 stem, then two residual units (3x3 convolution, ReLU, add the unit's input)."""
    call: dict[str, Any] = {"name": "u", "block": "unit", "repeat": 2}
    if checkpoint is not None:
        call["checkpoint"] = checkpoint
    return {
        "name": "residual", "input": shape or [4, 8, 8], "symbols": {"H": 8, "W": 8},
        "blocks": {"unit": {"layers": [
            {"name": "conv", "op": "conv2d", "out": 4, "kernel": 3, "padding": 1, "bias": False},
            {"name": "relu", "op": "relu"},
            {"name": "add", "op": "add", "from": ["relu", "input"]},
        ]}},
        "layers": [{"name": "stem", "op": "conv2d", "out": 4, "kernel": 1, "bias": False}, call],
    }


def test_a_checkpointed_block_keeps_its_input_and_recomputes_its_own() -> None:
    """Each [4, 8, 8] float32 tensor is 4*8*8*4 = 1024 bytes. Without checkpointing: the stem
    keeps the image (for its weight gradient), each unit's convolution its input and each ReLU
    its output: 5 tensors, 5120 bytes. Checkpointed: the image, and each unit's input (the stem's
    output, u.0's output) for the checkpoint: 3072 bytes; backward recomputes one unit at a
    time, whose convolution keeps the unit's input (already kept) and whose ReLU keeps a new
    output: 1024 more at the peak."""
    plain = analyze(load_data(residual())).memory
    assert plain.training_activations == 5 * 1024
    m = analyze(load_data(residual(True))).memory
    assert m.checkpointed == ("u.0", "u.1")
    assert (m.training_activations, m.recomputation, m.recomputed_block) == (3 * 1024 + 1024, 1024, "u.0")
    at_batch = analyze(load_data(residual(True)), MemoryOptions(batch=8)).memory
    assert at_batch.training_activations == 8 * m.training_activations


def test_the_spec_key_and_the_option_name_the_same_blocks() -> None:
    by_spec = analyze(load_data(residual(True))).memory
    for names in (("u",), ("u.0", "u.1"), ("every-block",), ("u", "u.1")):
        by_option = analyze(load_data(residual()), MemoryOptions(checkpoint=names)).memory
        assert (by_option.checkpointed, by_option.training_activations) == (by_spec.checkpointed, by_spec.training_activations)
    one = analyze(load_data(residual()), MemoryOptions(checkpoint=("u.1",))).memory
    assert one.checkpointed == ("u.1",)
    assert one.training_activations == 4 * 1024 + 1024  # u.0's conv and relu keep theirs, u.1 its input


def test_every_block_is_each_copy_of_the_outermost_repeats() -> None:
    resnet = load(str(SPECS / "resnet50.yaml"))
    blocks = analyze(resnet, MemoryOptions(checkpoint=("every-block",))).memory.checkpointed
    assert len(blocks) == 3 + 4 + 6 + 3 and blocks[0] == "layer1.0" and blocks[-1] == "layer4.2"
    gpt2 = load(str(SPECS / "gpt2.yaml"))
    assert analyze(gpt2, MemoryOptions(checkpoint=("every-block",))).memory.checkpointed == tuple(f"transformer.h.{i}" for i in range(12))


def test_symbolic_formula_is_the_numeric_figure() -> None:
    """The recomputation is the largest block's (an exact Max over blocks); at the spec's sizes
    the formula gives the numeric figure."""
    network = load_data(residual(True, [4, "H", "W"]), symbolic=True)
    symbolic = analyze(network, MemoryOptions(batch=1)).memory
    at = {network.symbols["H"]: 8, network.symbols["W"]: 8}
    assert symbolic.training_activations.subs(at) == 4096
    resnet = load(str(SPECS / "resnet50.yaml"), input_shape=(3, "H", "W"))
    formula = analyze(resnet, MemoryOptions(checkpoint=("every-block",))).memory
    numeric = analyze(load(str(SPECS / "resnet50.yaml"), input_shape=(3, 160, 96)), MemoryOptions(checkpoint=("every-block",))).memory
    sizes = {resnet.symbols["H"]: 160, resnet.symbols["W"]: 96}
    assert (formula.training_activations.subs(sizes), formula.recomputation.subs(sizes)) == (numeric.training_activations, numeric.recomputation)


@pytest.mark.parametrize("names, message", [
    (("v",), "--checkpoint names 'v', which is not a block of residual (its blocks: u; or every-block)"),
    (("uu",), "did you mean 'u'?"),
])
def test_an_unknown_block_is_refused_with_the_known_ones(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        analyze(load_data(residual()), MemoryOptions(checkpoint=names))


def test_every_block_needs_a_repeat() -> None:
    data = residual()
    del data["layers"][1]["repeat"]
    with pytest.raises(OptionError, match="repeats none"):
        analyze(load_data(data), MemoryOptions(checkpoint=("every-block",)))


@pytest.mark.parametrize("change, message", [
    (lambda d: d["layers"][0].update(checkpoint=True), "put it on a block call, not an op entry"),
    (lambda d: d["layers"][1].update(checkpoint="yes"), "'checkpoint' must be true or false"),
    (lambda d: (d["layers"][1].pop("repeat"), d["layers"][1].update(checkpoint=True, inline=True)), "drop 'inline'"),
])
def test_a_misplaced_checkpoint_key_is_a_spec_error(change: Any, message: str) -> None:
    data = residual()
    change(data)
    with pytest.raises(SpecError, match=message):
        load_data(data)


def test_cli_checkpoint_option_reaches_memory() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["memory", str(SPECS / "resnet50.yaml"), "--checkpoint", "layer3,layer4", "--json"])
    assert result.exit_code == 0, result.output
    import json

    memory = json.loads(result.stdout)["memory"]
    assert memory["checkpoint"] == ["layer3", "layer4"]
    assert memory["checkpointed_blocks"] == [*(f"layer3.{i}" for i in range(6)), *(f"layer4.{i}" for i in range(3))]
    typo = runner.invoke(main, ["memory", str(SPECS / "resnet50.yaml"), "--checkpoint", "layer5"])
    assert typo.exit_code == 2 and "did you mean 'layer4'" in typo.output


def test_the_zoo_key_on_a_call_checkpoints_each_copy() -> None:
    data = read_file(str(SPECS / "resnet50.yaml"))
    for entry in data["layers"]:
        if str(entry.get("name", "")).startswith("layer"):
            entry["checkpoint"] = True
    by_key = analyze(load_data(data)).memory
    by_option = analyze(load(str(SPECS / "resnet50.yaml")), MemoryOptions(checkpoint=("every-block",))).memory
    assert by_key.training_activations == by_option.training_activations


@pytest.mark.parametrize("command, schema", [
    (["memory", "--json"], "memory"), (["analyze", "--json"], "analyze"), (["flops", "--json"], "flops"),
    (["compare", "--json"], "compare"),
])
def test_checkpointed_json_matches_its_schema(command: list[str], schema: str) -> None:
    import json

    import jsonschema

    specs = [str(SPECS / "resnet18.yaml"), *([str(SPECS / "resnet34.yaml")] if schema == "compare" else [])]
    result = CliRunner().invoke(main, [command[0], *specs, "--checkpoint", "layer2,layer4.1", *command[1:]])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.Draft202012Validator(json.loads((SPECS.parent / "archcalc" / "schemas" / f"{schema}.json").read_text())).validate(document)
    assert ("layer2.1" in json.dumps(document)) == (schema != "compare")  # compare lists no blocks
