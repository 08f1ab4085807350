"""torchvision's ConvNeXt (Liu et al. 2022): convnext_tiny, _small, _base and _large at 3x224x224.

First against torchvision's published figures and a CNBlock derived by hand, through archcalc
alone (CI has no torch; tests/test_torch_measurements.py checks what torch measured at
3x224x224: parameters, buffers, output shape, FLOPs and bytes saved for backward); then, when
torch is installed, against the models themselves at 3x32x32 (torchvision's smallest input):
every module by name, the stochastic-depth probabilities, and the logits with torchvision's
weights.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SPECS
from conftest import zoo as analyse_zoo
from torch_reference import measure_module

from archcalc.analysis import Analysis, analyze
from archcalc.executor import execute
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.verify import verify


@functools.cache
def zoo(model: str) -> Analysis:
    """The spec's analysis, once per model (ConvNeXt-L has 27 blocks in a stage)."""
    return analyse_zoo(model)


MODELS = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]

# torchvision docs: ConvNeXt_{Tiny,Small,Base,Large}_Weights.IMAGENET1K_V1, `num_params` and
# `GFLOPS` (multiply-accumulates, fvcore's convention) at 3x224x224
PUBLISHED = {
    "convnext_tiny": (28_589_128, 4.456),
    "convnext_small": (50_223_688, 8.684),
    "convnext_base": (88_591_464, 15.355),
    "convnext_large": (197_767_336, 34.361),
}
# torchvision's convnext_* builders: stage widths, blocks per stage, stochastic_depth_prob
CONFIG = {
    "convnext_tiny": ([96, 192, 384, 768], [3, 3, 9, 3], 0.1),
    "convnext_small": ([96, 192, 384, 768], [3, 3, 27, 3], 0.4),
    "convnext_base": ([128, 256, 512, 1024], [3, 3, 27, 3], 0.5),
    "convnext_large": ([192, 384, 768, 1536], [3, 3, 27, 3], 0.5),
}


@pytest.mark.parametrize("model", MODELS)
def test_published_parameters_and_gflops(model: str) -> None:
    params, gflops = PUBLISHED[model]
    result = zoo(model)
    assert result.network.input_shape == (3, 224, 224)
    assert result.totals.params == result.totals.trainable_params == params
    assert result.totals.buffers == 0  # layer norms keep no running statistics
    assert round(result.totals.macs / 1e9, 3) == gflops
    assert result.output_shape == (1000,)


def cnblock_params(c: int) -> int:
    """depthwise 7x7 with bias, layer norm, Linear(c, 4c), Linear(4c, c), layer scale [c, 1, 1]."""
    return (49 * c + c) + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c) + c


@pytest.mark.parametrize("model", MODELS)
def test_parameters_by_hand(model: str) -> None:
    widths, depths, _ = CONFIG[model]
    stem = 3 * widths[0] * 16 + widths[0] + 2 * widths[0]  # 4x4 conv with bias, LayerNorm2d
    blocks = sum(d * cnblock_params(c) for c, d in zip(widths, depths))
    # LayerNorm2d, then a 2x2 convolution with bias to the next width
    downsamples = sum(2 * a + a * b * 4 + b for a, b in zip(widths, widths[1:]))
    head = 2 * widths[-1] + widths[-1] * 1000 + 1000  # LayerNorm2d, linear
    assert zoo(model).totals.params == stem + blocks + downsamples + head == PUBLISHED[model][0]


def test_a_cnblock_by_hand() -> None:
    # features.1.1: C = 96 on 56x56, n = C*H*W elements. Kept for backward (float32, per image):
    # the depthwise convolution's input n; layer norm's input n and its mean and rstd per
    # position 2*H*W; the first linear's input n; GELU's input 4n; the second linear's input
    # 4n; layer_scale * branch keeps the branch for layer_scale's gradient, n (layer_scale, which
    # the batch shares, costs nothing per image); stochastic depth its [N, 1, 1, 1] noise.
    c, h, w = 96, 56, 56
    n = c * h * w
    layers = [r for r in zoo("convnext_tiny").layers if r.path.startswith("features.1.1.")]
    assert sum(r.params.params for r in layers) == cnblock_params(c) == 79_296
    saved = {r.path.removeprefix("features.1.1."): r.memory.saved for r in layers}
    assert saved == {
        "block.0": 4 * n, "block.1": 0, "block.2": 4 * n + 4 * 2 * h * w, "block.3": 4 * n,
        "block.4": 4 * 4 * n, "block.5": 4 * 4 * n, "block.6": 0, "layer_scale": 0,
        "mul": 4 * n, "stochastic_depth": 4, "add": 0,
    }
    assert sum(saved.values()) == 14_475_780
    # MACs: 49 per output of the depthwise convolution, then c*4c and 4c*c per position
    macs = {r.path.removeprefix("features.1.1."): r.flops.macs for r in layers if r.flops.macs}
    assert macs == {"block.0": 49 * n, "block.3": 4 * c * c * h * w, "block.5": 4 * c * c * h * w}


