"""Resampling, padding and view ops refuse what PyTorch refuses, with a message saying what is wrong.

Each case is a one-layer spec that archcalc must refuse with an ArchcalcError whose message holds
the given words; where torch is installed, the same call must fail in torch too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from archcalc.errors import ArchcalcError
from archcalc.graph import load
from archcalc.shapes import output_shapes


@dataclass(frozen=True)
class Refusal:
    input: tuple[int, ...]  # batch excluded
    layer: dict[str, Any]
    torch_call: Callable[[Any, Any], Any]  # (torch, x) -> y, which must raise
    words: tuple[str, ...]


def interpolate(**settings: Any) -> Callable[[Any, Any], Any]:
    return lambda torch, x: torch.nn.functional.interpolate(x, **settings)


REFUSALS = {
    "size and scale_factor": Refusal(
        (3, 8, 8), {"op": "interpolate", "size": 4, "scale_factor": 2},
        interpolate(size=4, scale_factor=2), ("exactly one of size and scale_factor",)),
    "neither size nor scale_factor": Refusal(
        (3, 8, 8), {"op": "interpolate"}, interpolate(), ("exactly one of size and scale_factor",)),
    "bilinear on a sequence": Refusal(
        (3, 8), {"op": "interpolate", "scale_factor": 2, "mode": "bilinear"},
        interpolate(scale_factor=2, mode="bilinear"), ("bilinear", "2 spatial axes", "linear")),
    "trilinear on an image": Refusal(
        (3, 8, 8), {"op": "interpolate", "scale_factor": 2, "mode": "trilinear"},
        interpolate(scale_factor=2, mode="trilinear"), ("trilinear", "3 spatial axes", "bilinear")),
    "align_corners with nearest": Refusal(
        (3, 8, 8), {"op": "interpolate", "scale_factor": 2, "align_corners": False},
        interpolate(scale_factor=2, align_corners=False), ("align_corners", "nearest")),
    "a size per axis, too few": Refusal(
        (3, 8, 8, 8), {"op": "interpolate", "size": [4, 4]}, interpolate(size=[4, 4]),
        ("size", "3", "one value per spatial axis")),
    "an output below 1": Refusal(
        (3, 8, 3), {"op": "interpolate", "scale_factor": 0.3}, interpolate(scale_factor=0.3),
        ("spatial axis 2", "size 0")),
    "recompute with a size": Refusal(
        (3, 8, 8), {"op": "interpolate", "size": 4, "recompute_scale_factor": True},
        interpolate(size=4, recompute_scale_factor=True), ("recompute_scale_factor", "scale_factor")),
    "no spatial axis": Refusal(
        (3,), {"op": "interpolate", "scale_factor": 2}, interpolate(scale_factor=2),
        ("[C, L]", "[3]")),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_archcalc_refuses_with_a_reason(case: Refusal, tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    spec = {"name": "case", "input": list(case.input), "layers": [{"name": "op", **case.layer}]}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ArchcalcError) as caught:
        output_shapes(load(str(path)))
    message = str(caught.value)
    assert "net.yaml" in message and "'op'" in message
    for word in case.words:
        assert word.lower() in message.lower(), message


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_torch_refuses_it_too(case: Refusal) -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError, IndexError)):
        case.torch_call(torch, torch.randn(2, *case.input))
