"""Per-layer figures of the resampling, padding and view ops: shape, FLOPs, bytes saved for backward.

Each case states its figures by hand (so CI, without torch, checks them) and, where torch is
installed, the same figures are measured from torch: the output shape, torch.utils.flop_counter's
FLOPs, and the bytes autograd keeps (saved-tensor hooks, each storage counted once, per example =
batch 2 minus batch 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from archcalc.analysis import Analysis

F32 = 4  # bytes per float32 element


@dataclass(frozen=True)
class Case:
    input: tuple[int, ...]  # batch excluded
    layer: dict[str, Any]
    torch_call: Callable[[Any, Any], Any]  # (torch, x) -> y
    output: tuple[int, ...]
    saved: int  # bytes per example, by hand
    elementwise: int  # archcalc's element-wise count per example, by hand


def interpolate(**settings: Any) -> Callable[[Any, Any], Any]:
    return lambda torch, x: torch.nn.functional.interpolate(x, **settings)


CASES = {
    # upsample_*_backward takes only sizes and scales: nothing of the data is kept
    "nearest 2x": Case(
        (3, 5, 6), {"op": "upsample", "scale_factor": 2}, interpolate(scale_factor=2),
        (3, 10, 12), 0, 0),
    "nearest-exact 1-D": Case(
        (2, 7), {"op": "interpolate", "size": 4, "mode": "nearest-exact"},
        interpolate(size=4, mode="nearest-exact"), (2, 4), 0, 0),
    # 2 taps per output element on each of 1, 2, 3 axes; bicubic 4 per axis
    "linear": Case(
        (2, 7), {"op": "interpolate", "scale_factor": 2.5, "mode": "linear"},
        interpolate(scale_factor=2.5, mode="linear"), (2, 17), 0, 2 * 17 * 2),
    "bilinear aligned": Case(
        (3, 5, 6), {"op": "interpolate", "size": [9, 4], "mode": "bilinear", "align_corners": True},
        interpolate(size=[9, 4], mode="bilinear", align_corners=True), (3, 9, 4), 0, 3 * 9 * 4 * 4),
    "bicubic": Case(
        (2, 4, 5), {"op": "interpolate", "scale_factor": 1.5, "mode": "bicubic"},
        interpolate(scale_factor=1.5, mode="bicubic"), (2, 6, 7), 0, 2 * 6 * 7 * 16),
    "trilinear": Case(
        (2, 3, 4, 5), {"op": "interpolate", "scale_factor": [2, 1, 0.5], "mode": "trilinear"},
        interpolate(scale_factor=[2, 1, 0.5], mode="trilinear"), (2, 6, 4, 2), 0, 2 * 6 * 4 * 2 * 8),
    # area is adaptive average pooling: it keeps its input (3*6*6 floats), and reads each once
    "area": Case(
        (3, 6, 6), {"op": "interpolate", "size": 3, "mode": "area"},
        interpolate(size=3, mode="area"), (3, 3, 3), 3 * 6 * 6 * F32, 3 * 6 * 6),
    # ... except to size 1, which PyTorch computes as a mean, keeping nothing
    "area to 1x1": Case(
        (3, 6, 5), {"op": "interpolate", "size": 1, "mode": "area"},
        interpolate(size=1, mode="area"), (3, 1, 1), 0, 3 * 6 * 5),
    # the shuffles copy, and their backward is the inverse shuffle: nothing kept
    "pixel_shuffle": Case(
        (8, 3, 4), {"op": "pixel_shuffle", "upscale_factor": 2},
        lambda torch, x: torch.nn.functional.pixel_shuffle(x, 2), (2, 6, 8), 0, 0),
    "pixel_unshuffle": Case(
        (2, 6, 9), {"op": "pixel_unshuffle", "downscale_factor": 3},
        lambda torch, x: torch.nn.functional.pixel_unshuffle(x, 3), (18, 2, 3), 0, 0),
    # constant padding's backward crops the gradient, circular's is made of slices: nothing kept;
    # reflection_pad and replication_pad backward take the input: 3*5*6 floats
    "pad constant": Case(
        (3, 5, 6), {"op": "pad", "padding": [[2, 1], [1, 2]], "value": 0.5},
        lambda torch, x: torch.nn.functional.pad(x, (1, 2, 2, 1), value=0.5), (3, 8, 9), 0, 0),
    "pad constant crop": Case(
        (3, 5, 6), {"op": "pad", "padding": [[0, 0], [-1, -2]]},
        lambda torch, x: torch.nn.functional.pad(x, (-1, -2)), (3, 5, 3), 0, 0),
    "pad reflect": Case(
        (3, 5, 6), {"op": "pad", "padding": [[2, 1], [1, 2]], "mode": "reflect"},
        lambda torch, x: torch.nn.functional.pad(x, (1, 2, 2, 1), mode="reflect"),
        (3, 8, 9), 3 * 5 * 6 * F32, 0),
    "pad replicate 3-D": Case(
        (2, 3, 4, 5), {"op": "pad", "padding": [[1, 1], [0, 2], [3, 0]], "mode": "replicate"},
        lambda torch, x: torch.nn.functional.pad(x, (3, 0, 0, 2, 1, 1), mode="replicate"),
        (2, 5, 6, 8), 2 * 3 * 4 * 5 * F32, 0),
    "pad circular": Case(
        (3, 7), {"op": "pad", "padding": [[3, 2]], "mode": "circular"},
        lambda torch, x: torch.nn.functional.pad(x, (3, 2), mode="circular"), (3, 12), 0, 0),
    # roll copies; RollBackward0 rolls the gradient back by -shifts and keeps nothing
    "roll": Case(
        (3, 5, 6), {"op": "roll", "shifts": [-2, -2], "dims": [2, 3]},
        lambda torch, x: torch.roll(x, (-2, -2), (2, 3)), (3, 5, 6), 0, 0),
}


def analyse_case(analyse_text: Callable[[str], Analysis], case: Case) -> Any:
    """The case's layer after a trainable 1x1 convolution, so that it keeps tensors for backward."""
    dims = len(case.input) - 1
    first = {"name": "conv", "op": f"conv{dims}d", "out": case.input[0], "kernel": 1}
    spec = {"name": "case", "input": list(case.input), "layers": [first, {"name": "op", **case.layer}]}
    return analyse_text(yaml.safe_dump(spec, sort_keys=False)).layers[-1]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_figures_by_hand(case: Case, analyse_text: Callable[[str], Analysis]) -> None:
    layer = analyse_case(analyse_text, case)
    assert layer.output_shape == case.output
    assert layer.params.params == 0
    assert layer.flops.flops == 0  # no matrix product: torch's flop_counter counts none
    assert layer.flops.elementwise == case.elementwise
    assert layer.memory.saved == case.saved


