"""Terminal rendering of analysis results with rich; reads results, computes nothing new."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .analysis import Analysis, LayerResult
from .arith import Dim, Shape


def shape_text(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def count_text(value: Dim) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass(frozen=True)
class Row:
    """A table row: one layer, or a block folded to the requested depth."""

    path: str
    op: str
    detail: str
    output_shape: Shape
    params: Dim
    frozen: bool


def fold(analysis: Analysis, depth: int | None) -> list[Row]:
    """Rows with paths cut to `depth` components: a block's rows merge into one (params summed)."""
    rows: list[Row] = []
    blocks = analysis.network.blocks
    for r in analysis.layers:
        parts = r.path.split(".")
        if depth is None or len(parts) <= depth:
            rows.append(_row(r))
            continue
        group = ".".join(parts[:depth])
        if rows and rows[-1].path == group:
            last = rows[-1]
            rows[-1] = Row(group, last.op, "", r.output_shape, last.params + r.params.params, last.frozen and r.params.frozen)
        else:
            kind = blocks.get(group) or blocks.get(".".join(parts[: depth + 1]), "block")
            rows.append(Row(group, f"{kind} (block)", "", r.output_shape, r.params.params, r.params.frozen))
    return rows


def _row(r: LayerResult) -> Row:
    return Row(r.path, r.op, r.detail, r.output_shape, r.params.params, r.params.frozen)


def summary_table(analysis: Analysis, depth: int | None = None) -> Any:
    """A rich renderable: the per-layer table with totals below."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    net = analysis.network
    table = Table(title=f"{net.name}  (input {shape_text(net.input_shape)}, batch excluded)", title_justify="left")
    table.add_column("Layer", no_wrap=True)
    table.add_column("Op")
    table.add_column("Settings", style="dim")
    table.add_column("Output shape", justify="right")
    table.add_column("Params", justify="right")
    for row in fold(analysis, depth):
        params = count_text(row.params) if row.params else "–"
        if row.frozen and row.params:
            params += " (frozen)"
        table.add_row(escape(row.path), escape(row.op), escape(row.detail), shape_text(row.output_shape), params)
    t = analysis.totals
    lines = [
        f"Output shape:      {shape_text(analysis.output_shape)}",
        f"Total params:      {count_text(t.params)}",
        f"Trainable params:  {count_text(t.trainable_params)}",
        f"Frozen params:     {count_text(t.frozen_params)}",
        f"Buffers:           {count_text(t.buffers)} (running statistics, not learned)",
    ]
    return Group(table, Text("\n".join(lines)))
