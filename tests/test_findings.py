"""The design-review findings: each rule on a small spec derived by hand (one that triggers it,
one that does not), on zoo models whose answer is known, and the ignore mechanism."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import SPECS, zoo

from archcalc.analysis import analyze
from archcalc.errors import OptionError
from archcalc.review.findings import RULES, Finding, live_at_peak, review, unknown_rules
from archcalc.spec.graph import load
from archcalc.units import human_bytes


def found(analysis, rule: str) -> list[Finding]:
    return [f for f in review(analysis) if f.rule == rule]


# --- the registry and review() ------------------------------------------------------------------


def test_rules_are_registered_in_kebab_case_with_a_title_and_source() -> None:
    assert list(RULES) == [
        "representational-bottleneck",
        "large-kernel",
        "receptive-field-coverage",
        "dropped-pixels",
        "dilation-gridding",
        "dense-heavy",
        "bias-before-batchnorm",
        "concat-growth",
        "memory-hotspot",
    ]
    for rule_id, rule in RULES.items():
        assert rule.id == rule_id and rule.title and rule.source


def test_each_rule_is_one_module_named_after_it_with_its_severities() -> None:
    for rule_id, rule in RULES.items():
        assert rule.check.__module__ == "archcalc.review.rules." + rule_id.replace("-", "_")
        assert rule.severities and set(rule.severities) <= {"error", "warning", "info"}
    rules = Path(RULES["large-kernel"].check.__code__.co_filename).parent
    assert sorted(p.stem for p in rules.glob("*.py")) == sorted(
        ["__init__", "base", *(r.replace("-", "_") for r in RULES)]
    )


def test_findings_are_frozen_and_carry_their_rules_source() -> None:
    result = review(zoo("vgg16"))
    assert result
    for f in result:
        assert f.source == RULES[f.rule].source and f.figure and f.message
    with pytest.raises(dataclasses.FrozenInstanceError):
        result[0].rule = "other"  # type: ignore[misc]


def test_review_sorts_by_severity_then_network_order() -> None:
    # VGG-16: a warning for classifier.0 (dense, a flattened head), then the infos (its field,
    # 212 of 224, is more than half the input: information).
    result = review(zoo("vgg16"))
    order = {p: i for i, p in enumerate(zoo("vgg16").network.order)}
    ranks = [("error", "warning", "info").index(f.severity) for f in result]
    assert ranks == sorted(ranks)
    warnings = [f for f in result if f.severity == "warning"]
    assert [f.rule for f in warnings] == ["dense-heavy"]
    firsts = [order[f.layers[0]] for f in result if f.severity == "info"]
    assert firsts == sorted(firsts)


def test_ignore_silences_rules_and_unknown_names_are_reported() -> None:
    analysis = zoo("vgg16")
    rules = {f.rule for f in review(analysis)}
    assert {"dense-heavy", "memory-hotspot"} <= rules
    rest = {f.rule for f in review(analysis, ignore=["dense-heavy", "memory-hotspot"])}
    assert rest == rules - {"dense-heavy", "memory-hotspot"}
    assert review(analysis, ignore=list(RULES)) == []
    assert unknown_rules(["dense-heavy", "dense_heavy", "nope"]) == ["dense_heavy", "nope"]
    assert unknown_rules(RULES) == []
    with pytest.raises(OptionError, match="dense_heavy"):
        review(analysis, ignore=["dense_heavy"])


def test_symbolic_analysis_gets_no_findings_from_symbolic_figures() -> None:
    # With the spatial sizes as symbols every figure the rules test is a formula: none reports.
    analysis = analyze(load(str(SPECS / "resnet18.yaml"), input_shape=(3, "H", "W")))
    assert review(analysis) == []


# --- 1. representational bottleneck -------------------------------------------------------------

SQUEEZE = """
name: squeeze
input: [3, 32, 32]
layers:
  - {name: conv1, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: squeeze, op: conv2d, out: WIDTH, kernel: 1, stride: 2}
  - {name: relu1, op: relu}
  - {name: conv2, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: relu2, op: relu}
  - {name: conv3, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: relu3, op: relu}
  - {name: pool, op: global_avg_pool}
  - {name: fc, op: linear, out: 10}
