"""The dropped-pixels rule (archcalc.figures.dropped_pixels), used by `solve` and by the report, against
brute force: every input height run through the numeric shape pass, each window layer checked
for input rows past its last window."""

from __future__ import annotations

from pathlib import Path

import pytest

from archcalc.analysis import analyze
from archcalc.errors import ArchcalcError
from archcalc.figures.shapes import output_shapes
from archcalc.ops.base import Window
from archcalc.review.findings import review
from archcalc.spec.graph import load
from archcalc.symbolic.solve import valid_inputs

# A stride-2 branch and a stride-3 branch of the input: the first drops a row at every even
# height ((H - 1) % 2 = 1), the second unless H = 1 (mod 3); together clean only at H = 1 (mod 6).
# The largest jump (3) is not the period: sizes 3 apart alternate in parity.
TWO_STRIDES = """
name: two_strides
input: [1, H, W]
symbols: {H: 8, W: 7}
layers:
  - {name: a, op: conv2d, out: 2, kernel: 1, stride: 2}
  - {name: pa, op: global_avg_pool}
  - {name: b, op: conv2d, out: 2, kernel: 1, stride: 3, from: input}
  - {name: pb, op: global_avg_pool}
  - {op: concat, from: [pa, pb]}
"""

# Three halvings, then a 3x3 stride-3 pool: heights repeat their rounding every 8 * 3 = 24.
HALVINGS_THEN_THIRDS = """
name: halvings
input: [1, H, W]
symbols: {H: 40, W: 40}
layers:
  - {op: conv2d, out: 1, kernel: 3, stride: 2, padding: 1}
  - {op: max_pool2d, kernel: 2}
  - {op: conv2d, out: 1, kernel: 1, stride: 2}
  - {op: avg_pool2d, kernel: 3}
"""


def brute_force(path: Path, h: int, w: int) -> list[str] | None:
    """Layers leaving input rows unread at height h (None if some layer refuses the size): the
    last window reads input row (out - 1) * stride + span - 1 - before, short of n - 1."""
    try:
        network = load(str(path), input_shape=(1, h, w))
        shapes = output_shapes(network)
    except ArchcalcError:
        return None
    dropped = []
    for layer in network.layers:
        step = layer.op.receptive_step([shapes[i] for i in layer.inputs])
        if isinstance(step, Window) and step.rounds_down:
            n, out = shapes[layer.inputs[0]][1], shapes[layer.path][1]
            if (out - 1) * step.strides[0] + step.spans[0] - 1 - step.before[0] < n - 1:
                dropped.append(layer.path)
    return dropped


@pytest.mark.parametrize(("text", "modulus"), [(TWO_STRIDES, 6), (HALVINGS_THEN_THIRDS, 24)], ids=["two-strides", "halvings-then-thirds"])
def test_solve_and_the_report_agree_with_brute_force(text: str, modulus: int, tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(text)
    symbolic = load(str(path), input_shape=(1, "H", "W"))
    height = valid_inputs(symbolic)[0]
    assert height.modulus == modulus
    w = symbolic.defaults["W"]
    sizes = {h: brute_force(path, h, w) for h in range(1, 4 * modulus)}
    assert height.smallest == min(h for h, d in sizes.items() if d is not None)
    for h, dropped in sizes.items():
        if h >= height.smallest:
            assert (dropped is not None) == (h % modulus in height.valid), h
            assert (dropped == []) == (h % modulus in height.residues), (h, dropped)
    n = symbolic.defaults["H"]
    clean = min(h for h, d in sizes.items() if h >= n and d == [])
    assert height.nearest == clean
    # the report, at the spec's own size, names the same clean size
    [finding] = [f for f in review(analyze(load(str(path)))) if f.rule == "dropped-pixels"]
    assert finding.figure.endswith(f"nearest clean size {clean}")


def test_two_strides_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(TWO_STRIDES)
    height = valid_inputs(load(str(path), input_shape=(1, "H", "W")))[0]
    # H = 8: a drops (8 - 1) % 2 = 1 row, b (8 - 1) % 3 = 1; 9 and 11, 12 fail one branch, 13 = 6*2 + 1
    assert height.residues == (1,)
    assert [d.path for d in height.dropping] == ["a", "b"]
    assert height.nearest == 13