@pytest.mark.parametrize("model", MODELS)
def test_stochastic_depth_follows_torchvision(model: str) -> None:
    # torchvision: block k of K in the whole network drops with probability
    # stochastic_depth_prob * k / (K - 1); block 0's is 0, the identity, which keeps no noise
    _, depths, prob = CONFIG[model]
    total = sum(depths)
    layers = [r for r in zoo(model).layers if r.op == "stochastic_depth"]
    network = zoo(model).network
    assert [network.layer(r.path).op.p for r in layers] == pytest.approx(
        [prob * k / (total - 1) for k in range(total)])
    assert [r.memory.saved for r in layers] == [0] + [4] * (total - 1)


# --- the executor and torch at 3x32x32 --------------------------------------------------------

SMALL = 32  # 32 -> stem 8 -> 4 -> 2 -> 1


def small_spec(model: str, tmp_path: Path) -> Any:
    path = tmp_path / f"{model}.yaml"
    path.write_text((SPECS / f"{model}.yaml").read_text().replace(
        "input: [3, 224, 224]", f"input: [3, {SMALL}, {SMALL}]"))
    return load(str(path))


@pytest.mark.parametrize("model", ["convnext_tiny"])
def test_executor_agrees_at_the_small_input(model: str, tmp_path: Path) -> None:
    # tests/test_verify.py leaves ConvNeXt out: over a minute each in NumPy at 224
    assert verify(small_spec(model, tmp_path), batch=2).mismatches == ()


@pytest.fixture(scope="module")
def torch_tiny() -> tuple[Any, Any]:
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torch, torchvision.models.convnext_tiny(weights=None)


def test_every_module_matches_torch_at_the_small_input(
    torch_tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    torch, model = torch_tiny
    measured = measure_module(torch, model, (3, SMALL, SMALL))
    analysis = analyze(small_spec("convnext_tiny", tmp_path), MemoryOptions(batch=1))
    layers = {r.path: r for r in analysis.layers}
    # LayerNorm2d's module ends with its permute back to channels-first: the spec's
    # `channels_first` beside the layer norm
    layernorm2d = {name for name, m in model.named_modules() if type(m).__name__ == "LayerNorm2d"}
    shape = {name: layers[name.rpartition(".")[0] + ".channels_first" if name in layernorm2d
                          else name].output_shape for name in measured["layers"]}
    # every torch module (LayerNorm2d, Permute, StochasticDepth too) has its spec name, shape,
    # parameters and FLOPs
    assert {name: [list(shape[name]), layers[name].params.params,
                   layers[name].flops.flops] for name in measured["layers"]} == {
        name: [m["output_shape"], m["params"], m["flops"]] for name, m in measured["layers"].items()}
    assert analysis.totals.params == measured["params"]
    assert analysis.totals.flops == measured["flops"]
    assert analysis.memory.training_activations == measured["saved_bytes_per_example"]


def test_stochastic_depth_probabilities_match_torch(torch_tiny: tuple[Any, Any]) -> None:
    _, model = torch_tiny
    theirs = {name: m.p for name, m in model.named_modules() if type(m).__name__ == "StochasticDepth"}
    network = zoo("convnext_tiny").network
    ours = {r.path: network.layer(r.path).op.p for r in zoo("convnext_tiny").layers
            if r.op == "stochastic_depth"}
    assert ours == pytest.approx(theirs)


def test_logits_match_torch_with_its_weights(torch_tiny: tuple[Any, Any], tmp_path: Path) -> None:
    """With torchvision's arrays under the spec's names, the executor's logits are torch's: the
    permutes, the channels-last layer norms and the layer scale in the right places give that;
    every array loads as torch holds it (layer_scale [C, 1, 1]: `batch_axis: false`)."""
    torch, model = torch_tiny
    model = model.double().eval()
    weights: dict[str, dict[str, Any]] = {}
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            value.normal_(0, 0.1, generator=generator)  # layer scale and biases away from 1e-6 and 0
            path, array = (key, "") if key.endswith("layer_scale") else key.rsplit(".", 1)
            weights.setdefault(path, {})[array] = value.numpy()
        x = torch.randn(2, 3, SMALL, SMALL, dtype=torch.float64, generator=generator)
        expected = model(x).numpy()
    run = execute(small_spec("convnext_tiny", tmp_path), x.numpy(), dtype="float64", weights=weights)
    # float64, but the executor's GELU takes erf from Abramowitz & Stegun 7.1.26 (absolute
    # error below 1.5e-7, NumPy having no erf): logits of about 0.3 agree to about 4e-8
    np.testing.assert_allclose(run.output, expected, rtol=0, atol=1e-6)
    model.float()
