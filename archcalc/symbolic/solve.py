"""Solving the formulas: valid input sizes, sizes where no strided layer drops pixels, and
what fits a memory budget. Symbolic mode only (sympy is imported here).

Output sizes are non-decreasing in the input size, so the smallest valid size and the largest
size within a budget are found by bisection on the exact formulas, lambdified once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy

from archcalc.arith import Shape
from archcalc.dtypes import INTEGER
from archcalc.errors import ArchcalcError, OptionError
from archcalc.figures.dropped_pixels import (
    PROBES,
    AxisProgram,
    Drop,
    nearest_clean,
    period,
    residues,
)
from archcalc.figures.memory import MemoryOptions, batch_total, nothing_per_example
from archcalc.figures.params import ParamCount
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import Network

LIMIT = 1 << 20  # the largest size the solver considers
MAX_MODULUS = 1 << 16  # residues are listed for effective strides up to this


def _smallest(ok: Callable[[int], bool], low: int = 1, high: int = LIMIT) -> int | None:
    """The smallest n in [low, high] with ok(n), for a predicate that stays true once true."""
    if not ok(high):
        return None
    while low < high:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid + 1
    return low


@dataclass(frozen=True)
class AxisSolution:
    """For one spatial input axis: the smallest valid size, the sizes every layer accepts and
    the sizes that lose no pixels, as residue classes n = modulus*k + r."""

    name: str
    smallest: int | None
    modulus: int
    valid: tuple[int, ...]  # residues of the sizes (from `smallest` on) every layer accepts
    residues: tuple[int, ...]  # residues of the valid sizes at which no window drops input
    dropping: tuple[Drop, ...]  # at the spec's own size
    at_size: int | None
    nearest: int | None  # the nearest size to at_size (not below it) that loses nothing
    largest: int | None = None  # the largest valid size, when larger ones are refused (BERT's 512 positions)


def _sequence(network: Network) -> Any | None:
    """The symbol of an input with one axis (token ids [S]: its sequence length), or None."""
    shape = network.input_shape
    return shape[0] if len(shape) == 1 and isinstance(shape[0], sympy.Symbol) else None


def _spatial_symbols(network: Network) -> list[Any]:
    syms = []
    for d in network.input_shape[1:]:
        if not isinstance(d, sympy.Symbol):
            raise OptionError(
                "solving needs symbolic spatial sizes: give the input as names, e.g. --input 3,H,W"
            )
        syms.append(d)
    return syms


def valid_inputs(network: Network, at: dict[str, int] | None = None) -> list[AxisSolution]:
    """Per spatial axis, by the one rule of archcalc.figures.dropped_pixels: the smallest size every
    layer accepts, the residue classes of valid sizes (merges of differently rounded branches
    accept only some), and those at which no window drops an input row or column.

    Each axis is solved with the other axes at `at` (default: the spec's symbol defaults, else
    4096), so that they accept.
    """
    defaults = {**network.defaults, **(at or {})}
    sequence = _sequence(network)
    if network.dtype in INTEGER and sequence is not None:
        return [sequence_lengths(network, sequence, defaults.get(sequence.name))]
    symbols = _spatial_symbols(network)
    base = tuple(defaults.get(d.name, 4096) if isinstance(d, sympy.Symbol) else d for d in network.input_shape)
    numeric = network.with_input(base)
    try:
        output_shapes(numeric)
    except ArchcalcError as exc:
        raise OptionError(
            f"the sizes {list(base[1:])} used to solve each axis with the others fixed are not "
            f"valid ({exc}); give valid ones with --input"
        ) from None
    solutions = []
    for axis, sym in enumerate(symbols, start=1):
        program = AxisProgram(numeric, axis)
        cycle = period(numeric, axis)
        if cycle > MAX_MODULUS:
            raise OptionError(
                f"the effective stride on {sym.name} is {cycle:,}; the solver lists the sizes that "
                f"lose no pixels for effective strides up to {MAX_MODULUS:,} (check the layers' strides)"
            )

        def near(n: int) -> bool:  # some size in [n, n + cycle) passes the axis' arithmetic
            return any(program.run(k) is not None for k in range(n, n + cycle))

        first = _smallest(near)
        smallest = None if first is None else next(
            (k for k in range(first, first + 16 * cycle) if program.run(k) is not None and program.accepts(k)), None
        )
        valid, clean = residues(program, smallest or 1, cycle)
        at_size = defaults.get(sym.name)
        dropping = tuple(program.run(at_size) or ()) if at_size else ()
        nearest = nearest_clean(program, at_size, cycle) if at_size and clean else None
        solutions.append(AxisSolution(sym.name, smallest, cycle, valid, clean, dropping, at_size, nearest))
    return solutions


def sequence_lengths(network: Network, symbol: Any, at_size: int | None) -> AxisSolution:
    """Token ids [S]: no window slides along a sequence, so every length the layers accept is
    valid and drops nothing; they accept an interval, from the smallest length up to the largest
    a buffer of positions holds (BERT's 512), or without end."""

    def accepts(n: int) -> bool:
        try:
            output_shapes(network.with_input((n,)))
        except ArchcalcError:
            return False
        return True

    smallest = next((n for n in range(1, PROBES + 1) if accepts(n)), None)
    largest = None
    if smallest is not None and not accepts(LIMIT):
        first_refused = _smallest(lambda n: not accepts(n), smallest, LIMIT)
        largest = None if first_refused is None else first_refused - 1
    nearest = at_size if at_size is not None and accepts(at_size) else None
    return AxisSolution(symbol.name, smallest, 1, (0,), (0,), (), at_size, nearest, largest)


@dataclass(frozen=True)
class Fit:
    """What a budget allows: the largest batch as a formula (and at the spec's sizes), and for a
    given batch the largest square input."""

    budget: int
    fixed: Any
    per_example: Any
    batch: Any
    batch_at_defaults: int | None
    square_input: int | None
    given_batch: int | None
    sizes: tuple[str, ...] = ()  # the named input sizes square_input sets, all to one value
    limit: int | None = None  # the longest sequence the network takes, when it, not memory, stops square_input
    curve: tuple[tuple[int, int], ...] = ()  # for a sequence and a symbolic batch: (length, largest batch) points


def fit(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions, budget: int, train: bool) -> Fit:
    """Solve total(batch, sizes) <= budget from the formula: batch = floor((budget - fixed) / per_example)."""
    total = batch_total(network, shapes, counts, options, train)
    fixed, per_example = total.fixed, total.per_example
    if not isinstance(fixed, int):
        raise OptionError(
            f"the weights and optimizer state depend on {', '.join(sorted(map(str, fixed.free_symbols)))}: "
            "--fit solves for the batch and input sizes only; give the widths values (under `symbols`) "
            "and name only input sizes (e.g. --input 3,H,W instead of --symbolic)"
        )
    if budget <= fixed:
        raise OptionError(f"a budget of {budget:,} bytes is not more than the weights and optimizer state alone ({fixed:,} bytes)")
    if per_example == 0:
        raise nothing_per_example(budget, fixed)
    batch = sympy.floor((budget - fixed) / per_example)
    defaults = {s: network.defaults[n] for n, s in network.symbols.items() if n in network.defaults}
    at_defaults = int(batch.subs(defaults)) if set(batch.free_symbols) <= set(defaults) else None
    square, given = None, options.batch if isinstance(options.batch, int) else None
    # the named sizes past the channels, or a token input's sequence length (its only axis)
    sequence = _sequence(network)
    spatial = [sequence] if sequence is not None else [d for d in network.input_shape[1:] if isinstance(d, sympy.Symbol)]
    lengths = sequence_lengths(network, sequence, None) if sequence is not None else None
    if given is not None and spatial:
        square = _longest(spatial, fixed + given * per_example, budget)
    limit = None
    if square is not None and lengths is not None and lengths.largest is not None and lengths.largest < square:
        square = limit = lengths.largest  # a sequence: its positions may end first
    curve: tuple[tuple[int, int], ...] = ()
    if given is None and lengths is not None and batch.free_symbols <= {sequence}:
        curve = _curve(sequence, fixed + per_example, batch, budget, lengths)
    return Fit(budget, fixed, per_example, batch, at_defaults, square, given, tuple(s.name for s in spatial), limit, curve)


def _longest(sizes: list[Any], total: Any, budget: int) -> int | None:
    """The largest size s >= 1 such that `total` with every one of `sizes` at s fits `budget`
    (total grows with the sizes), found by bisection; None when none fits or no bound is found."""
    evaluate = sympy.lambdify(sizes, total, "math")

    def over(s: int) -> bool:
        return evaluate(*[s] * len(sizes)) > budget

    high = LIMIT  # a token input grows far beyond an image's sizes: widen the search
    while not over(high) and high < 1 << 64:
        high *= 2
    first_over = _smallest(over, 1, high)
    return None if first_over is None or first_over < 2 else first_over - 1


def _curve(sequence: Any, one: Any, batch: Any, budget: int, lengths: AxisSolution) -> tuple[tuple[int, int], ...]:
    """The largest batch at lengths from the shortest the network takes, through the powers of two,
    to the longest at which batch 1 fits (or the network's own longest, if that ends first):
    exact integers, the batch formula evaluated at each length (`one`: the total at batch 1)."""
    longest = _longest([sequence], one, budget)
    if longest is not None and lengths.largest is not None:
        longest = min(longest, lengths.largest)
    if longest is None or lengths.smallest is None or longest < lengths.smallest:
        return ()
    grid = {lengths.smallest, longest} | {1 << k for k in range(longest.bit_length()) if lengths.smallest <= 1 << k <= longest}
    return tuple((n, int(batch.subs(sequence, n))) for n in sorted(grid))
