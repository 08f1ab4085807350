"""The few operations that differ between plain integers and sympy expressions.

Shape rules use ordinary `+ - * //` and call these only for max, ceil-division and comparisons,
so one rule serves numeric and symbolic mode. sympy is imported only when a symbol is present.
"""

from __future__ import annotations

import math
from typing import Any, Union

Dim = Union[int, Any]  # an int, or a sympy expression in symbolic mode
Shape = tuple[Dim, ...]

MAX_SIZE = 2**1024
"""Sizes (and byte counts given as options) must stay below this: no machine holds 2**1024 of
anything, floats overflow there, and figures built from such sizes stay printable."""


def is_numeric(*values: Dim) -> bool:
    """True when every value is a plain Python int (no symbols involved)."""
    return all(isinstance(v, int) for v in values)


def ceil_div(a: Dim, b: Dim) -> Dim:
    """ceil(a / b) for integers, written with floor division so sympy gets the same rule."""
    return -((-a) // b)


def divide(a: Dim, b: Dim) -> Dim:
    """a / b where b divides a (the caller checks it for ints): `//` for ints, exact division for
    expressions, so a symbolic share such as 24sbh/t stays a fraction rather than a floor."""
    if is_numeric(a, b):
        return a // b
    return a / b


def maximum(a: Dim, b: Dim) -> Dim:
    """max(a, b); sympy.Max when either side is symbolic."""
    if is_numeric(a, b):
        return max(a, b)
    import sympy

    return sympy.Max(a, b)


def product(values: tuple[Dim, ...] | list[Dim]) -> Dim:
    """The product of a sequence of dimensions (1 for an empty one)."""
    if is_numeric(*values):
        return math.prod(values)
    result: Dim = 1
    for v in values:
        result = result * v
    return result


def provably_below(a: Dim, bound: int) -> bool:
    """True when a < bound holds for every value of its symbols (for ints: plainly a < bound)."""
    if isinstance(a, int):
        return a < bound
    return (a - bound).is_negative is True  # sympy decides it from the symbols' assumptions


def equal(a: Dim, b: Dim) -> bool:
    """True when a and b are the same dimension (for symbols: the difference simplifies to 0)."""
    if is_numeric(a, b) or a == b:
        return bool(a == b)
    import sympy

    return sympy.simplify(a - b) == 0


def may_equal(a: Dim, b: Dim) -> bool:
    """False only when a and b differ at every size: ints that differ, or expressions whose
    difference is never 0 (archcalc.symbolic.symbols.never_zero). Sizes equal for some inputs only (a
    merge of differently rounded branches) may be equal: a constraint on the input, not an error."""
    if is_numeric(a, b):
        return bool(a == b)
    if equal(a, b):
        return True
    from archcalc.symbolic.symbols import never_zero

    return not never_zero(a - b)


def where_at_least(a: Dim, b: Dim, then: Dim, otherwise: Dim) -> Dim:
    """`then` if a >= b else `otherwise`; a sympy Piecewise when that cannot be decided."""
    if is_numeric(a, b):
        return then if a >= b else otherwise
    import sympy

    return sympy.Piecewise((then, sympy.Ge(a, b)), (otherwise, True))
