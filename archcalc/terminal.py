"""The one rich console archcalc prints through: every string is text, never markup.

Strings become Text with markup and emoji codes off, after escape.terminal (so `[bold]`, `[/x]`,
`:smile:` print as written and ESC, BEL or a lone surrogate show as `\\x1b`, `\\x07`, `\\ud800`);
archcalc's own styles are explicit `Text` objects. Rendered segments pass escape.terminal again,
so a `Text` built from user data cannot carry an escape sequence either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console as _RichConsole
from rich.console import ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

from .escape import terminal


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
