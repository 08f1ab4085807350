"""Receptive fields against PyTorch's gradient support, measured now (skipped without torch).

The networks and the measurement are in receptive_field_reference.py; the recorded copy that CI
checks (tests/test_receptive_field.py) must equal what torch measures here.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from receptive_field_reference import NETWORKS, measure, recorded  # noqa: E402
from test_receptive_field import check_boxes  # noqa: E402


def test_fields_are_torch_gradient_support(analyse_text: Any) -> None:
    measured = measure()
    assert measured == recorded()  # rerun tests/receptive_field_reference.py if this changes
    for name, (spec, _, _) in NETWORKS.items():
        check_boxes(analyse_text(spec), measured[name])
    # the U-Net head's largest field spans all 16 input rows; the skip path alone sees 5
    assert max(box[0][1] - box[0][0] + 1 for box in measured["unet"].values()) == 16
