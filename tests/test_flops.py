"""FLOPs and MACs: per-op hand counts and torch.utils.flop_counter's published totals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import SPECS, zoo

from archcalc.cli import main


@pytest.mark.parametrize(
    ("model", "flops"),
    [
        # torch.utils.flop_counter.FlopCounterMode, torchvision models, one 3x224x224 image
        ("resnet50", 8_178_368_512),
        ("resnet18", 3_628_146_688),
        ("vgg16", 30_940_528_640),
        ("alexnet", 1_428_376_960),
    ],
)
def test_zoo_flops_match_torch_flop_counter(model: str, flops: int) -> None:
    totals = zoo(model).totals
    assert abs(totals.flops - flops) <= 0.005 * flops
    assert totals.flops == flops == 2 * totals.macs


def test_per_op_macs_by_hand(analyse_text) -> None:
    result = analyse_text(
        """
name: m
input: [8, 10, 10]
layers:
  - {name: grouped, op: conv2d, out: 4, kernel: 3, groups: 2}        # out 4x8x8
  - {name: up, op: conv_transpose2d, out: 6, kernel: 2, stride: 2}   # in 4x8x8 -> 6x16x16
  - {name: pool, op: global_avg_pool}
  - {name: fc, op: linear, out: 3}
"""
    )
    layers = {r.path: r.flops for r in result.layers}
    assert layers["grouped"].macs == 4 * 8 * 8 * (8 // 2) * 9  # outputs x (in/groups) x kernel
    assert layers["up"].macs == 4 * 8 * 8 * 6 * 4  # inputs x (out/groups) x kernel (torch's rule)
    assert layers["pool"].macs == 0 and layers["pool"].elementwise == 6 * 16 * 16
    assert layers["fc"].macs == 3 * 6
    assert layers["fc"].flops == 36
    assert layers["grouped"].elementwise == 4 * 8 * 8  # bias adds, reported apart


def test_flops_command_states_the_convention() -> None:
    result = CliRunner().invoke(main, ["flops", str(SPECS / "resnet50.yaml"), "--batch", "2"])
    assert result.exit_code == 0
    assert "8,178,368,512" in result.stdout
    assert f"{2 * 8_178_368_512:,}" in result.stdout
    assert "flop_counter" in result.stdout
