"""EfficientNet-B1 ... B7 and EfficientNetV2-S/M/L, the specs of torchvision's builders.

First against torchvision's published figures and its model definitions, written out here (CI has
no torch); then, when torch and torchvision are installed, against the models themselves:
parameters, buffers, output shape, flop_counter FLOPs, bytes saved for backward, every layer's
name, kind, shape and parameters, and the settings no count reveals (batch norm's eps and
momentum, stochastic depth's and dropout's probabilities). EfficientNet-B0 is in
tests/test_zoo_mobile.py; what torch measures on all of them at 3x224x224 is recorded in
tests/data/torch_measurements.json (tests/test_torch_measurements.py).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import pytest
from conftest import zoo
from torch_reference import Reference, archcalc_view, measure, torch_view

from archcalc.analysis import Analysis, analyze
from archcalc.figures.memory import MemoryOptions

# torchvision 0.29.1, torchvision/models/efficientnet.py, each builder's weights' `meta`
# (EfficientNet_B1_Weights.IMAGENET1K_V1, ...): `num_params`, and `_ops`, the GFLOPS of the
# "Table of all available classification weights": multiply-accumulates (fvcore's convention),
# archcalc's MACs in billions, counted on the weights' evaluation crop (`crop_size` of their
# transforms), not on the spec's 224x224.
PUBLISHED = {
    # spec: (params, GFLOPS, crop)
    "efficientnet_b1": (7_794_184, 0.687, 240),
    "efficientnet_b2": (9_109_994, 1.088, 288),
    "efficientnet_b3": (12_233_232, 1.827, 300),
    "efficientnet_b4": (19_341_616, 4.394, 380),
    "efficientnet_b5": (30_389_784, 10.266, 456),
    "efficientnet_b6": (43_040_704, 19.068, 528),
    "efficientnet_b7": (66_347_960, 37.746, 600),
    "efficientnet_v2_s": (21_458_488, 8.366, 384),
    "efficientnet_v2_m": (54_139_356, 24.582, 480),
    "efficientnet_v2_l": (118_515_272, 56.08, 480),
}
MODELS = list(PUBLISHED)
analysed = cache(zoo)  # each spec analysed once for all the tests here

# torchvision's _efficientnet_conf. B1-B7: B0's stages (Tan & Le 2019, Table 1) as
# MBConvConfig(expand_ratio, kernel, stride, input_channels, out_channels, num_layers), each width
# c scaled to _make_divisible(c * width_mult, 8) and each num_layers to ceil(n * depth_mult), by the
# builder's (width_mult, depth_mult); the last convolution has 4 x the last stage's width.
B0_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
SCALING = {
    "efficientnet_b0": (1.0, 1.0), "efficientnet_b1": (1.0, 1.1), "efficientnet_b2": (1.1, 1.2), "efficientnet_b3": (1.2, 1.4),
    "efficientnet_b4": (1.4, 1.8), "efficientnet_b5": (1.6, 2.2), "efficientnet_b6": (1.8, 2.6),
    "efficientnet_b7": (2.0, 3.1),
}
# V2 (Tan & Le 2021, Table 4 for S): FusedMBConvConfig ("fused") and MBConvConfig ("mbconv")
# unscaled, the same arguments; last_channel 1280.
F, M = "fused", "mbconv"
V2_STAGES = {
    "efficientnet_v2_s": [(F, 1, 3, 1, 24, 24, 2), (F, 4, 3, 2, 24, 48, 4), (F, 4, 3, 2, 48, 64, 4),
                          (M, 4, 3, 2, 64, 128, 6), (M, 6, 3, 1, 128, 160, 9),
                          (M, 6, 3, 2, 160, 256, 15)],
    "efficientnet_v2_m": [(F, 1, 3, 1, 24, 24, 3), (F, 4, 3, 2, 24, 48, 5), (F, 4, 3, 2, 48, 80, 5),
                          (M, 4, 3, 2, 80, 160, 7), (M, 6, 3, 1, 160, 176, 14),
                          (M, 6, 3, 2, 176, 304, 18), (M, 6, 3, 1, 304, 512, 5)],
    "efficientnet_v2_l": [(F, 1, 3, 1, 32, 32, 4), (F, 4, 3, 2, 32, 64, 7), (F, 4, 3, 2, 64, 96, 7),
                          (M, 4, 3, 2, 96, 192, 10), (M, 6, 3, 1, 192, 224, 19),
                          (M, 6, 3, 2, 224, 384, 25), (M, 6, 3, 1, 384, 640, 7)],
}
# the builders' norm_layer: partial(nn.BatchNorm2d, eps=0.001, momentum=0.01) for B5-B7,
# partial(nn.BatchNorm2d, eps=1e-03) for V2, nn.BatchNorm2d (eps 1e-5, momentum 0.1) below B5;
# the head's dropout probability (the builders' kwargs.pop("dropout", ...))
BATCH_NORM = {m: (0.001, 0.01) for m in ["efficientnet_b5", "efficientnet_b6", "efficientnet_b7"]} | {
    m: (0.001, 0.1) for m in V2_STAGES}
DROPOUT = {"efficientnet_b1": 0.2, "efficientnet_b2": 0.3, "efficientnet_b3": 0.3,
           "efficientnet_b4": 0.4, "efficientnet_b5": 0.4, "efficientnet_b6": 0.5,
           "efficientnet_b7": 0.5, "efficientnet_v2_s": 0.2, "efficientnet_v2_m": 0.3,
           "efficientnet_v2_l": 0.4}

Stage = tuple[str, int, int, int, int, int, int]  # kind, expand, kernel, stride, in, out, blocks


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision/models/_utils.py _make_divisible: the nearest multiple of `divisor` (at least
    `divisor`), one step up when rounding down lost more than 10%."""
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def stages(model: str) -> list[Stage]:
    """torchvision's stage configurations of `model`, scaled as its builder scales them."""
    if model in V2_STAGES:
        return V2_STAGES[model]
    width, depth = SCALING[model]
    return [(M, e, k, s, make_divisible(i * width), make_divisible(o * width), math.ceil(n * depth))
            for e, k, s, i, o, n in B0_STAGES]


