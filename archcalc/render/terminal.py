"""The one rich console archcalc prints through: every string is text, never markup.

Strings become Text with markup and emoji codes off, after escape.terminal (so `[bold]`, `[/x]`,
`:smile:` print as written and ESC, BEL or a lone surrogate show as `\\x1b`, `\\x07`, `\\ud800`);
archcalc's own styles are explicit `Text` objects. Rendered segments pass escape.terminal again,
so a `Text` built from user data cannot carry an escape sequence either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from copy import copy
from typing import Any

from rich.console import Console as _RichConsole
from rich.console import ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from archcalc.render.escape import terminal


class Console(_RichConsole):
    """rich's Console with markup and emoji off and user text escaped (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(terminal(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            yield segment if segment.control else Segment(terminal(segment.text), segment.style)


NAME_WIDTH = 12  # the narrowest a folding column (a layer's name, a note) is counted at


class FigureTable(Table):
    """A table that never cuts a figure. Its figure columns (numbers, shapes: `no_wrap`) keep
    their widest cell's width and names fold; where the width still does not fit, the
    `optional` columns go, least valuable first, and a line under the table names them; where
    even that is too wide, the lines are as long as the figures need (archcalc prints with
    crop off, so the terminal wraps them rather than anything being cut)."""

    def __init__(self, *headers: Any, optional: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*headers, **kwargs)
        self.optional = optional

    def needed(self, console: _RichConsole, options: ConsoleOptions, columns: list[Any]) -> int:
        """The fewest cells a row of these columns takes: figures whole, names at NAME_WIDTH."""
        wide = options.update_width(1 << 20)
        total = (2 if self.show_edge and self.box else 0) + (len(columns) - 1 if self.box else 0)
        for column in columns:
            most = self._measure_column(console, wide, column).maximum
            total += most if column.no_wrap else min(most, NAME_WIDTH + self._get_padding_width(column._index))
        return total

    def __rich_console__(self, console: _RichConsole, options: ConsoleOptions) -> Iterator[Any]:
        from dataclasses import replace

        columns, dropped = list(self.columns), []
        for header in self.optional:
            if self.needed(console, options, columns) <= options.max_width:
                break
            columns = [c for c in columns if c.header != header]
            dropped.append(header)
        width = max(options.max_width, self.needed(console, options, columns))
        if not dropped:
            yield from super().__rich_console__(console, options.update_width(width))
            return
        table = copy(self)
        table.columns = [replace(c, _index=i) for i, c in enumerate(columns)]
        table.optional = ()
        yield from table.__rich_console__(console, options.update_width(width))
        yield Text(f"Left out to fit {options.max_width} columns: {', '.join(dropped)} (a wider terminal or a pipe shows every column)", style="dim")


def print_full_width(console: Console, renderable: Any) -> None:
    """Print to a file or pipe with tables in rich's default heavy-head box, every column as wide
    as its widest cell, and trees with rich's guides and labels unwrapped: rich would fold or cut
    cells to the console's width, and takes seconds on 10,000 rows. Prose and other renderables
    go through rich (wrapped to the width) as before."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.tree import Tree

    for part in renderable.renderables if isinstance(renderable, Group) else [renderable]:
        lines = None
        if isinstance(part, Table) and part.box is box.HEAVY_HEAD and part.padding == (0, 1, 0, 1) and part.show_edge:
            lines = _table_lines(part)
        elif isinstance(part, Tree) and not part.hide_root and console.encoding.lower().startswith("utf"):
            lines = _tree_lines(part)
        if lines is None:
            console.print(part)
        else:
            console.file.write("".join(f"{line.rstrip()}\n" for line in lines))


def _cell(value: Any) -> str:
    """A cell's text, escaped as on the terminal (Text's plain string for styled text)."""
    return terminal(value.plain if isinstance(value, Text) else value)


def _table_lines(table: Any) -> list[str] | None:
    """Title, header, rows and caption of a table of plain cells; None if a cell is not text."""
    from rich.cells import cell_len

    header = [_cell(c.header) for c in table.columns]
    columns = []
    for column in table.columns:
        if not all(isinstance(c, (str, Text)) for c in column._cells):
            return None
        columns.append([_cell(c) for c in column._cells])
    if any("\n" in text for cells in columns for text in cells) or any("\n" in h for h in header):
        return None
    widths = [max([cell_len(h)] if table.show_header else [], default=0) for h in header]
    widths = [max([w, *(cell_len(t) for t in cells)]) for w, cells in zip(widths, columns)]
    justify = [c.justify for c in table.columns]

    def row(cells: list[str], edge: str) -> str:
        padded = (t.rjust(w) if j == "right" else t.center(w) if j == "center" else t.ljust(w) for t, w, j in zip(cells, widths, justify))
        return f"{edge} " + f" {edge} ".join(padded) + f" {edge}"

    def rule(left: str, line: str, cross: str, right: str) -> str:
        return left + cross.join(line * (w + 2) for w in widths) + right

    total = sum(widths) + 3 * len(widths) + 1
    lines = []
    if table.title:
        title = _cell(table.title)
        lines.append(title.center(total) if table.title_justify == "center" else title.ljust(total))
    if table.show_header:
        lines += [rule("┏", "━", "┳", "┓"), row(header, "┃"), rule("┡", "━", "╇", "┩")]
    else:
        lines.append(rule("┌", "─", "┬", "┐"))
    lines += [row(list(cells), "│") for cells in zip(*columns)]
    lines.append(rule("└", "─", "┴", "┘"))
    if table.caption:
        lines.append(_cell(table.caption).center(total))
    return lines


def _tree_lines(tree: Any) -> list[str] | None:
    """A tree of text labels with rich's standard guides; None if a label is not one line of text."""
    lines: list[str] = []

    def grow(node: Any, prefix: str, guide: str) -> bool:
        if not isinstance(node.label, (str, Text)) or "\n" in str(node.label):
            return False
        lines.append(prefix + guide + _cell(node.label))
        if not node.expanded:
            return True
        inner = prefix + {"├── ": "│   ", "└── ": "    ", "": ""}[guide]
        last = len(node.children) - 1
        return all(grow(child, inner, "└── " if i == last else "├── ") for i, child in enumerate(node.children))

    return lines if grow(tree, "", "") else None


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int, int, str], None]]:
    """A bar on stderr, gone when done: `update(done, total, what)` moves it and says what
    is being done, e.g. the layer running (as text, never markup). Only on a terminal: a file or
    pipe gets nothing, not even the blank line a finished transient bar leaves."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda done, total, what: None
        return
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done, total, what: bar.update(task, completed=done, total=total, description=what)
