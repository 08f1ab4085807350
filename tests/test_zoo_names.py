"""Zoo layer names are torchvision's module names (`model.named_modules()`), written out here from
torchvision's model definitions (torchvision 0.29.1's source; links per model), so CI checks
them without torch. Where torch is installed, tests/test_zoo_classic.py, test_zoo_mobile.py and
test_torch_crosscheck.py pair every module call with the layer of the same name.

Each expectation is the list of (module name, archcalc op) in execution order. archcalc also has
layers for what torchvision computes outside modules (torch.flatten, torch.cat, `out += x`,
F.relu ...); each test names those and leaves them out of the comparison.
"""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import SPECS

from archcalc.spec.graph import load

Expected = list[tuple[str, str]]


def layers(model: str, functional: set[str]) -> Expected:
    """The spec's (path, op) in execution order, without the ops torch computes outside modules."""
    network = load(str(SPECS / f"{model}.yaml"))
    return [(p, network.nodes[p].op.kind) for p in network.order if network.nodes[p].op.kind not in functional]


# torchvision/models/vgg.py: `cfgs` A, B, D, E; make_layers appends to one nn.Sequential, per
# number Conv2d(3x3) [BatchNorm2d] ReLU, per "M" MaxPool2d; VGG has `avgpool` and
# classifier = Sequential(Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear); forward calls
# torch.flatten.
VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vgg_modules(config: list[int | str], batch_norm: bool) -> Expected:
    features: list[str] = []
    for v in config:
        features += ["max_pool2d"] if v == "M" else ["conv2d", *(["batchnorm2d"] * batch_norm), "relu"]
    classifier = ["linear", "relu", "dropout", "linear", "relu", "dropout", "linear"]
    return ([(f"features.{i}", op) for i, op in enumerate(features)] + [("avgpool", "adaptive_avg_pool2d")]
            + [(f"classifier.{i}", op) for i, op in enumerate(classifier)])


def test_vgg16_names_written_out() -> None:
    names = [p for p, _ in layers("vgg16", {"flatten"})]
    assert names[:5] == ["features.0", "features.1", "features.2", "features.3", "features.4"]
    assert names[-10:] == ["features.29", "features.30", "avgpool", *(f"classifier.{i}" for i in range(7))]
    assert len(names) == 31 + 1 + 7  # 13 convs and 13 ReLUs, 5 pools; avgpool; the classifier


@pytest.mark.parametrize("model", [f"{name}{bn}" for name in VGG_CONFIGS for bn in ("", "_bn")])
def test_vgg_names_are_torchvisions(model: str) -> None:
    config = VGG_CONFIGS[model.removesuffix("_bn")]
    assert layers(model, {"flatten"}) == vgg_modules(config, model.endswith("_bn"))


# torchvision/models/densenet.py: features = Sequential(conv0, norm0, relu0, pool0), then per
# block `denseblock%d` % (i + 1) holding `denselayer%d` % (j + 1), each (norm1, relu1, conv1,
# norm2, relu2, conv2) with torch.cat outside modules, `transition%d` (norm, relu, conv, pool)
# after all blocks but the last, and norm5; classifier is a Linear. forward: F.relu,
# F.adaptive_avg_pool2d, torch.flatten.
DENSENET_BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet161": (6, 12, 36, 24),
                   "densenet169": (6, 12, 32, 32), "densenet201": (6, 12, 48, 32)}
DENSE_LAYER = [("norm1", "batchnorm2d"), ("relu1", "relu"), ("conv1", "conv2d"),
               ("norm2", "batchnorm2d"), ("relu2", "relu"), ("conv2", "conv2d")]
TRANSITION = [("norm", "batchnorm2d"), ("relu", "relu"), ("conv", "conv2d"), ("pool", "avg_pool2d")]


def densenet_modules(blocks: tuple[int, ...]) -> Expected:
    names = [("features.conv0", "conv2d"), ("features.norm0", "batchnorm2d"),
             ("features.relu0", "relu"), ("features.pool0", "max_pool2d")]
    for b, count in enumerate(blocks, start=1):
        for j in range(1, count + 1):
            names += [(f"features.denseblock{b}.denselayer{j}.{n}", op) for n, op in DENSE_LAYER]
        if b < len(blocks):
            names += [(f"features.transition{b}.{n}", op) for n, op in TRANSITION]
    return [*names, ("features.norm5", "batchnorm2d"), ("classifier", "linear")]


def test_densenet121_names_written_out() -> None:
    network = load(str(SPECS / "densenet121.yaml"))
    for name in ["features.denseblock1.denselayer1.norm1", "features.denseblock1.denselayer6.conv2",
                 "features.transition1.pool", "features.denseblock4.denselayer16.conv2",
                 "features.norm5", "classifier"]:
        assert name in network.nodes


