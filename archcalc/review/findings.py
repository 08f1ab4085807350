"""Design-review findings: rules that reason from the exact figures of one analysis.

The API the report command and its renderers rely on (keep it stable):

    review(analysis, ignore=()) -> list[Finding]
        Runs every rule of RULES whose id is not in `ignore` (an OptionError names any id that is
        no rule), and sorts the findings by severity (error, warning, info), then by where their
        first layer runs in the network; findings about no layer in particular come last.
    unknown_rules(names) -> list[str]
        The names that are not rule ids, in the order given: validates `--ignore`.
    RULES: dict[str, Rule]
        Rule id (kebab-case) -> Rule(id, title, source, check), in the order reports list them;
        `check(analysis) -> list[Finding]` is a pure function.
    Finding(rule, severity, layers, message, figure, source), frozen:
        rule      the rule's id;
        severity  "info", "warning" or "error";
        layers    the layer paths concerned, in network order (may be empty);
        message   what is wrong and what to do, with the figures that show it;
        figure    the number that triggered it, short (`4.15x`, `89.36% of params`);
        source    the paper or course deck the rule comes from.
    live_at_peak(analysis) -> dict[str, int]
        Per-example bytes of each storage alive at the inference peak, by the layer that made it.

Rules (thresholds are the constants below):
  representational-bottleneck  warning  a layer in the first third (execution order) after which
      the tensors later layers still read hold more than 4x fewer elements than the representation
      held before it (at most the fewest elements it has passed through since the input); the
      head (outputs with fewer axes than the input) and the network's output are exempt.
  large-kernel  info  a stride-1, undilated k x k convolution (k odd, >= 5) whose stack of
      (k-1)/2 3x3 convolutions (same field, first in->out, then out->out, same groups) has fewer
      weights. Strided and dilated kernels are skipped: the stack would not keep their field.
  receptive-field-coverage  warning when the last spatial layer's field (global pooling aside)
      is smaller than the input on some axis; info when it is more than 4x the input on some axis.
  dropped-pixels  warning  floor-rounding windows whose last window stops short of their input's
      end, leftover = (n + before + after - span) mod stride > after, per axis, and the nearest
      input size (>= the spec's) at which no layer drops any.
  dilation-gridding  warning  dilated convolutions that read each other's output through
      spatially pointwise layers only, whose rates share a factor > 1.
  dense-heavy  warning  fully connected layers on the flattened maps holding > 50% of the params.
  bias-before-batchnorm  info  a convolution or linear layer with a bias whose only reader is a
      batch norm that normalises along the bias's axis: the bias is cancelled.
  concat-growth  info  chains of at least 3 concatenations, each feeding the next.
  memory-hotspot  info  the tensors alive at the inference peak; the top 3 layers by bytes kept
      for backward, with their share of the training total.

Rules need numbers: on a symbolic analysis a rule reports only where its figures are integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from fractions import Fraction
from itertools import groupby
from typing import Literal

from archcalc.analysis import Analysis
from archcalc.arith import Shape
from archcalc.errors import ArchcalcError, OptionError
from archcalc.figures.dropped_pixels import PROBES, AxisProgram, Drop, nearest_clean, period
from archcalc.figures.memory import live_storages
from archcalc.figures.receptive_field import ReceptiveField
from archcalc.ops.base import GLOBAL, Op, SlidingWindow, Window, elements
from archcalc.spec.graph import INPUT, Network
from archcalc.units import human_bytes

Severity = Literal["info", "warning", "error"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}

BOTTLENECK_RATIO = 4  # output elements more than this many times fewer than the input's
EARLY_FRACTION = Fraction(1, 3)  # "early": the first third of the layers in execution order
COVERAGE_EXCESS = 4  # a field more than this many times the input is reported
DENSE_SHARE = Fraction(1, 2)  # fully connected layers holding more than this share of params
MIN_CONCAT_CHAIN = 3  # concatenations in a row before growth is reported
HOTSPOTS = 3  # layers named as the largest keepers of tensors for backward


@dataclass(frozen=True)
class Finding:
    """One observation of the design review, with the figure that triggered it and its source."""

    rule: str
    severity: Severity
    layers: tuple[str, ...]
    message: str
    figure: str
    source: str


@dataclass(frozen=True)
class Rule:
    """A review rule: its id, a one-line title, where it comes from, and its check."""

    id: str
    title: str
    source: str
    check: Callable[[Analysis], list[Finding]]


RULES: dict[str, Rule] = {}


def _rule(
    id: str, title: str, source: str
) -> Callable[[Callable[[Analysis], list[Finding]]], Callable[[Analysis], list[Finding]]]:
    def register(check: Callable[[Analysis], list[Finding]]) -> Callable[[Analysis], list[Finding]]:
        RULES[id] = Rule(id, title, source, check)
        return check

    return register


def _finding(
    rule: str, severity: Severity, layers: Iterable[str], message: str, figure: str
) -> Finding:
    return Finding(rule, severity, tuple(layers), message, figure, RULES[rule].source)


def unknown_rules(names: Iterable[str]) -> list[str]:
    """The names that are not rule ids, in the order given (for validating `--ignore`)."""
    return [n for n in names if n not in RULES]


def review(analysis: Analysis, ignore: Collection[str] = ()) -> list[Finding]:
    """Every finding of the rules not ignored: by severity, then by network order."""
    unknown = unknown_rules(ignore)
    if unknown:
        raise OptionError(
            f"unknown review rule(s) {', '.join(unknown)}; the rules are: {', '.join(RULES)}"
        )
    findings = [f for rule in RULES.values() if rule.id not in ignore for f in rule.check(analysis)]
    position = {p: i for i, p in enumerate(analysis.network.order)}
    end = len(position)
    return sorted(
        findings,
        key=lambda f: (
            SEVERITY_ORDER[f.severity],
            position.get(f.layers[0], end) if f.layers else end,
        ),
    )


# --- shared reading of the analysis -------------------------------------------------------------


def _shapes(analysis: Analysis) -> dict[str, Shape]:
    """Every layer's output shape, and the network input's under `input`."""
    shapes: dict[str, Shape] = {INPUT: analysis.network.input_shape}
    shapes.update((r.path, r.output_shape) for r in analysis.layers)
    return shapes


def _ints(*values: object) -> bool:
    return all(isinstance(v, int) for v in values)


def _size(shape: Shape) -> str:
    return "x".join(f"{d:,}" for d in shape)


def _bytes(n: int) -> str:
    return f"{n:,} bytes ({human_bytes(n)})"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%"


def _listing(items: list[str], limit: int = 4) -> str:
    """The first `limit` items, then how many more."""
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _common_prefix(paths: list[str]) -> str:
    parts = [p.split(".") for p in paths]
    common: list[str] = []
    for names in zip(*parts):
        if any(n != names[0] for n in names):
            break
        common.append(names[0])
    return ".".join(common)


class _Components:
    """Union-find over layer paths: links become groups (chains of related layers)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def link(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self, order: dict[str, int]) -> list[list[str]]:
        found: dict[str, list[str]] = {}
        for x in self.parent:
            found.setdefault(self.find(x), []).append(x)
        return sorted(
            (sorted(g, key=order.__getitem__) for g in found.values()), key=lambda g: order[g[0]]
        )


