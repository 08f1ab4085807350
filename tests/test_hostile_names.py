"""A spec's names are data in every output: nothing in them runs, styles, links or breaks a format.

One spec carries the hostile names of issue 11 (terminal escapes, rich markup, LaTeX commands,
Python that closes a docstring, HTML, Markdown links, `|`, newlines, NUL, a lone surrogate) into
every command and every export; each format is then read back by a parser or checked for the
syntax a name must not produce.
"""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main

PYTHON_ESCAPE = '"""; import os; os_system("touch pwned") #'  # layer names cannot hold dots
NAMES = [
    "[/x]<script>alert(1)</script>\x1b[2J'\"",
    "\x1b]0;title\x07",
    "[bold red]x[/] [link=file:///etc/passwd]y[/link] :smile:",
    "\\input{/etc/passwd}\\immediate\\write18{touch pwned}",
    PYTHON_ESCAPE,
    "<img src=x onerror=alert(1)> [l](javascript:alert(1)) a|b",
    "two\nlines\x00\ud800\u202e",
]
NETWORK = 'net """; import os; os.system("touch pwned") # \\input{/etc/passwd} \x1b[2J'


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """Symbols `H`, `Ｈ` (fullwidth: the same identifier to Python after NFKC) and `max` (a builtin)."""
    layers = [
        {"op": "conv2d", "out": "$max", "kernel": 3, "padding": 1, "name": NAMES[0]},
        *({"op": "relu", "name": name} for name in NAMES[1:]),
        {"op": "conv2d", "out": 4, "kernel": 1, "name": "last"},
    ]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps({
        "name": NETWORK, "input": [3, "H", "Ｈ"], "symbols": {"H": 8, "Ｈ": 9, "max": 2}, "layers": layers,
    }))
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "400"}).invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def no_control(text: str) -> None:
    """Nothing a terminal, XML or a UTF-8 file cannot take: no C0/C1 control but newline and tab."""
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202e]", text)
    text.encode("utf-8")


@pytest.mark.parametrize("command", [
    ["summary"], ["flops"], ["rf"], ["memory"], ["analyze"], ["report"],
    ["solve", "--valid-inputs"], ["verify"], ["sweep", "--batch", "1..3"],
])
def test_terminal_output_shows_names_as_text(spec: Path, command: list[str]) -> None:
    code, out, err = run(command[0], str(spec), *command[1:])
    assert code == 0, err
    no_control(out + err)
    if command[0] in ("summary", "flops", "rf"):  # the layer column shows each name
        assert "[bold red]x[/] [link=file:///etc/passwd]y[/link] :smile:" in out  # no style, link or emoji
        assert "\\x1b]0;title\\x07" in out and "\\ud800\\u202e" in out  # visible, not run


def test_error_messages_and_file_names_show_as_text(spec: Path, tmp_path: Path) -> None:
    code, _, err = run("summary", str(tmp_path / "[/x]\x1b]0;owned\x07.yaml"))
    assert code == 2 and "Traceback" not in err
    no_control(err)
    assert "[/x]\\x1b]0;owned\\x07.yaml" in err
    broken = json.loads(spec.read_text())
    broken["layers"][-1]["kernel"] = 99  # larger than the 8x9 input: a ShapeError names the layer
    broken["layers"][-1]["name"] = "[/x]\x1b[2J"
    spec.write_text(json.dumps(broken))
    code, _, err = run("summary", str(spec))
    assert code == 2 and "[/x]\\x1b[2J" in err
    no_control(err)


