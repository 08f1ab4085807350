"""The design review: the network at a glance, its block tree, a per-stage table and findings.

`build_report` gathers everything as frozen data from one analysis; report_format.py renders it
for the terminal, Markdown, HTML or JSON.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from archcalc.analysis import Analysis, LayerResult, analyze
from archcalc.arith import Dim, Shape
from archcalc.errors import OptionError
from archcalc.figures.figure import glance_rows
from archcalc.figures.memory import MemoryOptions
from archcalc.figures.receptive_field import ReceptiveField
from archcalc.review.findings import Finding, review, unknown_rules
from archcalc.review.rules.base import common_prefix
from archcalc.spec.blocks import Blocks
from archcalc.spec.graph import INPUT, Network


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
    """Consecutive layers whose output ends at one spatial resolution (the head: no spatial axes).

    A stage ends at its last output at that resolution; a block that starts at the previous
    resolution and reduces it (ResNet's layer2.0, whose 1x1 conv1 runs at 56x56) belongs to the
    stage of its output, as in He et al. 2016, Table 1. `channels`, `receptive_field` and
    `resolution` are those of the stage's last layer (its output); `params`, `flops` and
    `activation_bytes` add up all its layers."""

    first: str
    last: str
    layers: int
    resolution: Shape
    channels: Dim  # of the last layer's output: the stage's output
    receptive_field: tuple[Dim, ...] | None  # of the last layer, in input pixels per axis
    params: Dim
    flops: Dim
    activation_bytes: Dim  # outputs of all its layers, at the batch


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


def _cuts(analysis: Analysis) -> list[bool]:
    """Whether each layer's output is a cut: every tensor made before it is read by it or before it,
    so everything after it depends on the network's input through it alone (a block's output)."""
    network = analysis.network
    last_read: dict[str, int] = {}
    for i, layer in enumerate(network.layers):
        for source in layer.inputs:
            last_read[source] = i
    reach = last_read.get(INPUT, -1)
    cuts = []
    for i, r in enumerate(analysis.layers):
        cuts.append(reach <= i)
        reach = max(reach, last_read.get(r.path, i))
    return cuts


def _join(groups: list[list[int]], piece: list[int], rows: list[LayerResult]) -> None:
    """Add a piece to the last group if it ends at the same resolution, else start a new group."""
    if groups and rows[groups[-1][-1]].output_shape[1:] == rows[piece[-1]].output_shape[1:]:
        groups[-1].extend(piece)
    else:
        groups.append(piece)


def _block(blocks: dict[str, str], paths: list[str]) -> str:
    """The innermost block instance holding every one of `paths` ('' when none)."""
    block = common_prefix(paths)
    while block and block not in blocks:
        block = block.rpartition(".")[0]
    return block


def _without_detours(
    groups: list[list[int]], rows: list[LayerResult], blocks: dict[str, str]
) -> list[list[int]]:
    """Groups with each detour folded into its neighbours: a group held, with the layer before it
    and the layer after it, by one block that the previous group does not start in
    (squeeze-and-excitation's pooled 1x1 maps inside a MobileNetV3 block)."""
    merged: list[list[int]] = []
    for group in groups:
        if len(merged) >= 2:
            before, detour = merged[-2], merged[-1]
            paths = [rows[before[-1]].path, *(rows[i].path for i in detour), rows[group[0]].path]
            block = _block(blocks, paths)
            same = rows[before[-1]].output_shape[1:] == rows[group[-1]].output_shape[1:]
            if same and block and not rows[before[0]].path.startswith(block + "."):
                before.extend(merged.pop())
                before.extend(group)
                continue
        merged.append(group)
    return merged


def _stages(analysis: Analysis) -> tuple[Stage, ...]:
    """Stages made of whole blocks: the layers between two cuts, when one block holds them (a
    residual or Inception block), go to the stage of the resolution they end at; where a stage ends
    inside a block that goes on after the layer that reduces the resolution (MobileNetV2's
    expansion before its strided depthwise convolution), the block's earlier layers join the next
    stage too. A block that ends with the reducing layer (VGG's, DenseNet's transition) is split,
    as the papers' tables split it."""
    batch = analysis.memory.options.batch
    blocks = analysis.network.blocks
    rows = list(analysis.layers)
    units: list[list[int]] = [[]]
    for i, cut in enumerate(_cuts(analysis)):
        units[-1].append(i)
        if cut:
            units.append([])
    groups: list[list[int]] = []
    for unit in (u for u in units if u):
        whole = _block(blocks, [rows[unit[0]].path, rows[unit[-1]].path])
        for piece in [unit] if whole else [[i] for i in unit]:
            _join(groups, piece, rows)
    groups = _without_detours(groups, rows, blocks)
    for here, after in pairwise(groups):
        block = _block(blocks, [rows[here[-1]].path, rows[after[0]].path])
        if not block or len(after) < 2 or not rows[after[1]].path.startswith(block + "."):
            continue  # no block, or the block ends with the layer that reduces
        start = len(here)
        while start > 0 and rows[here[start - 1]].path.startswith(block + "."):
            start -= 1
        if start > 0:  # the block does not hold the whole stage
            after[:0] = here[start:]
            del here[start:]
    stages = []
    for group in groups:
        members = [rows[i] for i in group]
        out = members[-1]
        stages.append(Stage(
            members[0].path, out.path, len(members), tuple(out.output_shape[1:]),
            out.output_shape[0] if out.output_shape else 1,
            out.receptive_field.size if isinstance(out.receptive_field, ReceptiveField) else None,
            sum((r.params.params for r in members), 0),
            sum((r.flops.flops for r in members), 0),
            batch * sum((r.memory.output for r in members), 0),
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
