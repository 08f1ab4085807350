"""The contract every review rule fulfils, its registry, and how rules read an analysis and word
their figures.

A rule is one module of this package: a check, `check(analysis) -> list[Finding]`, a pure
function registered by `@rule(id, title, source, severities)`; the package imports the modules in
the order reports list the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from archcalc.analysis import Analysis
from archcalc.arith import Shape
from archcalc.ops.base import Op, SlidingWindow
from archcalc.spec.graph import INPUT, Network
from archcalc.units import human_bytes

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One observation of the design review, with the figure that triggered it and its source."""

    rule: str
    severity: Severity
    layers: tuple[str, ...]
    message: str
    figure: str
    source: str


Check = Callable[[Analysis], list[Finding]]
"""A rule's check: a pure function of one analysis."""


@dataclass(frozen=True)
class Rule:
    """A review rule: its id, a one-line title, where it comes from, its check, and the
    severities its findings carry."""

    id: str
    title: str
    source: str
    check: Check
    severities: tuple[Severity, ...]


RULES: dict[str, Rule] = {}


def rule(
    id: str, title: str, source: str, severities: tuple[Severity, ...]
) -> Callable[[Check], Check]:
    """Register the decorated check as rule `id`."""

    def register(check: Check) -> Check:
        RULES[id] = Rule(id, title, source, check, severities)
        return check

    return register


def finding(
    rule_id: str, severity: Severity, layers: Iterable[str], message: str, figure: str
) -> Finding:
    """A finding of rule `rule_id`, carrying the rule's source."""
    declared = RULES[rule_id]
    if severity not in declared.severities:
        raise AssertionError(
            f"rule {rule_id} declares severities {declared.severities}, not {severity}"
        )
    return Finding(rule_id, severity, tuple(layers), message, figure, declared.source)


# --- reading the analysis -----------------------------------------------------------------------


def output_shapes(analysis: Analysis) -> dict[str, Shape]:
    """Every layer's output shape, and the network input's under `input`."""
    shapes: dict[str, Shape] = {INPUT: analysis.network.input_shape}
    shapes.update((r.path, r.output_shape) for r in analysis.layers)
    return shapes


def integers(*values: object) -> bool:
    """Whether every value is a number (rules skip what a symbolic analysis leaves as a formula)."""
    return all(isinstance(v, int) for v in values)


def positions(network: Network) -> dict[str, int]:
    """Each layer's index in execution order."""
    return {p: i for i, p in enumerate(network.order)}


def convolution_window(op: Op) -> SlidingWindow | None:
    """The window a convolution slides (a kernel of learned weights), or None."""
    return op.window if op.connectivity == "convolution" else None


def common_prefix(paths: list[str]) -> str:
    """The block path every one of `paths` lies in ('' when none)."""
    parts = [p.split(".") for p in paths]
    common: list[str] = []
    for names in zip(*parts):
        if any(n != names[0] for n in names):
            break
        common.append(names[0])
    return ".".join(common)


class Chains:
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


# --- wording the figures ------------------------------------------------------------------------


def size(shape: Shape) -> str:
    """`56x56`, thousands separated."""
    return "x".join(f"{d:,}" for d in shape)


def byte_count(n: int) -> str:
    """`1,204,224 bytes (1.15 MiB)`."""
    return f"{n:,} bytes ({human_bytes(n)})"


def share(part: int, whole: int) -> str:
    """`12.34%`."""
    return f"{100 * part / whole:.2f}%"


def listing(items: list[str], limit: int = 4) -> str:
    """The first `limit` items, then how many more."""
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")
