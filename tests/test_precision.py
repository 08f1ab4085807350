"""--precision: bytes per parameter of each policy, and the type of every saved tensor under
torch.autocast, derived by hand on small networks (and, where torch is installed, measured).

The autocast rules (docs/memory.md, Precision) are torch 2.14.1's CPU lists: convolutions,
linear and SDPA cast their inputs to the half type and keep the copies, reflection padding of
2 axes casts to float32, everything else computes in the widest type of its inputs.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import OptionError
from archcalc.figures.memory import MemoryOptions, check_options
from archcalc.spec.graph import expand
from archcalc.spec.spec import parse_spec

# y = layernorm(x); y + fc2(gelu(fc1(y))): a transformer's MLP with its residual, on 4 tokens of 6
BLOCK: dict[str, Any] = {
    "name": "block", "input": [4, 6],
    "layers": [
        {"name": "ln", "op": "layernorm"},
        {"name": "fc1", "op": "linear", "out": 8},
        {"name": "act", "op": "gelu"},
        {"name": "fc2", "op": "linear", "out": 6},
        {"name": "add", "op": "add", "from": ["ln", "fc2"]},
    ],
}
# conv, reflection padding of both spatial axes, conv: on a 1x6x6 image
PADS: dict[str, Any] = {
    "name": "pads", "input": [1, 6, 6],
    "layers": [
        {"name": "c1", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"name": "pad", "op": "pad", "padding": [[1, 1], [1, 1]], "mode": "reflect"},
        {"name": "c2", "op": "conv2d", "out": 1, "kernel": 3},
    ],
}


def saved(spec: dict[str, Any], precision: str) -> int:
    network = expand(parse_spec(spec), spec)
    return analyze(network, MemoryOptions(precision=precision)).memory.training_activations  # type: ignore[arg-type]


def test_the_mlp_block_under_autocast_by_hand() -> None:
    # float32: ln keeps x (24 x 4) and a mean and rstd per token (8 x 4); fc1 keeps ln's output
    # (96), gelu its input (32 x 4), fc2 gelu's output (128); the add keeps nothing
    assert saved(BLOCK, "fp32") == 96 + 32 + 96 + 128 + 128
    # bf16 autocast: ln follows its float32 input (96 + 32: the statistics of its float32
    # weight's type); fc1 casts ln's float32 output and keeps the bf16 copy (24 x 2); gelu
    # follows fc1's bf16 output (32 x 2); fc2 keeps it as it is (64); the add is float32
    assert saved(BLOCK, "bf16-mixed") == 96 + 32 + 48 + 64 + 64
    # the model cast to bf16: every tensor half, the statistics too
    assert saved(BLOCK, "bf16") == (96 + 32 + 96 + 128 + 128) // 2


def test_reflection_padding_runs_in_float32_under_autocast_by_hand() -> None:
    # c1 keeps a bf16 copy of the float32 image (36 x 2); the padding (on the fp32 list) keeps
    # a float32 copy of c1's bf16 output (72 x 4); c2 a bf16 copy of the float32 padded map (128 x 2)
    assert saved(PADS, "bf16-mixed") == 72 + 288 + 256
    assert saved(PADS, "fp32") == 144 + 288 + 512


@pytest.mark.parametrize(("spec", "shape"), [(BLOCK, (4, 6)), (PADS, (1, 6, 6))])
def test_the_small_networks_against_torch_autocast(spec: dict[str, Any], shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    from torch_reference import saved_bytes

    nn, functional = torch.nn, torch.nn.functional

    class Block(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.ln, self.fc1, self.fc2 = nn.LayerNorm(6), nn.Linear(6, 8), nn.Linear(8, 6)

        def forward(self, x: Any) -> Any:
            y = self.ln(x)
            return y + self.fc2(functional.gelu(self.fc1(y)))

    class Pads(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 1, 3)

        def forward(self, x: Any) -> Any:
            return self.c2(functional.pad(self.c1(x), (1, 1, 1, 1), mode="reflect"))

    model = (Block if spec is BLOCK else Pads)().train()

    def kept(batch: int) -> int:
        with torch.autocast("cpu", torch.bfloat16):
            return saved_bytes(torch, model, shape, batch)

    assert kept(3) - kept(2) == saved(spec, "bf16-mixed")


@pytest.mark.parametrize(("precision", "per_parameter"), [
    # (weights, gradients, optimizer state) bytes per parameter, Adam (2 states)
    ("fp32", (4, 4, 8)),
    ("bf16", (2, 2, 4)),
    ("fp16", (2, 2, 4)),
    # ZeRO (Rajbhandari et al. 2020, section 3.1): 2 + 2 + 12, the fp32 master in the optimizer
    ("bf16-mixed", (2, 2, 12)),
    ("fp16-mixed", (2, 2, 12)),
])
def test_bytes_per_parameter_of_each_policy(precision: str, per_parameter: tuple[int, int, int]) -> None:
    m = analyze(expand(parse_spec(BLOCK), BLOCK), MemoryOptions(precision=precision)).memory  # type: ignore[arg-type]
    params = 2 * 6 + (6 * 8 + 8) + (8 * 6 + 6)  # ln, fc1, fc2
    assert (m.weights, m.gradients, m.optimizer_state) == tuple(n * params for n in per_parameter)


def test_zero_infinity_keeps_fp32_gradients_too() -> None:
    # ZeRO-Infinity (Rajbhandari et al. 2021, section 3): 20 bytes per parameter for Adam
    m = analyze(expand(parse_spec(BLOCK), BLOCK), MemoryOptions(precision="bf16-mixed", fp32_gradients=True)).memory
    params = 122
    assert m.weights + m.gradients + m.optimizer_state == 20 * params


def test_a_frozen_layer_has_its_half_copy_only() -> None:
    spec = {**BLOCK, "layers": [{**BLOCK["layers"][0], "frozen": True}, *BLOCK["layers"][1:]]}
    m = analyze(expand(parse_spec(spec), spec), MemoryOptions(precision="bf16-mixed")).memory
    assert m.weights == 2 * 122 and m.gradients == 2 * 110 and m.optimizer_state == 12 * 110


def test_dtype_float16_alone_is_the_pure_fp16_policy() -> None:
    assert MemoryOptions(dtype="float16").precision == "fp16"
    assert MemoryOptions(dtype="bfloat16").precision == "bf16"
    assert MemoryOptions().precision == "fp32"


@pytest.mark.parametrize(("options", "message"), [
    (MemoryOptions(precision="fp32", dtype="bfloat16"), "--dtype bfloat16 contradicts --precision fp32"),
    (MemoryOptions(precision="bf16", dtype="int8"), "--dtype int8 contradicts --precision bf16"),
    (MemoryOptions(precision="bf16-mixed", dtype="bfloat16"), "--dtype bfloat16 contradicts --precision bf16-mixed"),
    (MemoryOptions(precision="fp16-mixed", weight_dtype="float32"), "--weight-dtype contradicts --precision fp16-mixed"),
    (MemoryOptions(fp32_gradients=True), "--fp32-gradients keeps fp32 gradients besides the half ones"),
    (MemoryOptions(precision="fp8"), "unknown precision 'fp8'"),  # type: ignore[arg-type]
])
def test_contradicting_options_are_refused(options: MemoryOptions, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        check_options(options)


def test_the_cli_says_the_policy_and_refuses_a_contradiction() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["memory", "resnet18", "--precision", "bf16-mixed"])
    assert result.exit_code == 0, result.output
    assert "precision bf16-mixed" in result.stdout
    refused = runner.invoke(main, ["memory", "resnet18", "--precision", "bf16", "--dtype", "float64"])
    assert refused.exit_code == 2
    assert "--dtype float64 contradicts --precision bf16" in refused.output
    formula = runner.invoke(main, ["formula", "resnet18", "--input", "3,H,W", "--precision", "fp16-mixed"])
    assert formula.exit_code == 0, formula.output
    assert "precision fp16-mixed" in formula.stdout
