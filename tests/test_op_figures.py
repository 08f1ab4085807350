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
