"""ShuffleNet V2 (0.5x, 1.0x, 1.5x and 2.0x) specs, and the two ops they add: channel_shuffle and slice.

First against torchvision's published figures, through archcalc alone (CI has no torch); then,
when torch and torchvision are installed, against the models themselves: parameters, buffers,
output shape, FLOPs as torch.utils.flop_counter counts them, every layer's name, kind, shape and
parameters, the forward values with torchvision's weights, and the bytes saved for backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import SPECS, zoo
from torch_reference import Reference, archcalc_view, measure, torch_view

from archcalc.analysis import analyze
from archcalc.errors import ShapeError
from archcalc.executor import execute
from archcalc.figures.memory import MemoryOptions
from archcalc.figures.receptive_field import ReceptiveField
from archcalc.ops import REGISTRY
from archcalc.spec.graph import load

# torchvision docs: ShuffleNet_V2_X0_5_Weights, X1_0, X1_5 and X2_0 .IMAGENET1K_V1 publish
# num_params 1,366,792, 2,278,604, 3,503,624 and 7,393,996, GFLOPS 0.04, 0.145, 0.296 and 0.583
# (the "Table of all available classification weights"). Those GFLOPS are multiply-accumulates
# (fvcore's convention): archcalc's MACs, in billions.
PUBLISHED = {
    # spec: (params, GFLOPS)
    "shufflenet_v2_x0_5": (1_366_792, 0.04),
    "shufflenet_v2_x1_0": (2_278_604, 0.145),
    "shufflenet_v2_x1_5": (3_503_624, 0.296),
    "shufflenet_v2_x2_0": (7_393_996, 0.583),
}
MODELS = list(PUBLISHED)
# torchvision's stages_out_channels (stage2, stage3, stage4) of each width
WIDTHS = {"shufflenet_v2_x0_5": (48, 96, 192), "shufflenet_v2_x1_0": (116, 232, 464),
          "shufflenet_v2_x1_5": (176, 352, 704), "shufflenet_v2_x2_0": (244, 488, 976)}


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


def test_shufflenet_v2_x1_0_units_by_hand() -> None:
    # stage2 of the 1.0x net: 116 channels, each branch 116 / 2 = 58. Its first unit (stride 2)
    # sees the 24x56x56 max-pool output; branch1: depthwise 3x3 s2 on 24 channels (24*9 = 216),
    # BN (2*24), 1x1 24->58 (1,392), BN (2*58); branch2: 1x1 24->58 (1,392), BN, depthwise 3x3 s2
    # on 58 (58*9 = 522), BN, 1x1 58->58 (3,364), BN. A stride-1 unit keeps 58 channels aside and
    # runs branch2 on the other 58: 3,364 + 522 + 3,364 weights and three BNs of 2*58.
    layers = {r.path: r for r in zoo("shufflenet_v2_x1_0").layers}
    first = sum(r.params.params for p, r in layers.items() if p.startswith("stage2.0."))
    assert first == (216 + 48 + 1_392 + 116) + (1_392 + 116 + 522 + 116 + 3_364 + 116) == 7_398
    repeat = sum(r.params.params for p, r in layers.items() if p.startswith("stage2.1."))
    assert repeat == 3_364 + 522 + 3_364 + 3 * 116 == 7_598
    assert layers["stage2.0.branch1.4"].output_shape == (58, 28, 28)
    assert layers["stage2.0.branch2.0"].output_shape == (58, 56, 56)  # the 1x1 runs before the stride
    assert layers["stage2.0.cat"].output_shape == (116, 28, 28)
    assert layers["stage2.1.x1"].output_shape == layers["stage2.1.x2"].output_shape == (58, 28, 28)
    assert layers["stage4.3.shuffle"].output_shape == (464, 7, 7)
    assert layers["mean"].output_shape == (1024,)


@pytest.mark.parametrize("model", MODELS)
def test_units_per_stage_and_their_halves(model: str) -> None:
    # stages_repeats 4, 8, 4: one stride-2 unit each (no split), the rest split their input
    layers = zoo(model).layers
    units = [r.path.rsplit(".", 1)[0] for r in layers if r.op == "channel_shuffle"]
    assert [u.split(".")[0] for u in units] == ["stage2"] * 4 + ["stage3"] * 8 + ["stage4"] * 4
    halves = {r.path: r for r in layers if r.op == "slice"}
    assert len(halves) == 2 * (3 + 7 + 3)
    for stage, width in zip(("stage2", "stage3", "stage4"), WIDTHS[model]):
        assert f"{stage}.0.x1" not in halves
        x1, x2 = halves[f"{stage}.1.x1"], halves[f"{stage}.1.x2"]
        assert x1.detail == f"[0:{width // 2})" and x2.detail == f"[{width // 2}:{width})"


# --- the two ops ShuffleNet V2 adds -------------------------------------------------------------


def test_channel_shuffle_interleaves_the_groups() -> None:
    # channels 0..5 in 2 groups (0 1 2 | 3 4 5) come out as 0 3 1 4 2 5, as torch.nn.ChannelShuffle
    x = np.arange(6, dtype=np.float64).reshape(1, 6, 1, 1)
    y = REGISTRY["channel_shuffle"](groups=2).forward([x], {})
    assert y[0, :, 0, 0].tolist() == [0, 3, 1, 4, 2, 5]
    assert not np.shares_memory(x, y)  # a copy, as torchvision's .contiguous()


def test_slice_is_a_view_as_its_inplace_output_says() -> None:
    """The memory pass counts a slice in its input's storage; the executor's array must share it."""
    op = REGISTRY["slice"](start=2, end=5)
    x = np.zeros((2, 6, 3, 3))
    assert op.inplace_output and np.shares_memory(op.forward([x], {}), x)
    assert not REGISTRY["channel_shuffle"](groups=2).inplace_output


@pytest.mark.parametrize(
    ("kind", "fields", "shape", "words"),
    [
        ("channel_shuffle", {"groups": 2}, (5, 4, 4), ["5 channels", "2 groups", "divisible"]),
        ("channel_shuffle", {"groups": 2}, (8,), ["[C, *spatial]", "[8]"]),
        ("slice", {"start": 58, "end": 116}, (48, 28, 28), ["[58:116)", "48 elements"]),
        ("slice", {"dim": 0, "end": 1}, (4, 5), ["dim 0", "batch"]),
        ("slice", {"dim": 3, "end": 1}, (4, 5), ["dim 3", "rank-3"]),
    ],
)
def test_shapes_the_ops_refuse_say_why(
    kind: str, fields: dict[str, Any], shape: tuple[int, ...], words: list[str]
) -> None:
    with pytest.raises(ShapeError) as caught:
        REGISTRY[kind](**fields).output_shape([shape])
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("fields", [{"start": 3, "end": 3}, {"start": -1, "end": 2}, {"start": 0}])
def test_slice_fields_are_checked(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        REGISTRY["slice"](**fields)


def test_receptive_fields_through_slices(analyse_text: Any) -> None:
    # channel halves leave the 3x3 convolution's field alone: size 3, padding 1. A crop of rows
    # [2, 6) along dim 2 moves unit 0 to input row 2: effective padding 1 - 2 = -1 on that axis.
    result = analyse_text(
        "name: n\ninput: [4, 8, 8]\nlayers:\n"
        "  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}\n"
        "  - {name: half, op: slice, end: 2}\n"
        "  - {name: crop, op: slice, dim: 2, start: 2, end: 6}\n"
    )
    fields = {r.path: r.receptive_field for r in result.layers}
    assert fields["half"] == fields["conv"] == ReceptiveField((3, 3), (1, 1), (1, 1))
    assert fields["crop"] == ReceptiveField((3, 3), (1, 1), (-1, 1))
    assert result.output_shape == (2, 4, 8)


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
    # 2 x the multiply-accumulates of convolutions (depthwise too) and the linear layer; the
    # shuffles, slices and concatenations move data and count nothing, in both
    assert zoo(reference.name).totals.flops == reference.flops


KIND = {
    "Conv2d": "conv2d",
    "BatchNorm2d": "batchnorm2d",
    "ReLU": "relu",
    "MaxPool2d": "max_pool2d",
    "Linear": "linear",
}
# what torchvision's forward does outside modules: x.chunk (the slices x1, x2), torch.cat,
# channel_shuffle and x.mean([2, 3])
FUNCTIONAL_OPS = {"slice", "concat", "channel_shuffle", "global_avg_pool"}


def test_every_layer_matches_torch_by_name(reference: Reference) -> None:
    layers = [r for r in zoo(reference.name).layers if r.op not in FUNCTIONAL_OPS]
    ours = [(r.path, *archcalc_view(r)) for r in layers]
    theirs = [(call.name, *torch_view(call, KIND)) for call in reference.calls]
    assert ours == theirs


def test_forward_matches_torch_with_its_weights(reference: Reference) -> None:
    """With torchvision's arrays (the spec's names are its state_dict's), the executor's logits
    are torch's: only the right halves, concatenation order and shuffle direction give that."""
    torch = pytest.importorskip("torch")
    model = reference.model.double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # running statistics away from 0 and 1, so batch norm is not near-identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    weights: dict[str, dict[str, Any]] = {}
    for key, value in model.state_dict().items():
        path, array = key.rsplit(".", 1)
        weights.setdefault(path, {})[array] = value.numpy()
    x = torch.randn(2, 3, 224, 224, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        expected = model(x).numpy()
    network = load(str(SPECS / f"{reference.name}.yaml"))
    run = execute(network, x.numpy(), dtype="float64", weights=weights)
    np.testing.assert_allclose(run.output, expected, rtol=1e-9, atol=1e-9)
    model.float()


def test_saved_for_backward_bytes_match_torch(reference: Reference) -> None:
    # float32 activations, one image, training. A stride-1 unit's branch2 saves x2, a view into
    # the unit's input: autograd keeps (and torch counts) the whole input's storage.
    network = load(str(SPECS / f"{reference.name}.yaml"))
    measured = analyze(network, MemoryOptions(batch=1)).memory.training_activations
    assert measured == reference.saved_bytes_per_image
