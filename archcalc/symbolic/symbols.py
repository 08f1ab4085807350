"""Symbolic mode: dimensions as sympy symbols, and the simplifications that keep formulas readable.

Imported only when a symbol is in play, so numeric analysis never loads sympy. Every symbol is
an integer >= 1. The shape rules themselves are the numeric ones (one formula, two modes);
this module only makes symbols, tidies nested floors and picks the peak among candidates.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Mapping
from typing import Any

import sympy

from archcalc.errors import SpecError, quote

_RESERVED = {"i", "input"}  # the repetition index and the input's name in `from`


def check_symbol_name(name: str) -> None:
    """A SpecError for a name that is not an identifier or clashes with Python, sympy or archcalc."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise SpecError(f"symbol name {quote(name)} must be an identifier that is not a Python keyword")
    if name in _RESERVED or (hasattr(sympy, name) and not _letter(name)):
        raise SpecError(
            f"symbol name {quote(name)} clashes with {'archcalc' if name in _RESERVED else 'a sympy name'}; "
            "choose another (e.g. H, W, D, B, k, width)"
        )


def _letter(name: str) -> bool:
    """A single capital letter (S, N, E): a sympy singleton or constant by that name is never
    confused with the symbol, which prints as the letter in text, Python and LaTeX (the
    sequence length S, a batch N), unlike `pi` or `beta`, which print as Greek letters."""
    return len(name) == 1 and "A" <= name <= "Z"


def symbol(name: str) -> Any:
    """The positive-integer symbol `name` (after checking the name)."""
    check_symbol_name(name)
    return sympy.Symbol(name, integer=True, positive=True)


def _collapse_floor(expr: Any) -> Any:
    """floor((floor(x) + m)/n) = floor((x + m)/n) for integers m and n > 0, applied bottom-up.

    The stacked-convolution pattern floor((floor((H-1)/2) + 1 - 1)/2) + 1 becomes
    floor((H-1)/4) + 1.
    """
    if not isinstance(expr, sympy.floor):
        return expr
    inner = sympy.expand(expr.args[0])
    floors = [t for t in sympy.Add.make_args(inner) if t.has(sympy.floor)]
    if len(floors) != 1:
        return expr
    coefficient, core = floors[0].as_coeff_Mul()
    if not isinstance(core, sympy.floor) or not coefficient.is_Rational or coefficient <= 0 or coefficient.p != 1:
        return expr
    n = coefficient.q
    rest = inner - floors[0]
    if not (rest * n).is_Integer:
        return expr
    return sympy.floor((core.args[0] + rest * n) / n)


def simplify_dim(expr: Any) -> Any:
    """A dimension with nested floors collapsed where the identity holds."""
    if isinstance(expr, int) or not isinstance(expr, sympy.Basic) or not expr.has(sympy.floor):
        return expr
    return expr.replace(lambda e: isinstance(e, sympy.floor), _collapse_floor)


SAMPLES = 512  # a difference of sizes is tried at sizes SAMPLES/2 .. SAMPLES of each symbol


def never_zero(expr: Any) -> bool:
    """True when the difference of two sizes, expr, is a nonzero constant or nonzero at every
    size from SAMPLES/2 to SAMPLES of its symbols (a 32 x 32 grid for two symbols). Sizes are
    quasi-affine in the input: a difference with unequal slopes vanishes at a few small sizes
    at most, which makes no useful network; one with equal slopes repeats with the lcm of its
    floors' denominators (the product of the strides), so it vanishes within the range unless
    that exceeds SAMPLES/2. With more symbols it is not decided: the merge becomes a constraint."""
    expr = sympy.simplify(expr)
    if expr.is_number:
        return bool(expr != 0)
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    if len(symbols) > 2:
        return False
    f = sympy.lambdify(symbols, expr, "math")
    if len(symbols) == 1:
        return all(f(n) != 0 for n in range(SAMPLES // 2, SAMPLES + 1))
    side = range(SAMPLES // 2, SAMPLES // 2 + 32)
    return all(f(m, n) != 0 for m in side for n in side)


def peak(candidates: list[tuple[str, Any]], symbols: Iterable[Any], defaults: Mapping[str, int]) -> tuple[Any, str]:
    """The largest of per-layer byte counts as an exact formula, and the layer where it occurs.

    A candidate is dropped only when one already kept provably dominates it: their difference,
    a polynomial in the symbols and the floor terms (all >= 0 wherever every layer has a size of
    at least 1), has no negative coefficient. The rest stay in an unevaluated Max, so the
    formula is right at every size. The layer named is the largest at the spec's sizes (each
    symbol at its default, or 224).
    """
    symbols = list(symbols)
    base = {s: defaults.get(s.name, 224) for s in symbols}
    # sample sizes: a pair that disagrees at any of them needs no algebra to keep both
    points = [base] + [{s: max(1, v * f // 8) for s, v in base.items()} for f in (1, 2, 3, 5, 12, 32)]
    unique: dict[Any, str] = {}
    for layer, expr in candidates:
        unique.setdefault(sympy.sympify(expr), layer)
    values = {e: [int(e.xreplace(p)) for p in points] for e in unique}
    ranked = sorted(unique.items(), key=lambda item: -values[item[0]][0])
    generators: set[Any] = set()
    for e in unique:
        generators |= e.free_symbols | e.atoms(sympy.floor)
    gens = sorted(generators, key=sympy.default_sort_key)
    polys: dict[Any, Any] = {}

    def poly(e: Any) -> Any:
        if e not in polys:
            polys[e] = sympy.Poly(e, *gens) if gens else sympy.Poly(e)
        return polys[e]

    def dominates(big: Any, small: Any) -> bool:
        if not all(b >= a for b, a in zip(values[big], values[small])):
            return False
        return all(c >= 0 for c in (poly(big) - poly(small)).coeffs())

    kept: list[tuple[Any, str]] = []
    for expr, layer in ranked:
        if not any(dominates(other, expr) for other, _ in kept):
            kept.append((expr, layer))
    formula = kept[0][0] if len(kept) == 1 else sympy.Max(*(e for e, _ in kept), evaluate=False)
    return formula, kept[0][1]
