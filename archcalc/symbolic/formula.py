"""Every figure as a formula: gathering them per layer and writing text, LaTeX, Python or JSON.

The exported Python is a module of plain functions in integer arithmetic (floor as `//`), so it
runs without archcalc or sympy and gives exactly the numeric engine's figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import sympy
from sympy.printing.pycode import PythonCodePrinter

from archcalc.analysis import Analysis
from archcalc.figures import FIGURES
from archcalc.render.escape import Latex, python_names, python_string, terminal
from archcalc.spec.graph import Network
from archcalc.symbolic.integer import floor_division

FORMATS = ("text", "latex", "python", "json")


@dataclass(frozen=True)
class Formulas:
    """Named formulas per layer (in execution order) and for the whole network."""

    what: str
    name: str
    symbols: tuple[Any, ...]
    layers: tuple[tuple[str, dict[str, Any]], ...]
    totals: dict[str, Any]
    assumes: str = ""  # a choice the formulas rest on (Formula.assumes): "attention fused"


def _s(value: Any) -> Any:
    return sympy.sympify(value)


def gather(analysis: Analysis, what: str) -> Formulas:
    """The formulas of one figure (figure.Formula), from a (symbolic) analysis."""
    formula = FIGURES[what].formula
    assert formula is not None, f"{what} has no formulas"
    layers = [
        (r.path, {k: _s(v) for k, v in values.items()})
        for r in analysis.layers
        if (values := formula.layer(r.values[what]))
    ]
    totals = {k: _s(v) for k, v in formula.totals(analysis).items()}
    symbols = set()
    for _, values in layers:
        for v in values.values():
            symbols |= v.free_symbols
    for v in totals.values():
        symbols |= v.free_symbols
    ordered = tuple(sorted(symbols, key=lambda s: s.name))
    assumes = formula.assumes(analysis) if formula.assumes else ""
    return Formulas(what, analysis.network.name, ordered, tuple(layers), totals, assumes)


def modulus(network: Network) -> int:
    """The size whose multiples, on every spatial axis, round alike at every layer: the lcm of
    the axes' periods (dropped_pixels.period), where the floors of the formulas vanish."""
    from archcalc.figures.dropped_pixels import period

    return math.lcm(1, *(period(network, axis) for axis in range(1, len(network.input_shape))))


def divisible_forms(formulas: Formulas, modulus: int) -> dict[str, Any]:
    """The totals for every spatial symbol a multiple of `modulus` (where the floors vanish)."""
    if modulus <= 1:
        return {}
    spatial = [s for s in formulas.symbols if s.name not in ("B",)]
    k = {s: sympy.Symbol(f"{s.name}__k", integer=True, positive=True) for s in spatial}
    forms = {}
    for name, expr in formulas.totals.items():
        if not expr.has(sympy.floor):
            continue
        forms[name] = sympy.factor_terms(sympy.expand(expr.subs({s: modulus * k[s] for s in spatial}).subs({k[s]: s / modulus for s in spatial})))
    return forms


class _IntegerPrinter(PythonCodePrinter):
    """Python source with Max as max() and Min as min(); floors arrive as integer.FloorDiv."""

    def _print_Max(self, expr: Any) -> str:
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Min(self, expr: Any) -> str:
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Rational(self, expr: Any) -> str:
        return f"({expr.p} / {expr.q})"


def to_python(f: Formulas) -> str:
    """A module with one function per figure kind, runnable without archcalc or sympy.

    Arguments are the symbols as safe identifiers (escape.python_names: no builtin such as `max`
    shadowed, `Ｈ` and `H` apart); every name from the spec is a string literal (escape.python_string).
    """
    printer = _IntegerPrinter()
    names = python_names((s.name for s in f.symbols), reserved=("layers", "totals"))
    renamed = {s: sympy.Symbol(names[s.name], **s.assumptions0) for s in f.symbols}
    args = ", ".join(names[s.name] for s in f.symbols)
    spelled = "; ".join(f"{names[s.name]} is {s.name}" for s in f.symbols if names[s.name] != s.name)

    def code(value: Any) -> str:
        return str(printer.doprint(floor_division(value.xreplace(renamed))))

    lines = [
        python_string(f"{f.what} of {f.name} as exact formulas, exported by archcalc. Needs no imports."
                      + (f" Assumes {f.assumes}." if f.assumes else "")
                      + (f" Arguments renamed from the spec's symbols: {spelled}." if spelled else "")),
        "",
        "",
        f"def layers({args}):",
        f"    {python_string(f'Per layer: {f.what} figures by name.')}",
        "    return {",
    ]
    for path, values in f.layers:
        body = ", ".join(f"{python_string(k)}: {code(v)}" for k, v in values.items())
        lines.append(f"        {python_string(path)}: {{{body}}},")
    lines += ["    }", "", "", f"def totals({args}):", f"    {python_string('Whole-network figures by name.')}", "    return {"]
    for name, value in f.totals.items():
        lines.append(f"        {python_string(name)}: {code(value)},")
    lines += ["    }", ""]
    return "\n".join(lines)


