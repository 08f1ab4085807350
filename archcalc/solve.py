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

from .arith import Shape
from .errors import ArchcalcError, OptionError
from .graph import Network
from .memory import Memory, MemoryOptions, memory, nothing_per_example
from .ops.base import Window
from .params import ParamCount
from .shapes import output_shapes

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
class Dropping:
    """A strided layer whose last window stops short of the input's end on an axis."""

    layer: str
    axis: int
    lost: int  # input rows (or columns) no window reads at the size examined


@dataclass(frozen=True)
class AxisSolution:
    """For one spatial input axis: the smallest valid size and the sizes that lose no pixels."""

    name: str
    smallest: int | None
    modulus: int
    residues: tuple[int, ...]  # sizes n = modulus*k + r, r in residues, lose nothing
    dropping: tuple[Dropping, ...]  # at the spec's own size
    at_size: int | None
    nearest: int | None  # the nearest size to at_size (not below it) that loses nothing


def _spatial_symbols(network: Network) -> list[Any]:
    syms = []
    for d in network.input_shape[1:]:
        if not isinstance(d, sympy.Symbol):
            raise OptionError(
                "solving needs symbolic spatial sizes: give the input as names, e.g. --input 3,H,W"
            )
        syms.append(d)
    return syms


def _window_layers(network: Network, shapes: dict[str, Shape]) -> list[tuple[str, Window, Shape]]:
    """Every layer whose output size floors over a sliding window, with its input shape."""
    found = []
    for layer in network.layers:
        inputs = [shapes[i] for i in layer.inputs]
        step = layer.op.receptive_step(inputs)
        if isinstance(step, Window) and step.rounds_down:
            found.append((layer.path, step, inputs[0]))
    return found


def _valid(network: Network, sizes: dict[Any, int]) -> bool:
    """True when the numeric engine accepts these input sizes (every check, every layer)."""
    try:
        output_shapes(network.with_input(tuple(sizes.get(d, d) for d in network.input_shape)))
    except ArchcalcError:
        return False
    return True


def valid_inputs(network: Network, at: dict[str, int] | None = None) -> list[AxisSolution]:
    """Per spatial axis: the smallest size every layer accepts, and the residue classes of sizes
    for which no strided layer drops an input row or column (the floor in the output size).

    `at` names the sizes to examine for dropped pixels (default: the spec's symbol defaults).
    """
    symbols = _spatial_symbols(network)
    shapes = output_shapes(network)
    windows = _window_layers(network, shapes)
    defaults = {**network.defaults, **(at or {})}
    big = {s: 4096 for s in symbols}
    solutions = []
    for axis, sym in enumerate(symbols, start=1):
        smallest = _smallest(lambda n: _valid(network, {**big, sym: n}))
        terms = []  # (layer, [n_in, before, after] as one function of the input size, span, stride)
        for path, window, in_shape in windows:
            n_in = in_shape[axis]
            if not (isinstance(n_in, sympy.Basic) and n_in.has(sym)):
                continue  # this layer's size does not depend on this axis
            i = axis - 1
            sizes = sympy.lambdify(sym, [n_in, window.before[i], window.after[i]], "math")
            terms.append((path, sizes, int(window.spans[i]), int(window.strides[i])))
        modulus = effective_stride(network, shapes, axis)
        if modulus > MAX_MODULUS:
            raise OptionError(
                f"the effective stride on {sym.name} is {modulus:,}; the solver lists the sizes that "
                f"lose no pixels for effective strides up to {MAX_MODULUS:,} (check the layers' strides)"
            )

        def lost(n: int) -> list[Dropping]:
            out = []
            for path, sizes, span, stride in terms:
                m, before, after = (int(v) for v in sizes(n))
                leftover = (m + before + after - span) % stride  # padded elements past the last window
                if leftover > after:
                    out.append(Dropping(path, axis, leftover - after))
            return out

        start = max(smallest or 1, 1)
        base = start + (-start) % modulus + 2 * modulus  # sizes comfortably above the minimum
        residues = tuple(r for r in range(modulus) if not any(lost(base + r + modulus * j) for j in range(3)))
        at_size = defaults.get(sym.name)
        dropping = tuple(lost(at_size)) if at_size else ()
        nearest = None
        if at_size and residues:
            nearest = min(at_size + ((r - at_size) % modulus) for r in residues)
        solutions.append(AxisSolution(sym.name, smallest, modulus, residues, dropping, at_size, nearest))
    return solutions


def effective_stride(network: Network, shapes: dict[str, Shape], axis: int) -> int:
    """The largest effective stride on this axis: sizes repeat their rounding with this period."""
    from .receptive_field import ReceptiveField, receptive_fields

    strides = [
        f.stride[axis - 1] for f in receptive_fields(network, shapes).values() if isinstance(f, ReceptiveField)
    ]
    return max((int(j) for j in strides if getattr(j, "is_Integer", isinstance(j, int))), default=1)


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


def fit(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions, budget: int, train: bool) -> Fit:
    """Solve total(batch, sizes) <= budget from the formula: batch = floor((budget - fixed) / per_example)."""
    one: Memory = memory(network, shapes, counts, MemoryOptions(1, options.dtype, options.weight_dtype, options.optimizer, options.mixed_precision))
    fixed = one.weights + one.buffers + (one.gradients + one.optimizer_state if train else 0)
    per_example = one.training_activations if train else one.inference_peak
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
    spatial = [d for d in network.input_shape[1:] if isinstance(d, sympy.Symbol)]
    if given is not None and spatial:
        total = sympy.lambdify(spatial, fixed + given * per_example, "math")

        def over(s: int) -> bool:
            return total(*[s] * len(spatial)) > budget

        first_over = _smallest(over, 1, LIMIT)
        square = None if first_over is None else first_over - 1
        if square is not None and square < 1:
            square = None
    return Fit(budget, fixed, per_example, batch, at_defaults, square, given)
