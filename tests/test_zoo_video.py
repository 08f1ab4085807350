"""torchvision's video classifiers: R3D-18, MC3-18 and R(2+1)D-18 (Tran et al. 2018) on
16-frame 112x112 clips, S3D (Xie et al. 2018) on 16-frame 224x224 clips; [C, T, H, W] inputs,
weights=None (400 Kinetics classes).

First against torchvision's published figures, through archcalc alone, and by hand; then against
what torch measured at the full input (tests/data/torch_measurements.json, written by
tests/record_torch.py): parameters, buffers, output shape, flop_counter FLOPs and bytes saved for
backward per clip; then, when torch is installed, layer by layer against the models themselves
on a short, small clip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS, zoo
from torch_reference import assert_layers_match, measure_module

from archcalc.analysis import Analysis, analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.verify import verify

RESNETS = ["r3d_18", "mc3_18", "r2plus1d_18"]
MODELS = [*RESNETS, "s3d"]

# torchvision docs: each weights' `num_params` and `GFLOPS` (multiply-accumulates, measured at
# the input below)
PUBLISHED = {
    "r3d_18": (33_371_472, 40.697, (3, 16, 112, 112)),  # R3D_18_Weights.KINETICS400_V1
    "mc3_18": (11_695_440, 43.343, (3, 16, 112, 112)),  # MC3_18_Weights.KINETICS400_V1
    "r2plus1d_18": (31_505_325, 40.519, (3, 16, 112, 112)),  # R2Plus1D_18_Weights.KINETICS400_V1
    "s3d": (8_320_048, 17.979, (3, 16, 224, 224)),  # S3D_Weights.KINETICS400_V1
}


@pytest.mark.parametrize("model", MODELS)
def test_published_parameters_and_gflops(model: str) -> None:
    params, gmacs, clip = PUBLISHED[model]
    result = zoo(model)
    assert result.network.input_shape == clip
    assert result.totals.params == params
    assert round(result.totals.macs / 1e9, 3) == gmacs
    assert result.output_shape == (400,)


def test_r3d_and_mc3_by_hand() -> None:
    # R3D strides 2 on time too in layer2-4: 16 frames -> 8 -> 4 -> 2; MC3's 1x3x3 convolutions
    # there keep all 16 (and 112 -> stem 56 -> 28 -> 14 -> 7 in both)
    r3d = {r.path: r.output_shape for r in zoo("r3d_18").layers}
    mc3 = {r.path: r.output_shape for r in zoo("mc3_18").layers}
    assert r3d["stem.2"] == mc3["stem.2"] == (64, 16, 56, 56)
    assert r3d["layer4.1.relu"] == (512, 2, 7, 7)
    assert mc3["layer4.1.relu"] == (512, 16, 7, 7)
    # MC3 keeps a third of each layer2-4 3x3x3 weight: the two differ by 2/3 of
    # 27 x (64*128 + 3*128*128 + 128*256 + 3*256*256 + 256*512 + 3*512*512)
    widths = 64 * 128 + 3 * 128 * 128 + 128 * 256 + 3 * 256 * 256 + 256 * 512 + 3 * 512 * 512
    assert PUBLISHED["r3d_18"][0] - PUBLISHED["mc3_18"][0] == 18 * widths == 21_676_032


def test_r2plus1d_midplanes_by_hand() -> None:
    # Tran et al. 2018, section 3.5: M_i = floor(t d^2 N_(i-1) N_i / (d^2 N_(i-1) + t N_i)),
    # t = d = 3, from the block's input and output widths, for both of its convolutions
    layers = {r.path: r for r in zoo("r2plus1d_18").layers}
    expected = {
        "layer1.0": 64 * 64 * 27 // (64 * 9 + 3 * 64),  # 144
        "layer2.0": 64 * 128 * 27 // (64 * 9 + 3 * 128),  # 230
        "layer2.1": 128 * 128 * 27 // (128 * 9 + 3 * 128),  # 288
        "layer3.0": 128 * 256 * 27 // (128 * 9 + 3 * 256),  # 460
        "layer4.0": 256 * 512 * 27 // (256 * 9 + 3 * 512),  # 921
        "layer4.1": 512 * 512 * 27 // (512 * 9 + 3 * 512),  # 1152
    }
    assert list(expected.values()) == [144, 230, 288, 460, 921, 1152]
    for block, mid in expected.items():
        for conv in ("conv1", "conv2"):
            assert layers[f"{block}.{conv}.0.0"].output_shape[0] == mid
            assert layers[f"{block}.{conv}.0.3"].output_shape[0] == layers[f"{block}.add"].output_shape[0]
    # stem: 1x7x7 to 45, then 3x1x1 to 64; a strided block halves time in its 3x1x1
    assert layers["stem.0"].params.params == 3 * 45 * 49
    assert layers["stem.3"].params.params == 45 * 64 * 3
    assert layers["layer2.0.conv1.0.0"].output_shape == (230, 16, 28, 28)
    assert layers["layer2.0.conv1.0.3"].output_shape == (128, 8, 28, 28)


def test_s3d_by_hand() -> None:
    layers = {r.path: r for r in zoo("s3d").layers}
    # the stem's separable 7: 1x7x7 stride 1x2x2, then 7x1x1 stride 2x1x1
    assert layers["features.0.0.0"].output_shape == (64, 16, 112, 112)
    assert layers["features.0.1.0"].output_shape == (64, 8, 112, 112)
    # GoogLeNet's inception widths, the 3x3s separated: b0 + b1 + b2 + b3
    assert layers["features.5.cat"].output_shape == (64 + 128 + 32 + 32, 8, 28, 28)
    assert layers["features.6.cat"].output_shape == (128 + 192 + 96 + 64, 8, 28, 28)
    assert layers["features.12.cat"].output_shape == (256 + 320 + 128 + 128, 4, 14, 14)
    assert layers["features.15.cat"].output_shape == (384 + 384 + 128 + 128, 2, 7, 7)
    # branch1 of features.5: 1x1x1 192 -> 96, then 1x3x3 96 -> 128 and 3x1x1 128 -> 128
    assert layers["features.5.branch1.0.0"].params.params == 192 * 96
    assert layers["features.5.branch1.1.0.0"].params.params == 96 * 128 * 9
    assert layers["features.5.branch1.1.1.0"].params.params == 128 * 128 * 3
    # head: 2x7x7 average pool -> 1x1x1, 1x1x1 conv with bias, mean over (T, H, W)
    assert layers["avgpool"].output_shape == (1024, 1, 1, 1)
    assert layers["classifier.1"].params.params == 1024 * 400 + 400
    assert layers["mean"].output_shape == (400,)


# --- names, written out from torchvision's definitions (torchvision/models/video/) ------------

def test_video_resnet_block_names() -> None:
    # BasicBlock: conv1 = Sequential(conv_builder, BatchNorm3d, ReLU), conv2 = Sequential(
    # conv_builder, BatchNorm3d), downsample = Sequential(Conv3d, BatchNorm3d), one ReLU module
    # `relu`; Conv2Plus1D is itself a Sequential (Conv3d, BatchNorm3d, ReLU, Conv3d)
    simple = ["conv1.0", "conv1.1", "conv1.2", "conv2.0", "conv2.1",
              "downsample.0", "downsample.1", "add", "relu"]
    split = ["conv1.0.0", "conv1.0.1", "conv1.0.2", "conv1.0.3", "conv1.1", "conv1.2",
             "conv2.0.0", "conv2.0.1", "conv2.0.2", "conv2.0.3", "conv2.1",
             "downsample.0", "downsample.1", "add", "relu"]
    for model, block in [("r3d_18", simple), ("mc3_18", simple), ("r2plus1d_18", split)]:
        order = load(str(SPECS / f"{model}.yaml")).order
        assert [p[len("layer2.0."):] for p in order if p.startswith("layer2.0.")] == block
        assert order[-3:] == ("avgpool", "flatten", "fc")
    assert [p for p in load(str(SPECS / "r2plus1d_18.yaml")).order if p.startswith("stem.")] == [
        f"stem.{i}" for i in range(6)]


def test_s3d_names() -> None:
    # SepInceptionBlock3D: branch0 = Conv3dNormActivation (0 conv, 1 norm, 2 ReLU); branch1 and
    # branch2 = Sequential(Conv3dNormActivation, TemporalSeparableConv = Sequential of two);
    # branch3 = Sequential(MaxPool3d, Conv3dNormActivation); then torch.cat
    cna = ["0", "1", "2"]
    block = [f"branch0.{k}" for k in cna]
    for branch in ("branch1", "branch2"):
        block += [f"{branch}.0.{k}" for k in cna]
        block += [f"{branch}.1.{half}.{k}" for half in (0, 1) for k in cna]
    block += ["branch3.0", *[f"branch3.1.{k}" for k in cna], "cat"]
    order = load(str(SPECS / "s3d.yaml")).order
    assert [p[len("features.5."):] for p in order if p.startswith("features.5.")] == block
    stems = sorted({p.split(".")[1] for p in order if p.startswith("features.")}, key=int)
    assert stems == [str(i) for i in range(16)]
    assert order[-4:] == ("avgpool", "classifier.0", "classifier.1", "mean")


# --- against torch: the recorded measurements at the full input -------------------------------

RECORDED = json.loads((Path(__file__).parent / "data" / "torch_measurements.json").read_text())


def per_clip(analysis: Analysis) -> Analysis:
    return analyze(analysis.network, MemoryOptions(batch=1))


@pytest.mark.parametrize("model", MODELS)
def test_recorded_torch_figures(model: str) -> None:
    torch_figures = RECORDED["zoo"][model]
    assert torch_figures["build"] == {"weights": None}
    assert tuple(torch_figures["input"]) == PUBLISHED[model][2]
    result = per_clip(zoo(model))
    assert result.totals.params == torch_figures["params"]
    # batch norm's running mean, running variance and num_batches_tracked
    assert result.totals.buffers == torch_figures["buffers"]
    assert list(result.output_shape) == torch_figures["output_shape"]
    # 2 x the multiply-accumulates of convolutions and fc; pooling and the mean count none
    assert result.totals.flops == torch_figures["flops"]
    # float32, training: what autograd keeps for backward for one more clip
    assert result.memory.training_activations == torch_figures["saved_bytes_per_example"]


# --- at a short, small clip: the executor, and torch layer by layer ---------------------------

# 8 frames of 32x32 (ResNets: layer4 512 x 1 x 2 x 2, MC3 512 x 8 x 2 x 2). S3D's 2x7x7 average
# pool needs the full 16x224x224 (five spatial halvings to 7, three temporal to 2): at 8x64x64
# its features end 1024 x 1 x 2 x 2, so the pool becomes 1x2x2 there, in the spec and in torch.
SMALL = {"resnet": [3, 8, 32, 32], "s3d": [3, 8, 64, 64]}
S3D_SMALL_POOL = (1, 2, 2)


def small_spec(model: str) -> str:
    text = (SPECS / f"{model}.yaml").read_text()
    if model != "s3d":
        return text.replace("input: [3, 16, 112, 112]", f"input: {SMALL['resnet']}")
    text = text.replace("input: [3, 16, 224, 224]", f"input: {SMALL['s3d']}")
    return text.replace("kernel: [2, 7, 7]", f"kernel: {list(S3D_SMALL_POOL)}")


@pytest.mark.parametrize("model", MODELS)
def test_executor_agrees_at_the_small_clip(model: str, tmp_path: Path) -> None:
    # 18 to 43 GMACs at their clip: tests/test_verify.py runs them smaller or leaves them out
    path = tmp_path / f"{model}.yaml"
    path.write_text(small_spec(model))
    result = verify(load(str(path)), batch=2)
    assert result.mismatches == ()


@pytest.fixture(scope="module", params=MODELS)
def measured(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    torch = pytest.importorskip("torch")
    video = pytest.importorskip("torchvision.models.video")
    torch.manual_seed(0)
    model = getattr(video, request.param)(weights=None)
    if request.param == "s3d":
        model.avgpool = torch.nn.AvgPool3d(kernel_size=S3D_SMALL_POOL, stride=1)
    clip = SMALL["s3d" if request.param == "s3d" else "resnet"]
    return request.param, measure_module(torch, model, tuple(clip))


def test_every_layer_matches_torch(measured: tuple[str, dict[str, Any]], analyse_text: Any) -> None:
    model, figures = measured
    analysis = per_clip(analyse_text(small_spec(model), f"{model}.yaml"))
    assert analysis.totals.params == figures["params"]
    assert analysis.totals.buffers == figures["buffers"]
    assert list(analysis.output_shape) == figures["output_shape"] == [400]
    assert analysis.totals.flops == figures["flops"]
    # every torch module, by its name: output shape, own parameters, FLOPs
    assert_layers_match(analysis, figures["layers"])
    assert analysis.memory.training_activations == figures["saved_bytes_per_example"]
