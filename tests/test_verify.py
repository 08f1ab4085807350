"""`archcalc verify`: every zoo spec runs and agrees with its analysis; mismatches exit 1."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import ArchcalcError
from archcalc.spec.graph import load
from archcalc.verify import verify

# The NumPy executor runs about 1-10 GMACs a second here: a spec above BUDGET multiply-adds per
# example runs at a smaller image (a fully convolutional classifier takes one), and one that takes
# no smaller input (ViT's position embedding fixes its size) is left to ARCHCALC_VERIFY_ALL=1, which
# runs every spec at its own input (tens of minutes). The segmentation and video specs are also
# checked at small inputs layer by layer against torch in their own zoo tests; ConvNeXt, whose
# channels-last layer norms and per-pixel linear layers run slowly in NumPy, at 3x32x32 in
# tests/test_zoo_convnext.py; the Swin family (half a minute and more each) on two-stage models in
# tests/test_zoo_swin.py.
AT_A_SMALLER_INPUT = {"convnext_tiny", "convnext_small", "convnext_base", "convnext_large"} | {
    p.stem for p in SPECS.glob("swin*.yaml")}
BUDGET = 3 * 10**9
WEIGHTS_BUDGET = 2 * 10**8  # parameters drawn at random before a run (RegNetY-128GF has 645 M)
SMALLER_SIDES = (112, 64, 32)
ZOO = sorted(p.stem for p in SPECS.glob("*.yaml") if p.stem not in AT_A_SMALLER_INPUT)


def runnable(network: Any) -> Any:
    """The network at its own input if that costs at most BUDGET MACs, else at the largest of
    SMALLER_SIDES (every spatial axis, the channels and any leading time axis kept) that does;
    None when none does, or when it has more than WEIGHTS_BUDGET parameters."""
    if os.environ.get("ARCHCALC_VERIFY_ALL"):
        return network
    totals = analyze(network).totals
    if totals.params > WEIGHTS_BUDGET:
        return None
    if totals.macs <= BUDGET:
        return network
    shape = network.input_shape
    if len(shape) < 3:
        return None
    for side in SMALLER_SIDES:
        smaller = network.with_input((*shape[:-2], side, side))
        try:
            if analyze(smaller).totals.macs <= BUDGET:
                return smaller
        except ArchcalcError:
            return None  # a size this network does not take
    return None


@pytest.mark.parametrize("model", ZOO)
def test_every_zoo_spec_verifies(model: str) -> None:
    from archcalc.executor import available_memory, default_memory_cap, working_memory

    network = runnable(load(str(SPECS / f"{model}.yaml")))
    if network is None:
        pytest.skip(f"more than {WEIGHTS_BUDGET:,} parameters, or {BUDGET:,} MACs at every input it takes (ARCHCALC_VERIFY_ALL=1 runs it)")
    needed = working_memory(network)[0]
    if needed > default_memory_cap():  # a shared machine short of memory: refused, not run
        pytest.skip(f"needs about {needed:,} bytes; {available_memory():,} are available")
    result = verify(network, batch=1)
    assert result.mismatches == ()
    assert result.peak_bytes == result.analysis.memory.inference_peak


def test_cli_reports_agreement() -> None:
    out = CliRunner().invoke(main, ["verify", str(SPECS / "neon_cnn1.yaml"), "--batch", "3", "--seed", "5"])
    assert out.exit_code == 0
    # neon CNN-1's peak, by hand: conv1 and relu1 outputs are both 32x64x64 float32 = 524,288 B
    # each, alive together while relu1 runs: 1,048,576 B per example.
    assert "verified 9 layers" in out.stdout and f"{3 * 1_048_576:,}" in out.stdout


def test_cli_exits_1_on_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    import archcalc.verify as module

    real = module.execute

    def wrong(*args, **kwargs):  # a run whose first layer came out one row short
        run = real(*args, **kwargs)
        first = next(iter(run.shapes))
        shape = run.shapes[first]
        return dataclasses.replace(run, shapes={**run.shapes, first: (shape[0], shape[1] - 1, *shape[2:])})

    monkeypatch.setattr(module, "execute", wrong)
    out = CliRunner().invoke(main, ["verify", str(SPECS / "lenet5.yaml")])
    assert out.exit_code == 1
    assert "disagree" in out.stdout and "c1" in out.stdout and "output shape" in out.stdout


def test_memory_cap_refuses_before_running() -> None:
    out = CliRunner().invoke(main, ["verify", str(SPECS / "vgg16.yaml"), "--max-memory", "100MiB"])
    assert out.exit_code == 2
    # VGG-16's weights alone are 138,357,544 x 4 bytes = 527.8 MiB
    assert "more than the cap" in out.stderr and "100.00 MiB" in out.stderr


def test_verify_runs_at_batch_2_by_default() -> None:
    result = verify(load(str(SPECS / "lenet5.yaml")))
    assert result.analysis.memory.options.batch == 2
    # LeNet-5's peak per example, by hand: c1's and tanh1's outputs (6x28x28 float32, 18,816 B
    # each) alive together while tanh1 runs; at batch 2 twice that.
    assert result.peak_bytes == 2 * (18816 + 18816)