"""


def test_bottleneck_early_drop(analyse_text) -> None:
    # The representation: input 3x32x32 = 3,072 elements; after conv1 16x32x32 = 16,384, but
    # computed from 3,072, so it holds at most 3,072. squeeze (layer 2 of 9, in the first third)
    # leaves 2x16x16 = 512 elements: 3,072 / 512 = 6.00x > 4.
    [f] = found(analyse_text(SQUEEZE.replace("WIDTH", "2")), "representational-bottleneck")
    assert f.severity == "warning" and f.layers == ("squeeze",)
    assert f.figure == "6.00x"
    assert "from 3,072 to 512 at squeeze" in f.message and "layer 2 of 9" in f.message


def test_bottleneck_not_for_a_gentle_drop(analyse_text) -> None:
    # squeeze to 8 channels: 8x16x16 = 2,048; 3,072 / 2,048 = 1.5x.
    assert found(analyse_text(SQUEEZE.replace("WIDTH", "8")), "representational-bottleneck") == []


def test_bottleneck_not_when_the_block_input_stays_alive(analyse_text) -> None:
    # A 1x1 branch to 1 channel (1x32x32 = 1,024, 3x fewer than 3,072) while the block's input
    # (16x32x32, held 3,072) is still read by the add: the representation keeps 16,384 + 1,024.
    text = """
name: branch
input: [3, 32, 32]
layers:
  - {name: conv1, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: narrow, op: conv2d, out: 1, kernel: 1}
  - {name: widen, op: conv2d, out: 16, kernel: 1}
  - {name: add, op: add, from: [widen, conv1]}
  - {name: conv2, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: conv3, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: conv4, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: conv5, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: conv6, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: conv7, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: pool, op: global_avg_pool}
  - {name: fc, op: linear, out: 10}
"""
    assert found(analyse_text(text), "representational-bottleneck") == []


def test_bottleneck_zoo() -> None:
    # Inverted residuals project back to the width they expanded from (MobileNetV2), Inception
    # and ResNet branches narrow while the block input stays alive: no bottleneck.
    for name in ("mobilenet_v2", "googlenet", "resnet50", "densenet121"):
        assert found(zoo(name), "representational-bottleneck") == [], name


# --- 2. large kernels ---------------------------------------------------------------------------

KERNEL = """
name: kernel
input: [IN, 16, 16]
layers:
  - {name: conv, op: conv2d, out: 32, kernel: K, padding: 2, stride: S, bias: false}
"""


def test_large_kernel_5x5_as_two_3x3(analyse_text) -> None:
    # 5x5, 32 -> 32: 32 * 32 * 25 = 25,600 weights. Two 3x3 (32 -> 32 -> 32):
    # 9 * (32*32 + 32*32) = 18,432, so 7,168 fewer (28.00%).
    [f] = found(
        analyse_text(KERNEL.replace("IN", "32").replace("K", "5").replace("S", "1")), "large-kernel"
    )
    assert f.severity == "info" and f.layers == ("conv",)
    assert f.figure == "7,168 fewer weights"
    assert "25,600 weights; 2 3x3 (32->32->32): 18,432 (7,168 fewer, 28.00%)" in f.message


def test_large_kernel_7x7_as_three_3x3(analyse_text) -> None:
    # 7x7, 32 -> 64: 64 * 32 * 49 = 100,352. Three 3x3 (32 -> 64 -> 64 -> 64):
    # 9 * (64*32 + 2 * 64*64) = 9 * 10,240 = 92,160: 8,192 fewer.
    text = (
        KERNEL.replace("IN", "32").replace("K", "7").replace("S", "1").replace("out: 32", "out: 64")
    )
    [f] = found(analyse_text(text.replace("padding: 2", "padding: 3")), "large-kernel")
    assert f.figure == "8,192 fewer weights"


def test_large_kernel_not_when_the_stack_is_larger_or_strided(analyse_text) -> None:
    # A stem: 5x5, 3 -> 32: 2,400 weights; two 3x3 (3 -> 32 -> 32): 9 * (96 + 1,024) = 10,080.
    assert (
        found(
            analyse_text(KERNEL.replace("IN", "3").replace("K", "5").replace("S", "1")),
            "large-kernel",
        )
        == []
    )
    # Strided: a stack of 3x3 would not keep the field (skipped).
    assert (
        found(
            analyse_text(KERNEL.replace("IN", "32").replace("K", "5").replace("S", "2")),
            "large-kernel",
        )
        == []
    )


def test_large_kernel_inception_v3() -> None:
    # Mixed_5b/5c/5d.branch5x5_2: 5x5, 48 -> 64: 64 * 48 * 25 = 76,800 weights; two 3x3:
    # 9 * (64*48 + 64*64) = 64,512: 12,288 fewer each, 36,864 in all.
    [f] = found(zoo("inception_v3"), "large-kernel")
    assert f.layers == (
        "Mixed_5b.branch5x5_2.conv",
        "Mixed_5c.branch5x5_2.conv",
        "Mixed_5d.branch5x5_2.conv",
    )
    assert f.figure == f"{3 * (76_800 - 64_512):,} fewer weights"
    # its strided 3x3 stems and ResNet's 7x7/2 stem are not large-kernel findings
    assert found(zoo("resnet50"), "large-kernel") == []


# --- 3. receptive-field coverage ----------------------------------------------------------------


def stack(depth: int, size: int) -> str:
    return f"""
