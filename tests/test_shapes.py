"""Output shapes: ResNet-18 derived by hand, and each padding form, mode and rounding rule."""

from __future__ import annotations

import pytest
from conftest import zoo


def out(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """floor((n + 2p - d(k-1) - 1)/s) + 1, written out once for the hand derivations below."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def test_resnet18_every_layer_by_hand() -> None:
    expected: dict[str, tuple[int, ...]] = {}
    stem = out(224, 7, 2, 3)  # (224 + 6 - 7)//2 + 1 = 112
    assert stem == 112
    for name in ("conv1", "bn1", "relu"):
        expected[name] = (64, stem, stem)
    size = out(stem, 3, 2, 1)  # (112 + 2 - 3)//2 + 1 = 56
    assert size == 56
    expected["maxpool"] = (64, size, size)
    for stage, width in zip((1, 2, 3, 4), (64, 128, 256, 512)):
        for block in (0, 1):
            stride = 2 if stage > 1 and block == 0 else 1
            entry = size
            size = out(entry, 3, stride, 1)  # 56 -> 28 -> 14 -> 7 on the first block of a stage
            prefix = f"layer{stage}.{block}."
            for name in ("conv1", "bn1", "relu", "conv2", "bn2", "add", "relu2"):
                expected[prefix + name] = (width, size, size)
            if stride == 2:
                side = out(entry, 1, 2, 0)  # the 1x1 projection: (n - 1)//2 + 1
                assert side == size
                expected[prefix + "downsample.0"] = (width, side, side)
                expected[prefix + "downsample.1"] = (width, side, side)
    assert size == 7
    expected["avgpool"] = (512, 1, 1)
    expected["flatten"] = (512,)
    expected["fc"] = (1000,)

    result = zoo("resnet18")
    assert {r.path: r.output_shape for r in result.layers} == expected


def test_resnet_blocks_wire_the_skip_connections() -> None:
    layers = {r.path: r for r in zoo("resnet18").layers}
    assert layers["layer1.0.add"].inputs == ("layer1.0.bn2", "maxpool")
    assert layers["layer2.0.add"].inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    assert layers["layer2.0.downsample.0"].inputs == ("layer1.1.relu2",)
    assert layers["layer2.1.add"].inputs == ("layer2.1.bn2", "layer2.0.relu2")


def test_alexnet_and_vgg16_feature_maps() -> None:
    # AlexNet: 224 -> conv 11/4 p2: (224+4-11)//4+1 = 55 -> pool 3/2: 27 -> conv 5 p2: 27
    # -> pool: 13 -> three 3x3 p1 convs: 13 -> pool: 6.
    alex = {r.path: r.output_shape for r in zoo("alexnet").layers}
    assert alex["features.0"] == (64, 55, 55)
    assert alex["features.2"] == (64, 27, 27)
    assert alex["features.5"] == (192, 13, 13)
    assert alex["features.12"] == (256, 6, 6)
    assert alex["flatten"] == (256 * 6 * 6,)
    # VGG-16: five 2x2 pools halve 224 to 7.
    vgg = {r.path: r.output_shape for r in zoo("vgg16").layers}
    assert vgg["features.30"] == (512, 7, 7)  # the last max pooling
    assert vgg["flatten"] == (512 * 7 * 7,)


def test_neon_cnn1_by_hand() -> None:
    # dilation 2 makes the 3x3 kernel span 5; padding 2 keeps 64: (64 + 4 - 5)//1 + 1 = 64.
    # max pool 3, stride 2, padding 1: (64 + 2 - 3)//2 + 1 = 32; then 32 and 16.
    shapes = {r.path: r.output_shape for r in zoo("neon_cnn1").layers}
    assert shapes["conv1"] == (32, 64, 64)
    assert shapes["pool1"] == (32, 32, 32)
    assert shapes["conv2"] == (64, 32, 32)
    assert shapes["pool2"] == (64, 16, 16)
    assert shapes["flatten"] == (64 * 16 * 16,)


def _single(analyse_text, input_shape: str, layer: str) -> tuple[int, ...]:
    result = analyse_text(f"name: t\ninput: {input_shape}\nlayers:\n  - {layer}\n")
    return result.layers[0].output_shape


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        # explicit per-axis: H: (10+2*1-3)//2+1 = 5; W: (11+0-3)//2+1 = 5
        ("{op: conv2d, out: 2, kernel: 3, stride: 2, padding: [1, 0]}", (2, 5, 5)),
        # per side: H: 10+0+3-3+1 = 11; W: 11+2+2-3+1 = 13
        ("{op: conv2d, out: 2, kernel: 3, padding: [[0, 3], [2, 2]]}", (2, 11, 13)),
        # 'same' at stride 1 keeps the size, even kernel included
        ("{op: conv2d, out: 2, kernel: 4, padding: same}", (2, 10, 11)),
        # 'same' with stride 2 (TensorFlow rule): ceil(n/2)
        ("{op: conv2d, out: 2, kernel: 3, stride: 2, padding: same}", (2, 5, 6)),
        # 'valid': no padding: 10-3+1, 11-3+1
        ("{op: conv2d, out: 2, kernel: 3, padding: valid}", (2, 8, 9)),
        # dilation 3 spans 3*(3-1)+1 = 7: 10-7+1 = 4, 11-7+1 = 5
        ("{op: conv2d, out: 2, kernel: 3, dilation: 3}", (2, 4, 5)),
        # padding modes do not change the size
        ("{op: conv2d, out: 2, kernel: 3, padding: 1, padding_mode: reflect}", (2, 10, 11)),
        ("{op: conv2d, out: 2, kernel: 3, padding: 2, padding_mode: circular}", (2, 12, 13)),
        # transposed: (n-1)*2 - 2*1 + 3 + 1 = 2n - 0 -> 20, 22
        ("{op: conv_transpose2d, out: 2, kernel: 3, stride: 2, padding: 1, output_padding: 1}", (2, 20, 22)),
        # floor pooling: (10-3)//2+1 = 4, (11-3)//2+1 = 5
        ("{op: max_pool2d, kernel: 3, stride: 2}", (3, 4, 5)),
        # ceil pooling: ceil((10-3)/2)+1 = 5, ceil((11-3)/2)+1 = 5
        ("{op: max_pool2d, kernel: 3, stride: 2, ceil_mode: true}", (3, 5, 5)),
        ("{op: avg_pool2d, kernel: 2, ceil_mode: true}", (3, 5, 6)),
        ("{op: adaptive_avg_pool2d, output: [3, null]}", (3, 3, 11)),
        ("{op: global_max_pool}", (3,)),
        ("{op: global_avg_pool, keepdims: true}", (3, 1, 1)),
        ("{op: flatten, start_dim: 2}", (3, 110)),
        ("{op: linear, out: 7}", (3, 10, 7)),
    ],
)
def test_window_rules_2d(analyse_text, layer: str, expected: tuple[int, ...]) -> None:
    assert _single(analyse_text, "[3, 10, 11]", layer) == expected


def test_ceil_mode_drops_a_window_that_starts_in_the_padding(analyse_text) -> None:
    # n=6, k=2, s=2, p=1: ceil((6+2-2)/2)+1 = 4, but window 4 would start at 3*2 = 6 >= 6+1? No:
    # 6 < 7, so it stays 4. With n=5, k=2, s=2, p=1: ceil((5+2-2)/2)+1 = 4; window 4 starts at
    # 3*2 = 6 >= 5+1 = 6, so PyTorch drops it: 3.
    assert _single(analyse_text, "[1, 6]", "{op: max_pool1d, kernel: 2, stride: 2, padding: 1, ceil_mode: true}") == (1, 4)
    assert _single(analyse_text, "[1, 5]", "{op: max_pool1d, kernel: 2, stride: 2, padding: 1, ceil_mode: true}") == (1, 3)


def test_1d_and_3d(analyse_text) -> None:
    # conv1d: (100 + 2*2 - 5)//3 + 1 = 34
    assert _single(analyse_text, "[4, 100]", "{op: conv1d, out: 8, kernel: 5, stride: 3, padding: 2}") == (8, 34)
    # conv3d with per-axis kernel [1,3,3], stride [1,2,2], padding [0,1,1]: D 16, H (32+2-3)//2+1 = 16
    assert _single(
        analyse_text, "[3, 16, 32, 32]",
        "{op: conv3d, out: 8, kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1]}",
    ) == (8, 16, 16, 16)
    assert _single(analyse_text, "[3, 16, 32, 32]", "{op: max_pool3d, kernel: 2}") == (3, 8, 16, 16)


def test_merges(analyse_text) -> None:
    result = analyse_text(
        """
name: merges
input: [8, 6, 6]
layers:
  - {name: a, op: conv2d, out: 4, kernel: 1}
  - {name: b, op: conv2d, out: 12, kernel: 3, padding: 1, from: input}
  - {name: cat, op: concat, from: [a, b, input]}          # 4 + 12 + 8 channels
  - {name: squeeze, op: global_avg_pool, keepdims: true}  # 24x1x1
  - {name: excite, op: sigmoid}
  - {name: scale, op: mul, from: [cat, excite]}           # broadcasts 24x1x1 over 24x6x6
"""
    )
    shapes = {r.path: r.output_shape for r in result.layers}
    assert shapes["cat"] == (24, 6, 6)
    assert shapes["scale"] == (24, 6, 6)


def test_input_override_changes_every_shape(analyse_text) -> None:
    from conftest import SPECS

    from archcalc.analysis import analyze
    from archcalc.spec.graph import load

    network = load(str(SPECS / "resnet18.yaml")).with_input((3, 320, 320))
    shapes = {r.path: r.output_shape for r in analyze(network).layers}
    assert shapes["layer4.1.relu2"] == (512, 10, 10)  # 320 / 32
    assert shapes["fc"] == (1000,)


def test_add_mismatch_names_the_projection_that_would_fix_it(analyse_text) -> None:
    import pytest

    from archcalc.errors import ShapeError

    # a: 3x3 valid conv on 32 -> 8x30x30; b: 3x3 stride-2 conv -> 16x15x15. Mapping 30 to 15
    # takes stride 2 ((30 - 1)//2 + 1 = 15) and 16 output channels.
    with pytest.raises(ShapeError, match=r"1x1 convolution, stride 2, to 16 channels"):
        analyse_text(
            "name: x\ninput: [3, 32, 32]\nlayers:\n"
            "  - {name: a, op: conv2d, out: 8, kernel: 3}\n"
            "  - {name: b, op: conv2d, out: 16, kernel: 3, stride: 2, from: input}\n"
            "  - {op: add, from: [a, b]}\n"
        )


# A [C] gate (global pooling without keepdims) times a [C, H, W] map with C = W = 6: aligned
# without the batch axis the product looks like a [6, 6, 6] broadcast, but PyTorch broadcasts
# the batched tensors [N, 6] and [N, 6, 6, 6] and pairs N with H.
GATE = (
    "name: gate\ninput: [6, 5, 6]\nlayers:\n"
    "  - {name: squeeze, op: global_avg_pool}\n"
    "  - {name: excite, op: sigmoid}\n"
    "  - {op: mul, from: [input, excite]}\n"
)


def test_mul_broadcasts_with_the_batch_axis_as_pytorch(analyse_text) -> None:
    from archcalc.errors import ShapeError

    with pytest.raises(ShapeError, match=r"give it the shape \[6, 1, 1\]"):
        analyse_text(GATE)
    fixed = analyse_text(GATE.replace("global_avg_pool}", "global_avg_pool, keepdims: true}"))
    assert fixed.output_shape == (6, 5, 6)


def test_pytorch_refuses_a_flat_gate_at_batch_2_only() -> None:
    torch = pytest.importorskip("torch")
    x = torch.ones(1, 6, 5, 6)
    # batch 1: [1, 6] pairs its 1 with H and its channels with W, and is silently accepted
    assert (x * x.mean(dim=(2, 3))).shape == (1, 6, 5, 6)
    x = torch.ones(2, 6, 5, 6)
    with pytest.raises(RuntimeError, match="must match the size"):
        x * x.mean(dim=(2, 3))
