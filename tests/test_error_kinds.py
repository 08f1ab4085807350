"""Which failures are the user's and which are archcalc's: what a spec or an option can cause is an
ArchcalcError subclass (a message, exit 2); a broken internal invariant is an ordinary exception
(a traceback, a bug to report)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from archcalc.errors import SpecError
from archcalc.symbolic import sweep as sweeping
from archcalc.symbolic.sweep import parse_range, parse_shape, sweep


@pytest.mark.parametrize(
    "width, says",
    [
        (
            "$H // W + 1",
            "divisor is not a number",
        ),  # floor(H/W): no integer division by a fixed number
        ("$(H * 1.5) // 1", "coefficient 1.5"),  # the sweep computes in whole numbers only
    ],
)
def test_a_width_the_sweep_cannot_compute_exactly_is_the_specs_error(
    tmp_path: Path, width: str, says: str
) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        f'name: net\ninput: [3, H, W]\nlayers:\n  - {{op: conv2d, out: "{width}", kernel: 1}}\n'
    )
    with pytest.raises(SpecError, match=says):
        sweep(str(path), parse_range("1", "--batch"), parse_shape("3,8..10,4..5"))


def test_a_piecewise_without_a_default_is_an_internal_bug() -> None:
    """The engine's only Piecewise is arith.where_at_least's, which always has one."""
    h = sympy.Symbol("H", integer=True, positive=True)
    broken = sympy.Piecewise((h, h > 5))  # undefined up to 5
    with pytest.raises(AssertionError, match="no default"):
        sweeping._integer_form(broken)
