"""Property: on random small networks, archcalc's figures are PyTorch's, layer by layer.

Each network (tests/random_networks.py: 1-D/2-D/3-D; convolutions and transposed convolutions
with strides, dilations, groups and every padding form and mode; max/avg/LP pooling in ceil mode
at odd sizes; adaptive pools; interpolation in every mode; batch norm; linear layers; branches
joined by add, concat and a sigmoid gate; frozen layers) is written as a spec and as a torch module; torch measures every layer's output
shape, parameters and flop_counter FLOPs, and the bytes autograd saves per example
((batch 4 - batch 2) / 2, each storage once). Skipped without torch; CI checks a recorded set
(tests/test_torch_measurements.py).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_networks import random_network, torch_module
from torch_reference import assert_layers_match, measure_module

from archcalc.analysis import analyze
from archcalc.errors import ArchcalcError
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import expand
from archcalc.spec.spec import parse_spec

torch = pytest.importorskip("torch")


def torch_figures(spec: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """What torch measures, or None and torch's message when it refuses the network."""
    torch.manual_seed(0)
    try:
        model = torch_module(torch, spec)
        return measure_module(torch, model, tuple(spec["input"]), (2, 4)), ""
    except (RuntimeError, ValueError) as exc:
        return None, str(exc)


@settings(max_examples=15, deadline=None)
@given(st.randoms(use_true_random=False))
def test_random_networks_match_torch(rng: random.Random) -> None:
    spec = random_network(rng)
    measured, refusal = torch_figures(spec)
    try:
        analysis = analyze(expand(parse_spec(spec), spec), MemoryOptions(batch=1))
    except ArchcalcError as exc:
        assert measured is None, f"archcalc refuses a network torch runs: {exc}"
        return
    assert measured is not None, f"archcalc accepts a network torch refuses: {refusal}"
    assert list(analysis.output_shape) == measured["output_shape"]
    assert analysis.totals.params == measured["params"]
    assert analysis.totals.buffers == measured["buffers"]
    assert analysis.totals.flops == measured["flops"]
    assert_layers_match(analysis, measured["layers"])
    assert analysis.memory.training_activations == measured["saved_bytes_per_example"]