name: stack
input: [1, {size}, {size}]
layers:
  - {{name: conv, op: conv2d, out: 1, kernel: 3, padding: 1, repeat: {depth}}}
  - {{name: pool, op: global_avg_pool}}
  - {{name: fc, op: linear, out: 2}}
"""


def test_coverage_miss(analyse_text) -> None:
    # Two 3x3 stride-1 convs: r = 1 + 2 + 2 = 5 < 32 / 2: a warning.
    [f] = found(analyse_text(stack(2, 32)), "receptive-field-coverage")
    assert f.severity == "warning" and f.layers == ("conv.1",)
    assert f.figure == "field 5x5 < half the input 32x32"


def test_coverage_short_of_the_input_but_over_half_is_information(analyse_text) -> None:
    # Three 3x3 convs: r = 1 + 3 * 2 = 7 on 8x8: under the input, not under half of it (4).
    [f] = found(analyse_text(stack(3, 8)), "receptive-field-coverage")
    assert f.severity == "info" and f.layers == ("conv.2",)
    assert f.figure == "field 7x7 < input 8x8"


def test_coverage_far_beyond_the_input(analyse_text) -> None:
    # Seventeen 3x3 convs: r = 1 + 17 * 2 = 35 on an 8x8 input: 35 / 8 = 4.375 > 4.
    [f] = found(analyse_text(stack(17, 8)), "receptive-field-coverage")
    assert f.severity == "info" and f.layers == ("conv.16",)
    assert f.figure == "field 4.38x the input"


def patches(attention: bool = True, mlp: bool = False) -> str:
    """A 4x4-patch embedding of a 32x32 image into 64 tokens of width 8, optionally attending to
    each other and going through a per-token MLP (8 -> 256 -> 8), then a mean and a head."""
    return "name: patches\ninput: [3, 32, 32]\nlayers:\n" + "".join(
        f"  - {line}\n" for line in [
            "{name: conv_proj, op: conv2d, out: 8, kernel: 4, stride: 4}",
            "{op: flatten, start_dim: 2}",
            "{name: tokens, op: transpose, dim0: 1, dim1: 2}",
            *(["{name: attention, op: multihead_attention, heads: 2}"] if attention else []),
            *(["{name: fc1, op: linear, out: 256}", "{name: fc2, op: linear, out: 8}"] if mlp else []),
            "{name: mean, op: mean, dim: 1}",
            "{name: head, op: linear, out: 10}",
        ]
    )


def test_coverage_after_tokens_attend_to_each_other(analyse_text) -> None:
    # A 4x4-patch embedding sees 4x4 of 32x32 (under half), but then every token attends to all
    # 64: their fields are the whole input while 64 positions remain, so nothing is missed.
    assert found(analyse_text(patches()), "receptive-field-coverage") == []
    # without the attention the head's mean is the first to see it all: the warning stands
    assert found(analyse_text(patches(attention=False)), "receptive-field-coverage")


def test_dense_heavy_leaves_a_per_token_mlp_alone(analyse_text) -> None:
    # After attention every token's field is the whole input, but the MLP's linear layers run
    # per token (input [64, 8]): they are the model, not a head on pooled maps.
    a = analyse_text(patches(mlp=True))
    assert a.layer("fc1").params.params + a.layer("fc2").params.params > a.totals.params / 2
    assert found(a, "dense-heavy") == []


def test_coverage_fine(analyse_text) -> None:
    # Four 3x3 convs: r = 9 on 8x8: covered, 1.125x.
    assert found(analyse_text(stack(4, 8)), "receptive-field-coverage") == []


def test_coverage_judged_after_a_transposed_convolution_by_the_largest_unit(analyse_text) -> None:
    # Head unit o (interior): c3 1x1 -> cat; the up path reads c2 unit o//2 (k 2, s 2), which reads
    # down units o//2-1..o//2+1, c1 units 2(o//2)-2..2(o//2)+3, input 2(o//2)-3..2(o//2)+4: 8
    # wide; the skip path (c1 unit o: o-1..o+1) lies inside. Largest field 8 < 32 / 2: a warning.
    text = """
