"""Property: on random small networks (tests/random_networks.py: convolutions, transposed
convolutions, linear layers, frozen layers, branches), archcalc's forward and backward FLOPs of a
training step are what torch.utils.flop_counter counts when torch runs one (less its count of a
grouped convolution's weight gradient, `groups` times the work): the forward of two
examples, then the backward of the output's sum. Skipped without torch; CI checks the recorded
ResNet-18/50 and GPT-2 steps (tests/test_training_measurements.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_networks import random_network, torch_module

from archcalc.analysis import analyze
from archcalc.errors import ArchcalcError
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import expand
from archcalc.spec.spec import parse_spec

torch = pytest.importorskip("torch")


@settings(max_examples=12, deadline=None)
@given(st.randoms(use_true_random=False))
def test_step_flops_match_flop_counter(rng: random.Random) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    spec = random_network(rng)
    try:
        analysis = analyze(expand(parse_spec(spec), spec), MemoryOptions(batch=1))
        torch.manual_seed(0)
        model = torch_module(torch, spec).train()
        forward, backward = FlopCounterMode(display=False), FlopCounterMode(display=False)
        with forward:
            out = model(torch.randn(2, *spec["input"])).sum()
        if not out.requires_grad:  # every layer frozen: no backward to run
            return
        with backward:
            out.backward()
    except (ArchcalcError, RuntimeError, ValueError):
        return  # a network one side refuses: test_torch_random_networks checks they agree
    # flop_counter's weight gradient of a grouped convolution counts every input channel against
    # every output channel (conv_backward_flop: its batch is x's C_in, not C_in/groups), `groups`
    # times the products torch runs, which archcalc counts (docs/flops.md)
    layers = {row.path: row for row in analysis.layers}
    grouped = sum((entry.get("groups", 1) - 1) * layers[entry["name"]].flops.flops
                  for entry in spec["layers"] if entry["op"].startswith("conv") and not entry.get("frozen"))
    assert [analysis.total("training_forward_flops"), analysis.total("training_backward_flops") + grouped] == [
        forward.get_total_flops() // 2, backward.get_total_flops() // 2]