def test_exported_python_runs_no_spec_code_and_computes(spec: Path, tmp_path: Path) -> None:
    for what in ("shapes", "params", "flops", "memory", "rf"):
        code, _, err = run("formula", str(spec), "--what", what, "--format", "python", "-o", str(tmp_path / f"f_{what}.py"))
        assert code == 0, err
    probe = (
        "import sys; sys.path.insert(0, '.')\n"
        "import inspect, json, f_shapes, f_params, f_flops, f_memory, f_rf\n"
        "sizes = dict(H=8, _uff28=9, max_=2)\n"
        "def call(f): return f(**{k: sizes[k] for k in inspect.signature(f).parameters})\n"
        "print(json.dumps({'args': list(inspect.signature(f_shapes.totals).parameters),\n"
        "    'shapes': call(f_shapes.totals), 'params': call(f_params.totals),\n"
        "    'flops': call(f_flops.totals), 'names': list(call(f_shapes.layers)),\n"
        "    'memory': call(f_memory.totals)['weights'], 'rf': len(call(f_rf.layers))}))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "pwned").exists()
    got = json.loads(done.stdout)
    # `max` shadows the builtin the module calls, `Ｈ` would become `H`: both renamed, none lost
    assert got["args"] == ["H", "max_", "_uff28"]
    # output 4 x H x Ｈ: the two sizes stay apart (8 and 9)
    assert got["shapes"] == {"output_dim0": 4, "output_dim1": 8, "output_dim2": 9}
    # conv 3->max 3x3 with bias: 27*max + max; conv max->4 1x1 with bias: 4*max + 4; max = 2
    assert got["params"]["params"] == (27 * 2 + 2) + (4 * 2 + 4)
    # MACs: 27*max and 4*max per output position, H*Ｈ = 72 positions: 31 * 2 * 72
    assert got["flops"]["macs"] == 31 * 2 * 72 and got["flops"]["flops"] == 2 * 31 * 2 * 72
    assert got["memory"] == 4 * ((27 * 2 + 2) + (4 * 2 + 4))  # float32 weights
    assert got["names"] == [*NAMES, "last"]  # every name a string literal, exactly
    assert got["rf"] == len(NAMES) + 1


def test_latex_export_is_inert(spec: Path) -> None:
    for what in ("shapes", "params", "flops", "memory", "rf"):
        code, out, err = run("formula", str(spec), "--what", what, "--format", "latex")
        assert code == 0, err
        no_control(out)
        for command in ("\\input", "\\immediate", "\\write18"):
            assert command not in out
        assert "\\texttt{\\textbackslash{}input\\{/etc/passwd\\}" in out or what == "params"
        for line in out.splitlines():  # braces balance once LaTeX's escaped ones are set aside
            bare = line.replace("\\{", "").replace("\\}", "")
            assert bare.count("{") == bare.count("}"), line


def test_markdown_report_is_inert(spec: Path) -> None:
    code, out, err = run("report", str(spec), "--format", "markdown")
    assert code == 0, err
    no_control(out)
    assert "<script" not in out and "<img" not in out and not re.search(r"(?<!\\)\]\(javascript:", out)
    header = next(line for line in out.splitlines() if line.startswith("| Last layer"))
    columns = len(re.split(r"(?<!\\)\|", header))
    for line in out.splitlines():  # no name adds a cell: a `|` of a name is escaped
        if line.startswith("|"):
            assert len(re.split(r"(?<!\\)\|", line)) in (4, columns), line  # the glance table has two columns
    assert out.count("<code>") == out.count("</code>")


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


def test_html_report_is_inert(spec: Path) -> None:
    code, out, err = run("report", str(spec), "--format", "html")
    assert code == 0, err
    no_control(out)
    parser = _Tags()
    parser.feed(out)
    assert not parser.tags & {"script", "img", "a"}
    assert "&lt;script&gt;" in out


def test_graph_exports_are_well_formed(spec: Path) -> None:
    outputs = {fmt: run("graph", str(spec), "--format", fmt) for fmt in ("dot", "mermaid", "graphml", "json")}
    for code, out, err in outputs.values():
        assert code == 0, err
        no_control(out)
    graphml = ElementTree.fromstring(outputs["graphml"][1])  # well-formed XML despite ESC, NUL
    labels = [d.text for d in graphml.iter("{http://graphml.graphdrawing.org/xmlns}data") if d.text and "title" in d.text]
    assert labels and all("\\x1b]0;title\\x07" in label for label in labels)
    quoted = r'"(?:[^"\\\n]|\\.)*"'
    for line in outputs["dot"][1].splitlines()[5:-1]:  # a node or an edge: quoted strings, then syntax
        assert "\"" not in re.sub(quoted, "", line), line
    for line in outputs["mermaid"][1].splitlines()[3:]:  # labels hold no quote but their own
        assert line.count('"') in (0, 2), line
    assert json.loads(outputs["json"][1])["nodes"][1]["id"] == NAMES[0]


@pytest.mark.parametrize("name", ["[/x]", "[bold red]x[/]", "[link=file:///etc/passwd]y[/link]", ":smile: \\[x]"])
def test_rich_markup_in_the_network_name_is_text(spec: Path, name: str) -> None:
    data = json.loads(spec.read_text())
    data["name"] = name
    spec.write_text(json.dumps(data))
    for command in (["summary"], ["memory"], ["report"], ["formula", "--format", "text"]):
        code, out, err = run(command[0], str(spec), *command[1:])
        assert code == 0 and name in out, (command, err)


def test_usage_errors_show_option_values_as_text() -> None:
    """click and archcalc's option types quote an option's value with repr."""
    code, _, err = run("summary", "resnet18", "--depth", "\x1b]0;owned\x07")
    assert code == 2 and "must be a whole number written with the digits 0-9, got '\\x1b]0;owned\\x07'" in err
    no_control(err)
    code, _, err = run("\x1b]0;owned\x07")
    assert code == 2 and "No such command '\\x1b]0;owned\\x07'" in err


def test_a_plot_title_is_text_not_mathtext(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps({"name": "$\\frac{$ \x1b[2J", "input": [1, 8, 8], "layers": [{"op": "conv2d", "out": 2, "kernel": 3}]}))
    code, _, err = run("sweep", str(spec), "--batch", "1..4", "--plot", str(tmp_path / "p.png"))
    assert code == 0, err  # an unbalanced `$\frac{` would be a mathtext ParseError


@pytest.mark.parametrize("command", [
    ["formula", "--what", "memory", "--format", "text"],
    ["formula", "--what", "flops", "--format", "json"],
    ["analyze", "--json"],
    ["report", "--format", "json"],
    ["compare", "resnet18", "--json"],
    ["compare", "resnet18"],
])
def test_every_other_output_takes_a_lone_surrogate(spec: Path, command: list[str]) -> None:
    code, out, err = run(command[0], str(spec), *command[1:])
    assert code == 0, err
    no_control(out + err)
    if ("json" in command or "--json" in command) and command[0] != "compare":  # compare shows no layer
        assert "\\ud800" in out and json.loads(out)  # a JSON escape, read back by a strict parser


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_sweep_files_take_hostile_names(spec: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"grid{suffix}"
    code, _, err = run("sweep", str(spec), "--batch", "1..3", "-o", str(target))
    assert code == 0, err
    no_control(target.read_text(encoding="utf-8"))
