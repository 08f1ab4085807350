"""Inline SVG bar charts for the HTML report: no script, no font or image to fetch, readable by a
screen reader (role="img" with an aria-label listing every bar) and by a mouse (a <title> per bar).
Inline in HTML5, an <svg> needs no `xmlns`, so the page names no URL at all.

Every piece of text goes through escape.html, in elements and attributes alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archcalc.render.escape import html as esc

ROW = 24  # pixels per bar
FONT = 13  # pixels; labels are monospace, 0.6 em a character (DejaVu Sans Mono: 0.602)
CHAR = FONT * 0.62
BAR_WIDTH = 320  # pixels for the longest bar


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value (the bar's length), the text beside it and its exact tooltip."""

    label: str
    value: int
    text: str
    tooltip: str


def _text_width(texts: Sequence[str]) -> int:
    """Pixels a column of monospace text needs, so no label or figure is cut."""
    return round(max((len(t) for t in texts), default=0) * CHAR) + 12


def bar_chart(title: str, bars: Sequence[Bar], css_class: str) -> str:
    """A horizontal bar chart, bars scaled to the largest value; a zero (or negative) value has no bar."""
    label_width = _text_width([b.label for b in bars])
    text_width = _text_width([b.text for b in bars])
    width = label_width + BAR_WIDTH + text_width
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
            f'<text class="label" x="{label_width - 8}" y="{baseline}" text-anchor="end">{esc(bar.label)}</text>',
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{length}" height="{ROW - 6}"></rect>',
            f'<text class="value" x="{label_width + length + 6}" y="{baseline}">{esc(bar.text)}</text>',
            "</g>",
        ]
    lines.append("</svg>")
    return "\n".join(lines)