@pytest.mark.parametrize("model", list(DENSENET_BLOCKS))
def test_densenet_names_are_torchvisions(model: str) -> None:
    ours = layers(model, {"concat", "flatten"})
    # the forward's F.relu and F.adaptive_avg_pool2d after `features`
    ours.remove(("relu", "relu"))
    ours.remove(("avgpool", "adaptive_avg_pool2d"))
    assert ours == densenet_modules(DENSENET_BLOCKS[model])


# torchvision/models/mobilenetv2.py: features = [Conv2dNormActivation(3, 32, stride 2)], then
# for each row (t, c, n, s) n InvertedResidual blocks appended one by one, then a 1x1
# Conv2dNormActivation to 1280; each block's `conv` = Sequential([expand 1x1 Conv2dNormActivation
# if t != 1], depthwise Conv2dNormActivation, Conv2d, BatchNorm2d); Conv2dNormActivation is
# Sequential(Conv2d, BatchNorm2d, ReLU6); classifier = Sequential(Dropout, Linear). forward:
# F.adaptive_avg_pool2d, torch.flatten; the shortcut `x + self.conv(x)`.
MOBILENET_V2_ROWS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                     (6, 160, 3, 2), (6, 320, 1, 1)]


def conv_norm_activation(prefix: str, activation: str | None) -> Expected:
    ops = ["conv2d", "batchnorm2d", *([activation] if activation else [])]
    return [(f"{prefix}.{i}", op) for i, op in enumerate(ops)]


def test_mobilenet_v2_names_are_torchvisions() -> None:
    expected = conv_norm_activation("features.0", "relu6")
    index = 1
    for t, _, n, _ in MOBILENET_V2_ROWS:
        for _ in range(n):
            parts = ["expand"] * (t != 1) + ["depthwise"]
            for j, _part in enumerate(parts):
                expected += conv_norm_activation(f"features.{index}.conv.{j}", "relu6")
            expected += [(f"features.{index}.conv.{len(parts)}", "conv2d"),
                         (f"features.{index}.conv.{len(parts) + 1}", "batchnorm2d")]
            index += 1
    expected += conv_norm_activation(f"features.{index}", "relu6")
    expected += [("classifier.0", "dropout"), ("classifier.1", "linear")]
    ours = layers("mobilenet_v2", {"add", "flatten"})
    ours.remove(("avgpool", "adaptive_avg_pool2d"))
    assert index == 18
    assert ours == expected


# torchvision/models/mobilenetv3.py: `_mobilenet_v3_conf`'s bneck_conf(input, kernel, expanded,
# out, use_se, activation, stride, dilation) rows; features = [Conv2dNormActivation(3, 16, stride
# 2, Hardswish)], one InvertedResidual per row, a 1x1 Conv2dNormActivation to 6 x the last
# width (Hardswish); each block's `block` = Sequential([expand if expanded != input], depthwise,
# [SqueezeExcitation(avgpool, fc1, activation ReLU, fc2, scale_activation Hardsigmoid) if
# use_se], project Conv2dNormActivation without activation); avgpool; classifier =
# Sequential(Linear, Hardswish, Dropout, Linear). Outside modules: `result += input`,
# SqueezeExcitation's `scale * input`, torch.flatten.
MOBILENET_V3 = {
    "mobilenet_v3_large": [
        (16, 16, False, "RE"), (16, 64, False, "RE"), (24, 72, False, "RE"), (24, 72, True, "RE"),
        (40, 120, True, "RE"), (40, 120, True, "RE"), (40, 240, False, "HS"), (80, 200, False, "HS"),
        (80, 184, False, "HS"), (80, 184, False, "HS"), (80, 480, True, "HS"), (112, 672, True, "HS"),
        (112, 672, True, "HS"), (160, 960, True, "HS"), (160, 960, True, "HS"),
    ],
    "mobilenet_v3_small": [
        (16, 16, True, "RE"), (16, 72, False, "RE"), (24, 88, False, "RE"), (24, 96, True, "HS"),
        (40, 240, True, "HS"), (40, 240, True, "HS"), (40, 120, True, "HS"), (48, 144, True, "HS"),
        (48, 288, True, "HS"), (96, 576, True, "HS"), (96, 576, True, "HS"),
    ],
}
SQUEEZE_EXCITATION = [("avgpool", "adaptive_avg_pool2d"), ("fc1", "conv2d"), ("activation", "relu"),
                      ("fc2", "conv2d"), ("scale_activation", "hardsigmoid")]


