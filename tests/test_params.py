"""Parameter counts: the zoo against published figures, and the per-op formulas by hand."""

from __future__ import annotations

import pytest
from conftest import zoo


@pytest.mark.parametrize(
    ("model", "params"),
    [
        # torchvision docs, "Table of all available classification weights" (Params column)
        ("alexnet", 61_100_840),
        ("vgg16", 138_357_544),
        ("resnet18", 11_689_512),
        ("resnet50", 25_557_032),
    ],
)
def test_torchvision_parameter_counts_are_exact(model: str, params: int) -> None:
    result = zoo(model)
    assert result.totals.params == params
    assert result.totals.trainable_params == params
    assert result.output_shape == (1000,)


def test_resnet18_buffers_match_torch_state_dict() -> None:
    # 20 BatchNorm2d layers; each keeps running_mean and running_var (C each) and a scalar
    # num_batches_tracked. Their channels: stem 64; layer1 4x64; layer2 4x128 + 128 (downsample);
    # layer3 4x256 + 256; layer4 4x512 + 512.
    channels = 64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512
    assert zoo("resnet18").totals.buffers == 2 * channels + 20


def test_lenet5_by_hand() -> None:
    # c1: 6*(1*5*5)+6 = 156; c3: 16*(6*5*5)+16 = 2,416; c5: 120*(16*5*5)+120 = 48,120;
    # f6: 84*120+84 = 10,164; output: 10*84+10 = 850. LeNet-5's well-known total: 61,706.
    assert zoo("lenet5").totals.params == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706


def test_neon_cnn1_by_hand() -> None:
    # no biases (neon adds none without a bias initialiser): conv1: 32*3*9 = 864;
    # conv2: 64*32*9 = 18,432; 64x16x16 = 16,384 features -> 2: 2*16,384 = 32,768.
    result = zoo("neon_cnn1")
    assert result.totals.params == 864 + 18_432 + 32_768 == 52_064
    assert result.output_shape == (2,)


def test_per_op_formulas(analyse_text) -> None:
    result = analyse_text(
        """
name: ops
input: [8, 16, 16]
layers:
  - {name: grouped, op: conv2d, out: 16, kernel: 3, groups: 4, padding: 1}   # 16*(8/4)*9 + 16
  - {name: depthwise, op: conv2d, out: 16, kernel: [3, 1], groups: 16, bias: false}  # 16*1*3*1
  - {name: up, op: conv_transpose2d, out: 4, kernel: 2, stride: 2, groups: 2}  # 16*(4/2)*4 + 4
  - {name: bn, op: batchnorm2d}           # 2*4 weights, buffers 2*4 + 1
  - {name: gn, op: groupnorm, groups: 2}  # 2*4
  - {name: acon, op: acon_c}              # p1, p2, beta: 3*4
  - {name: ln, op: layernorm, normalized_shape: [28, 32]}  # 2*28*32
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out: 5, bias: false}            # 5*(4*28*32)
"""
    )
    params = {r.path: r.params.params for r in result.layers}
    assert params == {
        "grouped": 16 * 2 * 9 + 16,
        "depthwise": 16 * 3,
        "up": 16 * 2 * 4 + 4,
        "bn": 8,
        "gn": 8,
        "acon": 12,
        "ln": 2 * 28 * 32,
        "flat": 0,
        "fc": 5 * 4 * 28 * 32,
    }
    assert next(r for r in result.layers if r.path == "bn").params.buffers == 9


def test_frozen_layers_split_the_totals(analyse_text) -> None:
    result = analyse_text(
        """
name: transfer
input: [3, 8, 8]
blocks:
  backbone:
    layers:
      - {op: conv2d, out: 4, kernel: 3}      # 4*3*9+4 = 112
      - {op: relu}
layers:
  - {name: body, block: backbone, frozen: true}
  - {op: flatten}
  - {name: head, op: linear, out: 2}         # 2*(4*6*6)+2 = 290
"""
    )
    assert result.totals.params == 402
    assert result.totals.frozen_params == 112
    assert result.totals.trainable_params == 290
