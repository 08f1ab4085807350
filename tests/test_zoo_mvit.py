"""MViT (Fan et al. 2021) and MViTv2 (Li et al. 2022) as torchvision 0.29's video builders build them.

Published figures: torchvision's weights metadata (torchvision/models/video/mvit.py,
MViT_V2_S_Weights.KINETICS400_V1.meta: `num_params`, `_ops` in GFLOPS, torchvision's name for the
multiply-accumulates at the weights' 16x224x224 clip). The full models' torch measurements are in
tests/data/torch_measurements.json (tests/record_torch.py). Here each spec's blocks are also
checked against torch on a small model: the same blocks, four of them (every block kind, keys
pooled more and less than queries) at 3x4x32x32, built by torchvision's MViT class with the same
settings, compared on every array's name and shape, output shape, flop_counter FLOPs and saved
bytes per example.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conftest import SPECS, zoo_once
from torch_reference import assert_small_model_matches

from archcalc.spec.graph import expand
from archcalc.spec.spec import parse_spec

# torchvision/models/video/mvit.py, MViT_V2_S_Weights.KINETICS400_V1.meta and
# MViT_V1_B_Weights.KINETICS400_V1.meta
PUBLISHED_PARAMS = {"mvit_v2_s": 34_537_744, "mvit_v1_b": 36_610_672}
PUBLISHED_GMACS = {"mvit_v2_s": 64.224, "mvit_v1_b": 70.599}



@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameters_are_torchvision_s(name: str) -> None:
    assert zoo_once(name).totals.params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_macs_round_to_torchvision_s_gflops(name: str) -> None:
    assert round(zoo_once(name).totals.macs / 1e9, 3) == PUBLISHED_GMACS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_stochastic_depth_rises_linearly_over_the_16_blocks(name: str) -> None:
    # torchvision's MViT: block i drops its branches with 0.2 * i / 15
    got = [layer.op.p for layer in zoo_once(name).network.layers
           if layer.op.kind == "stochastic_depth" and layer.path.endswith(".stochastic_depth")]
    assert got == pytest.approx([0.2 * i / 15 for i in range(16)], abs=1e-15)


# (heads, in, out, kernel_q, stride_q, stride_kv) per block, and the spec's entry for each: a grid
# of 2x8x8 after the patch embedding; V2's block 1 halves it, block 3 again (queries pooled below
# the keys); V1's block 1 halves it, blocks 0 and 3 widen, block 2 has two heads and an unpooled q
Q = ([3, 3, 3], [1, 1, 1])
Q2 = ([3, 3, 3], [1, 2, 2])
NO_Q: tuple[list[int], list[int]] = ([], [])
SMALL = {
    "mvit_v2_s": [(1, 96, 96, *Q, [1, 4, 4]), (2, 96, 192, *Q2, [1, 2, 2]),
                  (2, 192, 192, *Q, [1, 1, 1]), (4, 192, 384, *Q2, [1, 1, 1])],
    "mvit_v1_b": [(1, 96, 192, *NO_Q, [1, 4, 4]), (2, 192, 192, *Q2, [1, 2, 2]),
                  (2, 192, 192, *NO_Q, [1, 1, 1]), (2, 192, 384, *NO_Q, [1, 1, 1])],
}
SMALL_ENTRIES = {
    "mvit_v2_s": [
        {"name": "0", "block": "block", "c": 96, "heads": 1, "s": 8, "skv": 4},
        {"name": "1", "block": "down_block", "cin": 96, "cout": 192, "heads": 2, "s": 8, "skv": 2},
        {"name": "2", "block": "block", "c": 192, "heads": 2, "s": 4, "skv": 1},
        {"name": "3", "block": "down_block", "cin": 192, "cout": 384, "heads": 4, "s": 4, "skv": 1},
    ],
    "mvit_v1_b": [
        {"name": "0", "block": "block", "cin": 96, "cout": 192, "heads": 1, "s": 8, "skv": 4},
        {"name": "1", "block": "down_block", "c": 192, "heads": 2, "s": 8, "skv": 2},
        {"name": "2", "block": "block", "cin": 192, "cout": 192, "heads": 2, "s": 4, "skv": 1},
        {"name": "3", "block": "block", "cin": 192, "cout": 384, "heads": 2, "s": 4, "skv": 1},
    ],
}
SETTINGS = {"mvit_v2_s": {"residual_pool": True, "residual_with_cls_embed": False, "rel_pos_embed": True,
                          "proj_after_attn": True},
            "mvit_v1_b": {"residual_pool": False, "residual_with_cls_embed": False, "rel_pos_embed": False,
                          "proj_after_attn": False}}


def small_spec(name: str) -> dict[str, Any]:
    """The spec's blocks, four of them, at 3x4x32x32 (2 frames of 8x8 tokens), stochastic depth
    rising to 0.2 over the four."""
    spec = yaml.safe_load((SPECS / f"{name}.yaml").read_text())
    spec["input"] = [3, 4, 32, 32]
    spec["blocks"]["encoder"]["layers"] = [
        {**entry, "t": 2, "p": 0.2 * i / 3} for i, entry in enumerate(SMALL_ENTRIES[name])]
    if "args" in spec["blocks"]["pos_encoding"]:  # V1's absolute positions: 2 frames of 8x8
        spec["blocks"]["pos_encoding"]["args"] = {"t": 2, "s": 8}
    return spec


def torch_small(torch: Any, name: str) -> Any:
    from torchvision.models.video import mvit

    torch.manual_seed(0)
    blocks = [mvit.MSBlockConfig(heads, cin, cout, kq, [3, 3, 3], sq, skv) for heads, cin, cout, kq, sq, skv in SMALL[name]]
    return mvit.MViT(spatial_size=(32, 32), temporal_size=4, block_setting=blocks, stochastic_depth_prob=0.2, **SETTINGS[name])


@pytest.mark.parametrize("name", sorted(SMALL_ENTRIES))
def test_small_model_matches_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    assert_small_model_matches(torch, small_spec(name), torch_small(torch, name))


@pytest.mark.parametrize("name", sorted(SMALL_ENTRIES))
def test_small_model_verifies(name: str) -> None:
    # the full specs' reshapes fix their 16x224x224 clip, so tests/test_verify.py leaves them to
    # ARCHCALC_VERIFY_ALL=1; the executor runs the same blocks here
    from archcalc.verify import verify

    spec = small_spec(name)
    result = verify(expand(parse_spec(spec), spec), batch=1)
    assert result.mismatches == ()
    assert result.peak_bytes == result.analysis.memory.inference_peak
