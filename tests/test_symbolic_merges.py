"""Merges of differently rounded branches in symbolic mode: a constraint on the input, answered
by `solve --valid-inputs`, never an error unless the sizes can never agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy
from click.testing import CliRunner

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import ArchcalcError, ShapeError
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import load
from archcalc.symbolic.solve import valid_inputs

# A U-Net of depth 3 (Ronneberger et al. 2015, with padding 1): three 2x2 max pools down, three
# 2x2 stride-2 transposed convolutions up, each concatenated with the skip of its size.
UNET = """
name: unet3
input: [3, 64, 64]
blocks:
  double:
    args: {c: null}
    layers:
      - {op: conv2d, out: $c, kernel: 3, padding: 1}
      - {op: relu, inplace: true}
      - {op: conv2d, out: $c, kernel: 3, padding: 1}
      - {op: relu, inplace: true}
layers:
  - {name: enc1, block: double, c: 8}
  - {name: pool1, op: max_pool2d, kernel: 2}
  - {name: enc2, block: double, c: 16}
  - {name: pool2, op: max_pool2d, kernel: 2}
  - {name: enc3, block: double, c: 32}
  - {name: pool3, op: max_pool2d, kernel: 2}
  - {name: mid, block: double, c: 64}
  - {name: up3, op: conv_transpose2d, out: 32, kernel: 2, stride: 2}
  - {name: cat3, op: concat, from: [up3, enc3]}
  - {name: dec3, block: double, c: 32}
  - {name: up2, op: conv_transpose2d, out: 16, kernel: 2, stride: 2}
  - {name: cat2, op: concat, from: [up2, enc2]}
  - {name: dec2, block: double, c: 16}
  - {name: up1, op: conv_transpose2d, out: 8, kernel: 2, stride: 2}
  - {name: cat1, op: concat, from: [up1, enc1]}
  - {name: dec1, block: double, c: 8}
  - {name: head, op: conv2d, out: 2, kernel: 1}
"""


@pytest.fixture
def unet(tmp_path: Path) -> Path:
    path = tmp_path / "unet3.yaml"
    path.write_text(UNET)
    return path


def test_unet_merges_are_constraints(unet: Path) -> None:
    analysis = analyze(load(str(unet), input_shape=(3, "H", "W")))
    H = sympy.Symbol("H", integer=True, positive=True)
    # by hand: the pools give floor(H/2), floor(H/4), floor(H/8); each transposed convolution
    # doubles ((n - 1)*2 + 2 = 2n), and a concat keeps its first input's size
    found = {(c.layer, str(c.left), str(c.right)) for c in analysis.constraints}
    assert ("cat3", "2*floor(H/8)", "floor(H/4)") in found
    assert ("cat2", "4*floor(H/8)", "floor(H/2)") in found
    assert ("cat1", "8*floor(H/8)", "H") in found
    assert len(found) == 6  # the same three on W
    assert analysis.output_shape[1] == 8 * sympy.floor(H / 8)


def test_solve_answers_the_constraints_as_brute_force_does(unet: Path) -> None:
    height = valid_inputs(load(str(unet), input_shape=(3, "H", "W")))[0]
    assert height.modulus == 8 and height.valid == (0,) and height.smallest == 8

    def accepted(h: int) -> bool:
        try:
            output_shapes(load(str(unet), input_shape=(3, h, 64)))
        except ArchcalcError:
            return False
        return True

    assert [h for h in range(1, 50) if accepted(h)] == [8, 16, 24, 32, 40, 48]


def test_symbolic_shapes_agree_with_numeric_where_the_constraints_hold(unet: Path) -> None:
    symbolic = analyze(load(str(unet), input_shape=(3, "H", "W")))
    H, W = (sympy.Symbol(n, integer=True, positive=True) for n in "HW")
    for h, w in ((40, 64), (8, 16)):
        numeric = {r.path: r.output_shape for r in analyze(load(str(unet), input_shape=(3, h, w))).layers}
        for r in symbolic.layers:
            assert tuple(int(sympy.sympify(d).subs({H: h, W: w})) for d in r.output_shape) == numeric[r.path]
        for c in symbolic.constraints:
            assert sympy.sympify(c.left - c.right).subs({H: h, W: w}) == 0


def test_constraints_in_the_outputs(unet: Path) -> None:
    runner = CliRunner()
    summary = runner.invoke(main, ["summary", str(unet), "--input", "3,H,W"])
    assert summary.exit_code == 0, summary.output
    assert "cat1: 8*floor(H/8) = H" in summary.stdout
    data = json.loads(runner.invoke(main, ["analyze", str(unet), "--input", "3,H,W", "--json"]).stdout)
    assert {"layer": "cat3", "left": "2*floor(W/8)", "right": "floor(W/4)"} in data["constraints"]
    solved = runner.invoke(main, ["solve", str(unet), "--valid-inputs", "--input", "3,H,W"])
    assert solved.exit_code == 0, solved.output
    assert "H = 8k" in solved.stdout and "W = 8k" in solved.stdout
    numeric = json.loads(runner.invoke(main, ["analyze", str(unet), "--json"]).stdout)
    assert numeric["constraints"] == []


def test_sizes_that_never_agree_remain_an_error(tmp_path: Path) -> None:
    # floor((H - 1)/2) + 1 against H: equal at H = 1 only, never at a size a network is run at
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ninput: [3, 32, 32]\nlayers:\n"
        "  - {name: a, op: conv2d, out: 3, kernel: 1, stride: 2}\n"
        "  - {op: add, from: [a, input]}\n"
    )
    with pytest.raises(ShapeError, match="cannot add shapes"):
        analyze(load(str(path), input_shape=(3, "H", "W")))
    path.write_text(path.read_text().replace("op: add", "op: concat"))
    with pytest.raises(ShapeError, match="cannot concatenate"):
        analyze(load(str(path), input_shape=(3, "H", "W")))
