"""The neon course's networks (deck 001): CNN-2, FCNN-1/2/3 and the pre-activation ResNets.

Each parameter count is derived here by hand, step by step, from the deck's tables and listings
and neon's layer semantics (no biases unless a `bias` initialiser is given; BatchNorm learns a
scale and a shift per feature map), independently of archcalc; then archcalc must agree. Shapes
of key layers by the output-size rule floor((n + 2p - k) / s) + 1, neon's output_dim.
"""

from __future__ import annotations

from math import log2

import pytest
from conftest import zoo


def conv(out: int, inp: int, k: int) -> int:
    """Weights of a bias-free convolution: out * in * k * k."""
    return out * inp * k * k


def bn(channels: int) -> int:
    """BatchNorm's learned gamma and beta per feature map."""
    return 2 * channels


def size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    return (n + 2 * padding - k) // stride + 1


# --- fully connected: 3x64x64 = 12,288 inputs, flattened by the first Affine ------------------

INPUTS = 3 * 64 * 64


def test_input_features() -> None:
    assert INPUTS == 12_288


@pytest.mark.parametrize(
    ("model", "widths", "expected"),
    [
        # FCNN-1: Affine(128, Tanh), Affine(2, Logistic): 1,572,864 + 256
        ("neon_fcnn1", [128, 2], 1_573_120),
        # FCNN-2: Affine(128, Tanh), Affine(64, Tanh), Affine(2, Logistic): 1,572,864 + 8,192 + 128
        ("neon_fcnn2", [128, 64, 2], 1_581_184),
        # FCNN-3: Affine(400, Rectlin), Affine(50, Logistic), Affine(2, Logistic):
        # 4,915,200 + 20,000 + 100
        ("neon_fcnn3", [400, 50, 2], 4_935_300),
    ],
)
def test_fcnn_parameters_by_hand(model: str, widths: list[int], expected: int) -> None:
    fan_in = [INPUTS, *widths[:-1]]
    weights = [i * o for i, o in zip(fan_in, widths)]  # no biases
    assert sum(weights) == expected
    result = zoo(model)
    assert result.totals.params == expected
    assert result.totals.buffers == 0
    assert [r.params.params for r in result.layers if r.op == "linear"] == weights
    assert result.output_shape == (2,)


def test_fcnn_layer_sequences() -> None:
    ops = {m: [r.op for r in zoo(m).layers] for m in ("neon_fcnn1", "neon_fcnn2", "neon_fcnn3")}
    assert ops["neon_fcnn1"] == ["flatten", "linear", "tanh", "linear", "sigmoid"]
    assert ops["neon_fcnn2"] == ["flatten", "linear", "tanh", "linear", "tanh", "linear", "sigmoid"]
    assert ops["neon_fcnn3"] == ["flatten", "linear", "relu", "linear", "sigmoid", "linear", "sigmoid"]


# --- CNN-2 -------------------------------------------------------------------------------------


def test_cnn2_shapes_by_hand() -> None:
    # no padding (neon's default): each 3x3 takes 2 off, 1x1 keeps the size; the 5x5 pool with
    # stride 2 halves what is left: (62 - 5) // 2 + 1 = 29
    sizes = {"conv1": size(64, 3)}
    assert sizes["conv1"] == 62
    sizes["pool1"] = size(62, 5, stride=2)
    assert sizes["pool1"] == 29
    n = 29
    for name, k in [("conv2", 3), ("conv3", 1), ("conv4", 3), ("conv5", 1), ("conv6", 3),
                    ("conv7", 3), ("conv8", 1)]:
        n = size(n, k)
        sizes[name] = n
    assert sizes == {"conv1": 62, "pool1": 29, "conv2": 27, "conv3": 27, "conv4": 25, "conv5": 25,
                     "conv6": 23, "conv7": 21, "conv8": 21}
    shapes = {r.path: r.output_shape for r in zoo("neon_cnn2").layers}
    assert shapes["conv1"] == (32, 62, 62)
    assert shapes["pool1"] == (32, 29, 29)
    assert shapes["conv2.bn"] == (32, 27, 27)
    assert shapes["conv4.bn"] == (64, 25, 25)
    assert shapes["conv6.bn"] == (128, 23, 23)
    assert shapes["conv7.bn"] == (2, 21, 21)
    assert shapes["conv8.bn"] == (2, 21, 21)
    assert shapes["pool2"] == (2, 1, 1)  # Pooling('all', op='avg')
    assert shapes["fc"] == (2,)


