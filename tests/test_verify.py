"""`archcalc verify`: every zoo spec runs and agrees with its analysis; mismatches exit 1."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main
from archcalc.spec.graph import load
from archcalc.verify import verify

# FCN and DeepLabV3 cost 143 and 169 GMACs at their 3x520x520 input (minutes in NumPy): they run
# at 3x64x64 in tests/test_zoo_segmentation.py instead. The Swin family (4.5 to 141 GMACs, half a
# minute and more each) runs its blocks on a two-stage model in tests/test_zoo_swin.py.
AT_A_SMALLER_INPUT = {"fcn_resnet50", "deeplabv3_resnet50"} | {p.stem for p in SPECS.glob("swin*.yaml")}
ZOO = sorted(p.stem for p in SPECS.glob("*.yaml") if p.stem not in AT_A_SMALLER_INPUT)


@pytest.mark.parametrize("model", ZOO)
def test_every_zoo_spec_verifies(model: str) -> None:
    from archcalc.executor import available_memory, default_memory_cap, working_memory

    network = load(str(SPECS / f"{model}.yaml"))
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