name: unet
input: [3, 32, 32]
layers:
  - {name: c1, op: conv2d, out: 8, kernel: 3, padding: 1}
  - {name: down, op: max_pool2d, kernel: 2}
  - {name: c2, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: up, op: conv_transpose2d, out: 8, kernel: 2, stride: 2}
  - {name: cat, op: concat, from: [up, c1]}
  - {name: c3, op: conv2d, out: 2, kernel: 1}
"""
    [f] = found(analyse_text(text), "receptive-field-coverage")
    assert f.severity == "warning" and f.layers == ("c3",)
    assert f.figure == "field 8x8 < half the input 32x32"


def test_coverage_zoo() -> None:
    # Araujo et al. Table 1: VGG-16's field is 212 < 224, more than half: information; the
    # course net CNN-1 sees 19 of 64, under half (32): a warning.
    [vgg] = found(zoo("vgg16"), "receptive-field-coverage")
    assert vgg.severity == "info" and vgg.figure == "field 212x212 < input 224x224"
    [cnn1] = found(zoo("neon_cnn1"), "receptive-field-coverage")
    assert cnn1.severity == "warning" and cnn1.layers == ("pool2",)
    assert cnn1.figure == "field 19x19 < half the input 64x64"
    # ResNet-50's last block sees 427 (1.9x): nothing to say. Squeeze-and-excitation's global
    # pooling gives EfficientNet's last maps the whole input: covered.
    assert found(zoo("resnet50"), "receptive-field-coverage") == []
    assert found(zoo("efficientnet_b0"), "receptive-field-coverage") == []


# --- 4. dropped pixels --------------------------------------------------------------------------

HALVINGS = """
name: halvings
input: [1, H, W]
layers:
  - {name: a, op: conv2d, out: 1, kernel: 1, stride: 2}
  - {name: b, op: conv2d, out: 1, kernel: 1, stride: 2}
  - {name: c, op: conv2d, out: 1, kernel: 1, stride: 2}
"""


def test_dropped_pixels_three_halvings(analyse_text) -> None:
    # Each 1x1 stride-2 layer maps m to (m - 1) // 2 + 1 and leaves (m - 1) % 2 rows unread.
    # Height 18: a drops 1 of 18 (17 % 2 = 1); b sees 9, c sees 5: clean.
    # Nearest height >= 18 where none drops: m, m', m'' all odd, i.e. m = 1 (mod 8):
    #   19 -> 10 (b drops), 20 (a), 21 -> 11 -> 6 (c drops), 22, 23 -> 12 (b), 24, 25 -> 13 -> 7.
    # Width 17 -> 9 -> 5: clean.
    [f] = found(analyse_text(HALVINGS.replace("H", "18").replace("W", "17")), "dropped-pixels")
    assert f.severity == "warning" and f.layers == ("a",)
    assert f.figure == "1 layer(s); nearest clean size 25"
    assert (
        "on the height," in f.message
        and "a (conv2d 1x1 s2x2 on 18: the last 1 unread)" in f.message
    )
    assert "(sizes round alike every 8)" in f.message


def test_dropped_pixels_none_at_a_clean_size(analyse_text) -> None:
    assert (
        found(analyse_text(HALVINGS.replace("H", "25").replace("W", "17")), "dropped-pixels") == []
    )


def test_dropped_pixels_square_axes_reported_once(analyse_text) -> None:
    # 21x21: a sees 21, b 11, c 6: c drops 1 of 6 on both axes; nearest 25.
    [f] = found(analyse_text(HALVINGS.replace("H", "21").replace("W", "21")), "dropped-pixels")
    assert f.layers == ("c",) and "on the height and width" in f.message
    assert f.figure == "1 layer(s); nearest clean size 25"


def test_dropped_pixels_padding_that_depends_on_the_size(analyse_text) -> None:
    # TensorFlow's 'same' with stride 2 pads (ceil(n/2) - 1) * 2 + 3 - n in total and never drops:
    # 12 -> 6. Then a 1x1 stride 2 on 6 drops 1. At 13: 'same' pads 2 (1, 1) -> 7 -> clean.
    text = """
name: same
input: [1, 12, 12]
layers:
  - {name: a, op: conv2d, out: 1, kernel: 3, stride: 2, padding: same}
  - {name: b, op: conv2d, out: 1, kernel: 1, stride: 2}