def test_cnn2_parameters_by_hand() -> None:
    conv1 = conv(32, 3, 3)
    assert conv1 == 864
    stages = [  # Conv((k,k,out), Explin), BatchNorm: weights + 2 per channel
        conv(32, 32, 3) + bn(32),    # 9,216 + 64
        conv(64, 32, 1) + bn(64),    # 2,048 + 128
        conv(64, 64, 3) + bn(64),    # 36,864 + 128
        conv(128, 64, 1) + bn(128),  # 8,192 + 256
        conv(128, 128, 3) + bn(128), # 147,456 + 256
        conv(2, 128, 3) + bn(2),     # 2,304 + 4
        conv(2, 2, 1) + bn(2),       # 4 + 4
    ]
    assert stages == [9_280, 2_176, 36_992, 8_448, 147_712, 2_308, 8]
    fc = 2 * 2  # Affine(2, Logistic) on the 2 pooled maps
    total = conv1 + sum(stages) + fc
    assert total == 207_792
    result = zoo("neon_cnn2")
    assert result.totals.params == total
    # running mean and variance per channel, plus PyTorch's num_batches_tracked per BatchNorm
    channels = 32 + 64 + 64 + 128 + 128 + 2 + 2
    assert result.totals.buffers == 2 * channels + 7 == 847


# --- the pre-activation ResNets (make_resnet_base) ----------------------------------------------


def test_resnet18_parameters_by_hand() -> None:
    stem = conv(64, 3, 7) + bn(64)
    assert stem == 9_408 + 128
    # module_basic(nfm, first, stride): [BN, ReLU unless first], 3x3 conv-BN-ReLU, bare 3x3;
    # side 1x1 when first or strided
    modules = [
        conv(64, 64, 3) + bn(64) + conv(64, 64, 3) + conv(64, 64, 1),                # first
        bn(64) + conv(64, 64, 3) + bn(64) + conv(64, 64, 3),
        bn(64) + conv(128, 64, 3) + bn(128) + conv(128, 128, 3) + conv(128, 64, 1),  # stride 2
        bn(128) + conv(128, 128, 3) + bn(128) + conv(128, 128, 3),
        bn(128) + conv(256, 128, 3) + bn(256) + conv(256, 256, 3) + conv(256, 128, 1),
        bn(256) + conv(256, 256, 3) + bn(256) + conv(256, 256, 3),
        bn(256) + conv(512, 256, 3) + bn(512) + conv(512, 512, 3) + conv(512, 256, 1),
        bn(512) + conv(512, 512, 3) + bn(512) + conv(512, 512, 3),
    ]
    assert modules == [77_952, 73_984, 229_760, 295_424, 918_272, 1_180_672, 3_671_552, 4_720_640]
    head = bn(512) + 512 * 2  # BatchNorm, Rectlin, Pooling('all'), Affine(2) without bias
    total = stem + sum(modules) + head
    assert total == 11_179_840
    assert zoo("neon_resnet18").totals.params == total


def test_resnet50_parameters_by_hand() -> None:
    stem = conv(64, 3, 7) + bn(64)
    # module_bottleneck: [BN, ReLU unless first], 1x1 conv-BN-ReLU (the stride), 3x3
    # conv-BN-ReLU, bare 1x1 to 4n; side 1x1 to 4n when first or strided
    first = conv(64, 64, 1) + bn(64) + conv(64, 64, 3) + bn(64) + conv(256, 64, 1) + conv(256, 64, 1)
    assert first == 73_984

    def plain(n: int) -> int:  # input 4n channels, stride 1: 17n^2 + 12n
        return bn(4 * n) + conv(n, 4 * n, 1) + bn(n) + conv(n, n, 3) + bn(n) + conv(4 * n, n, 1)

    def strided(n: int) -> int:  # input 2n channels (the stage before's 4 * n/2): 23n^2 + 8n
        return (bn(2 * n) + conv(n, 2 * n, 1) + bn(n) + conv(n, n, 3) + bn(n) + conv(4 * n, n, 1)
                + conv(4 * n, 2 * n, 1))

    assert [plain(n) for n in (64, 128, 256, 512)] == [70_400, 280_064, 1_117_184, 4_462_592]
    assert [strided(n) for n in (128, 256, 512)] == [377_856, 1_509_376, 6_033_408]
    stages = [first + 2 * plain(64), strided(128) + 3 * plain(128), strided(256) + 5 * plain(256),
              strided(512) + 2 * plain(512)]
    assert stages == [214_784, 1_218_048, 7_095_296, 14_958_592]
    head = bn(2048) + 2048 * 2
    total = stem + sum(stages) + head
    assert total == 23_504_448
    assert zoo("neon_resnet50").totals.params == total