def torch_saved_bytes(torch: Any, call: Callable[[Any, Any], Any], shape: tuple[int, ...], batch: int) -> int:
    """Bytes autograd keeps for backward of `call` on a batch that needs a gradient."""
    storages: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.randn(batch, *shape, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        call(torch, x)
    return sum(storages.values())


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_figures_match_torch(case: Case, analyse_text: Callable[[str], Analysis]) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    layer = analyse_case(analyse_text, case)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        y = case.torch_call(torch, torch.randn(2, *case.input))
    assert layer.output_shape == tuple(y.shape[1:])
    assert layer.flops.flops == counter.get_total_flops()
    per_example = (torch_saved_bytes(torch, case.torch_call, case.input, 2)
                   - torch_saved_bytes(torch, case.torch_call, case.input, 1))
    assert layer.memory.saved == per_example


# --- views: no new tensor, nothing kept -------------------------------------------------------

VIEWS = {
    "reshape": ((3, 4, 5), {"op": "reshape", "shape": [12, -1]}, lambda x: x.reshape(x.shape[0], 12, -1)),
    "view": ((3, 4, 5), {"op": "view", "shape": [60]}, lambda x: x.view(x.shape[0], 60)),
    "unsqueeze": ((3, 4), {"op": "unsqueeze", "dim": 2}, lambda x: x.unsqueeze(2)),
    "squeeze": ((3, 1, 4), {"op": "squeeze", "dim": 2}, lambda x: x.squeeze(2)),
    "permute": ((3, 4, 5), {"op": "permute", "dims": [0, 2, 3, 1]}, lambda x: x.permute(0, 2, 3, 1)),
    "transpose": ((3, 4, 5), {"op": "transpose", "dim0": 1, "dim1": 3}, lambda x: x.transpose(1, 3)),
}


@pytest.mark.parametrize(("shape", "layer", "call"), VIEWS.values(), ids=VIEWS.keys())
def test_views_add_no_tensor(
    shape: tuple[int, ...], layer: dict[str, Any], call: Callable[[Any], Any],
    analyse_text: Callable[[str], Analysis],
) -> None:
    """The inference peak is the convolution's input and output (2 x elements floats): the view
    adds no tensor and keeps nothing, and the executor's array shares its input's memory."""
    import numpy as np

    from archcalc.ops import REGISTRY

    dims = len(shape) - 1
    conv = {"name": "conv", "op": f"conv{dims}d", "out": shape[0], "kernel": 1}
    spec = {"name": "case", "input": list(shape), "layers": [conv, {"name": "op", **layer}]}
    analysis = analyse_text(yaml.safe_dump(spec, sort_keys=False))
    elements = int(np.prod(shape))
    assert analysis.memory.inference_peak == 2 * elements * F32  # the conv's input and output
    assert analysis.layers[-1].memory.saved == 0
    fields = {k: v for k, v in layer.items() if k != "op"}
    x = np.zeros((2, *shape))
    assert np.shares_memory(REGISTRY[layer["op"]](**fields).forward([x], {}), x)


@pytest.mark.parametrize(("shape", "layer", "call"), VIEWS.values(), ids=VIEWS.keys())
def test_torch_views_share_storage_and_keep_nothing(
    shape: tuple[int, ...], layer: dict[str, Any], call: Callable[[Any], Any]
) -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(2, *shape)
    assert call(x).untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    assert torch_saved_bytes(torch, lambda _torch, t: call(t), shape, 2) == 0


# --- receptive-field steps (Araujo et al.'s closed forms: size, jump, effective padding) ---------


def test_padding_and_unshuffle_steps_by_hand(analyse_text: Callable[[str], Analysis]) -> None:
    """conv 3x3 pad 1: size 3, jump 1, padding 1. constant pad [[2, 0], [-1, 1]]: a unit window moved by
    `before` times the jump: padding 1 + 2 = 3 on H, 1 - 1 = 0 on W (a crop), size and jump kept.
    pixel_unshuffle r=2: a 2x2 window with stride 2: size 3 + (2-1)*1 = 4, jump 2."""
    spec = {"name": "rf", "input": [1, 12, 12], "layers": [
        {"name": "conv", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"name": "pad", "op": "pad", "padding": [[2, 0], [-1, 1]]},
        {"name": "shuffle", "op": "pixel_unshuffle", "downscale_factor": 2},
    ]}
    fields = {r.path: r.receptive_field for r in analyse_text(yaml.safe_dump(spec)).layers}
    assert (fields["pad"].size, fields["pad"].stride, fields["pad"].padding) == ((3, 3), (1, 1), (3, 0))
    assert (fields["shuffle"].size, fields["shuffle"].stride) == ((4, 4), (2, 2))
    assert fields["shuffle"].padding == (3, 0)
    # reflect padding 2 copies input rows 2 and 1 into output rows 0 and 1, outside the span-1
    # window the closed form would place there: the field depends on the position
    spec["layers"][1]["mode"] = "reflect"
    fields = {r.path: r.receptive_field for r in analyse_text(yaml.safe_dump(spec)).layers}
    assert "reflect" in fields["pad"].varies


@pytest.mark.parametrize(("shape", "layer", "step"), [
    # fractional steps: no closed form
    ((2, 8, 8), {"op": "interpolate", "scale_factor": 2, "mode": "bilinear"}, "undefined"),
    ((8, 4, 4), {"op": "pixel_shuffle", "upscale_factor": 2}, "undefined"),
    # spatial positions merged into one axis, as flatten; moved axes; only channels changed
    ((2, 4, 5), {"op": "reshape", "shape": [2, 20]}, "global"),
    ((2, 4, 5), {"op": "permute", "dims": [0, 1, 3, 2]}, "undefined"),
    ((6, 4, 5), {"op": "reshape", "shape": [2, 3, 4, 5]}, None),
    ((6, 4, 1), {"op": "squeeze", "dim": 3}, None),
    ((6, 4, 5), {"op": "transpose", "dim0": 1, "dim1": 1}, None),
])
def test_steps_without_a_window(shape: tuple[int, ...], layer: dict[str, Any], step: Any) -> None:
    from archcalc.ops import REGISTRY

    op = REGISTRY[layer["op"]](**{k: v for k, v in layer.items() if k != "op"})
    assert op.receptive_step([shape]) == step
