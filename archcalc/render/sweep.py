"""A sweep for people: a table of sampled grid points, or a plot of everything that was swept."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from archcalc.symbolic.sweep import Sweep


PLOT_SUFFIXES = (".png", ".svg", ".pdf")
LINES = 8  # a second variable with at most this many values gets a line each; more, a heatmap
PANELS = 4  # values of a third (columns of panels) and fourth (rows) variable drawn, at most
CELLS = 400  # values of each of the first two variables in a heatmap, at most
POINTS = 4096  # values of the variable a line is drawn along, at most


def sweep_table(result: Sweep) -> Any:
    """At most 20 grid points, evenly spaced, each figure exact and in readable units."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from archcalc.figures.memory import precision_note
    from archcalc.units import human_bytes, human_count

    o = result.options
    setting = f"{precision_note(o)}, {o.optimizer}" if result.label == "training_bytes" else precision_note(o)
    fixed = ", ".join(f"{n}={v}" for n, v in result.fixed.items())
    title = f"{result.name}: {result.title}" + (f" ({setting})" if result.unit == "bytes" else "")
    table = Table()
    for column in (*result.names, result.unit, ""):
        table.add_column(column, justify="right")
    indices = result.sample(20)
    columns, values, valid = result.at(indices)
    readable = human_bytes if result.unit == "bytes" else human_count
    for k in range(len(indices)):
        figure = [f"{int(values[k]):,}", readable(int(values[k]))] if valid[k] else ["-", "too small"]
        table.add_row(*(str(c[k]) for c in columns), *figure)
    shown = f", {len(indices)} shown" if len(indices) < result.points else ""
    rejected = result.rejected
    caption = f"{result.points:,} point{'s' if result.points != 1 else ''} evaluated{shown}" + (f"; {rejected:,} too small for the network" if rejected else "")
    return Group(Text(title + (f"; {fixed}" if fixed else ""), style="bold"), table, Text(caption, style="dim"))


def _scale(top: int, unit: str) -> tuple[int, str]:
    """The binary (bytes) or decimal (FLOPs) unit the largest value reads best in."""
    if unit == "bytes":
        scales = [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "bytes")]
    else:
        scales = [(10**12, "TFLOPs"), (10**9, "GFLOPs"), (10**6, "MFLOPs"), (10**3, "kFLOPs"), (1, "FLOPs")]
    return next((f, u) for f, u in scales if top >= f or f == 1)


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around each value (halfway to its neighbours), for a heatmap's cells."""
    v = values.astype(float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    middle = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - middle[0]], middle, [2 * v[-1] - middle[-1]]])


def sweep_figure(result: Sweep) -> Any:
    """A matplotlib Figure of every swept variable: lines against the first (one per value of
    the second when it has at most LINES values), else heatmaps over the first two, a panel
    per value of the third (columns) and fourth (rows), at most PANELS of each, evenly spaced,
    the first and last among them. A fifth and later variable are held at their largest value,
    and the title says so; so it does of every size not swept."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from archcalc.render.escape import terminal
    from archcalc.symbolic.sweep import evenly

    shape, names = result.shape, result.names
    lines = len(names) == 1 or (len(names) == 2 and shape[1] <= LINES)
    most = [POINTS, LINES] if lines else [CELLS, CELLS, PANELS, PANELS]
    picks = [evenly(n, most[k]) if k < len(most) else np.array([n - 1]) for k, n in enumerate(shape)]
    values = [v[p] for v, p in zip(result.values, picks)]
    figures, valid = result.grid(picks)
    scale, unit = _scale(int(figures[valid].max()), result.unit)
    z = np.where(valid, figures, 0).astype(float) / scale
    z[~valid] = np.nan

    def label(k: int) -> str:
        dropped = f" ({len(picks[k]):,} of {shape[k]:,} values)" if len(picks[k]) < shape[k] else ""
        return f"{names[k]}{dropped}"

    held = {names[k]: int(values[k][0]) for k in range(4, len(names))}
    fixed = ", ".join(f"{n}={v}" for n, v in result.fixed.items())
    fixed += "".join(f"{', ' if fixed or i else ''}{n}={v} (held at its largest)" for i, (n, v) in enumerate(held.items()))
    # parse_math off: a `$` in the network's name is text, not matplotlib's mathtext
    title = terminal(f"{result.name}: {result.title}" + (f" ({fixed})" if fixed else ""))
    rejected = f" (gray: too small for {terminal(result.name)})" if not valid.all() else ""
    if lines:
        figure = Figure(figsize=(7, 4.5), layout="constrained")
        axes = figure.add_subplot()
        curves = [({}, z)] if len(names) == 1 else [({names[1]: v}, z[:, j]) for j, v in enumerate(values[1])]
        for picked, y in curves:
            text = ", ".join(f"{n}={v}" for n, v in picked.items()) or None
            axes.plot(values[0], y, marker="." if len(values[0]) <= 40 else None, label=text)
        axes.set_title(title, parse_math=False)
        axes.set_xlabel(label(0), parse_math=False)
        axes.set_ylabel(unit)
        axes.grid(alpha=0.3)
        if len(curves) > 1:
            axes.legend()
        return figure
    columns = len(values[2]) if len(names) > 2 else 1
    rows = len(values[3]) if len(names) > 3 else 1
    figure = Figure(figsize=(1.5 + 3.2 * columns, 1.2 + 2.8 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    colours = colormaps["viridis"].with_extremes(bad="lightgray")
    low, high = np.nanmin(z), np.nanmax(z)
    mesh = None
    for r in range(rows):
        for c in range(columns):
            axes = grid[r, c]
            panel = z[(slice(None), slice(None), *((c,) if len(names) > 2 else ()), *((r,) if len(names) > 3 else ()))]
            panel = panel.reshape(len(values[0]), len(values[1]))
            mesh = axes.pcolormesh(_edges(values[0]), _edges(values[1]), panel.T, cmap=colours, vmin=low, vmax=high)
            where = [f"{names[k]}={values[k][i]}" for k, i in ((2, c), (3, r)) if k < len(names)]
            if where:
                axes.set_title(", ".join(where), parse_math=False, fontsize="medium")
            if r == rows - 1:
                axes.set_xlabel(label(0), parse_math=False)
            if c == 0:
                axes.set_ylabel(label(1), parse_math=False)
    figure.colorbar(mesh, ax=grid).set_label(unit + rejected, parse_math=False)
    panels = [label(k) for k in (2, 3) if k < len(names) and len(picks[k]) < shape[k]]
    figure.suptitle(title + (f"\npanels: {', '.join(panels)}" if panels else ""), parse_math=False)
    return figure


def draw(result: Sweep, file: IO[bytes], fmt: str) -> None:
    """The sweep's plot (`sweep_figure`) saved to `file` as `fmt` (png, svg or pdf; needs matplotlib)."""
    sweep_figure(result).savefig(file, format=fmt, dpi=150)
