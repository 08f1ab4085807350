"""The RegNet zoo: torchvision's 15 builders, RegNetX 400MF ... 32GF and RegNetY 400MF ... 128GF.

First through archcalc alone (CI has no torch): torchvision's published parameter counts and
GFLOPS; each spec's stages against the RegNet width rule, computed here from the builders'
arguments; torchvision's module names written out; the NumPy executor runs 14 of them at
3x64x64. The recorded torch measurements of all 15 (parameters, buffers, output shape, FLOPs,
saved bytes) are checked by tests/test_torch_measurements.py. Then, when torch and torchvision
are installed, four of them layer by layer against the models themselves at 3x64x64.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS, zoo
from torch_reference import measure_module

from archcalc.analysis import Analysis, analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.verify import verify

# torchvision docs: the weights' metadata of each builder (torchvision 0.29.1's regnet.py:
# RegNet_X_400MF_Weights.IMAGENET1K_V1.meta["num_params"] and ["_ops"], ...), also the Params
# and GFLOPS columns of the "Table of all available classification weights", at 224x224. Those
# GFLOPS are multiply-accumulates (fvcore's convention): archcalc's MACs, in billions.
# RegNetY-128GF has SWAG weights only: IMAGENET1K_SWAG_LINEAR_V1 is evaluated at 224x224
# (127.518); IMAGENET1K_SWAG_E2E_V1's 374.57 is at 384x384.
PUBLISHED = {
    # spec: (params, GFLOPS)
    "regnet_x_400mf": (5_495_976, 0.414),
    "regnet_x_800mf": (7_259_656, 0.8),
    "regnet_x_1_6gf": (9_190_136, 1.603),
    "regnet_x_3_2gf": (15_296_552, 3.177),
    "regnet_x_8gf": (39_572_648, 7.995),
    "regnet_x_16gf": (54_278_536, 15.941),
    "regnet_x_32gf": (107_811_560, 31.736),
    "regnet_y_400mf": (4_344_144, 0.402),
    "regnet_y_800mf": (6_432_512, 0.834),
    "regnet_y_1_6gf": (11_202_430, 1.612),
    "regnet_y_3_2gf": (19_436_338, 3.176),
    "regnet_y_8gf": (39_381_472, 8.473),
    "regnet_y_16gf": (83_590_140, 15.912),
    "regnet_y_32gf": (145_046_770, 32.28),
    "regnet_y_128gf": (644_812_894, 127.518),
}
MODELS = list(PUBLISHED)

# torchvision's builders: BlockParams.from_init_params(depth, w_0, w_a, w_m, group_width), with
# se_ratio=0.25 for RegNetY (regnet.py, e.g. regnet_x_400mf: depth=22, w_0=24, w_a=24.48,
# w_m=2.54, group_width=16)
INIT_PARAMS = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264),
}
Stage = tuple[int, int, int]  # (depth, width, group width)


def regnet_stages(depth: int, w_0: int, w_a: float, w_m: float, group_width: int) -> list[Stage]:
    """Radosavovic et al. 2020, section 3.3, as torchvision's BlockParams.from_init_params: block
    j's width u_j = w_0 + w_a * j, quantised in log space with base w_m
    (s_j = round(log(u_j / w_0) / log(w_m)), width round(w_0 * w_m^s_j / 8) * 8); a stage is a
    run of equal widths. Then _adjust_widths_groups_compatibilty: the group width is at most the
    width, and the width a multiple of it (torchvision's _make_divisible)."""
    widths = [round(w_0 * w_m ** round(math.log((w_0 + w_a * j) / w_0) / math.log(w_m)) / 8) * 8
              for j in range(depth)]
    stages: list[Stage] = []
    for j, width in enumerate(widths):
        if j and width == widths[j - 1]:
            stages[-1] = (stages[-1][0] + 1, *stages[-1][1:])
            continue
        group = min(group_width, width)
        divisible = max(group, (width + group // 2) // group * group)
        stages.append((1, divisible + group * (divisible < 0.9 * width), group))
    return stages


@pytest.mark.parametrize(("model", "params"), [(m, p) for m, (p, _) in PUBLISHED.items()])
def test_torchvision_parameter_counts_are_exact(model: str, params: int) -> None:
    result = zoo(model)
    assert result.network.input_shape == (3, 224, 224)
    assert result.totals.params == params
    assert result.totals.trainable_params == params
    assert result.output_shape == (1000,)


@pytest.mark.parametrize(("model", "gflops"), [(m, g) for m, (_, g) in PUBLISHED.items()])
def test_torchvision_gflops_are_the_macs(model: str, gflops: float) -> None:
    assert round(zoo(model).totals.macs / 1e9, 3) == gflops


def test_the_width_rule_by_hand() -> None:
    # RegNetX-400MF: u_j = 24 + 24.48 j, s_j = round(log(u_j / 24) / log(2.54)), log 2.54 = 0.932:
    # j = 0: s 0, width 24; j = 1, 2: log 2.02 / 0.932 = 0.75 and log 3.04 / 0.932 = 1.19 -> 1,
    # 24 * 2.54 = 60.96 -> 8 * 8 = 64; j = 3 ... 9: log 4.06 / 0.932 = 1.50 ... log 10.18 / 0.932
    # = 2.49 -> 2, 24 * 2.54^2 = 154.8 -> 19 * 8 = 152; j = 10 ... 21: log 11.2 / 0.932 = 2.59 ...
    # -> 3, 24 * 2.54^3 = 393.3 -> 49 * 8 = 392. Stages of 1, 2, 7 and 12 blocks; then each width
    # to the nearest multiple of the group width 16 (half up): 24 -> 32, 64, 152 -> 160, 392 -> 400.
    assert regnet_stages(*INIT_PARAMS["regnet_x_400mf"]) == [
        (1, 32, 16), (2, 64, 16), (7, 160, 16), (12, 400, 16)]
    # RegNetX-8GF: the first stage is 80 wide, narrower than the group width 120, so its groups
    # are 80 wide (a single group)
    assert regnet_stages(*INIT_PARAMS["regnet_x_8gf"])[0] == (2, 80, 80)


def stages_of(analysis: Analysis) -> list[Stage]:
    """Each stage's (blocks, width, group width) as the spec builds it: from the blocks' 3x3s."""
    convs = {r.path: r for r in analysis.layers if r.path.endswith(".f.b.0")}
    stages: list[Stage] = []
    for s in range(1, 5):
        blocks = [r for p, r in convs.items() if p.startswith(f"trunk_output.block{s}.")]
        op = analysis.network.layer(blocks[0].path).op
        width = blocks[0].output_shape[0]
        stages.append((len(blocks), width, width // op.groups))
    return stages


@pytest.mark.parametrize("model", MODELS)
def test_stages_follow_the_width_rule(model: str) -> None:
    assert stages_of(zoo(model)) == regnet_stages(*INIT_PARAMS[model])


def test_squeeze_widths_by_hand() -> None:
    # RegNetY's SE squeezes to int(round(0.25 * width_in)), width_in the block's input width:
    # RegNetY-400MF block1-0 reads the 32-channel stem (8), block2-0 the 48 channels of stage 1
    # (12), block2-1 its own 104 (26). fc1 is a 1x1 convolution with bias from the 3x3's width.
    layers = {r.path: r for r in zoo("regnet_y_400mf").layers}
    for block, width, squeeze in [("block1.block1-0", 48, 8), ("block2.block2-0", 104, 12),
                                  ("block2.block2-1", 104, 26)]:
        fc1 = layers[f"trunk_output.{block}.f.se.fc1"]
        assert fc1.output_shape == (squeeze, 1, 1)
        assert fc1.params.params == width * squeeze + squeeze
        assert layers[f"trunk_output.{block}.f.se.mul"].output_shape == layers[
            f"trunk_output.{block}.f.b.2"].output_shape


@pytest.mark.parametrize("model", ["regnet_x_400mf", "regnet_y_32gf"])
def test_a_projection_on_each_stage_s_first_block(model: str) -> None:
    # every stage strides 2, so its first block projects (1x1 stride 2 + batch norm) and the
    # others add their input; RegNetX-400MF: 1 + 2 + 7 + 12 = 22 blocks (its `depth`)
    layers = zoo(model).layers
    projections = [r.path for r in layers if r.path.endswith(".proj.0")]
    assert projections == [f"trunk_output.block{s}.block{s}-0.proj.0" for s in range(1, 5)]
    assert sum(r.op == "add" for r in layers) == INIT_PARAMS[model][0]


# torchvision/models/regnet.py: stem = SimpleStemIN (Conv2dNormActivation: 0 conv, 1 batch norm,
# 2 ReLU); trunk_output = Sequential(block1 ... block4), each an AnyStage whose children are
# `block{stage}-{i}`: ResBottleneckBlock(proj [where the shape changes], f = BottleneckTransform(a,
# b, [se], c), activation), proj and c without activation; SqueezeExcitation(avgpool, fc1,
# activation, fc2, scale_activation); avgpool; fc. forward: `proj(x) + f(x)` (proj first),
# SE's `scale * input`, x.flatten(start_dim=1): functions, left out below.
SQUEEZE_EXCITATION = [("avgpool", "adaptive_avg_pool2d"), ("fc1", "conv2d"), ("activation", "relu"),
                      ("fc2", "conv2d"), ("scale_activation", "sigmoid")]


def conv_norm_activation(prefix: str, relu: bool = True) -> list[tuple[str, str]]:
    ops = ["conv2d", "batchnorm2d", *(["relu"] * relu)]
    return [(f"{prefix}.{i}", op) for i, op in enumerate(ops)]


def regnet_modules(model: str) -> list[tuple[str, str]]:
    expected = conv_norm_activation("stem")
    for s, (depth, _, _) in enumerate(regnet_stages(*INIT_PARAMS[model]), start=1):
        for i in range(depth):
            block = f"trunk_output.block{s}.block{s}-{i}"
            if i == 0:
                expected += conv_norm_activation(f"{block}.proj", relu=False)
            expected += conv_norm_activation(f"{block}.f.a") + conv_norm_activation(f"{block}.f.b")
            if model.startswith("regnet_y"):
                expected += [(f"{block}.f.se.{n}", op) for n, op in SQUEEZE_EXCITATION]
            expected += conv_norm_activation(f"{block}.f.c", relu=False)
            expected.append((f"{block}.activation", "relu"))
    return [*expected, ("avgpool", "adaptive_avg_pool2d"), ("fc", "linear")]


@pytest.mark.parametrize("model", MODELS)
def test_names_are_torchvisions(model: str) -> None:
    network = zoo(model).network
    ours = [(p, network.nodes[p].op.kind) for p in network.order
            if network.nodes[p].op.kind not in ("add", "mul", "flatten")]
    assert ours == regnet_modules(model)


# --- against torch itself, layer by layer, at a small input -----------------------------------

SMALL = 64  # stem 32, stages 16, 8, 4, 2
# the smallest of each kind, RegNetX-8GF's narrower first groups, RegNetY-32GF's single groups
# (group width 232 = the first stage's width); tests/test_torch_measurements.py checks all 15's
# totals at 224x224
CROSS_CHECKED = ["regnet_x_400mf", "regnet_x_8gf", "regnet_y_400mf", "regnet_y_32gf"]


def small_spec(model: str) -> str:
    """The spec's text at 3x64x64."""
    text = (SPECS / f"{model}.yaml").read_text()
    return text.replace("input: [3, 224, 224]", f"input: [3, {SMALL}, {SMALL}]")


def small(model: str, analyse_text: Any) -> Analysis:
    """The spec at 3x64x64, one float32 example."""
    return analyze(analyse_text(small_spec(model), f"{model}.yaml").network, MemoryOptions(batch=1))


# RegNetY-128GF's 644,812,894 parameters are 2.6 GB of float32 weights to draw at any input; its
# blocks are RegNetY-32GF's at other widths
@pytest.mark.parametrize("model", [m for m in MODELS if m != "regnet_y_128gf"])
def test_executor_agrees_at_the_small_input(model: str, tmp_path: Path) -> None:
    # tests/test_verify.py runs the rest of the zoo at full size
    path = tmp_path / f"{model}.yaml"
    path.write_text(small_spec(model))
    result = verify(load(str(path)), batch=1)
    assert result.mismatches == ()
    assert result.peak_bytes == result.analysis.memory.inference_peak


@pytest.fixture(scope="module", params=CROSS_CHECKED)
def measured(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    torch = pytest.importorskip("torch")
    models = pytest.importorskip("torchvision.models")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = getattr(models, request.param)(weights=None)
    return request.param, measure_module(torch, model, (3, SMALL, SMALL))


def test_every_layer_matches_torch(measured: tuple[str, dict[str, Any]], analyse_text: Any) -> None:
    model, figures = measured
    analysis = small(model, analyse_text)
    totals = analysis.totals
    assert [totals.params, totals.buffers, list(analysis.output_shape), totals.flops] == [
        figures[k] for k in ("params", "buffers", "output_shape", "flops")]
    # every torch leaf module has the layer of its name, with its output shape, parameters and
    # FLOPs; the spec's other layers are torchvision's functions (the adds, SE's product, flatten)
    layers = {r.path: [list(r.output_shape), r.params.params, r.flops.flops]
              for r in analysis.layers}
    mismatches = [
        (name, layer, layers.get(name)) for name, layer in figures["layers"].items()
        if layers.get(name) != [layer[k] for k in ("output_shape", "params", "flops")]
    ]
    assert mismatches == []
    functions = {r.op for r in analysis.layers if r.path not in figures["layers"]}
    assert functions <= {"add", "mul", "flatten"}


def test_saved_bytes_match_torch(measured: tuple[str, dict[str, Any]], analyse_text: Any) -> None:
    # float32, training: what autograd keeps for backward for one more image
    model, figures = measured
    saved = small(model, analyse_text).memory.training_activations
    assert saved == figures["saved_bytes_per_example"]