def last_width(model: str) -> int:
    return 1280 if model in V2_STAGES else 4 * stages(model)[-1][5]


@pytest.mark.parametrize("model", MODELS)
def test_parameter_counts_are_published(model: str) -> None:
    result = analysed(model)
    assert result.network.input_shape == (3, 224, 224)
    assert result.totals.params == result.totals.trainable_params == PUBLISHED[model][0]
    assert result.output_shape == (1000,)


@pytest.mark.parametrize("model", MODELS)
def test_published_gflops_are_the_macs_on_the_evaluation_crop(model: str) -> None:
    _, gflops, crop = PUBLISHED[model]
    network = analysed(model).network.with_input((3, crop, crop))
    assert round(analyze(network).totals.macs / 1e9, 3) == gflops


def test_scaling_by_hand() -> None:
    # B4 (width 1.4, depth 1.8): stage 2's 24 -> 33.6 -> int(37.6) // 8 * 8 = 32; stage 3's 40 ->
    # 56; stage 4's 80 -> 112; 320 -> 448, so the head has 4 x 448 = 1792 channels. Depth: stage
    # 1's single block -> ceil(1.8) = 2, stage 6's 4 -> ceil(7.2) = 8.
    b4 = stages("efficientnet_b4")
    assert [s[5] for s in b4] == [24, 32, 56, 112, 160, 272, 448]
    assert [s[6] for s in b4] == [2, 4, 4, 6, 6, 8, 2]
    assert last_width("efficientnet_b4") == 1792
    # B2 (width 1.1): 16 * 1.1 = 17.6 rounds to 16, within 10%; 40 * 1.1 = 44 rounds to 48
    assert make_divisible(17.6) == 16 and make_divisible(44.0) == 48


