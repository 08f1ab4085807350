"""The design review: the network at a glance, its block tree, a per-stage table and findings.

`build_report` gathers everything as frozen data from one analysis; report_format.py renders it
for the terminal, Markdown, HTML or JSON.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from archcalc.analysis import Analysis, LayerResult, analyze
from archcalc.arith import Dim, Shape
from archcalc.errors import OptionError
from archcalc.figures.figure import glance_rows
from archcalc.figures.memory import MemoryOptions
from archcalc.figures.receptive_field import ReceptiveField
from archcalc.review.findings import Finding, review, unknown_rules
from archcalc.spec.blocks import Blocks
from archcalc.spec.graph import Network


@dataclass(frozen=True)
class Glance:
    """The headline figures: every figure's glance fields (figure.GlanceRow), in their rows' places;
    `glance.params` reads `values["params"]`."""

    name: str
    values: dict[str, Any]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") or key == "values":
            raise AttributeError(key)
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None


@dataclass(frozen=True)
class Stage:
    """A run of consecutive layers at one spatial resolution (the head: no spatial axes)."""

    first: str
    last: str
    layers: int
    resolution: Shape
    channels: Dim
    receptive_field: tuple[Dim, ...] | None
    params: Dim
    flops: Dim
    activation_bytes: Dim  # outputs of its layers, at the batch


@dataclass(frozen=True)
class TreeNode:
    name: str
    kind: str
    params: Dim
    output_shape: Shape
    children: tuple[TreeNode, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Report:
    glance: Glance
    stages: tuple[Stage, ...]
    tree: tuple[TreeNode, ...]
    findings: tuple[Finding, ...]
    ignored: tuple[str, ...]


def _stages(analysis: Analysis) -> tuple[Stage, ...]:
    batch = analysis.memory.options.batch
    groups: list[list[LayerResult]] = []
    for r in analysis.layers:
        resolution = tuple(r.output_shape[1:])
        if groups and tuple(groups[-1][-1].output_shape[1:]) == resolution:
            groups[-1].append(r)
        else:
            groups.append([r])
    stages = []
    for group in groups:
        fields = [r.receptive_field for r in group if isinstance(r.receptive_field, ReceptiveField)]
        stages.append(Stage(
            group[0].path, group[-1].path, len(group), tuple(group[-1].output_shape[1:]),
            group[-1].output_shape[0] if group[-1].output_shape else 1,
            fields[-1].size if fields else None,
            sum((r.params.params for r in group), 0),
            sum((r.flops.flops for r in group), 0),
            batch * sum((r.memory.output for r in group), 0),
        ))
    return tuple(stages)


def _tree(analysis: Analysis, levels: int = 2) -> tuple[TreeNode, ...]:
    """Blocks and top-level layers, two levels deep: stages, then block instances."""
    blocks = Blocks(analysis.network.blocks)

    def build(rows: tuple[LayerResult, ...], level: int) -> tuple[TreeNode, ...]:
        return tuple(
            TreeNode(
                group.name, group.kind, sum((r.params.params for r in group.members), 0), group.members[-1].output_shape,
                build(group.members, level + 1) if group.folded and level < levels else (),
            )
            for group in blocks.fold(rows, level)
        )

    return build(analysis.layers, 1)


def build_report(network: Network, options: MemoryOptions, ignore: Collection[str] = ()) -> Report:
    """Analyse and review a network; `ignore` (and the spec's own `ignore`) silence rules."""
    silenced = tuple(dict.fromkeys([*network.ignore, *ignore]))
    unknown = unknown_rules(silenced)
    if unknown:
        from archcalc.review.findings import RULES

        raise OptionError(f"unknown review rule(s) {', '.join(unknown)}; the rules are: {', '.join(RULES)}")
    analysis = analyze(network, options)
    glance = Glance(network.name, {k: v for row in glance_rows() for k, v in row.values(analysis).items()})
    return Report(glance, _stages(analysis), _tree(analysis), tuple(review(analysis, silenced)), silenced)


def as_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (formulas, if any, as strings)."""
    import dataclasses

    from archcalc.analysis import _plain

    def plain(value: Any) -> Any:
        if isinstance(value, Glance):
            return {"name": value.name, **{k: plain(v) for k, v in value.values.items()}}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return _plain(value)

    return plain(report)
