"""A sweep for people: a table of sampled grid points, or a plot against the first swept variable."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archcalc.symbolic.sweep import Sweep


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def sweep_table(result: Sweep) -> Any:
    """At most 20 grid points, evenly spaced, each figure exact and in readable units."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from archcalc.units import human_bytes, human_count

    o = result.options
    setting = f"{o.dtype}, {o.optimizer}" if result.label == "training_bytes" else o.dtype
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
    rejected = result.points - int(result.valid.sum())
    caption = f"{result.points:,} point{'s' if result.points != 1 else ''} evaluated{shown}" + (f"; {rejected:,} too small for the network" if rejected else "")
    return Group(Text(title + (f"; {fixed}" if fixed else ""), style="bold"), table, Text(caption, style="dim"))


def draw(result: Sweep, file: IO[bytes], fmt: str) -> None:
    """The figure against the first swept variable, a line per sampled value of the second,
    saved to `file` as `fmt` (png, svg or pdf; needs matplotlib)."""
    from matplotlib.figure import Figure

    from archcalc.render.escape import terminal

    curves, held = result.lines()
    top = int(result.figure[result.valid].max())
    if result.unit == "bytes":
        scales = [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "bytes")]
    else:
        scales = [(10**12, "TFLOPs"), (10**9, "GFLOPs"), (10**6, "MFLOPs"), (10**3, "kFLOPs"), (1, "FLOPs")]
    scale, unit = next((f, u) for f, u in scales if top >= f or f == 1)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    x = result.values[0]
    for picked, y in curves:
        label = ", ".join(f"{n}={v}" for n, v in picked.items()) or None
        axes.plot(x, y / scale, marker="." if len(x) <= 40 else None, label=label)
    fixed = ", ".join(f"{n}={v}" for n, v in {**result.fixed, **held}.items())
    # parse_math off: a `$` in the network's name is text, not matplotlib's mathtext
    axes.set_title(terminal(f"{result.name}: {result.title}" + (f" ({fixed})" if fixed else "")), parse_math=False)
    axes.set_xlabel(result.names[0])
    axes.set_ylabel(unit)
    axes.grid(alpha=0.3)
    if len(curves) > 1:
        axes.legend()
    figure.savefig(file, format=fmt, dpi=150)