"""
    [f] = found(analyse_text(text), "dropped-pixels")
    assert f.layers == ("b",) and f.figure == "1 layer(s); nearest clean size 13"


def test_dropped_pixels_ceil_mode_pooling_never_drops(analyse_text) -> None:
    text = """
name: ceil
input: [1, 7, 7]
layers:
  - {name: pool, op: max_pool2d, kernel: 2, stride: 2, ceil_mode: true}
"""
    assert found(analyse_text(text), "dropped-pixels") == []


def test_dropped_pixels_read_by_a_parallel_path_is_information(analyse_text) -> None:
    # On 10: the 1x1 stride-2 `skip` leaves (10 - 1) % 2 = 1 row unread; the 3x3 stride-2 p1
    # `main` beside it has (10 + 2 - 3) % 2 = 1, not more than its padding after: it reads row 9.
    text = """
name: parallel
input: [1, 10, 10]
layers:
  - {name: skip, op: conv2d, out: 2, kernel: 1, stride: 2, from: input}
  - {name: main, op: conv2d, out: 2, kernel: 3, stride: 2, padding: 1, from: input}
  - {name: add, op: add, from: [skip, main]}
"""
    [f] = found(analyse_text(text), "dropped-pixels")
    assert f.severity == "info" and f.layers == ("skip",) and "read by main" in f.message
    # Without `main`, row 9 of 10 (10%, over 1 in 20) never reaches the output: a warning.
    alone = "name: alone\ninput: [1, 10, 10]\nlayers:\n  - {name: skip, op: conv2d, out: 2, kernel: 1, stride: 2}\n"
    [g] = found(analyse_text(alone), "dropped-pixels")
    assert g.severity == "warning" and "loses 1 of 10" in g.message


def test_dropped_pixels_of_a_small_share_is_information() -> None:
    # SqueezeNet 1.0's 7x7 stride-2 stem on 224: (224 - 7) % 2 = 1 row unread, 1 of 224, under
    # 1 in 20; nothing else reads the input.
    [f] = found(zoo("squeezenet1_0"), "dropped-pixels")
    assert f.severity == "info" and f.layers == ("features.0",)


def test_dropped_pixels_resnet50_at_224() -> None:
    # The 1x1 stride-2 downsample of layer2.0 sees 56: (56 + 0 + 0 - 1) % 2 = 1 > 0, so its last
    # row is unread; likewise on 28 and 14. The 3x3 stride-2 p1 convolutions see
    # (56 + 2 - 3) % 2 = 1, not more than the padding after (1): they read every row.
    # At 225: 225 -> 113 -> 57 -> 29 -> 15 -> 8, every size odd: nothing dropped.
    # The rows each projection skips are read by the block's 1x1 conv1 (stride 1) and then its
    # 3x3 stride-2 conv2: the network loses nothing, so this is information (issue 13).
    [f] = found(zoo("resnet50"), "dropped-pixels")
    assert f.severity == "info"
    assert f.layers == ("layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0")
    assert f.figure == "3 layer(s); nearest clean size 225"
    assert "layer2.0.downsample.0 (conv2d 1x1 s2x2 on 56: the last 1 unread, read by layer2.0.conv1)" in f.message
    assert "on the height and width" in f.message
    resnet225 = analyze(load(str(SPECS / "resnet50.yaml"), input_shape=(3, 225, 225)))
    assert found(resnet225, "dropped-pixels") == []


# --- 5. dilation gridding -----------------------------------------------------------------------

DILATED = """
name: dilated
input: [1, 64, 64]
layers:
  - {name: a, op: conv2d, out: 4, kernel: 3, dilation: D1, padding: D1}
  - {name: ra, op: relu}
  - {name: b, op: conv2d, out: 4, kernel: 3, dilation: D2, padding: D2}
  - {name: rb, op: relu}
  - {name: c, op: conv2d, out: 4, kernel: 3, dilation: D3, padding: D3}
