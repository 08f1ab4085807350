"""Sweeps: one figure (memory or FLOPs) over a grid of batch sizes and input shapes.

Each swept size becomes a symbol; the figure is derived once by the symbolic engine, compiled
once into NumPy code and evaluated by broadcasting, a block of at most CHUNK points at a time, so
memory stays bounded whatever the grid. floor(p/q) is compiled to p // q on integer arrays, so
every value is exact, as the numeric engine's.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TextIO

import numpy as np
import sympy

from archcalc.analysis import Analysis, analyze
from archcalc.errors import ArchcalcError, OptionError, SpecError, quote
from archcalc.figures.figure import sweepable, swept
from archcalc.figures.memory import MemoryOptions, Storage, check_options
from archcalc.figures.sharding import per_device, sharding_json
from archcalc.spec.graph import Network, expand
from archcalc.spec.source import read_file
from archcalc.spec.spec import Spec, parse_spec
from archcalc.symbolic.integer import floor_division
from archcalc.symbolic.symbols import symbol

MAX_POINTS = 1_000_000_000  # a bound on time: writing a billion rows takes minutes
BATCH = "B"
CHANNELS = "C"
SPATIAL = ("H", "W", "D")
_INT64_SAFE = 2**62  # figures at or past this are computed with Python ints (exact, slower)
_RANGE = re.compile(r"\s*(-?[0-9]+)\s*(?:\.\.\s*(-?[0-9]+)\s*(?::\s*(-?[0-9]+)\s*)?)?")
CHUNK = 1 << 20  # grid points computed at a time: memory stays bounded whatever the grid
Progress = Callable[[int, int, str], None]  # progress(points done, points in all, what is done)


@dataclass(frozen=True)
class Range:
    """The sizes start, start + step, ... up to stop; `swept` unless written as one number."""

    start: int
    stop: int
    step: int = 1
    swept: bool = True

    def __len__(self) -> int:
        return (self.stop - self.start) // self.step + 1

    @property
    def values(self) -> np.ndarray:
        return np.arange(self.start, self.stop + 1, self.step, dtype=np.int64)


def parse_range(text: str, what: str) -> Range:
    """`64` (fixed), `64..512` (both ends included) or `64..512:32` (every 32nd size)."""
    match = _RANGE.fullmatch(text)
    if match is None:
        raise OptionError(
            f"{what} must be a size like 64, a range like 64..512, or a range with a step like "
            f"64..512:32; got {quote(text)}"
        )
    numbers = [n for n in match.groups() if n is not None]
    if any(len(n.lstrip("-0")) > 19 or abs(int(n)) >= _INT64_SAFE for n in numbers):
        raise OptionError(f"{what}: the sizes of a sweep must be below 2**62 (NumPy's 64-bit integers), got {text!r}")
    start = int(match[1])
    stop = start if match[2] is None else int(match[2])
    step = 1 if match[3] is None else int(match[3])
    if start < 1:
        raise OptionError(f"{what}: sizes are whole numbers of at least 1, got {quote(text)}")
    if step < 1:
        raise OptionError(f"{what}: the step of {quote(text)} must be at least 1")
    if start > stop:
        raise OptionError(f"{what}: the range {quote(text)} is empty (its start is above its end)")
    return Range(start, stop, step, swept=match[2] is not None)


def parse_shape(text: str) -> tuple[Range, ...]:
    """`--input 3,64..512,64..512:32`: one size or range per axis, batch excluded."""
    return tuple(parse_range(part, f"--input axis {i}") for i, part in enumerate(text.split(",")))


@dataclass(frozen=True)
class Sweep:
    """A figure over a grid: axis k runs over `values[k]`, the sizes of `names[k]`.

    The points are computed from `compiled` when asked for (`at`, `grid`, `chunks`), so memory
    stays bounded whatever the size of the grid; `rejected` and `accepted` come from one pass
    over the sizes the network's output sizes depend on.
    """

    name: str  # the network's
    label: str  # the figure: training_bytes, inference_bytes or flops
    options: MemoryOptions  # batch is the symbol B when the batch is swept
    names: tuple[str, ...]  # the swept variables, the batch first, then input axes in order
    values: tuple[np.ndarray, ...]
    fixed: dict[str, int]  # the sizes not swept
    compiled: CompiledFigure
    rejected: int  # points where a layer's output would be empty (the network rejects them)
    accepted: tuple[np.ndarray, ...]  # per axis and value: is some point there accepted

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def points(self) -> int:
        return math.prod(self.shape)

    @property
    def unit(self) -> str:
        return swept(self.label).unit

    @property
    def title(self) -> str:
        return swept(self.label).title

    def grid(self, picks: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The figure (int64, or Python ints where int64 could overflow) and validity on the
        sub-grid of positions picks[k] along each axis k; by default the whole grid, which
        takes 9 bytes a point (`chunks` walks a large grid in bounded memory)."""
        chosen = [v if p is None else v[p] for v, p in zip(self.values, picks or [None] * len(self.values))]
        return _evaluate(self.compiled, chosen, outer=True)

    def at(self, indices: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The swept values, the figure and validity at flat (row-major) grid positions."""
        coords = np.unravel_index(indices, self.shape) if self.names else ()
        columns = [values[c] for values, c in zip(self.values, coords)]
        figure, valid = _evaluate(self.compiled, columns, outer=False)
        return columns, np.broadcast_to(figure, np.shape(indices)), np.broadcast_to(valid, np.shape(indices))

    def chunks(self) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
        """Every point in row-major order, at most CHUNK at a time: its position along each
        axis (a column per variable), the figure and validity, each flat."""
        for block in _blocks(self.shape, CHUNK):
            figure, valid = self.grid(block)
            yield [c.ravel() for c in np.meshgrid(*block, indexing="ij")], figure.ravel(), valid.ravel()

    def sample(self, most: int = 20) -> np.ndarray:
        """Flat positions of an evenly spaced sub-grid of at most `most` points, in row-major
        order: each axis gets about as many values as the others, its first and last included."""
        sizes = self.shape
        counts = [1] * len(sizes)
        while True:
            room = [k for k, n in enumerate(sizes) if counts[k] < n and math.prod(counts) // counts[k] * (counts[k] + 1) <= most]
            if not room:
                break
            counts[min(room, key=lambda k: counts[k])] += 1
        picks = [evenly(n, c) for n, c in zip(sizes, counts)]
        return np.atleast_1d(np.ravel_multi_index([g.ravel() for g in np.meshgrid(*picks, indexing="ij")], sizes))


def evenly(n: int, count: int) -> np.ndarray:
    """At most `count` evenly spaced positions in range(n), the first and last included."""
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))


def _blocks(shape: tuple[int, ...], most: int) -> Iterator[list[np.ndarray]]:
    """The grid in row-major runs of at most `most` points, as positions along each axis: the
    leading axes one position at a time, one axis in slices, the trailing axes whole."""
    if not shape:
        yield []
        return
    k = next(k for k in range(len(shape)) if math.prod(shape[k + 1 :]) <= most)
    step = most // math.prod(shape[k + 1 :])
    trailing = [np.arange(n) for n in shape[k + 1 :]]
    for leading in itertools.product(*map(range, shape[:k])):
        for first in range(0, shape[k], step):
            yield [*(np.array([i]) for i in leading), np.arange(first, min(first + step, shape[k])), *trailing]


def figure(analysis: Analysis, label: str) -> Any:
    """The figure a sweep reports, by its column (figure.Sweepable): training_bytes, flops..."""
    return swept(label).value(analysis)


def axis_names(spec: Spec, count: int) -> list[str]:
    """Names of the input axes: the spec's own where its input names them, else C, H, W, D, S4...

    A spec that repeats a name (`[3, S, S]`) gets the positional names, which then avoid the
    spec's other symbols so that sweeping an axis never rebinds a width of the same name.
    """
    positional = [CHANNELS, *SPATIAL, *(f"S{i}" for i in range(len(SPATIAL) + 1, count))][:count]
    own = [d if isinstance(d, str) else None for d in spec.input.shape] + [None] * count
    names = [o or p for o, p in zip(own, positional)]
    if len(set(names)) == count and BATCH not in names:
        return names
    free = []
    for name in positional:
        while name in spec.symbols:
            name += "_"
        free.append(name)
    return free


class _Where(sympy.Function):
    """Piecewise (a, cond), (b, True) compiled to numpy.where, which keeps integer arrays."""

    def _numpycode(self, printer: Any) -> str:
        cond, a, b = self.args
        return f"{printer._module_format('numpy.where')}({printer._print(cond)}, {printer._print(a)}, {printer._print(b)})"


def _integer_form(expr: Any) -> Any:
    """`expr` with floor, ceiling (integer.floor_division) and Piecewise replaced by their exact
    integer counterparts."""

    def piecewise(*pairs: Any) -> Any:
        *cases, (last, otherwise) = pairs
        if otherwise is not sympy.true:  # arith.where_at_least always gives one
            raise AssertionError(f"cannot evaluate {sympy.Piecewise(*pairs)} on a grid: it has no default")
        for value, cond in reversed(cases):
            last = _Where(cond, value, last)
        return last

    expr = floor_division(expr).replace(sympy.Piecewise, piecewise)
    loose = [a for a in expr.atoms(sympy.Number) if not a.is_Integer]
    if loose:
        raise SpecError(
            f"cannot evaluate the formula with integer arithmetic: it has the coefficient {loose[0]} "
            "(a size in the spec is computed with a decimal number, e.g. `$(H * 1.5) // 1`; write it "
            "with whole numbers, as `$3 * H // 2`)"
        )
    return expr


def _compile(exprs: list[Any], symbols: list[Any]) -> Callable[..., list[Any]]:
    """One NumPy function of all the swept symbols returning every expression (shared terms once)."""
    return sympy.lambdify(symbols, [_integer_form(e) for e in exprs], modules="numpy", cse=True)  # type: ignore[no-any-return]


def _largest_at_corners(expr: Any, symbols: list[Any], ranges: list[Range]) -> int:
    """max |expr| over the grid's corners, exactly (the figures grow with every size)."""
    if not symbols:
        return abs(int(expr))
    expr = sympy.sympify(expr)  # a figure constant over the grid is a plain int
    ends = [(sympy.Integer(r.start), sympy.Integer(int(r.values[-1]))) for r in ranges]
    return max(abs(int(expr.xreplace(dict(zip(symbols, corner))))) for corner in itertools.product(*ends))


def _dims(analysis: Analysis) -> list[Any]:
    """Every distinct output size that depends on a swept symbol: all must be >= 1."""
    found = {d for r in analysis.layers for d in r.output_shape if isinstance(d, sympy.Basic) and d.free_symbols}
    return sorted(found, key=sympy.default_sort_key)


def _inference_peak(storages: list[tuple[int, int, Any]], layers: int, dtype: Any) -> Any:
    """The largest, over layers, of the bytes of storages alive while the layer runs
    (memory.live_storages: born <= its position <= last use), over the whole grid at once."""
    starting: dict[int, list[Any]] = defaultdict(list)
    ending: dict[int, list[Any]] = defaultdict(list)
    for first, last, array in storages:
        starting[first].append(array)
        ending[last].append(array)
    shape = np.broadcast_shapes(*(np.shape(a) for _, _, a in storages))
    alive = np.zeros(shape, dtype=dtype)
    peak = np.zeros(shape, dtype=dtype)
    for array in starting[-1]:
        alive += array
    for position in range(layers):
        for array in starting[position]:
            alive += array
        np.maximum(peak, alive, out=peak)
        for array in ending[position]:
            alive -= array
    return peak


def _numeric(spec: Spec, data: Any, path: str, bound: dict[str, int], sizes: tuple[int, ...] | None, options: MemoryOptions) -> Analysis:
    """The numeric engine at one grid point (a swept spec symbol bound wherever the spec uses it)."""
    symbols = {**spec.symbols, **{n: v for n, v in bound.items() if n in spec.symbols}}
    network = expand(spec.model_copy(update={"symbols": symbols}), data, path, input_shape=sizes)
    return analyze(network, options)


@dataclass(frozen=True)
class CompiledFigure:
    """The figure of a network as one NumPy function of the swept symbols, compiled once.

    `function` returns the figure (for inference: weights and buffers, the batch times the
    peak is added from the storages), then every output size that depends on a symbol, then
    each storage's bytes per example (inference only).
    """

    spec: Spec
    data: Any
    path: str
    input_shape: tuple[int | str, ...] | None  # as given to the engine: swept axes by name
    network: Network
    label: str
    options: MemoryOptions  # batch is the symbol B when the batch is swept
    names: tuple[str, ...]  # the swept variables, the batch first, then input axes in order
    ranges: tuple[Range, ...]  # their sizes
    fixed: dict[str, int]  # the sizes not swept
    function: Callable[..., list[Any]]
    dims: int
    storages: tuple[tuple[int, int, int], ...]  # (first use, last use, index in the outputs)
    wide: bool  # int64 could overflow: compute with Python ints
    limited: tuple[bool, ...]  # per swept variable: does some output size depend on it


def compile_figure(
    path: str, batch: Range, shape: tuple[Range, ...] | None = None, *, what: str = "memory",
    train: bool = True, options: MemoryOptions | None = None,
) -> CompiledFigure:
    """Analyse the spec once with a symbol for every swept size and compile the figure.

    `shape` None keeps the spec's input. The grid may have at most MAX_POINTS points.
    """
    options = options or MemoryOptions()
    check_options(replace(options, batch=1))
    chosen = sweepable(what, train)
    label = chosen.key
    swept = tuple(r for r in (batch, *(shape or ())) if r.swept)
    points = math.prod(len(r) for r in swept)
    if points > MAX_POINTS:
        raise OptionError(
            f"the grid has {points:,} points, more than the cap of {MAX_POINTS:,}; "
            "use steps (A..B:S) or fewer values"
        )
    data = read_file(path)
    spec = parse_spec(data, path)
    names = axis_names(spec, len(shape) if shape is not None else len(spec.input.shape))
    symbols = {BATCH: symbol(BATCH)} if batch.swept else {}
    sizes: tuple[int | str, ...] | None = None
    if shape is not None:
        sizes = tuple(n if r.swept else r.start for n, r in zip(names, shape))
        symbols.update({n: symbol(n) for n, r in zip(names, shape) if r.swept})
    network = expand(spec, data, path, input_shape=sizes)
    unknown = sorted(set(network.symbols) - set(symbols))
    if unknown:
        raise OptionError(
            f"the spec's size{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} ha{'ve' if len(unknown) > 1 else 's'} no value: "
            "give values under `symbols`, or sweep the input with --input (e.g. --input 3,64..512,64..512)"
        )
    batch_value = symbols.get(BATCH, batch.start)
    analysis = analyze(network, replace(options, batch=batch_value))
    fixed = {BATCH: batch.start} if not batch.swept else {}
    fixed.update({n: int(d) for n, d in zip(names, network.input_shape) if n not in symbols})

    # Every storage's liveness, not memory's peak: the symbolic engine keeps, of the per-layer
    # sums of live bytes, only those largest at sample sizes (224 and multiples), which misses
    # the peak of other inputs (ResNet-50 at 97x1, SqueezeNet 1.0 at 35x36); a sweep takes the
    # largest of them all.
    storages: list[Storage] = []
    if chosen.peak is not None:  # the fixed part here; batch x the peak over every layer in `evaluate`
        main, storages = chosen.peak(analysis)
        bound = main + batch_value * sympy.Add(*(b for _, _, b in storages))
    else:
        main = bound = chosen.value(analysis)
    syms = list(symbols.values())
    dims = _dims(analysis)
    sized = set().union(*(d.free_symbols for d in dims))
    distinct = list(dict.fromkeys(b for _, _, b in storages))
    index = {b: 1 + len(dims) + i for i, b in enumerate(distinct)}
    return CompiledFigure(
        spec, data, path, sizes, network, label, replace(options, batch=batch_value),
        tuple(symbols), swept, fixed,
        _compile([main, *dims, *distinct], syms), len(dims),
        tuple((first, last, index[b]) for first, last, b in storages),
        _largest_at_corners(bound, syms, list(swept)) >= _INT64_SAFE,
        tuple(s in sized for s in syms),
    )


def _evaluate(f: CompiledFigure, axes: list[np.ndarray], outer: bool) -> tuple[np.ndarray, np.ndarray]:
    """The figure and validity where the swept variables take the values `axes` (arrays of one
    length, point by point; or, `outer`, every combination of them, by broadcasting)."""
    dtype: Any = object if f.wide else np.int64
    count = len(axes)
    if outer:
        axes = [a.reshape([-1 if i == k else 1 for i in range(count)]) for k, a in enumerate(axes)]
    axes = [a.astype(dtype) for a in axes]
    shape = np.broadcast_shapes(*(a.shape for a in axes))
    outputs = f.function(*axes)
    value = outputs[0]
    if f.storages:
        peak = _inference_peak([(first, last, outputs[i]) for first, last, i in f.storages], len(f.network.order), dtype)
        value = value + (axes[0] if BATCH in f.names else f.fixed[BATCH]) * peak
    valid = np.ones(shape, dtype=bool)
    for d in outputs[1 : 1 + f.dims]:
        valid &= np.asarray(d >= 1, dtype=bool)
    return np.broadcast_to(np.asarray(value, dtype=dtype), shape), valid


def _survey(f: CompiledFigure, progress: Progress | None = None) -> tuple[int, tuple[np.ndarray, ...]]:
    """How many points the network rejects and, per axis and value, whether it accepts some
    point there: validity over the variables output sizes depend on, a chunk at a time (the
    others, the batch always among them, only repeat it)."""
    sizes = tuple(len(r) if limited else 1 for r, limited in zip(f.ranges, f.limited))
    accepted = [np.zeros(len(r), dtype=bool) for r in f.ranges]
    rejected = done = 0
    for block in _blocks(sizes, CHUNK):
        _, valid = _evaluate(f, [r.values[b] for r, b in zip(f.ranges, block)], outer=True)
        rejected += valid.size - int(np.count_nonzero(valid))
        for k, positions in enumerate(block):
            others = tuple(i for i in range(valid.ndim) if i != k)
            accepted[k][positions] |= valid.any(axis=others) if f.limited[k] else valid.any()
        done += valid.size
        if progress is not None:
            progress(done, math.prod(sizes), "checking input sizes")
    for k, limited in enumerate(f.limited):
        if not limited:
            accepted[k][:] = accepted[k][0]
    repeats = math.prod(len(r) for r, limited in zip(f.ranges, f.limited) if not limited)
    return rejected * repeats, tuple(accepted)


def evaluate(f: CompiledFigure, progress: Progress | None = None) -> Sweep:
    """The sweep of `f`'s figure over its grid, its points computed when asked for; which
    points the network rejects is found now (`_survey`)."""
    rejected, accepted = _survey(f, progress)
    return Sweep(
        f.network.name, f.label, f.options, f.names, tuple(r.values for r in f.ranges), f.fixed,
        f, rejected, accepted,
    )


def sweep(
    path: str, batch: Range, shape: tuple[Range, ...] | None = None, *, what: str = "memory",
    train: bool = True, options: MemoryOptions | None = None, progress: Progress | None = None,
) -> Sweep:
    """The figure (`figure`) of the spec over the grid batch x shape.

    Points where a layer's output would be empty are marked invalid; the grid's corners are
    checked against the numeric engine. `progress(done, total, what)` follows the pass that
    finds the invalid points.
    """
    f = compile_figure(path, batch, shape, what=what, train=train, options=options)
    result = evaluate(f, progress)
    check_corners(f, result)
    return result


def check_corners(f: CompiledFigure, result: Sweep) -> None:
    """The numeric engine at the corners of the valid grid must agree with the sweep.

    The smallest sizes are where a check that output sizes do not show (reflect padding, say)
    fails first; the largest batch and sizes are where an overflow would show.
    """
    if result.rejected == result.points:
        raise OptionError(
            f"no point of the grid is an input {result.name} accepts: some layer's output would "
            "have no elements; raise the smallest sizes of the ranges"
        )
    ends = [
        sorted({int(np.argmax(seen)), len(seen) - 1}) if name != BATCH else [len(seen) - 1]
        for name, seen in zip(result.names, result.accepted)
    ]
    corners = list(itertools.product(*ends))
    flat = np.array([np.ravel_multi_index(c, result.shape) if c else 0 for c in corners], dtype=np.int64)
    _, figures, valid = result.at(flat)
    for corner, value, ok in zip(corners, figures.tolist(), valid.tolist()):
        if not ok:
            continue
        point = {n: int(v[i]) for n, v, i in zip(result.names, result.values, corner)}
        where = ", ".join(f"{n}={v}" for n, v in point.items())
        sizes = None if f.input_shape is None else tuple(point[d] if isinstance(d, str) else d for d in f.input_shape)
        batch = point.get(BATCH, f.fixed.get(BATCH, 1))
        bound = {n: v for n, v in point.items() if n != BATCH}
        try:
            numeric = _numeric(f.spec, f.data, f.path, bound, sizes, replace(f.options, batch=batch))
        except ArchcalcError as exc:
            raise type(exc)(f"at {where}: {exc.message}", location=exc.location, layer=exc.layer) from None
        expected = figure(numeric, f.label)
        if int(value) != expected:
            raise ArchcalcError(
                f"at {where} the sweep gives {int(value):,} {result.unit} but the "
                f"numeric engine {expected:,}: a bug in archcalc's symbolic engine, please report it"
            )


# the j-th of the four ASCII digits of 0000..9999
_DIGITS = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), dtype=np.uint8).reshape(10_000, 4).T.copy()


