"""The Swin Transformer family (Liu et al. 2021 and 2022) as torchvision 0.29 builds it.

Published figures: torchvision's weights metadata (`num_params`, `_ops` in GFLOPS, which for Swin
V1 is the multiply-accumulates at 224x224 and for Video Swin at 16x224x224; V2's are at its
256x256 weights' size). The full
models' torch measurements are in tests/data/torch_measurements.json (tests/record_torch.py).
Here each spec's blocks are also checked against torch on a small model: the same blocks with
two stages at 3x112x112 (video 3x16x112x112), built by torchvision's model class with the same settings, compared
on every array's name and shape, output shape, flop_counter FLOPs and saved bytes per example.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conftest import SPECS, zoo_once
from torch_reference import assert_small_model_matches

from archcalc.analysis import analyze
from archcalc.spec.graph import expand
from archcalc.spec.spec import parse_spec
from archcalc.verify import verify

# torchvision/models/swin_transformer.py, Swin_*_Weights.IMAGENET1K_V1.meta["num_params"]
# and torchvision/models/video/swin_transformer.py, Swin3D_*_Weights.KINETICS400_V1.meta
PUBLISHED_PARAMS = {
    "swin_t": 28_288_354, "swin_s": 49_606_258, "swin_b": 87_768_224,
    "swin_v2_t": 28_351_570, "swin_v2_s": 49_737_442, "swin_v2_b": 87_930_848,
    "swin3d_t": 28_158_070, "swin3d_s": 49_816_678, "swin3d_b": 88_048_984,
}
# the same metadata's "_ops" (GFLOPS, torchvision's name for multiply-accumulates): Swin V1 at
# 224x224, Video Swin at 16x224x224
PUBLISHED_GMACS = {"swin_t": 4.491, "swin_s": 8.741, "swin_b": 15.431,
                   "swin3d_t": 43.882, "swin3d_s": 82.841, "swin3d_b": 140.667}




@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameters_are_torchvision_s(name: str) -> None:
    assert zoo_once(name).totals.params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_macs_round_to_torchvision_s_gflops(name: str) -> None:
    assert round(zoo_once(name).totals.macs / 1e9, 3) == PUBLISHED_GMACS[name]


# Swin V2's "_ops" are at 256x256, the size its weights take: maps of 64, 32, 16 and 8, whole windows
PUBLISHED_GMACS_256 = {"swin_v2_t": 5.94, "swin_v2_s": 11.546, "swin_v2_b": 20.325}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS_256))
def test_v2_macs_at_256_round_to_torchvision_s_gflops(name: str) -> None:
    spec = yaml.safe_load((SPECS / f"{name}.yaml").read_text())
    spec["input"] = [3, 256, 256]
    for entry in spec["blocks"]["features"]["layers"]:
        if "size" in entry:
            entry["size"] = {56: 64, 28: 32, 14: 16, 7: 8}[entry["size"]]
    macs = analyze(expand(parse_spec(spec), spec)).totals.macs
    assert round(macs / 1e9, 3) == PUBLISHED_GMACS_256[name]


SMALL_STAGES = [  # spec blocks: two stages of two blocks, maps of 28 and 14
    {"block": "stage", "dim": 64, "heads": 2, "size": 28, "depth": 2, "first": 0, "sd": 0.2, "last": 3},
    {"block": "patch_merging", "dim": 64, "size": 28},
    {"block": "stage", "dim": 128, "heads": 4, "size": 14, "depth": 2, "first": 2, "sd": 0.2, "last": 3},
]
SMALL = ["swin_t", "swin_v2_t", "swin3d_t"]


def small_spec(name: str) -> dict[str, Any]:
    """The spec's blocks with two stages (embed 64, heads 2 and 4: a head dim of 32 as in every
    Swin; depths 2 and 2) at 3x112x112 (video: 3x16x112x112): maps of 28 and 14 (V2's window 8
    pads them to 32 and 16), every block kind at least once. Not one head: torch.matmul folds a
    single head's [windows, 1, N, d] factor without a copy, where the spec's `contiguous` copies."""
    spec = yaml.safe_load((SPECS / f"{name}.yaml").read_text())
    video = name.startswith("swin3d")
    spec["input"] = [3, 16, 112, 112] if video else [3, 112, 112]
    stages = [{"name": str(i if video else i + 1), **entry} for i, entry in enumerate(SMALL_STAGES)]
    embed = [] if video else [{"name": "0", "block": "patch_embed", "dim": 64}]
    spec["blocks"]["features"]["layers"] = embed + stages
    if video:
        spec["layers"][0]["dim"] = 64  # patch_embed
    return spec


def torch_small(torch: Any, name: str) -> Any:
    """torchvision's model class with the small settings (stochastic depth 0.2 over 4 blocks)."""
    from torchvision.models import swin_transformer as sw
    from torchvision.models.video import swin_transformer as sw3d

    settings: dict[str, Any] = {"embed_dim": 64, "depths": [2, 2], "num_heads": [2, 4], "stochastic_depth_prob": 0.2}
    torch.manual_seed(0)
    if name == "swin3d_t":
        return sw3d.SwinTransformer3d(patch_size=[2, 4, 4], window_size=[8, 7, 7], **settings)
    if name == "swin_v2_t":
        return sw.SwinTransformer(patch_size=[4, 4], window_size=[8, 8], block=sw.SwinTransformerBlockV2,
                                  downsample_layer=sw.PatchMergingV2, **settings)
    return sw.SwinTransformer(patch_size=[4, 4], window_size=[7, 7], **settings)


@pytest.mark.parametrize("name", SMALL)
def test_small_model_matches_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    assert_small_model_matches(torch, small_spec(name), torch_small(torch, name))


@pytest.mark.parametrize("name", SMALL)
def test_small_model_verifies(name: str) -> None:
    """The NumPy executor runs the blocks (shift masks, position bias, padding and crop, cosine
    attention) with the shapes and inference peak the analysis gives (the full models: minutes)."""
    spec = small_spec(name)
    result = verify(expand(parse_spec(spec), spec), batch=2)
    assert result.mismatches == ()
    assert result.peak_bytes == result.analysis.memory.inference_peak
