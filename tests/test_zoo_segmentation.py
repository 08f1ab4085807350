"""torchvision's segmentation models: FCN and DeepLabV3 on a dilated ResNet-50 and ResNet-101,
DeepLabV3 and Lite R-ASPP on a dilated MobileNetV3-Large (21 classes, weights=None,
weights_backbone=None, aux_loss default, input 3x520x520).

First against torchvision's published figures, through archcalc alone; then against what torch
measured at 3x520x520 (tests/data/torch_measurements.json, written by tests/record_torch.py):
parameters, buffers, output shape, flop_counter FLOPs and bytes saved for backward per image;
then, when torch is installed, layer by layer against the models themselves at 3x64x64.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS, zoo
from torch_reference import measure_module

from archcalc.analysis import Analysis, analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.verify import verify

MODELS = ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
          "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]

# The pretrained FCN and DeepLabV3 carry an auxiliary FCNHead(1024, 21) on layer3 (aux_loss is
# forced on with weights; without weights it defaults to off, as in the specs):
# 3x3 conv 1024 -> 256 without bias, batch norm 2 x 256, ReLU, dropout, 1x1 conv 256 -> 21 + bias.
AUX_PARAMS = 1024 * 256 * 9 + 2 * 256 + 256 * 21 + 21
# its multiply-accumulates on layer3's 65 x 65 map (output stride 8 of 520)
AUX_MACS = 65 * 65 * (256 * 1024 * 9 + 21 * 256)
# DeepLabV3-MobileNetV3's is FCNHead(40, 21) on C2 (features.4, 40 x 65 x 65): its inner width is
# 40 // 4 = 10, so 3x3 conv 40 -> 10, batch norm 2 x 10, 1x1 conv 10 -> 21 + bias
AUX_MOBILE_PARAMS = 40 * 10 * 9 + 2 * 10 + 10 * 21 + 21
AUX_MOBILE_MACS = 65 * 65 * (10 * 40 * 9 + 21 * 10)

# torchvision docs: each weights' `num_params` and `GFLOPS` (multiply-accumulates, fvcore's
# convention, measured at 520x520 in eval mode, where the auxiliary head runs too).
PUBLISHED = {
    # FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1
    "fcn_resnet50": (35_322_218 - AUX_PARAMS, 152.717e9 - AUX_MACS),
    # FCN_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1
    "fcn_resnet101": (54_314_346 - AUX_PARAMS, 232.738e9 - AUX_MACS),
    # DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1
    "deeplabv3_resnet50": (42_004_074 - AUX_PARAMS, 178.722e9 - AUX_MACS),
    # DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1
    "deeplabv3_resnet101": (60_996_202 - AUX_PARAMS, 258.743e9 - AUX_MACS),
    # DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1
    "deeplabv3_mobilenet_v3_large": (11_029_328 - AUX_MOBILE_PARAMS, 10.452e9 - AUX_MOBILE_MACS),
    # LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1 (no auxiliary head)
    "lraspp_mobilenet_v3_large": (3_221_538, 2.086e9),
}


def test_auxiliary_head_by_hand() -> None:
    assert AUX_PARAMS == 2_359_296 + 512 + 5_376 + 21 == 2_365_205
    assert AUX_MACS == 9_968_025_600 + 22_713_600
    assert AUX_MOBILE_PARAMS == 3_600 + 20 + 210 + 21 == 3_851
    assert AUX_MOBILE_MACS == 15_210_000 + 887_250


@pytest.mark.parametrize("model", MODELS)
def test_published_parameters_and_gflops(model: str) -> None:
    params, macs = PUBLISHED[model]
    result = zoo(model)
    assert result.network.input_shape == (3, 520, 520)
    assert result.totals.params == params
    assert round(result.totals.macs / 1e9, 3) == round(macs / 1e9, 3)
    assert result.output_shape == (21, 520, 520)


def test_dilated_backbones_keep_the_map_by_hand() -> None:
    # ResNet-50, replace_stride_with_dilation=[False, True, True]: 520 -> conv1 s2 260 ->
    # maxpool 130 -> layer2 s2 65; layer3 and layer4 dilate instead of striding. A stage's
    # first block keeps the dilation before it: layer3.0 1, layer3.1 2, layer4.0 2, layer4.1 4.
    fcn = zoo("fcn_resnet50")
    layers = {r.path: r for r in fcn.layers}
    assert layers["backbone.layer2.0.conv2"].output_shape == (128, 65, 65)
    assert layers["backbone.layer4.2.relu3"].output_shape == (2048, 65, 65)
    convs = [fcn.network.layer(f"backbone.{p}.conv2").op for p in
             ("layer3.0", "layer3.1", "layer4.0", "layer4.1")]
    assert [(c.stride, c.dilation, c.padding) for c in convs] == [
        (1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 4, 4)]
    # MobileNetV3-Large, dilated=True: 520 -> 260 -> 130 -> 65 (C2) -> 33; C4 keeps 33
    lraspp = {r.path: r.output_shape for r in zoo("lraspp_mobilenet_v3_large").layers}
    assert lraspp["backbone.4.block.3.1"] == (40, 65, 65)
    assert lraspp["backbone_high.13.block.3.1"] == (160, 33, 33)
    assert lraspp["backbone_high.16.2"] == (960, 33, 33)


def test_aspp_branches_by_hand() -> None:
    # five 256-channel branches on 2048 x 65 x 65: 1x1, 3x3 dilated 12, 24, 36 (padding = rate),
    # and image pooling resized back to 65 x 65; concatenated to 1280
    layers = {r.path: r for r in zoo("deeplabv3_resnet50").layers}
    assert layers["classifier.0.convs.0.0"].params.params == 2048 * 256
    for branch in (1, 2, 3):
        assert layers[f"classifier.0.convs.{branch}.0"].params.params == 2048 * 256 * 9
    assert layers["classifier.0.convs.4.interpolate"].output_shape == (256, 65, 65)
    assert layers["classifier.0.convs.cat"].output_shape == (1280, 65, 65)
    assert layers["classifier.0.project.0"].params.params == 1280 * 256


def test_resnet101_backbones_by_hand() -> None:
    # resnet101's layers [3, 4, 23, 3]: 17 more bottlenecks in layer3 than resnet50's 6, each
    # 1x1 1024 -> 256, 3x3 256 -> 256, 1x1 256 -> 1024 (no bias) and three batch norms
    bottleneck = 1024 * 256 + 256 * 256 * 9 + 256 * 1024 + 2 * (256 + 256 + 1024)
    for head in ("fcn", "deeplabv3"):
        analysis = zoo(f"{head}_resnet101")
        deep = {r.path: r for r in analysis.layers}
        assert "backbone.layer3.22.relu3" in deep and "backbone.layer3.23.conv1" not in deep
        conv = analysis.network.layer("backbone.layer3.22.conv2").op
        assert (conv.stride, conv.dilation, conv.padding) == (1, 2, 2)
        assert deep["backbone.layer4.2.relu3"].output_shape == (2048, 65, 65)
        # the published counts differ by the same 17 blocks (both carry the same auxiliary head)
        assert analysis.totals.params - PUBLISHED[f"{head}_resnet50"][0] == 17 * bottleneck


def test_deeplabv3_mobilenet_head_by_hand() -> None:
    # C5 of the dilated MobileNetV3-Large: 960 x 33 x 33 (520 -> 260 -> 130 -> 65 -> 33, then
    # stride 1); ASPP's branches read 960 channels, the pooling branch resizes back to 33
    layers = {r.path: r for r in zoo("deeplabv3_mobilenet_v3_large").layers}
    assert layers["backbone.4.block.3.1"].output_shape == (40, 65, 65)
    assert layers["backbone.16.2"].output_shape == (960, 33, 33)
    assert layers["classifier.0.convs.0.0"].params.params == 960 * 256
    for branch in (1, 2, 3):
        assert layers[f"classifier.0.convs.{branch}.0"].params.params == 960 * 256 * 9
    assert layers["classifier.0.convs.4.interpolate"].output_shape == (256, 33, 33)
    assert layers["classifier.0.convs.cat"].output_shape == (1280, 33, 33)
    assert layers["classifier.4"].output_shape == (21, 33, 33)


# --- against torch: the recorded measurements at 3x520x520 ----------------------------------

RECORDED = json.loads((Path(__file__).parent / "data" / "torch_measurements.json").read_text())


def per_image(analysis: Analysis) -> Analysis:
    return analyze(analysis.network, MemoryOptions(batch=1))


@pytest.mark.parametrize("model", MODELS)
def test_recorded_torch_figures(model: str) -> None:
    torch_figures = RECORDED["zoo"][model]
    assert torch_figures["build"] == {"weights": None, "weights_backbone": None, "num_classes": 21}
    result = per_image(zoo(model))
    assert result.totals.params == torch_figures["params"]
    # batch norm's running mean, running variance and num_batches_tracked
    assert result.totals.buffers == torch_figures["buffers"]
    assert list(result.output_shape) == torch_figures["output_shape"]
    # 2 x the multiply-accumulates of convolutions; bilinear resizing counts none
    assert result.totals.flops == torch_figures["flops"]


@pytest.mark.parametrize("model", MODELS)
def test_recorded_saved_bytes_per_image(model: str) -> None:
    # float32, training: what autograd keeps for backward for one more image
    result = per_image(zoo(model))
    assert result.memory.training_activations == RECORDED["zoo"][model]["saved_bytes_per_example"]


# --- against torch itself, layer by layer, at a small input -----------------------------------

SMALL = 64  # 64 -> 32 -> 16 -> 8 (output stride 8); MobileNet's C5: 4


def small_spec(model: str) -> str:
    """The spec's text at 3x64x64: the input and the resize targets it writes out (the output
    stride 8 maps' 65, the MobileNet C5's 33)."""
    text = (SPECS / f"{model}.yaml").read_text()
    text = text.replace("input: [3, 520, 520]", f"input: [3, {SMALL}, {SMALL}]")
    text = text.replace("size: [520, 520]", f"size: [{SMALL}, {SMALL}]")
    text = text.replace("size: [33, 33]", f"size: [{SMALL // 16}, {SMALL // 16}]")
    return text.replace("size: [65, 65]", f"size: [{SMALL // 8}, {SMALL // 8}]")


def torch_name(model: str, name: str) -> str:
    """torchvision's module path as the spec names it (lraspp_mobilenet_v3_large.yaml's header)."""
    if model != "lraspp_mobilenet_v3_large":
        return name
    name = re.sub(r"^backbone\.(\d+)", lambda m: (
        f"backbone_high.{m[1]}" if int(m[1]) >= 5 else m[0]), name)
    return name.replace("classifier.low_classifier", "low_classifier")


@pytest.mark.parametrize("model", MODELS)
def test_executor_agrees_at_the_small_input(model: str, tmp_path: Path) -> None:
    # 10 to 249 GMACs at 520x520: tests/test_verify.py runs them smaller or leaves them out
    path = tmp_path / f"{model}.yaml"
    path.write_text(small_spec(model))
    result = verify(load(str(path)), batch=2)
    assert result.mismatches == ()


@pytest.fixture(scope="module", params=MODELS)
def measured(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    torch = pytest.importorskip("torch")
    segmentation = pytest.importorskip("torchvision.models.segmentation")
    torch.manual_seed(0)
    model = getattr(segmentation, request.param)(
        weights=None, weights_backbone=None, num_classes=21)
    # batch norm on the image-pooling branch's 1x1 map needs two images to train
    return request.param, measure_module(torch, model, (3, SMALL, SMALL), (2, 3))


def test_every_named_layer_matches_torch(
    measured: tuple[str, dict[str, Any]], analyse_text: Any
) -> None:
    model, figures = measured
    analysis = per_image(analyse_text(small_spec(model), f"{model}.yaml"))
    assert analysis.totals.params == figures["params"]
    assert list(analysis.output_shape) == figures["output_shape"] == [21, SMALL, SMALL]
    assert analysis.totals.flops == figures["flops"]
    layers = {r.path: r for r in analysis.layers}
    # the MobileNet blocks number their slots as mobilenet_v3_large.yaml does (checked there)
    paired = {name: torch_name(model, name) for name in figures["layers"]
              if not (model == "lraspp_mobilenet_v3_large" and ".block." in name)}
    found = {name: spec for name, spec in paired.items() if spec in layers}
    # every convolution and batch norm of torchvision's FCN and DeepLabV3 has its spec name
    convs = [n for n, layer in figures["layers"].items() if layer["params"]]
    if model != "lraspp_mobilenet_v3_large":
        assert [n for n in convs if n not in found] == []
    else:
        assert {"backbone.0.0", "classifier.cbr.0", "classifier.scale.1",
                "classifier.high_classifier", "classifier.low_classifier"} <= set(found)
    mismatches = [
        (name, figures["layers"][name], (list(layers[spec].output_shape),
                                         layers[spec].params.params, layers[spec].flops.flops))
        for name, spec in found.items()
        if [list(layers[spec].output_shape), layers[spec].params.params, layers[spec].flops.flops]
        != [figures["layers"][name][k] for k in ("output_shape", "params", "flops")]
    ]
    assert mismatches == []


def test_saved_bytes_match_torch_at_the_small_input(
    measured: tuple[str, dict[str, Any]], analyse_text: Any
) -> None:
    model, figures = measured
    analysis = per_image(analyse_text(small_spec(model), f"{model}.yaml"))
    assert analysis.memory.training_activations == figures["saved_bytes_per_example"]
