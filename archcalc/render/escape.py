"""User text made inert in every output format: one escaping function per format.

A spec's names are untrusted: they reach terminals, Python modules, LaTeX, Markdown, HTML, DOT,
Mermaid and XML. Each format has one function here, applied where that format is emitted. As in
Django's templates, a value is escaped unless it is marked safe: `Latex`, `Markdown` are strings
already in their format, and their `format()` escapes every value it fills in (numbers excepted).

Characters a format cannot show (control characters, lone surrogates from a JSON `\\ud800` or a
file name, bidirectional overrides) are written visibly as Python's escapes (`\\x1b`, `\\ud800`),
so every output encodes as UTF-8 and shows what the spec holds.
"""

from __future__ import annotations

import builtins
import html as _html
import keyword
import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]")


def visible(text: str, keep: str = "") -> str:
    """`text` with control characters, lone surrogates and bidi overrides (except `keep`) as `\\x1b`-style escapes."""
    return _INVISIBLE.sub(lambda m: m[0] if m[0] in keep else ascii(m[0])[1:-1], text)


def terminal(text: str) -> str:
    """Plain text for a terminal or a text file: no escape sequence reaches it (newlines and tabs stay)."""
    return visible(text, "\t\n")


def python_string(text: str) -> str:
    """A Python string literal holding `text` (repr: quotes, backslashes, newlines escaped)."""
    return repr(text)


_PYTHON_TAKEN = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))


def python_names(names: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Each name as a distinct ASCII identifier that shadows no keyword, builtin or `reserved` name.

    Non-ASCII characters become `_uXXXX`, so names Python would NFKC-normalise to one (`Ｈ`, `H`)
    stay apart; a clash gets a trailing `_`, then `_2`, `_3`.
    """
    names = list(dict.fromkeys(names))
    taken = set(_PYTHON_TAKEN) | set(reserved)
    kept = {n for n in names if n.isascii() and n.isidentifier() and n not in taken}
    taken |= kept
    mapping: dict[str, str] = {}
    for name in names:
        if name in kept:
            mapping[name] = name
            continue
        base = "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"_u{ord(c):04x}" for c in name) or "_"
        base = base if not base[0].isdigit() else "_" + base
        candidate = base if base not in taken else base + "_"
        n = 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        mapping[name] = candidate
    return mapping


_LATEX = {
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
}


def latex(text: str) -> str:
    """Text for LaTeX: its ten special characters escaped, so `\\input{...}` prints instead of running."""
    return re.sub(r"[&%$#_{}~^\\]", lambda m: _LATEX[m[0]], visible(text))


def markdown(text: str) -> str:
    r"""Text for Markdown (CommonMark, GFM): inline syntax (backslash, backtick, `* _ [ ] | ~ $ #`)
    backslash-escaped, `& < >` as entities, so no HTML, link or table cell comes from a value.
    A value never starts a line (templates put text before it, newlines show as `\n`), so block
    syntax such as `-` or `>` needs no escape."""
    escaped = re.sub(r"[\\`*_\[\]|~$#]", r"\\\g<0>", visible(text))
    return _html.escape(escaped, quote=False)


def html(text: str) -> str:
    """Text for HTML, in elements and quoted attributes alike."""
    return _html.escape(visible(text, "\t\n"), quote=True)


def dot(text: str) -> str:
    r"""A Graphviz DOT quoted string: backslashes doubled (Graphviz reads `\n`, `\N`), quotes escaped."""
    return '"' + visible(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


# Characters Mermaid reads as syntax even in a quoted label, as its entity codes (`#quot;`).
_MERMAID = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}


def mermaid(text: str) -> str:
    """Text for a quoted Mermaid label or a `%%` comment: `# " < > &` and backticks as entity codes, one line."""
    return re.sub(r'[#"<>&`]', lambda m: _MERMAID[m[0]], visible(text))


def xml(text: str) -> str:
    """Text XML 1.0 can hold (it has no way to write most control characters); the XML writer
    (ElementTree, under networkx's GraphML) escapes `& < > "` itself."""
    return visible(text, "\t\n\r")


class _Safe(str):
    """A string already in an output format; `format()` escapes every value it fills in."""

    escape: ClassVar[Callable[[str], str]]

    @classmethod
    def of(cls, value: Any) -> Any:
        """`value` as this format: kept if marked safe or a number (so `{:,}` still works), else escaped."""
        if isinstance(value, cls) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return value
        return cls(cls.escape(str(value)))

    def format(self, *args: Any, **kwargs: Any) -> Any:
        cls = type(self)
        return cls(str.format(self, *map(cls.of, args), **{k: cls.of(v) for k, v in kwargs.items()}))

    def join(self, parts: Iterable[Any]) -> Any:  # type: ignore[override]
        cls = type(self)
        return cls(str.join(self, map(cls.of, parts)))


class Latex(_Safe):
    """LaTeX source written by archcalc."""

    escape = staticmethod(latex)


class Markdown(_Safe):
    """Markdown written by archcalc."""

    escape = staticmethod(markdown)