@pytest.mark.parametrize("model", MODELS)
def test_stage_widths_and_depths_are_torchvisions(model: str) -> None:
    result = analysed(model)
    shape = {r.path: r.output_shape for r in result.layers}
    config = stages(model)
    assert shape["features.0.0"][0] == config[0][4]  # the stem gives stage 1's input width
    for number, (_, _, _, _, _, out, blocks) in enumerate(config, start=1):
        prefix = f"features.{number}."
        present = {p[len(prefix):].split(".")[0] for p in shape if p.startswith(prefix)}
        assert present == {str(j) for j in range(blocks)}, number
        last = [p for p in shape if p.startswith(f"{prefix}{blocks - 1}.")][-1]
        assert shape[last][0] == out, number
    assert shape[f"features.{len(config) + 1}.0"][0] == last_width(model)


def expected_names(model: str) -> list[tuple[str, str]]:
    """(module name, archcalc op) in execution order from torchvision's definitions: features.0
    Conv2dNormActivation(SiLU); per stage a Sequential of blocks; an MBConv's `block` =
    [1x1 expand if expanded != in], depthwise, SqueezeExcitation(avgpool, fc1, activation SiLU,
    fc2, scale_activation Sigmoid), project (no activation); a FusedMBConv's = kxk expand and
    project if expanded != in, else one kxk Conv2dNormActivation(SiLU); `stochastic_depth` runs
    with the shortcut (stride 1, same width); a 1x1 Conv2dNormActivation(SiLU); avgpool;
    classifier = (Dropout, Linear). torch.flatten, `result += input` and SE's `scale * input`
    are functions, left out."""
    def conv(prefix: str, activation: bool) -> list[tuple[str, str]]:
        return [(f"{prefix}.0", "conv2d"), (f"{prefix}.1", "batchnorm2d")] + [
            (f"{prefix}.2", "silu")] * activation

    se = [("avgpool", "adaptive_avg_pool2d"), ("fc1", "conv2d"), ("activation", "silu"),
          ("fc2", "conv2d"), ("scale_activation", "sigmoid")]
    names = conv("features.0", True)
    config = stages(model)
    for number, (kind, expand, _, stride, inp, out, blocks) in enumerate(config, start=1):
        for j in range(blocks):
            block = f"features.{number}.{j}"
            width = inp if j == 0 else out
            parts: list[tuple[str, bool] | str] = (
                [("conv", True)] * (expand != 1) + [("conv", True), "se", ("conv", False)]
                if kind == M else [("conv", True), ("conv", False)] if expand != 1 else [("conv", True)])
            for k, part in enumerate(parts):
                if part == "se":
                    names += [(f"{block}.block.{k}.{n}", op) for n, op in se]
                else:
                    names += conv(f"{block}.block.{k}", part[1])
            if (stride == 1 or j > 0) and width == out:
                names.append((f"{block}.stochastic_depth", "stochastic_depth"))
    names += conv(f"features.{len(config) + 1}", True)
    return names + [("avgpool", "adaptive_avg_pool2d"), ("classifier.0", "dropout"),
                    ("classifier.1", "linear")]


@pytest.mark.parametrize("model", MODELS)
def test_names_are_torchvisions(model: str) -> None:
    network = analysed(model).network
    got = [(layer.path, layer.op.kind) for layer in network.layers
           if layer.op.kind not in {"add", "mul", "flatten"}]
    assert got == expected_names(model)


def block_indices(model: str) -> list[tuple[str, int, int]]:
    """(block path, its index over all stages, all blocks) of the blocks with a shortcut."""
    config = stages(model)
    total = sum(s[6] for s in config)
    index, found = 0, []
    for number, (_, _, _, stride, inp, out, blocks) in enumerate(config, start=1):
        for j in range(blocks):
            if (stride == 1 or j > 0) and (inp if j == 0 else out) == out:
                found.append((f"features.{number}.{j}", index, total))
            index += 1
    return found


@pytest.mark.parametrize("model", ["efficientnet_b0", *MODELS])
def test_stochastic_depth_grows_per_block_as_torchvision(model: str) -> None:
    # EfficientNet.__init__: sd_prob = stochastic_depth_prob (0.2) * stage_block_id / total_stage_blocks
    network = analysed(model).network
    expected = {f"{b}.stochastic_depth": 0.2 * float(i) / n for b, i, n in block_indices(model)}
    got = {layer.path: layer.op.p for layer in network.layers if layer.op.kind == "stochastic_depth"}
    assert got == expected
    adds = [layer.path for layer in network.layers if layer.op.kind == "add"]
    assert adds == [f"{b}.add" for b, _, _ in block_indices(model)]


