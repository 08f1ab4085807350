"""The design review as one self-contained HTML5 page: headings, tables, the block tree as
nested lists, findings with severity badges, and SVG charts of memory and FLOPs per stage.

No script, stylesheet, font or image is fetched: the style is inline and the charts are inline
SVG. Every value (a spec's names above all) goes through escape.html; markup is only ever
written here, as literals.
"""

from __future__ import annotations

from collections.abc import Callable

from archcalc.render.escape import html as esc
from archcalc.render.report_format import STAGE_COLUMNS, glance_rows, stage_cells, stage_legend
from archcalc.render.svg import Bar, bar_chart
from archcalc.render.tables import count_text, shape_text
from archcalc.review.findings import Finding
from archcalc.review.report import Report, Stage, TreeNode
from archcalc.units import human_bytes, human_count
from archcalc.version import version

STYLE = """
:root { color-scheme: light dark; --ink: #1b1f24; --paper: #ffffff; --muted: #59636e; --rule: #d1d9e0;
  --head: #f6f8fa; --memory: #4c78a8; --flops: #e45756; }
@media (prefers-color-scheme: dark) {
  :root { --ink: #e6edf3; --paper: #0d1117; --muted: #9198a1; --rule: #3d444d; --head: #151b23; }
}
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
  background: var(--paper); max-width: 70rem; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid var(--rule); padding-bottom: 0.2rem; margin-top: 2rem; }
code, .tree, .chart text { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
code { overflow-wrap: anywhere; }
.muted, caption, figcaption, footer { color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5rem 0; }
caption { caption-side: bottom; text-align: left; font-size: 0.85rem; padding-top: 0.4rem; }
th, td { border-bottom: 1px solid var(--rule); padding: 0.25rem 0.75rem; vertical-align: top; }
thead th { background: var(--head); }
.glance th { text-align: left; }
.stages td { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.stages th[scope=row] { text-align: left; font-weight: normal; }
.tree, .tree ul { list-style: none; padding-left: 1.2rem; margin: 0; }
.tree { padding-left: 0; }
.tree li { margin: 0.1rem 0; }
.tree .about { color: var(--muted); }
summary { cursor: pointer; }
figure { margin: 1rem 0; overflow-x: auto; }
.chart { display: block; max-width: 100%; height: auto; }
.chart text { font-size: 13px; fill: currentColor; }
.chart.memory .bar { fill: var(--memory); }
.chart.flops .bar { fill: var(--flops); }
.findings { padding-left: 0; list-style: none; }
.findings > li { border-left: 4px solid var(--rule); padding: 0.2rem 0 0.2rem 0.8rem; margin: 0 0 1rem; }
.findings > li.error { border-color: #cf222e; }
.findings > li.warning { border-color: #bf8700; }
.findings > li.info { border-color: #0969da; }
.findings h3, .findings p { margin: 0.2rem 0; }
.findings h3 { font-size: 1rem; font-weight: normal; }
.badge { display: inline-block; font-size: 0.75rem; font-weight: 700; letter-spacing: 0.04em;
  text-transform: uppercase; padding: 0 0.45rem; border-radius: 0.6rem; color: #ffffff; }
.badge.error { background: #cf222e; }
.badge.warning { background: #9a6700; }
.badge.info { background: #0969da; }
"""


def _glance(r: Report) -> str:
    """The at-a-glance table: each figure's row, its label as the row header."""
    rows = "\n".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in glance_rows(r))
    return f'<div class="scroll"><table class="glance">\n<tbody>\n{rows}\n</tbody>\n</table></div>'


