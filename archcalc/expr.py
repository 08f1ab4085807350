"""A small, safe evaluator for block-argument expressions such as `$out * 4` (never `eval`).

Any string value in a spec that contains `$` is an expression; `$name` names a block argument
(or `$i`, the index of a repetition). Arithmetic (+ - * / // % **), comparisons, `and`/`or`/`not`,
`min`/`max` and `a if cond else b` are allowed; nothing else is.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .arith import maximum
from .errors import quote

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
_MAX_BITS = 1024  # no size in a network comes near 2**1024


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; the message says why."""


def is_expression(value: object) -> bool:
    """True for a spec value that must be evaluated: a string containing `$`."""
    return isinstance(value, str) and "$" in value


@lru_cache(maxsize=1024)
def _parse(text: str) -> ast.expr:
    try:
        tree = ast.parse(text.replace("$", "").strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {quote(text)}: {exc.msg}") from None
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

    def visit(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.env:
                known = ", ".join(sorted(self.env)) or "none"
                raise self.fail(f"unknown name '{node.id}' (known here: {known})")
            return self.env[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.visit(node.left), self.visit(node.right)
            if isinstance(node.op, ast.Pow) and isinstance(right, int):
                if abs(right) > _MAX_POWER:
                    raise self.fail(f"exponent {right} is too large")
                # else a tower like ((2**64)**64)**64... would take minutes and gigabytes
                if isinstance(left, int) and right * abs(left).bit_length() > _MAX_BITS:
                    raise self.fail(f"'{ast.unparse(node)}' would be too large")
            try:
                return _BINARY[type(node.op)](left, right)
            except ZeroDivisionError:
                raise self.fail("division by zero") from None
            except OverflowError:
                raise self.fail("the result is too large") from None
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(node.op, ast.Not):
                return not operand
        if isinstance(node, ast.BoolOp):
            values = [self.visit(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                if type(op) not in _COMPARE:
                    break
                right = self.visit(right_node)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            else:
                return True
        if isinstance(node, ast.IfExp):
            return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("min", "max")
            and node.args
            and not node.keywords
        ):
            args = [self.visit(a) for a in node.args]
            result = args[0]
            for a in args[1:]:
                result = maximum(result, a) if node.func.id == "max" else -maximum(-result, -a)
            return result
        raise self.fail(f"'{ast.unparse(node)}' is not allowed (only arithmetic on arguments)")
