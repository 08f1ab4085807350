"""torchvision's Vision Transformers (Dosovitskiy et al. 2021): vit_b_16, vit_b_32, vit_l_16,
vit_l_32 and vit_h_14 at 3x224x224.

First against torchvision's published figures and ViT-B/16 derived by hand, through archcalc
alone (CI has no torch; tests/test_torch_measurements.py checks what torch measured at
3x224x224: parameters, buffers, output shape, FLOPs with attention decomposed and bytes saved
for backward with the default kernel); then, when torch is installed, against torchvision's
VisionTransformer with one encoder layer on a 3x32x32 image (5 tokens): every module by name,
FLOPs, saved bytes per attention kernel, and the logits with its weights.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SPECS
from conftest import zoo as analyse_zoo
from torch_reference import attention_decomposed, measure_module, saved_bytes

from archcalc.analysis import Analysis, analyze
from archcalc.executor import execute
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.verify import verify

MODELS = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]

# torchvision docs: ViT_*_Weights.IMAGENET1K_V1 `num_params` and `GFLOPS` (multiply-accumulates,
# fvcore's convention) at 224x224; ViT-H/14's IMAGENET1K_SWAG_LINEAR_V1, its weights at 224
PUBLISHED = {
    "vit_b_16": (86_567_656, 17.564),
    "vit_b_32": (88_224_232, 4.409),
    "vit_l_16": (304_326_632, 61.555),
    "vit_l_32": (306_535_400, 15.378),
    "vit_h_14": (632_045_800, 167.295),
}
# torchvision's vit_* builders: patch size, layers, heads, hidden width, MLP width
CONFIG = {
    "vit_b_16": (16, 12, 12, 768, 3072),
    "vit_b_32": (32, 12, 12, 768, 3072),
    "vit_l_16": (16, 24, 16, 1024, 4096),
    "vit_l_32": (32, 24, 16, 1024, 4096),
    "vit_h_14": (14, 32, 16, 1280, 5120),
}


@functools.cache
def zoo(model: str) -> Analysis:
    return analyse_zoo(model)


@pytest.mark.parametrize("model", MODELS)
def test_published_parameters_and_gflops(model: str) -> None:
    params, gflops = PUBLISHED[model]
    result = zoo(model)
    assert result.network.input_shape == (3, 224, 224)
    assert result.totals.params == result.totals.trainable_params == params
    assert result.totals.buffers == 0
    assert round(result.totals.macs / 1e9, 3) == gflops
    assert result.output_shape == (1000,)


def test_vit_b_16_is_the_issue_s_figures() -> None:
    # issue 14: 86,567,656 parameters, 17,563,828,224 MACs (torchvision's "17.56 GFLOPS"), and
    # 35,127,656,448 FLOPs as flop_counter counts them with attention decomposed
    totals = zoo("vit_b_16").totals
    assert (totals.params, totals.macs, totals.flops) == (86_567_656, 17_563_828_224, 35_127_656_448)


@pytest.mark.parametrize("model", MODELS)
def test_parameters_and_macs_by_hand(model: str) -> None:
    patch, layers, _, e, mlp = CONFIG[model]
    patches = (224 // patch) ** 2
    s = patches + 1  # the class token in front
    # conv_proj (3*p*p -> E, bias), class token, position embedding; per layer two layer norms,
    # attention (in_proj [3E, E] + 3E, out_proj [E, E] + E), the MLP (E -> mlp -> E, biases);
    # encoder.ln; heads.head (E -> 1000)
    layer = 4 * e + (4 * e * e + 4 * e) + (2 * e * mlp + mlp + e)
    params = (3 * patch * patch * e + e) + e + s * e + layers * layer + 2 * e + (e * 1000 + 1000)
    # per token: the projections 4 E^2, the MLP 2 E mlp; per pair of tokens: the scores and the
    # weighted values, E each (all heads); the head reads the class token only
    macs = patches * 3 * patch * patch * e + layers * (s * (4 * e * e + 2 * e * mlp) + 2 * s * s * e) + e * 1000
    assert (zoo(model).totals.params, zoo(model).totals.macs) == (params, macs)
    assert params == PUBLISHED[model][0]


def test_layer_paths_are_torchvision_s() -> None:
    paths = {r.path for r in zoo("vit_b_16").layers}
    assert {"conv_proj", "class_token", "encoder.pos_embedding", "encoder.dropout",
            "encoder.layers.encoder_layer_0.ln_1", "encoder.layers.encoder_layer_0.self_attention",
            "encoder.layers.encoder_layer_11.mlp.3", "encoder.ln", "heads.head"} <= paths


# --- one encoder layer on a 3x32x32 image ------------------------------------------------------

SMALL, LAYERS = 32, 1  # 2x2 patches of 16 + the class token: 5 tokens


def small_spec(tmp_path: Path) -> Any:
    """vit_b_16.yaml on a 32x32 image with one encoder layer."""
    text = (SPECS / "vit_b_16.yaml").read_text()
    for old, new in [("input: [3, 224, 224]", f"input: [3, {SMALL}, {SMALL}]"),
                     ("shape: [768, 196]", "shape: [768, 4]"),
                     ("tokens: 197, layers: 12", f"tokens: 5, layers: {LAYERS}")]:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "vit_b_16.yaml"
    path.write_text(text)
    return load(str(path))


def test_executor_agrees_at_the_small_input(tmp_path: Path) -> None:
    assert verify(small_spec(tmp_path), batch=2).mismatches == ()


@pytest.fixture(scope="module")
def torch_vit() -> tuple[Any, Any]:
    torch = pytest.importorskip("torch")
    vision_transformer = pytest.importorskip("torchvision.models.vision_transformer")
    torch.manual_seed(0)
    return torch, vision_transformer.VisionTransformer(
        image_size=SMALL, patch_size=16, num_layers=LAYERS, num_heads=12, hidden_dim=768,
        mlp_dim=3072)


def test_every_module_matches_torch(torch_vit: tuple[Any, Any], tmp_path: Path) -> None:
    torch, model = torch_vit
    measured = measure_module(torch, model, (3, SMALL, SMALL), attention=True)
    analysis = analyze(small_spec(tmp_path), MemoryOptions(batch=1))
    layers = {r.path: r for r in analysis.layers}
    # nn.MultiheadAttention calls F.linear with out_proj's arrays, never the out_proj module:
    # its parameters are the attention layer's (below), it has no call of its own
    modules = {n: m for n, m in measured["layers"].items() if not n.endswith(".out_proj")}
    assert {n: [list(layers[n].output_shape), layers[n].params.params, layers[n].flops.flops]
            for n in modules} == {n: [m["output_shape"], m["params"], m["flops"]] for n, m in modules.items()}
    attention = model.encoder.layers.encoder_layer_0.self_attention
    assert layers["encoder.layers.encoder_layer_0.self_attention"].params.params == sum(
        p.numel() for p in attention.parameters())
    assert analysis.totals.params == measured["params"]
    assert analysis.totals.flops == measured["flops"]
    assert analysis.memory.training_activations == measured["saved_bytes_per_example"]


@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_saved_bytes_per_kernel_match_torch(
    torch_vit: tuple[Any, Any], kernel: str, tmp_path: Path
) -> None:
    torch, model = torch_vit
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model.train()
    # the default: the fused (flash) kernel SDPA picks on the CPU in float32
    with sdpa_kernel(SDPBackend.MATH) if kernel == "math" else contextlib.nullcontext():
        per_image = (saved_bytes(torch, model, (3, SMALL, SMALL), 2)
                     - saved_bytes(torch, model, (3, SMALL, SMALL), 1))
    model.eval()
    analysis = analyze(small_spec(tmp_path), MemoryOptions(batch=1, attention=kernel))
    assert analysis.memory.training_activations == per_image


def test_logits_match_torch_with_its_weights(torch_vit: tuple[Any, Any], tmp_path: Path) -> None:
    """With torchvision's arrays under the spec's names (the class token and position embedding
    are `parameter` layers, whose one array is named ''; attention's arrays are its own, out_proj's
    included), the executor's logits are torch's."""
    torch, model = torch_vit
    model = model.double().eval()
    weights: dict[str, dict[str, Any]] = {}
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad(), attention_decomposed(torch):
        for key, value in model.state_dict().items():
            value.normal_(0, 0.1, generator=generator)  # heads.head starts at zero
            if key in ("class_token", "encoder.pos_embedding"):
                path, array = key, ""
            elif ".self_attention." in key:
                path, _, array = key.partition(".self_attention.")
                path += ".self_attention"
            else:
                path, array = key.rsplit(".", 1)
            weights.setdefault(path, {})[array] = value.numpy()
        x = torch.randn(2, 3, SMALL, SMALL, dtype=torch.float64, generator=generator)
        expected = model(x).numpy()
    run = execute(small_spec(tmp_path), x.numpy(), dtype="float64", weights=weights)
    # float64, but the executor's GELU takes erf from Abramowitz & Stegun 7.1.26 (absolute error
    # below 1.5e-7)
    np.testing.assert_allclose(run.output, expected, rtol=0, atol=1e-5)
    model.float()