def _decimal(numbers: np.ndarray, missing_at: np.ndarray | None = None, missing: str = "") -> np.ndarray:
    """str() of every non-negative int64 in `numbers` (`missing` where `missing_at`) as column
    i of a (width, n) array of ASCII bytes, right-aligned after NUL bytes: four digits at a
    time from a table, without a Python loop."""
    width = max(len(str(int(numbers.max(initial=0)))), len(missing))
    groups = -(-width // 4)
    text = np.empty((groups * 4, len(numbers)), dtype=np.uint8)
    rest = numbers
    for g in reversed(range(groups)):
        rest, low = np.divmod(rest, 10_000)
        for j in range(4):
            text[4 * g + j] = _DIGITS[j].take(low)
    text = text[groups * 4 - width :]
    length = 1 + np.searchsorted(10 ** np.arange(1, width, dtype=np.int64), numbers, side="right")
    if missing_at is not None:
        text[width - len(missing) :, missing_at] = np.frombuffer(missing.encode(), dtype=np.uint8)[:, None]
        length[missing_at] = len(missing)
    text *= np.arange(width)[:, None] >= width - length
    return text


def _rows(result: Sweep, pieces: list[str], missing: str, progress: Progress | None) -> Iterator[str]:
    """Every grid point as pieces[0] + its first swept value + pieces[1] + ... + its figure +
    pieces[-1] (the figure `missing` where the network rejects the point), a chunk at a time.

    The text is put together by NumPy, several times faster than str.format a row at a time
    (which remains for Python ints past int64): each swept variable's values are formatted
    once (`_decimal`) and picked per row, the figures a chunk at a time; the rows are laid out
    as the rows of a byte matrix, of which every byte but the NULs padding the numbers is
    written, row by row.
    """
    swept = [_decimal(v) for v in result.values]
    encoded = [np.frombuffer(p.encode(), dtype=np.uint8)[:, None] for p in pieces]
    template = "{}".join(p.replace("{", "{{").replace("}", "}}") for p in pieces)
    done = 0
    for positions, figures, valid in result.chunks():
        n = len(valid)
        if figures.dtype == object:
            last = [v if ok else missing for v, ok in zip(figures.tolist(), valid.tolist())]
            columns = (v[p].tolist() for v, p in zip(result.values, positions))
            yield "".join(map(template.format, *columns, last))
        else:
            fields = [t.take(p, axis=1) for t, p in zip(swept, positions)]
            fields.append(_decimal(np.where(valid, figures, 0), ~valid, missing))
            parts = [np.broadcast_to(piece, (len(piece), n)) for piece in encoded]
            rows = np.ascontiguousarray(np.concatenate([x for pair in itertools.zip_longest(parts, fields) for x in pair if x is not None]).T)
            yield rows[rows != 0].tobytes().decode()
        done += n
        if progress is not None:
            progress(done, result.points, "writing rows")


def write_csv(result: Sweep, out: TextIO, progress: Progress | None = None) -> None:
    """A header, then one row per grid point: the swept values, then the figure (empty where
    the network rejects the input). Written a chunk of rows at a time."""
    out.write(",".join([*result.names, result.label]) + "\n")
    out.writelines(_rows(result, ["", *[","] * len(result.names), "\n"], "", progress))


def write_json(result: Sweep, out: TextIO, progress: Progress | None = None) -> None:
    """An object describing the sweep, with `rows`: one object per grid point (figure null
    where the network rejects the input). Written a chunk of rows at a time."""
    o = result.options
    head = {
        "name": result.name,
        "figure": result.label,
        "unit": result.unit,
        "dtype": o.dtype,
        "weight_dtype": o.weight_dtype,
        "optimizer": o.optimizer,
        "precision": o.precision,
        **({"fp32_gradients": True} if o.fp32_gradients else {}),
        **(sharding_json(o) if per_device(o) else {}),
        "fixed": result.fixed,
        "swept": list(result.names),
        "points": result.points,
    }
    out.write(json.dumps(head, indent=2)[:-2] + ',\n  "rows": [\n')
    keys = [*result.names, result.label]
    pieces = [f'    {{"{keys[0]}": ', *(f', "{k}": ' for k in keys[1:]), "},\n"]
    last = ""
    for chunk in _rows(result, pieces, "null", progress):
        out.write(last)
        last = chunk
    out.write(last[:-2] + "\n  ]\n}\n")