"""


def dilated(*rates: int) -> str:
    text = DILATED
    for i, r in enumerate(rates, start=1):
        text = text.replace(f"D{i}", str(r))
    return text


def test_gridding_rates_with_a_common_factor(analyse_text) -> None:
    # Rates 2, 4, 8: every tap of the chain is at an even offset (2a + 4b + 8c), so the last
    # layer reads only every 2nd row and column of a's input: 1 in 4 positions.
    [f] = found(analyse_text(dilated(2, 4, 8)), "dilation-gridding")
    assert f.severity == "warning" and f.layers == ("a", "b", "c")
    assert f.figure == "common factor 2"
    assert "only every 2nd position" in f.message and "1 in 4 positions" in f.message


def test_gridding_not_for_hybrid_rates(analyse_text) -> None:
    # Wang et al.'s HDC: 1, 2, 5 (a is not dilated; 2 and 5 share no factor); 2, 3, 5 neither.
    assert found(analyse_text(dilated(1, 2, 5)), "dilation-gridding") == []
    assert found(analyse_text(dilated(2, 3, 5)), "dilation-gridding") == []


def test_gridding_not_across_a_pooling_layer(analyse_text) -> None:
    # The course's CNN-1: dilation 2, 3x3 max pool, dilation 2. The pool's window fills the gaps.
    assert found(zoo("neon_cnn1"), "dilation-gridding") == []
    text = dilated(2, 2, 2).replace(
        "{name: rb, op: relu}", "{name: rb, op: max_pool2d, kernel: 3, stride: 1, padding: 1}"
    )
    [f] = found(analyse_text(text), "dilation-gridding")
    assert f.layers == ("a", "b")  # c is after the pool


def test_gridding_through_residual_blocks(analyse_text) -> None:
    # Each block: 3x3 at dilation 2, batch norm, 1x1 and a residual add: a pointwise path, so
    # each block's dilated conv reads the previous one's output directly.
    text = """
name: res
input: [4, 32, 32]
blocks:
  unit:
    layers:
      - {name: conv, op: conv2d, out: 4, kernel: 3, dilation: 2, padding: 2, bias: false}
      - {name: bn, op: batchnorm2d}
      - {name: proj, op: conv2d, out: 4, kernel: 1}
      - {name: add, op: add, from: [proj, input]}
layers:
  - {name: u, block: unit, repeat: 3}
"""
    [f] = found(analyse_text(text), "dilation-gridding")
    assert f.layers == ("u.0.conv", "u.1.conv", "u.2.conv")
    assert "2 (x3)" in f.message


# --- 6. dense-heavy -----------------------------------------------------------------------------


def test_dense_heavy_vgg16() -> None:
    # classifier.0: 25,088 * 4,096 + 4,096 = 102,764,544; classifier.3: 4,096 * 4,096 + 4,096 =
    # 16,781,312; classifier.6: 4,096 * 1,000 + 1,000 = 4,097,000; together 123,642,856.
    # torchvision docs: VGG-16 has 138,357,544 parameters.
    dense = 25_088 * 4_096 + 4_096 + 4_096 * 4_096 + 4_096 + 4_096 * 1_000 + 1_000
    assert dense == 123_642_856
    [f] = found(zoo("vgg16"), "dense-heavy")
    assert f.severity == "warning"
    assert f.layers == ("classifier.0", "classifier.3", "classifier.6")
    assert f.figure == f"{100 * dense / 138_357_544:.2f}% of params" == "89.36% of params"
    assert "123,642,856 of 138,357,544" in f.message
    assert "512x7x7 maps (49 positions per channel)" in f.message


def test_dense_heavy_small(analyse_text) -> None:
    # conv 1 -> 4, 3x3: 4 * 9 + 4 = 40; flatten 4x8x8 = 256; linear 256 -> 10: 2,570.
    # 2,570 / 2,610 = 98.47%.
    text = """
name: head
input: [1, 8, 8]
layers:
  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out: 10}
"""
    [f] = found(analyse_text(text), "dense-heavy")
    assert f.layers == ("fc",) and f.figure == "98.47% of params" and f.severity == "warning"


def test_dense_heavy_on_pooled_maps_is_information() -> None:
    # ShuffleNetV2 x0.5 (torchvision): conv5 gives 1,024 channels, pooled to one position; fc
    # 1,024 * 1,000 + 1,000 = 1,025,000 of 1,366,792 parameters (74.99%): the classes set it.
    [f] = found(zoo("shufflenet_v2_x0_5"), "dense-heavy")
    assert f.severity == "info" and f.figure == f"{100 * 1_025_000 / 1_366_792:.2f}% of params"


def test_dense_heavy_not_for_resnet_or_a_perceptron(analyse_text) -> None:
    # ResNet-50's fc: 2,048 * 1,000 + 1,000 = 2,049,000 of 25,557,032 (8%).
    assert found(zoo("resnet50"), "dense-heavy") == []
    # A perceptron on images (the course's FCNN-1) has only fully connected layers: that is the
    # design, not a finding.
    text = """
name: fcnn
input: [3, 32, 32]
layers:
  - {name: flat, op: flatten}
  - {name: fc1, op: linear, out: 128}
  - {name: tanh, op: tanh}
  - {name: fc2, op: linear, out: 2}
