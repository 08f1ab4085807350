"""MaxViT-T (Tu et al. 2022) as torchvision 0.29 builds it.

Published figures: torchvision's weights metadata (torchvision/models/maxvit.py,
MaxVit_T_Weights.IMAGENET1K_V1.meta: `num_params` 30,919,624 and `_ops` 5.558 GFLOPS, torchvision's
name for multiply-accumulates, at 224x224). The full model's torch measurements are in
tests/data/torch_measurements.json (tests/record_torch.py maxvit_t). Here the spec's blocks are
also checked against torch on a small model built by torchvision's MaxVit class: two blocks (64
and 128 channels, 1 and 2 layers) at 3x56x56, compared on every array's name and shape, output
shape, flop_counter FLOPs and saved bytes per example, and run by the NumPy executor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml
from conftest import SPECS, zoo_once
from torch_reference import assert_small_model_matches

from archcalc.executor import execute, expected_arrays
from archcalc.spec.graph import expand
from archcalc.spec.spec import parse_spec
from archcalc.verify import verify


def test_parameters_are_torchvision_s() -> None:
    assert zoo_once("maxvit_t").totals.params == 30_919_624  # MaxVit_T_Weights meta["num_params"]


def test_macs_round_to_torchvision_s_gflops() -> None:
    assert round(zoo_once("maxvit_t").totals.macs / 1e9, 3) == 5.558  # MaxVit_T_Weights meta["_ops"]


def test_buffers_by_hand() -> None:
    """Batch norms keep running mean and variance (C each) and a count (1); each attention keeps
    a [49, 49] relative position index. Per block of width C, its first layer's MBConv has a
    pre-norm over the input width and norms of 4C after the expand and depthwise convolutions;
    every layer has two attentions."""
    def bn(channels: int) -> int:
        return 2 * channels + 1

    stem = bn(64)
    blocks = 0
    for inp, out, layers in [(64, 64, 2), (64, 128, 2), (128, 256, 5), (256, 512, 2)]:
        for j in range(layers):
            blocks += bn(inp if j == 0 else out) + 2 * bn(4 * out) + 2 * 49 * 49
    assert zoo_once("maxvit_t").totals.buffers == stem + blocks == 100_472


def small_spec() -> dict[str, Any]:
    """The spec's blocks at 3x56x56: a stem to 28, a block of 64 channels and 1 layer at 14 (2x2
    windows of 7x7, a 7x7 grid of 2x2 strides), one of 128 channels and 2 layers at 7 (one window,
    one grid); stochastic depth rising to 0.2 over the 3 layers. Heads of 32 channels, so at least 2 heads: a single head's
    einsum factor folds into bmm's form without a copy, where the spec's `contiguous` copies."""
    spec = yaml.safe_load((SPECS / "maxvit_t.yaml").read_text())
    spec["input"] = [3, 56, 56]
    spec["blocks"]["blocks"]["layers"] = [
        {"name": "0", "block": "maxvit_block", "out": 64, "size": 14, "depth": 1, "first": 0, "scale": 64 ** -0.5, "last": 2},
        {"name": "1", "block": "maxvit_block", "out": 128, "size": 7, "depth": 2, "first": 1, "scale": 128 ** -0.5, "last": 2},
    ]
    spec["layers"][2]["dim"] = 128  # the classifier
    return spec


def torch_small(torch: Any) -> Any:
    from torchvision.models.maxvit import MaxVit

    torch.manual_seed(0)
    return MaxVit(input_size=(56, 56), stem_channels=64, partition_size=7, block_channels=[64, 128],
                  block_layers=[1, 2], head_dim=32, stochastic_depth_prob=0.2)


def test_small_model_runs_as_analysed() -> None:
    spec = small_spec()
    assert verify(expand(parse_spec(spec), spec), batch=2).mismatches == ()


def test_small_model_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    assert_small_model_matches(torch, small_spec(), torch_small(torch))


def test_small_model_computes_what_torch_computes() -> None:
    """The executor with torch's arrays (state dict, float64) gives torch's logits in eval mode:
    the partitions' views, the bias table read by its index and the einsum products are torch's.
    Agreement to 1e-6, not to float64's last bits: the executor's GELU uses Abramowitz & Stegun's
    erf (absolute error below 1.5e-7), NumPy having none."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    spec = small_spec()
    network = expand(parse_spec(spec), spec)
    model = torch_small(torch).double().eval()
    state = model.state_dict()
    weights = {path: {k: state[f"{path}.{k}" if k else path].numpy() for k in own}
               for path, own in expected_arrays(network).items()}
    x = torch.randn(2, *spec["input"], dtype=torch.float64)
    with torch.no_grad():
        expected = model(x).numpy()
    ours = execute(network, x.numpy(), dtype="float64", weights=weights).output
    assert np.allclose(ours, expected, rtol=0, atol=1e-6)
