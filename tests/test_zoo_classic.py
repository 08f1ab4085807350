"""The classic torchvision zoo: VGG, ResNet, ResNeXt, Wide ResNet and DenseNet specs.

First against torchvision's published figures, through archcalc alone (CI has no torch); then,
when torch and torchvision are installed, against the models themselves: parameters, buffers,
output shape, FLOPs as torch.utils.flop_counter counts them, bytes saved for backward, and every
layer's name, shape and parameters.
"""

from __future__ import annotations

import pytest
from conftest import SPECS, zoo
from torch_reference import Reference, archcalc_view, measure, torch_view

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load

# torchvision docs: the weights' metadata each builder's page publishes (in torchvision 0.29.1's
# source: VGG11_Weights.IMAGENET1K_V1.meta["num_params"] and ["_ops"], ...), also the Params and
# GFLOPS columns of the "Table of all available classification weights". Those GFLOPS count
# multiply-accumulates (fvcore's convention), so they are archcalc's MACs in billions.
PUBLISHED = {
    # spec: (params, GFLOPS)
    "vgg11": (132_863_336, 7.609),
    "vgg13": (133_047_848, 11.308),
    "vgg19": (143_667_240, 19.632),
    "vgg11_bn": (132_868_840, 7.609),
    "vgg13_bn": (133_053_736, 11.308),
    "vgg16_bn": (138_365_992, 15.47),
    "vgg19_bn": (143_678_248, 19.632),
    "resnet34": (21_797_672, 3.664),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "resnext50_32x4d": (25_028_904, 4.23),
    "resnext101_32x8d": (88_791_336, 16.414),
    "resnext101_64x4d": (83_455_272, 15.46),
    "wide_resnet50_2": (68_883_240, 11.398),
    "wide_resnet101_2": (126_886_696, 22.753),
    "densenet121": (7_978_856, 2.834),
    "densenet161": (28_681_000, 7.728),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.291),
}
MODELS = list(PUBLISHED)


@pytest.mark.parametrize(("model", "params"), [(m, p) for m, (p, _) in PUBLISHED.items()])
def test_torchvision_parameter_counts_are_exact(model: str, params: int) -> None:
    result = zoo(model)
    assert result.totals.params == params
    assert result.totals.trainable_params == params
    assert result.output_shape == (1000,)


@pytest.mark.parametrize(("model", "gflops"), [(m, g) for m, (_, g) in PUBLISHED.items()])
def test_torchvision_gflops_are_the_macs(model: str, gflops: float) -> None:
    assert round(zoo(model).totals.macs / 1e9, 3) == gflops


