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


@pytest.mark.parametrize("frozen", [(), ("stem",), ("stem", "u.0")])
def test_checkpointed_units_keep_what_torch_keeps(frozen: tuple[str, ...]) -> None:
    """test_checkpointing's residual units written in torch, each wrapped in
    torch.utils.checkpoint(use_reentrant=False), some modules frozen: the bytes kept after the
    forward, the largest recomputation (tests/record_training.py's measurement) and the step's
    FLOPs are archcalc's, per example (batch 3 minus batch 2)."""
    from record_training import per_example, recomputed
    from test_checkpointing import residual
    from torch.utils.checkpoint import checkpoint
    from torch.utils.flop_counter import FlopCounterMode
    from torch_reference import saved_bytes

    from archcalc.spec.graph import load_data

    nn = torch.nn

    class Unit(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return checkpoint(lambda y: torch.relu(self.conv(y)) + y, x, use_reentrant=False)

    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("stem", nn.Conv2d(4, 4, 1, bias=False))
    model.add_module("u", nn.Sequential(Unit(), Unit()))
    for name in frozen:
        model.get_submodule(name).requires_grad_(False)
    data = residual(True)
    for entry in data["layers"]:
        if entry["name"] in frozen:
            entry["frozen"] = True
    if "u.0" in frozen:  # the first copy frozen, the second not: two calls
        data["layers"][1:] = [{**data["layers"][1], "repeat": 1, "frozen": True}, {**data["layers"][1], "name": "v", "repeat": 1}]
    m = analyze(load_data(data)).memory
    image = lambda b: torch.randn(b, 4, 8, 8)  # noqa: E731
    assert m.training_activations - m.recomputation == per_example(lambda b: saved_bytes(torch, model, (4, 8, 8), b), (2, 3))
    assert m.recomputation == max(per_example(lambda b: recomputed(torch, model, image, b), (2, 3)))
    counter = FlopCounterMode(display=False)
    with counter:
        model(image(1)).sum().backward()
    assert analyze(load_data(data)).total("training_flops") == counter.get_total_flops()
