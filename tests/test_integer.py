"""Floors and ceilings of quotients printed as exact integer division, in Python and NumPy."""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from archcalc.errors import SpecError
from archcalc.symbolic.integer import floor_division

H = sympy.Symbol("H", integer=True, positive=True)

# (H + 2*1 - 3) // 2 + 1: a 3x3 convolution, stride 2, padding 1; ceil(H / 3): a ceil-mode pool
SIZE = sympy.floor((H - 1) / 2) + 1 + sympy.ceiling(sympy.Rational(1, 3) * H - sympy.Rational(1, 3) * sympy.floor(H / 4))


def by_hand(h: int) -> int:
    return floor(Fraction(h - 1, 2)) + 1 + ceil(Fraction(h, 3) - Fraction(h // 4, 3))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=2**70))
def test_python_code_is_exact_past_float_precision(h: int) -> None:
    code = PythonCodePrinter().doprint(floor_division(SIZE))
    assert "//" in code and "floor" not in code and "ceil" not in code
    assert eval(code, {"H": h}) == by_hand(h)


def test_numpy_code_is_exact_on_integer_arrays() -> None:
    f = sympy.lambdify([H], floor_division(SIZE), modules="numpy", printer=NumPyPrinter)
    h = np.arange(1, 100_001, dtype=np.int64) * 45_035_996_273_705 + 1  # up to about 4.5e18, past 2**53
    got = f(h)
    assert got.dtype == np.int64 and np.array_equal(got, [by_hand(int(v)) for v in h])
    assert not np.array_equal(np.floor((h - 1) / 2), (h - 1) // 2)  # what dividing in floats would lose


def test_a_divisor_that_is_not_a_number_is_the_specs_error() -> None:
    """A width of `$H // W` reaches it (tests/test_error_kinds.py): the spec's error, not a bug."""
    with pytest.raises(SpecError, match="divisor"):
        floor_division(sympy.floor(H / sympy.Symbol("W", positive=True, integer=True)))
