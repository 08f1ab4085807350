"""A small, safe evaluator for block-argument expressions such as `$out * 4` (never `eval`).

Any string value in a spec that contains `$` is an expression; `$name` names a block argument
(or `$i`, the index of a repetition). Arithmetic (+ - * / // % **), comparisons, `and`/`or`/`not`,
`min`/`max` and `a if cond else b` are allowed; nothing else is. Expressions compute with
numbers only (ints, finite floats, booleans; sympy expressions in symbolic mode), and their size
is bounded before and while they run: MAX_CHARS characters, MAX_NODES syntax nodes, ints of at
most MAX_BITS bits. So `'x' * 10**9`, `[1] * 10**9`, `2j` and a 20,000-term sum are refused.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from archcalc.arith import maximum
from archcalc.errors import quote

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_MAX_POWER = 64
MAX_BITS = 1024  # no size in a network comes near 2**1024
MAX_CHARS = 1000  # the longest zoo expression has 60
MAX_NODES = 200  # syntax nodes, which also bounds the depth the evaluator recurses to


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; the message says why."""


def is_expression(value: object) -> bool:
    """True for a spec value that must be evaluated: a string containing `$`."""
    return isinstance(value, str) and "$" in value


@lru_cache(maxsize=1024)
def _parse(text: str) -> ast.expr:
    """The syntax tree of an expression no longer than MAX_CHARS with at most MAX_NODES nodes."""
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"expression {quote(text)} is too long: at most {MAX_CHARS:,} characters are read")
    try:
        tree = ast.parse(text.replace("$", "").strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {quote(text)}: {exc.msg}") from None
    except (RecursionError, MemoryError):  # nesting the parser itself cannot hold
        raise ExpressionError(f"expression {quote(text)} is nested too deeply") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"expression {quote(text)} has more than {MAX_NODES} parts; split it into block arguments")
    return tree.body


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """The value of expression `text` with block arguments `env`."""
    return _Evaluator(text, env).visit(_parse(text))


def substitute(value: Any, env: Mapping[str, Any]) -> Any:
    """`value` with every expression inside it (also within lists) evaluated in `env`."""
    if is_expression(value):
        return evaluate(value, env)
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    return value


class _Evaluator:
    def __init__(self, text: str, env: Mapping[str, Any]) -> None:
        self.text = text
        self.env = env

    def fail(self, what: str) -> ExpressionError:
        return ExpressionError(f"in expression {quote(self.text)}: {what}")

    def number(self, value: Any, node: ast.expr) -> Any:
        """`value` if it is a number arithmetic may use: a bool, an int of at most MAX_BITS bits,
        a finite float, or (symbolic mode) a sympy expression; else an ExpressionError."""
        if isinstance(value, bool) or hasattr(value, "free_symbols"):
            return value
        if isinstance(value, int):
            if value.bit_length() > MAX_BITS:
                raise self.fail(f"'{ast.unparse(node)}' would be too large (more than {MAX_BITS} bits)")
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(f"'{ast.unparse(node)}' is not a finite number")
            return value
        kind = "a string" if isinstance(value, str) else f"a {type(value).__name__}"
        raise self.fail(f"'{ast.unparse(node)}' is {kind}; expressions compute with numbers only")

    def truth(self, value: Any, node: ast.expr) -> bool:
        """Whether a condition holds; one that depends on a symbol's value cannot be decided."""
        if hasattr(value, "free_symbols") and value not in (True, False):
            raise self.fail(
                f"'{ast.unparse(node)}' depends on the value of {', '.join(sorted(map(str, value.free_symbols)))}, "
                "which is a symbol here: give it a value (under `symbols`, without --symbolic) or "
                "write the condition without it"
            )
        return bool(value)

    def visit(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)):
            return self.number(node.value, node)
        if isinstance(node, ast.Name):
            if node.id not in self.env:
                known = ", ".join(sorted(self.env)) or "none"
                raise self.fail(f"unknown name '{node.id}' (known here: {known})")
            return self.env[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left = self.number(self.visit(node.left), node.left)
            right = self.number(self.visit(node.right), node.right)
            if isinstance(node.op, ast.Pow) and isinstance(right, int):
                if abs(right) > _MAX_POWER:
                    raise self.fail(f"exponent {right} is too large")
                # else a tower like ((2**64)**64)**64... would take minutes and gigabytes
                if isinstance(left, int) and right * abs(left).bit_length() > MAX_BITS:
                    raise self.fail(f"'{ast.unparse(node)}' would be too large")
            elif isinstance(node.op, ast.Pow) and not isinstance(right, int):
                raise self.fail(f"'{ast.unparse(node)}': exponents are whole numbers")
            divides = isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod))
            if divides and hasattr(right, "free_symbols") and right.is_zero is not False:
                raise self.fail(
                    f"'{ast.unparse(node)}' divides by {right}, which is 0 for some value of "
                    f"{', '.join(sorted(map(str, right.free_symbols)))}; give the symbols values or divide by something never 0"
                )
            try:
                return self.number(_BINARY[type(node.op)](left, right), node)
            except ZeroDivisionError:
                raise self.fail("division by zero") from None
            except OverflowError:
                raise self.fail("the result is too large") from None
        if isinstance(node, ast.UnaryOp):
            operand = self.number(self.visit(node.operand), node.operand)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(node.op, ast.Not):
                return not self.truth(operand, node.operand)
        if isinstance(node, ast.BoolOp):
            values = [self.truth(self.number(self.visit(v), v), v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = self.number(self.visit(node.left), node.left)
            for op, right_node in zip(node.ops, node.comparators):
                if type(op) not in _COMPARE:
                    break
                right = self.number(self.visit(right_node), right_node)
                if not self.truth(_COMPARE[type(op)](left, right), node):
                    return False
                left = right
            else:
                return True
        if isinstance(node, ast.IfExp):
            test = self.truth(self.visit(node.test), node.test)
            return self.visit(node.body) if test else self.visit(node.orelse)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("min", "max")
            and node.args
            and not node.keywords
        ):
            args = [self.number(self.visit(a), a) for a in node.args]
            result = args[0]
            for a in args[1:]:
                result = maximum(result, a) if node.func.id == "max" else -maximum(-result, -a)
            return result
        raise self.fail(f"'{ast.unparse(node)}' is not allowed (only arithmetic on arguments)")