"""
    assert found(analyse_text(text), "dense-heavy") == []


# --- 7. bias before batch norm ------------------------------------------------------------------

BIASED = """
name: biased
input: [3, 8, 8]
layers:
  - {name: conv1, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: bn1, op: batchnorm2d}
  - {name: relu1, op: relu}
  - {name: conv2, op: conv2d, out: 32, kernel: 3, padding: 1}
  - {name: bn2, op: batchnorm2d}
  - {name: pool, op: global_avg_pool}
  - {name: fc, op: linear, out: 8}
  - {name: bn3, op: batchnorm1d}
"""


def test_bias_before_batchnorm(analyse_text) -> None:
    # conv1 (16 channels), conv2 (32) and fc on a feature vector (8): 16 + 32 + 8 = 56 biases
    # that the batch norm's mean subtraction cancels.
    [f] = found(analyse_text(BIASED), "bias-before-batchnorm")
    assert f.severity == "info" and f.layers == ("conv1", "conv2", "fc")
    assert f.figure == "56 params wasted"


def test_bias_before_batchnorm_not_without_bias_or_with_a_relu_between(analyse_text) -> None:
    text = BIASED.replace("padding: 1}", "padding: 1, bias: false}").replace(
        "out: 8}", "out: 8, bias: false}"
    )
    assert found(analyse_text(text), "bias-before-batchnorm") == []
    relu_first = """
name: relu_first
input: [3, 8, 8]
layers:
  - {name: conv, op: conv2d, out: 16, kernel: 3, padding: 1}
  - {name: relu, op: relu}
  - {name: bn, op: batchnorm2d}
"""
    assert found(analyse_text(relu_first), "bias-before-batchnorm") == []


def test_bias_before_batchnorm_zoo() -> None:
    # torchvision's ResNets set bias=False before every batch norm.
    for name in ("resnet18", "resnet50", "resnet152"):
        assert found(zoo(name), "bias-before-batchnorm") == [], name
    # VGG-16-BN keeps the bias on its 13 convolutions: 2*64 + 2*128 + 3*256 + 3*512 + 3*512.
    [f] = found(zoo("vgg16_bn"), "bias-before-batchnorm")
    assert (
        len(f.layers) == 13
        and f.figure == f"{2 * 64 + 2 * 128 + 3 * 256 + 6 * 512:,} params wasted"
    )


# --- 8. concatenation growth --------------------------------------------------------------------


def dense_block(layers: int) -> str:
    return f"""
name: dense
input: [4, 8, 8]
blocks:
  layer:
    layers:
      - {{name: conv, op: conv2d, out: 2, kernel: 3, padding: 1, bias: false}}
      - {{name: concat, op: concat, from: [input, conv]}}
layers:
  - {{name: block, block: layer, repeat: {layers}}}