def to_text(f: Formulas, modulus: int = 1) -> str:
    """Plain text: the totals first (what a reader came for), then one layer a line; names as
    escape.terminal shows them (no control characters)."""
    width = max((len(terminal(p)) for p, _ in f.layers), default=10)
    assumes = f"{f.assumes}; " if f.assumes else ""
    lines = [f"{terminal(f.name)}: {f.what} ({assumes}symbols: {', '.join(s.name for s in f.symbols) or 'none'}; all integers >= 1)", "", "totals:"]
    for name, value in f.totals.items():
        lines.append(f"  {name} = {value}")
    forms = divisible_forms(f, modulus)
    if forms:
        names = ", ".join(s.name for s in f.symbols if s.name != "B")
        lines += ["", f"for {names} divisible by {modulus}:"]
        lines += [f"  {name} = {value}" for name, value in forms.items()]
    lines += ["", "per layer:"]
    for path, values in f.layers:
        text = ", ".join(f"{k} = {v}" for k, v in values.items()) if len(values) > 1 else str(next(iter(values.values())))
        lines.append(f"{terminal(path):<{width}}  {text}")
    return "\n".join(lines) + "\n"


def to_latex(f: Formulas, modulus: int = 1) -> str:
    """An align* block of the totals, then a longtable of per-layer formulas, ready for a paper.

    Names are escaped (escape.Latex) and typeset with \\texttt; formulas are sympy's LaTeX.
    """
    keys = list(f.layers[0][1]) if f.layers else []

    def math(value: Any) -> Latex:
        return Latex(sympy.latex(value))

    lines = [
        Latex("% {} of {}{}, exported by archcalc; needs \\usepackage{{longtable,amsmath}}").format(
            f.what, f.name, f" ({f.assumes})" if f.assumes else ""
        ),
        r"\begin{align*}",
    ]
    lines += [Latex(r"\text{{{}}} &= {} \\").format(name, math(value)) for name, value in f.totals.items()]
    forms = divisible_forms(f, modulus)
    if forms:
        names = ", ".join(s.name for s in f.symbols if s.name != "B")
        lines.append(Latex(r"&\text{{for {} divisible by {}:}} \\").format(names, modulus))
        lines += [Latex(r"\text{{{}}} &= {} \\").format(name, math(value)) for name, value in forms.items()]
    lines += [
        r"\end{align*}",
        Latex(r"\begin{{longtable}}{{l{}}}").format(Latex("l" * len(keys))),
        Latex(r"\textbf{{layer}} & {} \\ \hline").format(Latex(" & ").join(Latex(r"\textbf{{{}}}").format(k) for k in keys)),
    ]
    for path, values in f.layers:
        cells = Latex(" & ").join(Latex("${}$").format(math(values.get(k, ""))) for k in keys)
        lines.append(Latex(r"\texttt{{{}}} & {} \\").format(path, cells))
    lines.append(r"\end{longtable}")
    return "\n".join(lines) + "\n"


def to_json(f: Formulas, modulus: int = 1) -> str:
    def form(v: Any) -> dict[str, str]:
        return {"text": str(v), "srepr": sympy.srepr(v)}

    return json.dumps({
        "name": f.name,
        "what": f.what,
        **({"assumes": f.assumes} if f.assumes else {}),
        "symbols": [s.name for s in f.symbols],
        "layers": [{"name": p, **{k: form(v) for k, v in values.items()}} for p, values in f.layers],
        "totals": {k: form(v) for k, v in f.totals.items()},
        "divisible_by": modulus,
        "totals_when_divisible": {k: form(v) for k, v in divisible_forms(f, modulus).items()},
    }, indent=2) + "\n"


def render(f: Formulas, fmt: str, modulus: int = 1) -> str:
    if fmt == "python":
        return to_python(f)
    return {"text": to_text, "latex": to_latex, "json": to_json}[fmt](f, modulus)
