"""Inline SVG bar charts for the HTML report: no script, no font or image to fetch, readable by a
screen reader (role="img" with an aria-label listing every bar) and by a mouse (a <title> per bar).
Inline in HTML5, an <svg> needs no `xmlns`, so the page names no URL at all.

Every piece of text goes through escape.html, in elements and attributes alike.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from archcalc.render.escape import html as esc
from archcalc.render.escape import visible

ROW = 24  # pixels per bar
FONT = 13  # pixels, monospace: a column is 0.6 em (DejaVu Sans Mono, Menlo: 0.602 em)
COLUMN = FONT * 0.6
GAP = 8  # pixels between a label, its bar and its figure
BAR_WIDTH = 320  # pixels for the longest bar


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value (the bar's length), the text beside it and its exact tooltip."""

    label: str
    value: int
    text: str
    tooltip: str


def _width(text: str) -> int:
    """Pixels `text` takes in monospace, as shown (escape.visible); wide East Asian characters take two columns."""
    shown = visible(text, "\t\n")
    return round(COLUMN * sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in shown))


def _text(css_class: str, x: int, y: int, text: str, anchor: str = "start") -> str:
    """A <text> held to its computed width (textLength), so a font wider than expected cannot
    push it past the chart's edge, where it would be cut."""
    return (f'<text class="{css_class}" x="{x}" y="{y}" text-anchor="{anchor}" textLength="{_width(text)}" '
            f'lengthAdjust="spacingAndGlyphs">{esc(text)}</text>')


def bar_chart(title: str, bars: Sequence[Bar], css_class: str) -> str:
    """A horizontal bar chart, bars scaled to the largest value; a zero (or negative) value has no bar."""
    label_width = max((_width(b.label) for b in bars), default=0) + 2 * GAP
    width = label_width + BAR_WIDTH + GAP + max((_width(b.text) for b in bars), default=0) + GAP
    height = ROW * len(bars) + 4
    top = max((b.value for b in bars), default=0)
    summary = f"{title}: " + "; ".join(f"{b.label} {b.text}" for b in bars)
    lines = [
        (f'<svg class="chart {esc(css_class)}" role="img" aria-label="{esc(summary)}" '
         f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'),
        f"<title>{esc(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = 2 + i * ROW
        length = max(1, round(BAR_WIDTH * bar.value / top)) if bar.value > 0 else 0  # a nonzero value shows
        baseline = y + ROW // 2 + FONT // 3
        lines += [
            "<g>",
            f"<title>{esc(bar.tooltip)}</title>",
            _text("label", label_width - GAP, baseline, bar.label, "end"),
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{length}" height="{ROW - 6}"></rect>',
            _text("value", label_width + length + GAP, baseline, bar.text),
            "</g>",
        ]
    lines.append("</svg>")
    return "\n".join(lines)