def test_shortcuts_by_hand() -> None:
    # B7's stages of 4, 7, 7, 10, 10, 13, 4 blocks: each stage's first changes the width,
    # so 3 + 6 + 6 + 9 + 9 + 12 + 3 = 48 shortcuts. V2-S's stage 1 keeps the stem's 24 channels
    # at stride 1, so its first block adds its input too: 2 + 3 + 3 + 5 + 8 + 14 = 35.
    assert len(block_indices("efficientnet_b7")) == 48
    assert len(block_indices("efficientnet_v2_s")) == 35
    # torchvision's very first block has stage_block_id 0: probability 0, the identity even in
    # training (stochastic_depth returns its input when p == 0), so it keeps no noise
    v2s = analysed("efficientnet_v2_s")
    first = next(r for r in v2s.layers if r.path == "features.1.0.stochastic_depth")
    second = next(r for r in v2s.layers if r.path == "features.1.1.stochastic_depth")
    assert first.memory.saved == 0
    assert second.memory.saved == 4  # one float32 noise element per example


@pytest.mark.parametrize("model", MODELS)
def test_batch_norm_and_dropout_settings_are_the_builders(model: str) -> None:
    network = analysed(model).network
    eps_momentum = {(layer.op.eps, layer.op.momentum) for layer in network.layers
                    if layer.op.kind == "batchnorm2d"}
    assert eps_momentum == {BATCH_NORM.get(model, (1e-5, 0.1))}
    assert [layer.op.p for layer in network.layers if layer.op.kind == "dropout"] == [DROPOUT[model]]


# --- against torch itself ------------------------------------------------------------------

@pytest.fixture(scope="module", params=MODELS)
def reference(request: pytest.FixtureRequest) -> Reference:
    return measure(request.param)


def test_totals_match_torch(reference: Reference) -> None:
    result: Analysis = analysed(reference.name)
    assert result.totals.params == reference.params
    assert result.totals.buffers == reference.buffers
    assert result.output_shape == reference.output_shape == (1000,)
    assert result.totals.flops == reference.flops
    assert [r.output_shape for r in result.layers if r.op == "add"] == reference.shortcuts


def test_saved_for_backward_bytes_match_torch(reference: Reference) -> None:
    # float32, one image, training; stochastic depth's noise (one element per image) included
    measured = analyze(analysed(reference.name).network, MemoryOptions(batch=1))
    assert measured.memory.training_activations == reference.saved_bytes_per_image


KIND = {"Conv2d": "conv2d", "BatchNorm2d": "batchnorm2d", "SiLU": "silu", "Sigmoid": "sigmoid",
        "AdaptiveAvgPool2d": "adaptive_avg_pool2d", "Dropout": "dropout", "Linear": "linear",
        "StochasticDepth": "stochastic_depth"}


def settings(module: Any) -> tuple[Any, ...]:
    """What no count shows: batch norm's eps and momentum, the drop probabilities."""
    if hasattr(module, "eps"):
        return (module.eps, module.momentum)
    return (module.p,) if hasattr(module, "p") else ()


def test_every_layer_matches_torch_in_execution_order(reference: Reference) -> None:
    """Each torch leaf-module call pairs with the archcalc layer at the same place in execution
    order, which has its name, kind, output shape, parameters, buffers and settings."""
    result = analysed(reference.name)
    layers = [r for r in result.layers if r.op not in {"add", "mul", "flatten"}]
    assert len(layers) == len(reference.calls)
    mismatches = []
    for call, layer in zip(reference.calls, layers):
        op = result.network.nodes[layer.path].op
        mine = (layer.path, archcalc_view(layer), settings(op))
        theirs = (call.name, torch_view(call, KIND), settings(call.module))
        if mine != theirs:
            mismatches.append((theirs, mine))
    assert mismatches == []
