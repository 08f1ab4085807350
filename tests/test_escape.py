"""archcalc.render.escape: one escaping function per output format, each checked on the syntax it guards."""

from __future__ import annotations

import keyword

from archcalc.render.escape import (
    Latex,
    Markdown,
    dot,
    html,
    latex,
    markdown,
    mermaid,
    python_names,
    python_string,
    terminal,
    visible,
    xml,
)


def test_visible_shows_what_a_format_cannot_hold() -> None:
    assert visible("a\x1b[2J\x07\x00\ud800\u202eb") == "a\\x1b[2J\\x07\\x00\\ud800\\u202eb"
    assert terminal("two\nlines\tand\rCR") == "two\nlines\tand\\rCR"
    assert xml("a\r\n\x0cb\ufffe") == "a\r\n\\x0cb\\ufffe"


def test_python_names_are_safe_distinct_identifiers() -> None:
    names = python_names(["H", "Ｈ", "max", "max_", "class", "match", "print", "layers", "w2"], reserved=["layers"])
    assert names["H"] == "H" and names["w2"] == "w2"
    assert names["Ｈ"] == "_uff28"  # Python would read `Ｈ` as `H` (NFKC): kept apart
    assert names["max_"] == "max_" and names["max"] == "max_2"  # a builtin, and its first choice is taken
    assert names["class"] == "class_" and names["match"] == "match_" and names["print"] == "print_"
    assert names["layers"] == "layers_"
    assert len(set(names.values())) == len(names)
    assert all(v.isascii() and v.isidentifier() and not keyword.iskeyword(v) for v in names.values())


def test_python_string_round_trips() -> None:
    for text in ['"""; import os #', "'\\\n\x00\ud800", "Ｈ\u202e"]:
        literal = python_string(text)
        assert "\n" not in literal and eval(literal) == text  # noqa: S307 (a literal, checked)


def test_latex_escapes_its_ten_special_characters() -> None:
    assert latex("& % $ # _ { } ~ ^ \\") == (
        r"\& \% \$ \# \_ \{ \} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )
    assert latex("\\input{/etc/passwd}") == r"\textbackslash{}input\{/etc/passwd\}"


def test_latex_and_markdown_templates_escape_what_they_fill_in() -> None:
    cell = Latex(r"\texttt{{{}}} & {:,} \\").format("a_b", 1234567)
    assert cell == r"\texttt{a\_b} & 1,234,567 \\" and isinstance(cell, Latex)
    assert Latex(r"\textbf{{{}}}").format(Latex(r"\emph{x}")) == r"\textbf{\emph{x}}"  # marked safe
    row = Markdown("| {} |").format(Markdown(" | ").join(["a|b", "<b>", "[l](javascript:x)"]))
    assert row == r"| a\|b | &lt;b&gt; | \[l\](javascript:x) |"


def test_markdown_html_dot_mermaid() -> None:
    assert markdown("*x* _y_ `z` ~~s~~ $m$ # <i>&") == r"\*x\* \_y\_ \`z\` \~\~s\~\~ \$m\$ \# &lt;i&gt;&amp;"
    assert html("<img src=x onerror='a'>&\x1b") == "&lt;img src=x onerror=&#x27;a&#x27;&gt;&amp;\\x1b"
    assert dot('q"\\\n') == '"q\\"\\\\\\\\n"'
    assert mermaid('say "hi" <b>') == "say #quot;hi#quot; #lt;b#gt;"
    assert mermaid("a#b & `c`") == "a#35;b #amp; #96;c#96;"
    assert mermaid("two\nlines") == "two\\nlines"