def _positions(network: Network) -> dict[str, int]:
    return {p: i for i, p in enumerate(network.order)}


def _kernel(op: Op) -> SlidingWindow | None:
    """The window a convolution slides (one whose weights are a kernel it slides), or None."""
    return op.window if op.connectivity == "convolution" else None


# --- 1. representational bottleneck -------------------------------------------------------------


@_rule(
    "representational-bottleneck",
    "An abrupt drop in the number of elements early in the network",
    "Szegedy et al. 2016, Rethinking the Inception Architecture for Computer Vision, §2 principle 1; "
    "course deck 001, design principles (1): avoid representational bottlenecks, especially early",
)
def representational_bottleneck(analysis: Analysis) -> list[Finding]:
    """The representation after layer i is every tensor made so far that a later layer still
    reads (or the network's output): its element count E(i). Each is computed from the one
    before, so it holds at most held(i) = min(E(j), j <= i), from E = elements(input) before the
    first layer. A layer in the first third (execution order) with held(i-1) > 4 * E(i) is a
    bottleneck. A branch that narrows while its block's input stays alive (ResNet, Inception,
    DenseNet), or a projection back to the width a block expanded from (MobileNetV2), drops
    nothing. The head (outputs with fewer axes than the input) and the output are exempt."""
    network = analysis.network
    shapes = _shapes(analysis)
    if not _ints(*network.input_shape) or not all(_ints(*r.output_shape) for r in analysis.layers):
        return []
    last_read: dict[str, int] = {}
    for i, layer in enumerate(network.layers):
        for source in layer.inputs:
            last_read[source] = i
    last_read[network.output] = len(network.order)
    freed: dict[int, list[str]] = {}
    for path, i in last_read.items():
        freed.setdefault(i, []).append(path)
    total = len(analysis.layers)
    rank = len(network.input_shape)
    live = elements(network.input_shape)
    held, held_at = live, "the input"
    found = []
    for i, r in enumerate(analysis.layers):
        if i >= EARLY_FRACTION * total:
            break
        live += elements(r.output_shape) - sum(elements(shapes[p]) for p in freed.get(i, ()))
        head = len(r.output_shape) < rank or r.path == network.output
        if not head and held > BOTTLENECK_RATIO * live:
            ratio = held / live
            found.append(
                _finding(
                    "representational-bottleneck",
                    "warning",
                    [r.path],
                    f"elements drop {ratio:.2f}x from {held:,} to {live:,} at {r.path} ({r.op} "
                    f"{r.detail}, output {_size(r.output_shape)}; layer {i + 1} of {total}, within the "
                    "first third of the network): after it, the tensors later layers read hold "
                    f"{live:,} elements, where the representation held {held:,} up to {held_at}. "
                    "Compressing this early loses information later layers cannot recover; keep more "
                    "channels here, or reduce the resolution more gradually (at most 4x per layer)",
                    f"{ratio:.2f}x",
                )
            )
        if live < held:
            held, held_at = live, r.path
    return found


