"""archcalc against what PyTorch measured, without torch: tests/data/torch_measurements.json.

tests/record_torch.py wrote the file with torch and torchvision (their versions are in it): for
every torchvision spec of the zoo and for hand-built networks (the U-Net, seeded random
networks), the parameters, buffers, output shape, torch.utils.flop_counter FLOPs and the bytes
autograd saves for backward per example. Each must equal archcalc's analysis of the spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS
from torch_reference import assert_layers_match

from archcalc.analysis import Analysis, analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import expand, load
from archcalc.spec.spec import parse_spec

DATA = json.loads((Path(__file__).parent / "data" / "torch_measurements.json").read_text())
ZOO: dict[str, Any] = DATA["zoo"]
RANDOM: list[dict[str, Any]] = DATA["random_networks"]


def test_recorded_with_the_pinned_torch() -> None:
    assert DATA["torch"].startswith("2.14.1")
    assert DATA["torchvision"].startswith("0.29.1")


def test_every_torchvision_spec_is_recorded() -> None:
    # every spec but the neon course's and LeNet-5, which torchvision does not have, and the
    # language models, recorded from transformers (tests/data/hf_measurements.json)
    hf = json.loads((Path(__file__).parent / "data" / "hf_measurements.json").read_text())["models"]
    not_torchvision = {"lenet5"} | {p.stem for p in SPECS.glob("neon_*.yaml")} | set(hf)
    assert {p.stem for p in SPECS.glob("*.yaml")} - not_torchvision <= set(ZOO)


def per_example(network: Any) -> Analysis:
    """float32, one example: the figures torch was measured with."""
    return analyze(network, MemoryOptions(batch=1))


def figures(analysis: Analysis) -> dict[str, Any]:
    return {
        "params": analysis.totals.params,
        "buffers": analysis.totals.buffers,
        "output_shape": list(analysis.output_shape),
        "flops": analysis.totals.flops,
        "saved_bytes_per_example": analysis.memory.training_activations,
    }


def recorded(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in
            ("params", "buffers", "output_shape", "flops", "saved_bytes_per_example")}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_spec_matches_torch(name: str) -> None:
    network = load(str(SPECS / f"{name}.yaml"))
    assert list(network.input_shape) == ZOO[name]["input"]
    assert figures(per_example(network)) == recorded(ZOO[name])


def network_of(entry: dict[str, Any]) -> Any:
    return expand(parse_spec(entry["spec"]), entry["spec"])


@pytest.mark.parametrize("entry", RANDOM, ids=[e["spec"]["name"] for e in RANDOM])
def test_random_network_matches_torch_layer_by_layer(entry: dict[str, Any]) -> None:
    analysis = per_example(network_of(entry))
    got = figures(analysis)
    expected = recorded(entry)
    assert got == expected
    assert_layers_match(analysis, entry["layers"])


BY_PRECISION = [(name, precision) for name, entry in sorted(ZOO.items())
                for precision in entry.get("saved_bytes_per_example_by_precision", {})]


def test_the_precisions_of_issue_16_are_recorded() -> None:
    # bf16 and fp16 autocast on ResNet-50, a model cast to bf16 on ResNet-18
    assert {("resnet50", "bf16-mixed"), ("resnet50", "fp16-mixed"), ("resnet18", "bf16")} <= set(BY_PRECISION)


@pytest.mark.parametrize(("name", "precision"), BY_PRECISION)
def test_saved_bytes_under_each_precision_match_torch(name: str, precision: str) -> None:
    """What torch keeps per example under torch.autocast("cpu", half) (bf16-mixed, fp16-mixed)
    or with the model cast to bf16 (bf16), recorded by tests/record_torch.py (PRECISIONS)."""
    options = MemoryOptions(batch=1, precision=precision)  # type: ignore[arg-type]
    got = analyze(load(str(SPECS / f"{name}.yaml")), options).memory.training_activations
    assert got == ZOO[name]["saved_bytes_per_example_by_precision"][precision]