def test_resnext_and_wide_resnet_widths_by_hand() -> None:
    # torchvision Bottleneck: width = int(planes * width_per_group / 64) * groups; out 4 x planes.
    # layer1 (planes 64): ResNeXt-50 32x4d 64*4/64*32 = 128, Wide ResNet-50-2 64*128/64 = 128,
    # ResNeXt-101 32x8d 64*8/64*32 = 256, ResNeXt-101 64x4d 64*4/64*64 = 256, Wide ResNet-101-2
    # 64*128/64 = 128; all expand to 256.
    for model, width, groups in [("resnext50_32x4d", 128, 32), ("wide_resnet50_2", 128, 1),
                                 ("resnext101_32x8d", 256, 32), ("resnext101_64x4d", 256, 64),
                                 ("wide_resnet101_2", 128, 1)]:
        layers = {r.path: r for r in zoo(model).layers}
        assert layers["layer1.0.conv2"].output_shape == (width, 56, 56)
        # grouped 3x3: width * (width / groups) * 9 weights
        assert layers["layer1.0.conv2"].params.params == width * (width // groups) * 9
        assert layers["layer1.0.relu3"].output_shape == (256, 56, 56)


def test_densenet121_channels_by_hand() -> None:
    # 64 stem channels; each dense layer adds k = 32; a transition halves channels and size:
    # block1 64 + 6*32 = 256 -> 128 at 28x28; block2 128 + 12*32 = 512 -> 256 at 14x14;
    # block3 256 + 24*32 = 1024 -> 512 at 7x7; block4 512 + 16*32 = 1024 at 7x7.
    layers = {r.path: r.output_shape for r in zoo("densenet121").layers}
    assert layers["features.pool0"] == (64, 56, 56)
    assert layers["features.denseblock1.denselayer1.concat"] == (96, 56, 56)
    assert layers["features.denseblock1.denselayer6.concat"] == (256, 56, 56)
    assert layers["features.transition1.pool"] == (128, 28, 28)
    assert layers["features.denseblock2.denselayer12.concat"] == (512, 28, 28)
    assert layers["features.transition2.pool"] == (256, 14, 14)
    assert layers["features.denseblock3.denselayer24.concat"] == (1024, 14, 14)
    assert layers["features.transition3.pool"] == (512, 7, 7)
    assert layers["features.norm5"] == (1024, 7, 7)


# --- against torch itself ------------------------------------------------------------------


@pytest.fixture(scope="module", params=MODELS)
def reference(request: pytest.FixtureRequest) -> Reference:
    return measure(request.param)


def test_parameters_buffers_and_output_match_torch(reference: Reference) -> None:
    result = zoo(reference.name)
    assert result.totals.params == reference.params
    # batch norm's running_mean, running_var and the num_batches_tracked scalar
    assert result.totals.buffers == reference.buffers
    assert result.output_shape == reference.output_shape == (1000,)


def test_flops_match_torch_flop_counter(reference: Reference) -> None:
    assert zoo(reference.name).totals.flops == reference.flops


def test_saved_for_backward_bytes_match_torch(reference: Reference) -> None:
    # float32 activations, one image, training: what autograd keeps for backward
    network = load(str(SPECS / f"{reference.name}.yaml"))
    measured = analyze(network, MemoryOptions(batch=1)).memory.training_activations
    assert measured == reference.saved_bytes_per_image


KIND = {
    "Conv2d": "conv2d",
    "BatchNorm2d": "batchnorm2d",
    "ReLU": "relu",
    "MaxPool2d": "max_pool2d",
    "AvgPool2d": "avg_pool2d",
    "AdaptiveAvgPool2d": "adaptive_avg_pool2d",
    "Dropout": "dropout",
    "Linear": "linear",
}


def archcalc_path(torch_name: str, call: int) -> str:
    """The spec's name for torch's module call: its own, except that a ResNet block's one ReLU
    module called 2 or 3 times is relu, relu2, relu3 in the spec."""
    return torch_name if call == 1 else f"{torch_name}{call}"


def test_every_layer_matches_torch_by_name(reference: Reference) -> None:
    """VGG, ResNets and DenseNets carry torchvision's names: every module call has its layer."""
    layers = zoo(reference.name).layers
    # what torch does outside modules: torch.flatten, ResNet's `out += identity`, DenseNet's
    # torch.cat and its forward's F.relu and F.adaptive_avg_pool2d
    outside = {r.path for r in layers if r.op in ("flatten", "add", "concat")}
    if reference.name.startswith("densenet"):
        outside |= {"relu", "avgpool"}
    by_path = {r.path: r for r in layers}
    seen: dict[str, int] = {}
    pairs = []
    for call in reference.calls:
        seen[call.name] = seen.get(call.name, 0) + 1
        path = archcalc_path(call.name, seen[call.name])
        assert path in by_path, f"torch's {call.name} has no archcalc layer {path}"
        pairs.append((call, by_path.pop(path)))
    assert set(by_path) == outside
    mismatches = [
        (layer.path, torch_view(call, KIND), archcalc_view(layer))
        for call, layer in pairs
        if torch_view(call, KIND) != archcalc_view(layer)
    ]
    assert mismatches == []