# --- 2. large kernels ---------------------------------------------------------------------------


@_rule(
    "large-kernel",
    "A large stride-1 convolution a stack of 3x3 convolutions would do with fewer weights",
    "Simonyan & Zisserman 2015, Very Deep Convolutional Networks (VGG), §2.3; Szegedy et al. 2016, "
    "§3.1 factorization into smaller convolutions; course deck 001, design principles (2): "
    "a 5x5 convolution -> two 3x3",
)
def large_kernel(analysis: Analysis) -> list[Finding]:
    """Weights of a k^D kernel (PyTorch's shape: out, in/g, *k), out*(in/g)*k^D, against a stack of n = (k-1)/2 3^D kernels:
    3^D * (out*(in/g) + (n-1)*out*(out/g)) (first in->out, then out->out, same groups)."""
    shapes = _shapes(analysis)
    network = analysis.network
    lines, layers, skipped = [], [], []
    saved_total = 0
    for r in analysis.layers:
        op = network.layer(r.path).op
        window = _kernel(op)
        if window is None:
            continue
        k = window.kernel_size[0]
        if k < 5 or any(x != k for x in window.kernel_size):
            continue
        kernel = "x".join([str(k)] * len(window.kernel_size))
        if any(s != 1 for s in window.strides) or any(d != 1 for d in window.dilations) or k % 2 == 0:
            why = (
                "strided"
                if any(s != 1 for s in window.strides)
                else "dilated"
                if any(d != 1 for d in window.dilations)
                else "even"
            )
            skipped.append(f"{r.path} ({kernel} {why})")
            continue
        cin = shapes[r.inputs[0]][0]
        cout, per_group = op.parameters([shapes[i] for i in r.inputs])["weight"][:2]  # (out, in/g, *k)
        if not _ints(cin, cout):
            continue
        g = cin // per_group
        taps = 3 ** len(window.kernel_size)
        single = cout * (cin // g) * k ** len(window.kernel_size)
        depth = (k - 1) // 2
        stack = taps * (cout * (cin // g) + (depth - 1) * cout * (cout // g))
        if stack >= single:
            continue
        widths = "->".join([f"{cin}"] + [f"{cout}"] * depth)
        grouped = f", groups {g}" if g != 1 else ""
        lines.append(
            f"{r.path} {kernel} {cin}->{cout}{grouped}: {single:,} weights; {depth} 3x3 ({widths}): "
            f"{stack:,} ({single - stack:,} fewer, {_share(single - stack, single)})"
        )
        layers.append(r.path)
        saved_total += single - stack
    if not layers:
        return []
    note = (
        f" Not considered: {_listing(skipped, 3)} (a stack of 3x3 would not keep a strided, dilated or even kernel's field)."
        if skipped
        else ""
    )
    return [
        _finding(
            "large-kernel",
            "info",
            layers,
            f"{len(layers)} stride-1 convolution(s) with large kernels can be stacks of 3x3 "
            f"convolutions with the same receptive field and width, with {saved_total:,} fewer weights "
            f"in all: {_listing(lines)}. Assumed: the stack keeps the groups, maps in->out first and "
            "out->out after; weights only (biases, and the activations the stack adds between its "
            f"convolutions, not counted).{note}",
            f"{saved_total:,} fewer weights",
        )
    ]


# --- 3. receptive-field coverage ----------------------------------------------------------------


@_rule(
    "receptive-field-coverage",
    "The last spatial layer's receptive field against the input",
    "course deck 003: the last convolutional layers should see a field comparable to the whole "
    "image; Araujo, Norris & Sim 2019, Computing Receptive Fields of CNNs (Distill)",
)
def receptive_field_coverage(analysis: Analysis) -> list[Finding]:
    """Warning when the field is below the input size on an axis; info above 4x the input.

    The last spatial layer is the last whose output keeps the input's axes, global pooling
    (the head) aside; a field that is the whole input already (squeeze-and-excitation's global
    pooling feeds it) covers it. A field that depends on the unit's position (after a transposed
    convolution, say) is judged by its largest unit."""
    network = analysis.network
    shapes = _shapes(analysis)
    rank = len(network.input_shape)
    last = None
    for r in reversed(analysis.layers):
        if len(r.output_shape) != rank:
            continue
        try:
            step = network.layer(r.path).op.receptive_step([shapes[i] for i in r.inputs])
        except ArchcalcError:
            return []
        if step != GLOBAL:
            last = r
            break
    if rank < 2 or last is None or not isinstance(last.receptive_field, ReceptiveField):
        return []
    field = last.receptive_field
    sizes, inputs = field.size, analysis.network.input_shape[1:]
    if not _ints(*sizes, *inputs):
        return []
    if field.varies:
        where = f"the last spatial layer, {last.path} (whose field depends on the unit's position; its largest unit),"
    else:
        where = f"the last spatial layer, {last.path} (effective stride {_size(field.stride)}),"
    if any(r < n for r, n in zip(sizes, inputs)):
        return [
            _finding(
                "receptive-field-coverage",
                "warning",
                [last.path],
                f"{where} sees a field of {_size(sizes)} on a {_size(inputs)} input: no unit before the "
                "head combines the whole image; add depth or downsampling before the head (or feed a "
                "smaller input) so the field covers the input",
                f"field {_size(sizes)} < input {_size(inputs)}",
            )
        ]
    ratio = max(r / n for r, n in zip(sizes, inputs))
    if ratio <= COVERAGE_EXCESS:
        return []
    return [
        _finding(
            "receptive-field-coverage",
            "info",
            [last.path],
            f"{where} sees a field of {_size(sizes)} on a {_size(inputs)} input ({ratio:.2f}x): its "
            "units' fields reach far past the image into the padding, so the last stages add depth "
            "without adding context; fewer blocks in the last stages, or a larger input, would put "
            "the field to use",
            f"field {ratio:.2f}x the input",
        )
    ]


# --- 4. dropped pixels --------------------------------------------------------------------------


@dataclass(frozen=True)
class _AxisDrops:
    """What one input axis loses at the spec's size, and the nearest size that loses nothing."""

    axis: int
    drops: tuple[Drop, ...]
    nearest: int | None
    period: int
    searched: int  # sizes n .. n + searched - 1 were tried (the period, or PROBES)


_AXES = {
    1: [("length", "positions")],
    2: [("height", "rows"), ("width", "columns")],
    3: [("depth", "slices"), ("height", "rows"), ("width", "columns")],
}


@_rule(
    "dropped-pixels",
    "Strided layers that leave trailing rows or columns of their input unread",
    "torch.nn.Conv2d documentation (output size floor((n + 2p - d(k-1) - 1)/s) + 1: trailing input "
    "no window reaches is lost); course deck 001, the output-size formula with floor; "
    "Araujo, Norris & Sim 2019",
)
def dropped_pixels(analysis: Analysis) -> list[Finding]:
    """Per axis: windows with (m + before + after - span) mod stride > after at the spec's size,
    and the nearest input size, searched over one period of the effective strides, that loses none."""
    network = analysis.network
    spatial = len(network.input_shape) - 1
    if spatial not in _AXES or not _ints(*network.input_shape):
        return []
    results: list[_AxisDrops] = []
    for axis in range(1, spatial + 1):
        program = AxisProgram(network, axis)
        n = network.input_shape[axis]
        drops = program.run(n)
        if not drops:
            continue
        cycle = period(network, axis)
        searched = min(cycle, PROBES)
        nearest = nearest_clean(program, n + 1, searched)
        results.append(_AxisDrops(axis, tuple(drops), nearest, cycle, searched))
    found = []
    for result in results:
        same = [r.axis for r in results if (r.drops, r.nearest) == (result.drops, result.nearest)]
        if same[0] != result.axis:
            continue  # reported with the first axis that drops the same
        names = " and ".join(_AXES[spatial][a - 1][0] for a in same)
        unit = " or ".join(_AXES[spatial][a - 1][1] for a in same)
        n, dropped, cycle = network.input_shape[result.axis], result.drops, result.period
        paths = {d.path for d in dropped}
        detail = {r.path: f"{r.op} {r.detail}".strip() for r in analysis.layers if r.path in paths}
        items = [
            f"{d.path} ({detail[d.path]} on {d.size}: the last {d.lost} unread)" for d in dropped
        ]
        if result.nearest is None and result.searched < cycle:
            advice = (
                f"no size from {n} to {n + result.searched - 1} avoids it (sizes round alike only "
                f"every {cycle:,}, too many to try): change these layers' padding or kernel"
            )
            figure = f"{len(dropped)} layer(s); no clean size nearby"
        elif result.nearest is None:
            advice = (
                f"no size from {n} to {n + cycle - 1} avoids it, and sizes round alike every "
                f"{cycle}, so no larger one does: change these layers' padding or kernel"
            )
            figure = f"{len(dropped)} layer(s); no clean size"
        else:
            advice = (
                f"the nearest size >= {n} at which no layer drops any is {result.nearest} "
                f"(sizes round alike every {cycle})"
            )
            figure = f"{len(dropped)} layer(s); nearest clean size {result.nearest}"
        found.append(
            _finding(
                "dropped-pixels",
                "warning",
                [d.path for d in dropped],
                f"at input {_size(network.input_shape[1:])}, on the {names}, {len(dropped)} strided layer(s) "
                f"leave the last {unit} of their input unread (the floor in the output size): "
                f"{_listing(items)}; {advice}",
                figure,
            )
        )
    return found


# --- 5. dilation gridding -----------------------------------------------------------------------


def _ordinal(n: str) -> str:
    """`2nd`, `3rd`, `4th`; `2x3` (per axis) as it is, with `th`."""
    if not n.isdigit() or n.endswith(("11", "12", "13")):
        return f"{n}th"
    return n + {"1": "st", "2": "nd", "3": "rd"}.get(n[-1], "th")


def _runs(values: list[str]) -> str:
    """`2 (x23), 4 (x3)`: equal neighbours counted."""
    groups = [(v, len(list(g))) for v, g in groupby(values)]
    return ", ".join(f"{v} (x{c})" if c != 1 else v for v, c in groups)


@_rule(
    "dilation-gridding",
    "Consecutive dilated convolutions whose rates share a common factor",
    "Wang et al. 2018, Understanding Convolution for Semantic Segmentation, §3.2 hybrid dilated "
    "convolution (HDC)",
)
def dilation_gridding(analysis: Analysis) -> list[Finding]:
    """Links dilated convolution A -> B when B reads A's output through spatially pointwise layers
    only (element-wise ops, merges, 1x1 stride-1 windows) and gcd(rate_A, rate_B) > 1 on an axis;
    each group of linked convolutions is one finding."""
    network = analysis.network
    shapes = _shapes(analysis)
    dilated = {}
    for layer in network.layers:
        window = _kernel(layer.op)
        if window is not None and any(
            d > 1 and k > 1 for d, k in zip(window.dilations, window.kernel_size)
        ):
            dilated[layer.path] = window.dilations
    if len(dilated) < 2:
        return []
    pointwise: dict[str, bool] = {}

    def is_pointwise(path: str) -> bool:
        if path not in pointwise:
            layer = network.layer(path)
            try:
                step = layer.op.receptive_step([shapes[i] for i in layer.inputs])
            except ArchcalcError:
                step = GLOBAL
            pointwise[path] = step is None or (
                isinstance(step, Window)
                and all(s == 1 for s in step.spans)
                and all(s == 1 for s in step.strides)
            )
        return pointwise[path]

    def previous(path: str) -> set[str]:
        """The nearest spatial (not pointwise) layers whose output reaches `path`'s inputs."""
        found, seen = set(), set()
        stack = list(network.layer(path).inputs)
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            if p != INPUT and is_pointwise(p):
                stack.extend(network.layer(p).inputs)
            else:
                found.add(p)
        return found

    groups = _Components()
    for b, rates_b in dilated.items():
        for a in previous(b):
            if a in dilated and any(math.gcd(x, y) > 1 for x, y in zip(dilated[a], rates_b)):
                groups.link(a, b)
    found = []
    for members in groups.groups(_positions(network)):
        factors = tuple(math.gcd(*axis) for axis in zip(*(dilated[m] for m in members)))
        rates = [
            ("x".join(map(str, dilated[m])) if len(set(dilated[m])) > 1 else str(dilated[m][0]))
            for m in members
        ]
        if any(f > 1 for f in factors):
            factor = "x".join(map(str, factors)) if len(set(factors)) > 1 else str(factors[0])
            holes = (
                f"a unit of the last reads, through the chain, only every {_ordinal(factor)} "
                "position of the feature map entering the chain on each axis (1 in "
                f"{math.prod(factors)} positions)"
            )
        else:
            factor = "pairwise"
            holes = "each linked pair reads only a sub-grid of the map the first of them reads"
        found.append(
            _finding(
                "dilation-gridding",
                "warning",
                members,
                f"{len(members)} consecutive dilated convolutions from {members[0]} to {members[-1]} have "
                f"dilation rates {_runs(rates)} with the common factor {factor}: {holes}, so local "
                "detail is lost in a checkerboard pattern (gridding); use rates without a common factor "
                "in each group, e.g. 1, 2, 5 repeated (hybrid dilated convolution)",
                f"common factor {factor}",
            )
        )
    return found


# --- 6. dense-heavy -----------------------------------------------------------------------------


@_rule(
    "dense-heavy",
    "Fully connected layers hold most of the parameters",
    "Simonyan & Zisserman 2015 (VGG: most parameters sit in the fully connected layers); Lin, Chen "
    "& Yan 2014, Network in Network, §3.2 global average pooling in place of fully connected layers",
)
def dense_heavy(analysis: Analysis) -> list[Finding]:
    """Linear layers on the flattened maps (their field is the whole input) over all parameters,
    in networks with convolutions (in a plain multilayer perceptron they are the whole design)."""
    network = analysis.network
    shapes = _shapes(analysis)
    if not any(layer.op.connectivity == "convolution" for layer in network.layers):
        return []
    dense = [
        r
        for r in analysis.layers
        if network.layer(r.path).op.connectivity == "dense"
        and r.receptive_field == GLOBAL
        and _ints(r.params.params)
    ]
    held = sum((r.params.params for r in dense), 0)
    total = analysis.totals.params
    if not dense or not _ints(total) or held <= DENSE_SHARE * total:
        return []
    largest = max(dense, key=lambda r: r.params.params)
    features = shapes[largest.inputs[0]][-1]
    rank = len(network.input_shape)
    first = _positions(network)[dense[0].path]
    maps = next(
        (r.output_shape for r in reversed(analysis.layers[:first]) if len(r.output_shape) == rank),
        None,
    )
    read = shapes[dense[0].inputs[0]][-1]  # features the first fully connected layer reads
    positions = (
        read // maps[0] if maps is not None and _ints(read, maps[0]) and read % maps[0] == 0 else 1
    )
    if maps is not None and positions > 1:
        advice = (
            f"the head flattens {_size(maps)} maps ({positions:,} positions per channel); global "
            "average pooling before a single classifier (Network in Network; as ResNet and "
            "GoogLeNet do) would remove most of these parameters"
        )
    else:
        advice = (
            "the maps are already pooled to one position, so the head's size is its widths' "
            "product: fewer features before it, or a narrower hidden layer, would shrink it"
        )
    parts = [f"{r.path} {r.params.params:,}" for r in dense]
    return [
        _finding(
            "dense-heavy",
            "warning",
            [r.path for r in dense],
            f"fully connected layers hold {held:,} of {total:,} parameters ({_share(held, total)}): "
            f"{_listing(parts)}; the largest, {largest.path}, reads {features:,} features; {advice}",
            f"{_share(held, total)} of params",
        )
    ]


# --- 7. bias before batch norm ------------------------------------------------------------------


def _bias_along_channels(op: Op, output: Shape) -> bool:
    """Whether the bias varies along axis 0 only, the axis batch norm normalises per channel:
    a convolution's (channels first); a fully connected layer's (features last) when its output
    is a feature vector."""
    return op.connectivity == "convolution" or (op.connectivity == "dense" and len(output) == 1)


@_rule(
    "bias-before-batchnorm",
    "A bias cancelled by the batch norm that follows",
    "Ioffe & Szegedy 2015, Batch Normalization, §3.2 (the bias is cancelled by the mean subtraction)",
)
def bias_before_batchnorm(analysis: Analysis) -> list[Finding]:
    """A layer with a bias whose only reader is batch norm over the bias's axis: bias wasted."""
    network = analysis.network
    shapes = _shapes(analysis)
    layers, wasted = [], 0
    for r in analysis.layers:
        op = network.layer(r.path).op
        if not _bias_along_channels(op, r.output_shape):
            continue
        readers = list(network.readers[r.path])
        if (
            len(readers) != 1
            or r.path == network.output
            or not network.layer(readers[0]).op.normalizes_channels
        ):
            continue
        bias = op.parameters([shapes[i] for i in r.inputs]).get("bias")
        if bias is None or not _ints(elements(bias)):
            continue
        layers.append(r.path)
        wasted += elements(bias)
    if not layers:
        return []
    return [
        _finding(
            "bias-before-batchnorm",
            "info",
            layers,
            f"{len(layers)} layer(s) feed a batch norm alone and carry a bias it cancels by subtracting "
            f"the mean: {wasted:,} parameters do nothing ({_listing(layers)}); set bias: false on them",
            f"{wasted:,} params wasted",
        )
    ]


# --- 8. concatenation growth --------------------------------------------------------------------


@_rule(
    "concat-growth",
    "Chains of concatenations (dense connectivity): activation memory quadratic in depth",
    "Huang et al. 2017, Densely Connected Convolutional Networks; Pleiss et al. 2017, "
    "Memory-Efficient Implementation of DenseNets",
)
def concat_growth(analysis: Analysis) -> list[Finding]:
    """Concats linked when one's output reaches the next directly (or through element-wise layers
    that keep its shape); groups of at least 3, with the growth and the bytes of their outputs."""
    network = analysis.network
    shapes = _shapes(analysis)
    rows = {r.path: r for r in analysis.layers}
    concats = {r.path for r in analysis.layers if network.layer(r.path).op.joins_along is not None}
    if len(concats) < MIN_CONCAT_CHAIN:
        return []

    def carried(path: str) -> str:
        """Follow shape-keeping element-wise layers back to the map they pass on."""
        while path in rows and path not in concats:
            layer = network.layer(path)
            if len(layer.inputs) != 1 or shapes[layer.inputs[0]] != shapes[path]:
                break
            try:
                if layer.op.receptive_step([shapes[layer.inputs[0]]]) is not None:
                    break
            except ArchcalcError:
                break
            path = layer.inputs[0]
        return path

    groups = _Components()
    fed_by: dict[str, str] = {}
    depth: dict[str, int] = {}  # the longest chain of concats ending at each
    order = _positions(network)
    for c in sorted(concats, key=order.__getitem__):
        groups.find(c)
        depth[c] = 1
        for i in network.layer(c).inputs:
            source = carried(i)
            if source in concats:
                groups.link(source, c)
                fed_by[c] = i
                depth[c] = max(depth[c], depth[source] + 1)
    batch = analysis.memory.options.batch
    found = []
    for members in groups.groups(order):
        if max(depth[c] for c in members) < MIN_CONCAT_CHAIN:
            continue  # concats that feed one more (Inception's nested ones) grow nothing
        joined = network.layer(members[0]).op.joins_along
        assert joined is not None
        out_first = rows[members[0]].output_shape
        axis = joined % (len(out_first) + 1) - 1
        growth = []
        for c in members:
            inputs = network.layer(c).inputs
            chained = fed_by.get(c) or max(inputs, key=lambda i: shapes[i][axis])
            growth.append(rows[c].output_shape[axis] - shapes[chained][axis])
        start = rows[members[0]].output_shape[axis] - growth[0]
        end = rows[members[-1]].output_shape[axis]
        outputs = [rows[c].memory.output for c in members]
        if not _ints(*growth, start, end, *outputs, batch):
            continue
        total, final = batch * sum(outputs), batch * outputs[-1]
        each = f"{growth[0]:,}" if len(set(growth)) == 1 else f"{min(growth):,} to {max(growth):,}"
        block = _common_prefix(members) or "the network"
        at_batch = "per example" if batch == 1 else f"at batch {batch}"
        found.append(
            _finding(
                "concat-growth",
                "info",
                members,
                f"in {block}, {len(members)} chained concatenations each add {each} channels "
                f"({start:,} -> {end:,} at {_size(out_first[1:])}): the concatenated maps take "
                f"{_bytes(total)} {at_batch}, growing quadratically with the chain's length, and "
                "training keeps each one for the layer that reads it; sharing one buffer of the final "
                f"map (Pleiss et al.'s memory-efficient implementation) needs {_bytes(final)}",
                f"+{each} channels x {len(members)}; {human_bytes(total)}",
            )
        )
    return found


# --- 9. memory hotspots -------------------------------------------------------------------------


def live_at_peak(analysis: Analysis) -> dict[str, int]:
    """Per-example bytes of each storage alive while the inference-peak layer runs, by the layer
    that made it (memory.live_storages: the liveness rule the memory pass uses)."""
    network = analysis.network
    at = network.order.index(analysis.memory.peak_layer)
    storages = live_storages(network, _shapes(analysis), analysis.memory.options.activation_bytes)
    return {t: s.nbytes for t, s in storages.items() if s.born <= at <= s.last_use}


@_rule(
    "memory-hotspot",
    "Where the activation memory goes: the inference peak and the largest keepers for training",
    "docs/memory.md (PyTorch's saved tensors per op; liveness in execution order)",
)
def memory_hotspot(analysis: Analysis) -> list[Finding]:
    """The storages that make up the inference peak; the top 3 layers by saved bytes."""
    m = analysis.memory
    batch = m.options.batch
    if not _ints(m.inference_peak, m.training_total, m.training_activations, batch):
        return []
    at_batch = "per example" if batch == 1 else f"at batch {batch}"
    order = _positions(analysis.network)
    found = []
    live = live_at_peak(analysis)
    if batch * sum(live.values()) == m.inference_peak:
        held = sorted(live.items(), key=lambda t: -t[1])
        items = [f"{'the input' if t == INPUT else t} {human_bytes(batch * b)}" for t, b in held]
        found.append(
            _finding(
                "memory-hotspot",
                "info",
                sorted({m.peak_layer, *(t for t in live if t != INPUT)}, key=order.__getitem__),
                f"inference peaks at {_bytes(m.inference_peak)} {at_batch} while {m.peak_layer} runs, "
                f"holding {_listing(items)}; it grows with the batch and the input area",
                human_bytes(m.inference_peak),
            )
        )
    kept = sorted(
        (r for r in analysis.layers if _ints(r.memory.saved) and r.memory.saved),
        key=lambda r: -r.memory.saved,
    )[:HOTSPOTS]
    if kept and m.training_total:
        items = [
            f"{r.path} {human_bytes(batch * r.memory.saved)} ({_share(batch * r.memory.saved, m.training_total)})"
            for r in kept
        ]
        found.append(
            _finding(
                "memory-hotspot",
                "info",
                sorted((r.path for r in kept), key=order.__getitem__),
                f"training keeps {_bytes(m.training_activations)} {at_batch} for backward, "
                f"{_share(m.training_activations, m.training_total)} of the {human_bytes(m.training_total)} "
                f"training total ({m.options.optimizer}); the largest keepers, with their share of that "
                f"total: {', '.join(items)} (a storage two layers keep counts for each)",
                f"{_share(batch * kept[0].memory.saved, m.training_total)} at {kept[0].path}",
            )
        )
    return found


__all__ = ["RULES", "Finding", "Rule", "Severity", "live_at_peak", "review", "unknown_rules"]