@pytest.mark.parametrize("model", list(MOBILENET_V3))
def test_mobilenet_v3_names_are_torchvisions(model: str) -> None:
    expected = conv_norm_activation("features.0", "hardswish")
    rows = MOBILENET_V3[model]
    for index, (inp, expanded, se, act) in enumerate(rows, start=1):
        activation = "hardswish" if act == "HS" else "relu"
        prefix = f"features.{index}.block"
        parts: Expected = []
        j = 0
        if expanded != inp:
            parts += conv_norm_activation(f"{prefix}.{j}", activation)
            j += 1
        parts += conv_norm_activation(f"{prefix}.{j}", activation)
        j += 1
        if se:
            parts += [(f"{prefix}.{j}.{n}", op) for n, op in SQUEEZE_EXCITATION]
            j += 1
        expected += parts + conv_norm_activation(f"{prefix}.{j}", None)
    expected += conv_norm_activation(f"features.{len(rows) + 1}", "hardswish")
    expected += [("avgpool", "adaptive_avg_pool2d"), ("classifier.0", "linear"),
                 ("classifier.1", "hardswish"), ("classifier.2", "dropout"), ("classifier.3", "linear")]
    assert layers(model, {"add", "mul", "flatten"}) == expected


# torchvision/models/efficientnet.py: features = [Conv2dNormActivation(3, 32, stride 2, SiLU)],
# one Sequential of MBConv blocks per stage (expand_ratio, layers: (1, 1), (6, 2), (6, 2),
# (6, 3), (6, 3), (6, 4), (6, 1) for B0), a 1x1 Conv2dNormActivation to 1280 (SiLU); an MBConv's
# `block` = Sequential([expand if the ratio is not 1], depthwise, SqueezeExcitation(activation
# SiLU, scale_activation Sigmoid), project without activation), and its `stochastic_depth`
# module runs only with the shortcut (stride 1, same width: every block after a stage's first);
# avgpool; classifier = Sequential(Dropout, Linear).
EFFICIENTNET_B0_STAGES = [(1, 1), (6, 2), (6, 2), (6, 3), (6, 3), (6, 4), (6, 1)]


def test_efficientnet_b0_names_are_torchvisions() -> None:
    expected = conv_norm_activation("features.0", "silu")
    for stage, (ratio, count) in enumerate(EFFICIENTNET_B0_STAGES, start=1):
        for j in range(count):
            prefix = f"features.{stage}.{j}"
            parts = ["expand"] * (ratio != 1) + ["depthwise"]
            for k, _part in enumerate(parts):
                expected += conv_norm_activation(f"{prefix}.block.{k}", "silu")
            se = [(n, "silu" if n == "activation" else "sigmoid" if n == "scale_activation" else op)
                  for n, op in SQUEEZE_EXCITATION]
            expected += [(f"{prefix}.block.{len(parts)}.{n}", op) for n, op in se]
            expected += conv_norm_activation(f"{prefix}.block.{len(parts) + 1}", None)
            expected += [(f"{prefix}.stochastic_depth", "stochastic_depth")] * (j > 0)
    expected += conv_norm_activation("features.8", "silu")
    expected += [("avgpool", "adaptive_avg_pool2d"), ("classifier.0", "dropout"), ("classifier.1", "linear")]
    assert layers("efficientnet_b0", {"add", "mul", "flatten"}) == expected


# torchvision/models/mnasnet.py: layers = Sequential(Conv2d, BatchNorm2d, ReLU, depthwise Conv2d,
# BatchNorm2d, ReLU, Conv2d, BatchNorm2d, six _stack()s of 3, 3, 3, 2, 4, 1 _InvertedResidual
# blocks (`Sequential(first, *remaining)`, each block's `layers` = Sequential(Conv2d,
# BatchNorm2d, ReLU, Conv2d, BatchNorm2d, ReLU, Conv2d, BatchNorm2d)), Conv2d, BatchNorm2d,
# ReLU); classifier = Sequential(Dropout, Linear); forward: x.mean([2, 3]), `input + layers(x)`.
MNASNET_REPEATS = [3, 3, 3, 2, 4, 1]
CONV_BN_RELU = ["conv2d", "batchnorm2d", "relu"]


@pytest.mark.parametrize("model", ["mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"])
def test_mnasnet_names_are_torchvisions(model: str) -> None:
    stem = CONV_BN_RELU * 2 + ["conv2d", "batchnorm2d"]
    expected = [(f"layers.{i}", op) for i, op in enumerate(stem)]
    for stack, repeats in enumerate(MNASNET_REPEATS, start=8):
        for j in range(repeats):
            ops = CONV_BN_RELU * 2 + ["conv2d", "batchnorm2d"]
            expected += [(f"layers.{stack}.{j}.layers.{k}", op) for k, op in enumerate(ops)]
    expected += [(f"layers.{14 + i}", op) for i, op in enumerate(CONV_BN_RELU)]
    expected += [("classifier.0", "dropout"), ("classifier.1", "linear")]
    assert layers(model, {"add", "global_avg_pool"}) == expected


def test_every_zoo_spec_names_each_layer_once() -> None:
    for spec in sorted(SPECS.glob("*.yaml")):
        network = load(str(spec))
        counts = Counter(network.order)
        assert [p for p, n in counts.items() if n > 1] == [], spec.name
        assert all(part for p in network.order for part in p.split(".")), spec.name
