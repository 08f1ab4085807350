"""The compact torchvision zoo: SqueezeNet, GoogLeNet, Inception v3, MobileNet v2/v3, MNASNet and
EfficientNet-B0 specs.

First against torchvision's published figures, through archcalc alone (CI has no torch); then,
when torch and torchvision are installed, against the models themselves: parameters, buffers,
output shape, FLOPs as torch.utils.flop_counter counts them, every layer's kind, shape and
parameters, and the bytes saved for backward.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import SPECS, zoo
from torch_reference import Reference, archcalc_view, measure, torch_view

from archcalc.analysis import Analysis, analyze
from archcalc.figures.memory import MemoryOptions

# torchvision docs: each builder's page (torchvision.models.squeezenet1_0, ...) lists its
# weights' `num_params` and `GFLOPS`, the figures of the "Table of all available classification
# weights". GFLOPS there are multiply-accumulates (fvcore's convention): archcalc's MACs, in
# billions.
PUBLISHED = {
    # spec: (params, GFLOPS, input)
    "squeezenet1_0": (1_248_424, 0.819, (3, 224, 224)),
    "squeezenet1_1": (1_235_496, 0.349, (3, 224, 224)),
    # without the two auxiliary classifiers: torchvision drops them from the pretrained model
    # (googlenet(weights=None) keeps them unless aux_logits=False: 13,004,888 parameters)
    "googlenet": (6_624_904, 1.498, (3, 224, 224)),
    "mobilenet_v2": (3_504_872, 0.301, (3, 224, 224)),
    "mobilenet_v3_large": (5_483_032, 0.217, (3, 224, 224)),
    "mobilenet_v3_small": (2_542_856, 0.057, (3, 224, 224)),
    "mnasnet0_5": (2_218_512, 0.104, (3, 224, 224)),
    "mnasnet0_75": (3_170_208, 0.215, (3, 224, 224)),
    "mnasnet1_0": (4_383_312, 0.314, (3, 224, 224)),
    "mnasnet1_3": (6_282_256, 0.526, (3, 224, 224)),
    "efficientnet_b0": (5_288_548, 0.386, (3, 224, 224)),
}
# torchvision docs: Inception_V3_Weights, 27,161,264 parameters and 5.713 GFLOPS on 3x299x299.
# The parameter count includes the auxiliary classifier AuxLogits, which the spec leaves out
# (it runs only in training); the GFLOPS, measured at inference, do not.
INCEPTION_V3_PUBLISHED = 27_161_264
MODELS = [*PUBLISHED, "inception_v3"]


@pytest.mark.parametrize(
    ("model", "params", "shape"), [(m, p, s) for m, (p, _, s) in PUBLISHED.items()]
)
def test_torchvision_parameter_counts_are_exact(
    model: str, params: int, shape: tuple[int, ...]
) -> None:
    result = zoo(model)
    assert result.network.input_shape == shape
    assert result.totals.params == params
    assert result.totals.trainable_params == params
    assert result.output_shape == (1000,)


def test_inception_v3_is_the_published_count_without_its_auxiliary_classifier() -> None:
    # AuxLogits (torchvision InceptionAux on Mixed_6e's 768 channels): conv0 1x1 768->128 without
    # bias 98,304 + its batch norm 2*128; conv1 5x5 128->768 2,457,600 + batch norm 2*768;
    # fc 768*1000 + 1000.
    aux = 768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768 + 768 * 1000 + 1000
    assert aux == 3_326_696
    result = zoo("inception_v3")
    assert result.network.input_shape == (3, 299, 299)
    assert result.totals.params == INCEPTION_V3_PUBLISHED - aux == 23_834_568
    assert result.output_shape == (1000,)


@pytest.mark.parametrize(
    ("model", "gflops"),
    [(m, g) for m, (_, g, _) in PUBLISHED.items()] + [("inception_v3", 5.713)],
)
def test_torchvision_gflops_are_the_macs(model: str, gflops: float) -> None:
    assert round(zoo(model).totals.macs / 1e9, 3) == gflops


def test_squeezenet_ceil_mode_pools_by_hand() -> None:
    # conv1 7x7 s2 on 224: (224 - 7) // 2 + 1 = 109. Max pool 3x3 s2, ceil mode:
    # ceil((109 - 3) / 2) + 1 = 54 (floor gives 54 too). After fire2-4 (same size), the second
    # pool: ceil((54 - 3) / 2) + 1 = 27, where floor would give 26; the third, after fire5-8:
    # ceil((27 - 3) / 2) + 1 = 13.
    layers = {r.path: r.output_shape for r in zoo("squeezenet1_0").layers}
    assert layers["features.0"] == (96, 109, 109)
    assert layers["features.2"] == (96, 54, 54)
    assert layers["features.5.cat"] == (256, 54, 54)  # fire4: 128 + 128 channels
    assert layers["features.6"] == (256, 27, 27)
    assert layers["features.11"] == (512, 13, 13)
    assert layers["classifier.3"] == (1000, 1, 1)


def test_mobilenet_v3_squeeze_widths_by_hand() -> None:
    # torchvision: squeeze = _make_divisible(exp // 4, 8), the nearest multiple of 8 (at least 8),
    # one step up when rounding lost more than 10%. exp 72: 18 -> 16, but 16 < 0.9 * 18, so 24.
    # exp 120: 30 -> 32. exp 672: 168. SE fc1 is a 1x1 convolution with bias.
    layers = {r.path: r for r in zoo("mobilenet_v3_large").layers}
    for block, exp, squeeze in [(4, 72, 24), (5, 120, 32), (13, 672, 168)]:
        fc1 = layers[f"features.{block}.block.2.fc1"]
        assert fc1.output_shape == (squeeze, 1, 1)
        assert fc1.params.params == squeeze * exp + squeeze
        # the scale broadcasts over the block's expanded map
        assert layers[f"features.{block}.block.2.mul"].output_shape[0] == exp


def test_shortcuts_only_where_stride_1_keeps_the_width() -> None:
    # MobileNetV2 Table 2: rows of n = 1, 2, 3, 4, 3, 3, 1 blocks; each row's first block changes
    # the width, so it has no shortcut: 0 + 1 + 2 + 3 + 2 + 2 + 0 = 10 adds.
    # MNASNet stacks of 3, 3, 3, 2, 4, 1: 2 + 2 + 2 + 1 + 3 + 0 = 10.
    # EfficientNet-B0 stages of 1, 2, 2, 3, 3, 4, 1: 0 + 1 + 1 + 2 + 2 + 3 + 0 = 9.
    # MobileNetV3 Table 1: 15 bnecks, 5 with stride 2 or a new width -> 10; Table 2: 11 and 5 -> 6.
    adds = {m: sum(r.op == "add" for r in zoo(m).layers) for m in
            ["mobilenet_v2", "mnasnet1_0", "efficientnet_b0", "mobilenet_v3_large",
             "mobilenet_v3_small"]}
    assert adds == {"mobilenet_v2": 10, "mnasnet1_0": 10, "efficientnet_b0": 9,
                    "mobilenet_v3_large": 10, "mobilenet_v3_small": 6}


# --- against torch itself ------------------------------------------------------------------

# torchvision builders' arguments: GoogLeNet and Inception v3 without their auxiliary heads
# (and without their slow truncated-normal initialisation, which changes no shape)
BUILD: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
}


@pytest.fixture(scope="module", params=MODELS)
def reference(request: pytest.FixtureRequest) -> Reference:
    # each on its spec's input: Inception v3 on 3x299x299
    return measure(request.param, zoo(request.param).network.input_shape, BUILD.get(request.param))


def test_parameters_buffers_and_output_match_torch(reference: Reference) -> None:
    result = zoo(reference.name)
    assert result.totals.params == reference.params
    # batch norm's running_mean, running_var and the num_batches_tracked scalar
    assert result.totals.buffers == reference.buffers
    assert result.output_shape == reference.output_shape == (1000,)


def test_shortcuts_match_torch(reference: Reference) -> None:
    # no parameters, FLOPs or saved tensors reveal a residual add: compare where they are
    adds = [r.output_shape for r in zoo(reference.name).layers if r.op == "add"]
    assert adds == reference.shortcuts


def test_flops_match_torch_flop_counter(reference: Reference) -> None:
    # 2 x the multiply-accumulates of convolutions (grouped and depthwise too) and linears
    assert zoo(reference.name).totals.flops == reference.flops


KIND = {
    "Conv2d": "conv2d",
    "BatchNorm2d": "batchnorm2d",
    "ReLU": "relu",
    "ReLU6": "relu6",
    "Hardswish": "hardswish",
    "Hardsigmoid": "hardsigmoid",
    "SiLU": "silu",
    "Sigmoid": "sigmoid",
    "MaxPool2d": "max_pool2d",
    "AdaptiveAvgPool2d": "adaptive_avg_pool2d",
    "Dropout": "dropout",
    "Linear": "linear",
    "StochasticDepth": "stochastic_depth",
}

# What torchvision computes outside modules, so without a module call to pair with: torch.flatten,
# torch.cat, the shortcut adds, SE's `scale * input`; GoogLeNet's and Inception's F.relu and
# Inception's F.avg_pool2d / F.max_pool2d inside its modules; MobileNetV2's
# F.adaptive_avg_pool2d; MNASNet's x.mean([2, 3]).
FUNCTIONAL_OPS = {"flatten", "concat", "add", "mul"}
FUNCTIONAL_IN = {
    "googlenet": re.compile(r"\.relu$"),
    "inception_v3": re.compile(r"\.(relu|avg_pool|max_pool)$"),
    "mobilenet_v2": re.compile(r"^avgpool$"),
    "mnasnet0_5": re.compile(r"^mean$"),
    "mnasnet0_75": re.compile(r"^mean$"),
    "mnasnet1_0": re.compile(r"^mean$"),
    "mnasnet1_3": re.compile(r"^mean$"),
}


def test_every_layer_matches_torch_in_execution_order(reference: Reference) -> None:
    """Each torch leaf-module call pairs with the archcalc layer at the same place in execution
    order, which has its name, its output shape and its parameters."""
    functional = FUNCTIONAL_IN.get(reference.name)
    layers = [
        r for r in zoo(reference.name).layers
        if r.op not in FUNCTIONAL_OPS and not (functional and functional.search(r.path))
    ]
    calls = reference.calls
    assert len(layers) == len(calls)
    mismatches = [
        (layer.path, call.name, torch_view(call, KIND), archcalc_view(layer))
        for call, layer in zip(calls, layers)
        if (call.name, torch_view(call, KIND)) != (layer.path, archcalc_view(layer))
    ]
    assert mismatches == []


# In-place ReLU6 (hardtanh_), hard-swish, SiLU and hard-sigmoid need their input for backward,
# which they overwrite: autograd saves a clone of it (a new storage), then the next convolution
# saves the overwritten storage as its input. Written out of place, they save their input and
# make a new output: the same bytes.
INPLACE_CLONES = re.compile(r"(op: (?:relu6|hardswish|silu|hardsigmoid), inplace:) true")
CLONING = {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0"}


def training_activations(analysis: Analysis) -> int:
    """Bytes kept for backward for one float32 image in training."""
    return analyze(analysis.network, MemoryOptions(batch=1)).memory.training_activations


def test_saved_for_backward_bytes_match_torch(
    reference: Reference, request: pytest.FixtureRequest
) -> None:
    # float32 activations, one image, training: what autograd keeps for backward
    measured = training_activations(zoo(reference.name))
    assert measured == reference.saved_bytes_per_image


def test_saved_bytes_match_torch_with_cloning_activations_out_of_place(
    reference: Reference, analyse_text: Any
) -> None:
    # the same spec with those activations written `inplace: false` saves what torch saves in
    # place: the clone takes the place of the new output storage
    text = (SPECS / f"{reference.name}.yaml").read_text()
    out_of_place = INPLACE_CLONES.sub(r"\1 false", text)
    assert (out_of_place != text) == (reference.name in CLONING)
    analysis = analyse_text(out_of_place, f"{reference.name}.yaml")
    measured = training_activations(analysis)
    assert measured == reference.saved_bytes_per_image
