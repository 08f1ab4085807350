"""Rendering a design review (report.py) for the terminal (rich), Markdown, HTML or JSON."""

from __future__ import annotations

import json
from typing import Any

from archcalc.arith import Dim
from archcalc.figures.figure import glance_rows as figure_glance_rows
from archcalc.figures.receptive_field import field_text
from archcalc.render.escape import Markdown
from archcalc.render.tables import count_text, shape_text
from archcalc.review.report import Report, Stage, TreeNode, as_dict
from archcalc.units import human_bytes

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _share(part: Dim, whole: Dim) -> str:
    if isinstance(part, int) and isinstance(whole, int) and whole:
        return f"{part / whole:.1%}"
    return ""


def glance_rows(r: Report) -> list[tuple[str, str]]:
    """The at-a-glance panel: each figure's row (figure.GlanceRow), label and line."""
    return [row.text(r.glance.values) for row in figure_glance_rows()]


def stage_cells(s: Stage, r: Report) -> list[str]:
    g = r.glance
    total_flops = sum((x.flops for x in r.stages), 0)
    return [
        s.last, str(s.layers), shape_text(s.resolution) if s.resolution else "–", count_text(s.channels),
        (field_text(s.receptive_field) if s.receptive_field else "all") if s.resolution else "–",
        _share(s.params, g.values["params"]),
        _share(s.flops, total_flops), human_bytes(s.activation_bytes),
    ]


STAGE_COLUMNS = ("Last layer", "Layers", "Out size", "Out ch", "RF", "Params", "FLOPs", "Outputs")


def stage_legend(r: Report) -> str:
    """What each stage column shows, in words (the terminal's caption, the Markdown's note)."""
    batch = r.glance.values.get("batch", 1)
    return (
        "A stage: whole blocks whose output has one resolution (a block that reduces the resolution "
        "belongs to the stage of its output). Last layer: the stage's output; Layers: how many it "
        "runs; Out size, Out ch: the last layer's output; RF: the last layer's receptive field, in input pixels (all: the whole input); Params, "
        "FLOPs: the stage's share of the network's; Outputs: bytes of all its layers' outputs at "
        f"batch {batch}"
    )


def terminal(r: Report) -> Any:
    """A rich renderable of the whole review."""
    from rich import box
    from rich.console import Group
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree

    glance = Table.grid(padding=(0, 2))
    glance.add_column(style="bold")
    glance.add_column(overflow="fold")  # a long layer name wraps; a figure is never cut
    for key, value in glance_rows(r):
        glance.add_row(key, value)

    tree = Tree(Text(r.glance.name, style="bold"))

    def grow(parent: Any, nodes: tuple[TreeNode, ...]) -> None:
        for n in nodes:
            label = Text.assemble(n.name, (f"  {n.kind}  {shape_text(n.output_shape)}  {count_text(n.params)} params", "dim"))
            grow(parent.add(label), n.children)

    grow(tree, r.tree)

    stages = Table(
        box=box.SIMPLE_HEAD,
        title="Stages: whole blocks, by the resolution of their output",
        caption=stage_legend(r),
        caption_justify="left",
        title_justify="left",
    )
    rows = [stage_cells(s, r) for s in r.stages]
    for i, column in enumerate(STAGE_COLUMNS):
        if column == "Last layer":  # the one column that gives way on a narrow terminal
            stages.add_column(column, overflow="fold", min_width=8, max_width=26)
        else:  # figures are never cut
            width = max(len(column), *(len(row[i]) for row in rows))
            stages.add_column(column, justify="right", no_wrap=True, min_width=width)
    for row in rows:
        stages.add_row(*row)

    findings: list[Any] = [Text("Findings", style="bold")]
    if not r.findings:
        findings.append(Text("none: every rule passed" + (f" (silenced: {', '.join(r.ignored)})" if r.ignored else "")))
    for f in r.findings:
        head = Text.assemble((f"{f.severity.upper():8}", SEVERITY_STYLE[f.severity]), " ", (f.rule, "bold"), f"  [{f.figure}]")
        layers = ", ".join(f.layers[:4]) + (f" and {len(f.layers) - 4} more" if len(f.layers) > 4 else "")
        body = Text.assemble(f"{f.message}\n", (f"layers: {layers}\nsource: {f.source}", "dim"))
        findings.append(Group(head, Padding(body, (0, 0, 0, 2))))
    if r.findings and r.ignored:
        findings.append(Text(f"silenced: {', '.join(r.ignored)}", style="dim"))
    return Group(Panel(glance, title=Text(f"design review: {r.glance.name}"), title_align="left"), tree, stages, *findings)


def markdown(r: Report) -> str:
    """The same review as Markdown, for a pull request or a wiki; every value escaped (escape.Markdown)."""
    md = Markdown
    row = md(" | ")
    lines = [md("# Design review: {}").format(r.glance.name), "", "| | |", "|---|---|"]
    lines += [md("| {} | {} |").format(k, v) for k, v in glance_rows(r)]
    lines += ["", "## Block tree", ""]

    def grow(nodes: tuple[TreeNode, ...], indent: int) -> None:
        for n in nodes:
            lines.append(md("{}- <code>{}</code> {}, {}, {} params").format(
                md("  " * indent), n.name, n.kind, shape_text(n.output_shape), count_text(n.params)))
            grow(n.children, indent + 1)

    grow(r.tree, 0)
    lines += ["", "## Stages", "", md("{}.").format(stage_legend(r)), "", md("| {} |").format(row.join(STAGE_COLUMNS)), "|" + "---|" * len(STAGE_COLUMNS)]
    lines += [md("| {} |").format(row.join(stage_cells(s, r))) for s in r.stages]
    lines += ["", "## Findings", ""]
    if not r.findings:
        lines.append("None: every rule passed.")
    for f in r.findings:
        layers = md(", ").join(md("<code>{}</code>").format(p) for p in f.layers[:8])
        more = md(" and {} more").format(len(f.layers) - 8) if len(f.layers) > 8 else ""
        lines += [
            md("- **{}** <code>{}</code> ({}): {}").format(f.severity, f.rule, f.figure, f.message),
            md("  - layers: {}{}").format(layers, md(more)),
            md("  - source: {}").format(f.source),
        ]
    if r.ignored:
        lines += ["", md("Silenced rules: {}.").format(", ".join(r.ignored))]
    return "\n".join(lines) + "\n"


def html(r: Report) -> str:
    """A self-contained HTML page: tables, the block tree, charts per stage (report_html.py)."""
    from archcalc.render.report_html import page

    return page(r)


def as_json(r: Report) -> str:
    return json.dumps(as_dict(r), indent=2) + "\n"


FORMATS = {"markdown": markdown, "html": html, "json": as_json}
