"""floor and ceiling of a quotient as exact integer division, for every printer that writes code.

A size formula's floor(p / q) has an integer p and a whole-number q (a stride, a kernel, an
output size from the spec), so it is exactly `p // q` in Python's and NumPy's integer arithmetic,
and ceiling(x) is -floor(-x). Dividing in floating point instead and flooring is wrong past 2**53
and wherever the quotient rounds up to a whole number. The exported Python (formula.py) and the
compiled sweep (sweep.py) both print through `floor_division`.
"""

from __future__ import annotations

from typing import Any

import sympy

from archcalc.errors import SpecError


class FloorDiv(sympy.Function):
    """floor(p / q) for an integer p and a whole number q > 0, printed as `((p) // (q))`."""

    is_integer = True

    def _pythoncode(self, printer: Any) -> str:
        p, q = self.args
        return f"(({printer._print(p)}) // ({printer._print(q)}))"

    _numpycode = _pythoncode


def quotient(arg: Any) -> tuple[Any, Any]:
    """arg as p / q: p an expanded integer expression, q a whole number > 0; a spec that divides by
    a size it leaves symbolic (a width of `$H // W`) is refused."""
    p, q = sympy.fraction(sympy.together(arg))
    if not q.is_Integer or q == 0:
        raise SpecError(
            f"cannot evaluate floor({arg}) with integer arithmetic: its divisor is not a number "
            "(a size in the spec divides by a symbolic size, as `$H // W` does; divide by whole numbers)"
        )
    return (sympy.expand(p), q) if q > 0 else (sympy.expand(-p), -q)


def floor_division(expr: Any) -> Any:
    """`expr` (a sympy expression or a plain number) with every floor and ceiling of a quotient
    as FloorDiv, so printing it writes exact integer division."""
    if not isinstance(expr, sympy.Basic):
        return sympy.Integer(expr)
    expr = expr.replace(sympy.floor, lambda arg: FloorDiv(*quotient(arg)))
    return expr.replace(sympy.ceiling, lambda arg: -FloorDiv(*quotient(-arg)))