def _tree(nodes: tuple[TreeNode, ...]) -> str:
    """Nested lists; a node with children folds under a <details> summary, open."""
    items = []
    for n in nodes:
        line = (f"<code>{esc(n.name)}</code> <span class=\"about\">{esc(n.kind)} · {esc(shape_text(n.output_shape))}"
                f" · {esc(count_text(n.params))} params</span>")
        if n.children:
            items.append(f"<li><details open><summary>{line}</summary>\n{_tree(n.children)}\n</details></li>")
        else:
            items.append(f"<li>{line}</li>")
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def _stages(r: Report) -> str:
    """The stage table, cells as in the terminal and Markdown views, the column key as caption."""
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in STAGE_COLUMNS)
    rows = []
    for s in r.stages:
        first, *rest = stage_cells(s, r)
        rows.append(f'<tr><th scope="row"><code>{esc(first)}</code></th>' + "".join(f"<td>{esc(c)}</td>" for c in rest) + "</tr>")
    body = "\n".join(rows)
    return (f'<div class="scroll"><table class="stages">\n<caption>{esc(stage_legend(r))}</caption>\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table></div>")


def _where(s: Stage) -> str:
    """`conv1 to relu, 3 layers at 112×112`: what a bar's tooltip is about."""
    size = shape_text(s.resolution) if s.resolution else "no spatial axes"
    span = s.first if s.first == s.last else f"{s.first} to {s.last}"
    return f"{span}, {s.layers} layer{'s' if s.layers != 1 else ''} at {size}"


def _label(s: Stage) -> str:
    """A bar's label: the stage's first layer and its size."""
    return f"{s.first} · {shape_text(s.resolution) if s.resolution else '–'}"


def _share(part: int, whole: int) -> str:
    """part / whole as a percentage with one decimal; – when the whole is 0."""
    return f"{part / whole:.1%}" if whole else "–"


def _flop_text(flops: int) -> str:
    """2.05 GFLOP, 940 FLOP."""
    text = human_count(flops)
    return f"{text}FLOP" if text[-1].isalpha() else f"{text} FLOP"


def _charts(r: Report) -> str:
    """Activation memory and FLOPs per stage; a symbolic analysis has no lengths to draw."""
    n = len(r.stages)
    numbers = [v for v in [*(s.activation_bytes for s in r.stages), *(s.flops for s in r.stages)] if isinstance(v, int)]
    if len(numbers) < 2 * n:
        return '<p class="muted">No charts: the stages\' figures are formulas, not numbers.</p>'
    return "\n".join([
        _chart(r, "Activation memory per stage", "memory", numbers[:n], human_bytes, "bytes of outputs at the batch",
               "the stage's outputs at the batch, and its share of all stages' ({total:,} bytes)."),
        _chart(r, "FLOPs per stage", "flops", numbers[n:], _flop_text, "FLOPs per example",
               "per example, and each stage's share ({total:,} FLOPs in all)."),
    ])


def _chart(r: Report, title: str, css_class: str, values: list[int], text: Callable[[int], str], unit: str, caption: str) -> str:
    """One figure: a bar per stage, labelled with `text(value)` and its share, the exact value in its tooltip."""
    total = sum(values)
    bars = [
        Bar(_label(s), v, f"{text(v)} ({_share(v, total)})", f"{_where(s)}: {v:,} {unit}")
        for s, v in zip(r.stages, values, strict=True)
    ]
    return (f"<figure>\n{bar_chart(title, bars, css_class)}\n"
            f"<figcaption>{esc(title)}: {esc(caption.format(total=total))}</figcaption>\n</figure>")


def _finding(f: Finding) -> str:
    """One finding: severity badge, rule and figure as its heading, then message, layers, source."""
    layers = ", ".join(f"<code>{esc(p)}</code>" for p in f.layers)
    return (
        f'<li class="{esc(f.severity)}">\n'
        f'<h3><span class="badge {esc(f.severity)}">{esc(f.severity)}</span> <code>{esc(f.rule)}</code>'
        f' <span class="muted">{esc(f.figure)}</span></h3>\n'
        f"<p>{esc(f.message)}</p>\n"
        f'<p class="muted">Layers ({len(f.layers)}): {layers}</p>\n'
        f'<p class="muted">Source: {esc(f.source)}</p>\n'
        "</li>"
    )


def _findings(r: Report) -> str:
    """The findings, counted by severity, then the silenced rules."""
    parts = []
    if r.findings:
        counts = {sev: sum(f.severity == sev for f in r.findings) for sev in ("error", "warning", "info")}
        parts.append("<p>" + esc(", ".join(f"{n} {sev}" for sev, n in counts.items() if n)) + "</p>")
        parts.append('<ol class="findings">\n' + "\n".join(_finding(f) for f in r.findings) + "\n</ol>")
    else:
        parts.append("<p>None: every rule passed.</p>")
    if r.ignored:
        parts.append("<p>Silenced rules: " + ", ".join(f"<code>{esc(i)}</code>" for i in r.ignored) + ".</p>")
    return "\n".join(parts)


def page(r: Report) -> str:
    """The whole review as an HTML5 document."""
    name = esc(r.glance.name)
    sections = [
        ("At a glance", _glance(r)),
        ("Block tree", f'<div class="tree">\n{_tree(r.tree)}\n</div>'),
        ("Stages", _stages(r) + "\n" + _charts(r)),
        ("Findings", _findings(r)),
    ]
    body = "\n".join(f"<section>\n<h2>{esc(title)}</h2>\n{content}\n</section>" for title, content in sections)
    return (
        "<!doctype html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Design review: {name}</title>\n"
        f"<style>{STYLE}</style>\n"
        "</head>\n"
        "<body>\n"
        f"<header>\n<h1>Design review: <code>{name}</code></h1>\n"
        '<p class="muted">The network at a glance, its blocks, its stages and what the review found.</p>\n</header>\n'
        f"<main>\n{body}\n</main>\n"
        f"<footer>\n<p>Written by archcalc {esc(version()[0])}: one file, no script, nothing fetched.</p>\n</footer>\n"
        "</body>\n"
        "</html>\n"
    )