"""


def test_concat_growth(analyse_text) -> None:
    # Channels 4 -> 6 -> 8 -> 10 at 8x8: concat outputs 384, 512 and 640 elements, float32:
    # (384 + 512 + 640) * 4 = 6,144 bytes; one buffer of the final map: 640 * 4 = 2,560 bytes.
    [f] = found(analyse_text(dense_block(3)), "concat-growth")
    assert f.severity == "info"
    assert f.layers == ("block.0.concat", "block.1.concat", "block.2.concat")
    assert f.figure == f"+2 channels x 3; {human_bytes(6_144)}"
    assert (
        "(4 -> 10 at 8x8)" in f.message
        and "6,144 bytes" in f.message
        and "2,560 bytes" in f.message
    )


def test_concat_growth_not_for_two_or_for_nested_concats(analyse_text) -> None:
    assert found(analyse_text(dense_block(2)), "concat-growth") == []
    # Inception v3's Mixed_7b/7c concatenate two inner concats once: no chain.
    assert found(zoo("inception_v3"), "concat-growth") == []


def test_concat_growth_densenet121() -> None:
    # Dense blocks of 6, 12, 24 and 16 layers, growth 32. Block 1 at 56x56 from 64 channels:
    # sum over i = 1..6 of (64 + 32 i) * 56 * 56 * 4 bytes = 12,544 * (384 + 672) = 13,246,464.
    result = found(zoo("densenet121"), "concat-growth")
    assert [len(f.layers) for f in result] == [6, 12, 24, 16]
    assert (
        "in features.denseblock1, 6 chained concatenations each add 32 channels (64 -> 256 at 56x56)"
        in result[0].message
    )
    assert f"{12_544 * (6 * 64 + 32 * 21):,} bytes" in result[0].message


# --- 9. memory hotspots -------------------------------------------------------------------------

SMALL = """
name: small
input: [1, 8, 8]
layers:
  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {name: relu, op: relu}
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out: 10}
"""


def test_memory_hotspots_by_hand(analyse_text) -> None:
    # float32 per example: input 64 * 4 = 256 B, conv 256 * 4 = 1,024 B, relu 1,024 B (flatten is
    # a view of it), fc 40 B. While relu runs, conv's and relu's outputs are alive: 2,048 B, the
    # peak (conv: 256 + 1,024; fc: 1,024 + 40).
    # Kept for backward: conv its input (256), relu its output (1,024), fc its input (the same
    # relu storage, 1,024): 1,280 B counted once. Parameters 40 + 2,570 = 2,610; with Adam:
    # weights + gradients + two states = 4 * 2,610 * 4 = 41,760 B; training total 43,040 B.
    analysis = analyse_text(SMALL)
    assert analysis.memory.inference_peak == 2_048 and analysis.memory.training_total == 43_040
    peak, training = found(analysis, "memory-hotspot")
    assert peak.layers == ("conv", "relu") and peak.figure == human_bytes(2_048)
    assert "2,048 bytes" in peak.message and "while relu runs" in peak.message
    assert training.layers == ("conv", "relu", "fc")
    assert f"relu {human_bytes(1_024)} ({100 * 1_024 / 43_040:.2f}%)" in training.message
    assert training.figure == f"{100 * 1_024 / 43_040:.2f}% at relu"


def test_memory_hotspots_nothing_kept_when_frozen(analyse_text) -> None:
    # Nothing trains, so nothing is kept for backward: only the inference peak is reported.
    text = SMALL.replace("padding: 1}", "padding: 1, frozen: true}").replace(
        "out: 10}", "out: 10, frozen: true}"
    )
    [peak] = found(analyse_text(text), "memory-hotspot")
    assert "inference peaks" in peak.message


@pytest.mark.parametrize("name", ["resnet50", "densenet121", "mobilenet_v2", "inception_v3"])
def test_tensors_alive_at_the_peak_sum_to_the_peak(name: str) -> None:
    # Two routes to one figure: memory.py's liveness pass and findings' recount of the storages.
    analysis = zoo(name)
    assert sum(live_at_peak(analysis).values()) == analysis.memory.inference_peak


# --- the zoo at a glance ------------------------------------------------------------------------


def rules_of(name: str) -> list[str]:
    return sorted({f.rule for f in review(zoo(name))})


def test_zoo_reviews_at_their_spec_sizes() -> None:
    rules = rules_of
    assert rules("resnet50") == ["dropped-pixels", "memory-hotspot"]
    assert rules("vgg16") == ["dense-heavy", "memory-hotspot", "receptive-field-coverage"]
    assert rules("densenet121") == ["concat-growth", "memory-hotspot", "receptive-field-coverage"]
    assert rules("mobilenet_v2") == ["memory-hotspot"]
    assert rules("neon_cnn1") == ["dense-heavy", "memory-hotspot", "receptive-field-coverage"]


def test_every_zoo_spec_reviews() -> None:
    for spec in sorted(SPECS.glob("*.yaml")):
        analysis = analyze(load(str(spec)))
        position = {p: i for i, p in enumerate(analysis.network.order)}
        for f in review(analysis):
            assert f.rule in RULES and f.severity in RULES[f.rule].severities
            assert list(f.layers) == sorted(f.layers, key=position.__getitem__), (spec.stem, f.rule)


def test_every_source_can_be_looked_up() -> None:
    # A source names a published paper (with its arXiv id or DOI), PyTorch's documentation, or a
    # docs/ page that exists; never an internal course deck.
    docs = SPECS.parent / "docs"
    for rule in RULES.values():
        assert "deck" not in rule.source.lower() and "course" not in rule.source.lower(), rule.id
        assert any(k in rule.source for k in ("arXiv:", "doi:", "PyTorch documentation", "docs/")), rule.id
        for page in (w.split("#")[0].rstrip(",;)") for w in rule.source.split() if w.startswith("docs/")):
            assert (docs.parent / page).is_file(), (rule.id, page)


def test_resnet50_at_224_gets_no_warning() -> None:
    # issue 13: a standard ResNet-50 is torchvision's design; what the review says of it is
    # information (its projections' dropped rows, its memory), not a warning.
    assert [f.rule for f in review(zoo("resnet50")) if f.severity != "info"] == []