def deck_resnet_parameters(stage_depths: list[int], block: str, base_channels: int = 64) -> int:
    """A second route: the deck's make_resnet_base and generate_resnet18_model transcribed, with
    each Conv's weights counted where the listing builds it (fsize*fsize*in*nfm, no bias) and a
    BatchNorm's 2 per channel wherever batch_norm=True or a BatchNorm() is appended."""
    populated = [stage for stage, depth in enumerate(stage_depths) for _ in range(depth)]
    nfms = [2 ** (stage + int(log2(base_channels))) for stage in populated]
    strides = [1 if cur == prev else 2 for cur, prev in zip(nfms[1:], nfms[:-1])]
    channels = 3
    total = conv(base_channels, channels, 7) + bn(base_channels)  # Conv(**conv_params(7, 64, 2))
    channels = base_channels

    def module(nfm: int, first: bool = False, stride: int = 1) -> int:
        nonlocal channels
        count = 0 if first else bn(channels)
        inp = channels
        if block == "basic":
            count += conv(nfm, inp, 3) + bn(nfm) + conv(nfm, nfm, 3)
            out = nfm
        else:
            count += conv(nfm, inp, 1) + bn(nfm) + conv(nfm, nfm, 3) + bn(nfm) + conv(4 * nfm, nfm, 1)
            out = 4 * nfm
        if first or stride != 1:
            count += conv(out, inp, 1)
        channels = out
        return count

    total += module(nfms[0], first=True)
    for nfm, stride in zip(nfms[1:], strides):
        total += module(nfm, stride=stride)
    return total + bn(channels) + channels * 2  # BatchNorm, ..., Affine(2)


def test_resnets_by_the_transcribed_listing() -> None:
    assert deck_resnet_parameters([2, 2, 2, 2], "basic") == 11_179_840
    assert deck_resnet_parameters([3, 4, 6, 3], "bottleneck") == 23_504_448


def test_resnet_shapes_by_hand() -> None:
    # stem: 7x7 stride 2 padding 3 on 64: (64 + 6 - 7) // 2 + 1 = 32; max pool 3x3 s2 p1: 16;
    # each later stage halves: 8, 4, 2. The strided 3x3 (padding 1) and the 1x1 side path
    # (padding 0) agree: (16 + 2 - 3) // 2 + 1 = (16 - 1) // 2 + 1 = 8.
    assert size(64, 7, 2, 3) == 32 and size(32, 3, 2, 1) == 16
    assert size(16, 3, 2, 1) == size(16, 1, 2) == 8
    r18 = {r.path: r.output_shape for r in zoo("neon_resnet18").layers}
    assert r18["conv1.relu"] == (64, 32, 32)
    assert r18["pool1"] == (64, 16, 16)
    assert r18["stage1.0.sidepath"] == (64, 16, 16)  # the first module projects, stride 1
    assert "stage1.1.sidepath" not in r18 and "stage1.0.bn" not in r18
    assert r18["stage2.0.bn"] == (64, 16, 16)  # pre-activation on the module's input
    assert r18["stage2.0.sidepath"] == r18["stage2.0.conv2"] == (128, 8, 8)
    assert r18["stage4.1.merge"] == (512, 2, 2)
    assert r18["pool"] == (512, 1, 1)
    assert r18["softmax"] == (2,)
    r50 = {r.path: r.output_shape for r in zoo("neon_resnet50").layers}
    assert r50["stage1.0.merge"] == (256, 16, 16)
    assert r50["stage2.0.conv1.conv"] == (128, 8, 8)  # the stride on the first 1x1
    assert r50["stage3.5.merge"] == (1024, 4, 4)
    assert r50["stage4.2.merge"] == (2048, 2, 2)
    assert r50["fc"] == (2,)


@pytest.mark.parametrize(
    ("model", "modules", "projections"), [("neon_resnet18", 8, 4), ("neon_resnet50", 16, 4)]
)
def test_resnet_side_paths(model: str, modules: int, projections: int) -> None:
    # a MergeSum per module; a 1x1 projection on the first module and each stride-2 module, the
    # rest SkipNode; the side path reads the module's raw input (the pre-activation is on the main
    # path only)
    layers = zoo(model).layers
    assert sum(r.op == "add" for r in layers) == modules
    sides = {r.path: r.inputs for r in layers if r.path.endswith(".sidepath")}
    assert list(sides) == [f"stage{n}.0.sidepath" for n in range(1, projections + 1)]
    # the stem's pool, then the previous stage's last MergeSum: never a BatchNorm or ReLU output
    assert sides["stage1.0.sidepath"] == ("pool1",)
    assert all(inputs[0].endswith(".merge") for path, inputs in sides.items() if path != "stage1.0.sidepath")
