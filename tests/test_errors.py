"""Bad input: every mistake is one ArchcalcError naming file, line, layer and what would be right.

Each case below is checked twice: through the library (`load` + `output_shapes`) and through the
CLI, which must print exactly one line `archcalc: error: FILE:LINE layer 'PATH': message` on
stderr and exit 2 (never a traceback). Expected lines are found in the spec text itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main
from archcalc.errors import ArchcalcError, Location, ShapeError, SpecError, quote
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import load

FAST = 0.5  # seconds: hostile files must be refused long before they cost anything


def spec(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line(text: str, snippet: str) -> int:
    """The 1-based line of `text` holding `snippet` (which must occur exactly once)."""
    hits = [n for n, row in enumerate(text.splitlines(), start=1) if snippet in row]
    assert len(hits) == 1, f"{snippet!r} is on lines {hits}"
    return hits[0]


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    words: tuple[str, ...]  # what the message must say (case-insensitive)
    at: str | None = None  # a snippet of the line the error must point to; None: no line known
    layer: str | None = None
    error: type[ArchcalcError] = SpecError
    file: str = "net.yaml"

    @property
    def line(self) -> int | None:
        return line(self.text, self.at) if self.at else None


DUPLICATE_KEY = spec("""
    name: net
    input: [3, 8, 8]
    layers:
      - name: c
        op: conv2d
        out: 4
        kernel: 3
        out: 8
""")
DUPLICATE_NAME = spec("""
    name: net
    input: [3, 8, 8]
    blocks:
      unit:
        layers:
          - {name: a, op: relu}
          - {name: a, op: tanh}
    layers:
      - {name: b, block: unit}
""")
DUPLICATE_TOP_NAME = spec("""
    name: net
    input: [3, 8, 8]
    layers:
      - {name: a, op: relu}
      - {name: a, op: tanh}
""")

CASES = [
    # --- the file itself -----------------------------------------------------------------------
    Case(
        "yaml-syntax",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - {op: conv2d, out: 4, kernel: 3]
        """),
        ("not valid yaml", "expected ',' or '}'", "']'"),
        at="kernel: 3]",
    ),
    Case(
        "json-syntax",
        spec("""
            {
              "name": "net",
              "input": [3, 8, 8],
              "layers": [{"op": "relu"},]
            }
        """),
        ("not valid json", "trailing comma"),
        at='"layers"',
        file="net.json",
    ),
    Case("empty-file", "", ("empty", "'name', 'input' and 'layers'")),
    Case("only-a-comment", "# a network, one day\n", ("empty",)),
    Case("a-list", "- conv2d\n- relu\n", ("must be a mapping", "found a list"), at="- conv2d"),
    Case("a-scalar", "resnet18\n", ("must be a mapping", "'resnet18'")),
    # --- ops and their fields ----------------------------------------------------------------
    Case(
        "unknown-op",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - {name: conv, op: conv2d, out: 4, kernel: 3}
              - {name: act, op: rellu}
        """),
        ("unknown op 'rellu'", "did you mean", "'relu'"),
        at="op: rellu",
        layer="act",
    ),
    Case(
        "unknown-field",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - name: c
                op: conv2d
                out: 4
                kernel: 3
                strides: 2
        """),
        ("strides", "unknown field", "did you mean 'stride'"),
        at="strides: 2",
        layer="c",
    ),
    Case(
        "wrong-type",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - name: c
                op: conv2d
                out: 4
                kernel: three
        """),
        ("kernel", "integer", "'three'"),
        at="kernel: three",
        layer="c",
    ),
    Case(
        "negative-kernel",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - name: c
                op: conv2d
                out: 4
                kernel: -3
        """),
        ("kernel", "greater than 0", "-3"),
        at="kernel: -3",
        layer="c",
    ),
    Case(
        "zero-stride",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - name: c
                op: conv2d
                out: 4
                kernel: 3
                stride: 0
        """),
        ("stride", "greater than 0", "got 0"),
        at="stride: 0",
        layer="c",
    ),
    # --- connections -------------------------------------------------------------------------
    Case(
        "unknown-from",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - {name: body, op: relu}
              - {name: head, op: tanh, from: bodyy}
        """),
        ("'bodyy'", "not a layer", "did you mean 'body'"),
        at="from: bodyy",
        layer="head",
    ),
    Case(
        "dangling-layer",
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - {name: a, op: relu}
              - {name: side, op: sigmoid, from: a}
              - {name: b, op: tanh, from: a}
        """),
        ("'side' is never used", "'b'"),
        at="name: side",
        layer="side",
    ),
    # --- shapes --------------------------------------------------------------------------------
    Case(
        "shape-collapses",  # (3 + 0 + 0 - 7)//1 + 1 = -3: a 7x7 window does not fit a 3x3 input
        spec("""
            name: net
            input: [3, 3, 3]
            layers:
              - {name: c, op: conv2d, out: 4, kernel: 7}
        """),
        ("input size 3", "span 7", "below 1"),
        at="name: c",
        layer="c",
        error=ShapeError,
    ),
    Case(
        "add-channel-mismatch",  # the conv gives [8, 8, 8]; the skip still carries [3, 8, 8]
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - {name: c, op: conv2d, out: 8, kernel: 3, padding: 1}
              - {name: add, op: add, from: [c, input]}
        """),
        ("cannot add", "[8, 8, 8]", "[3, 8, 8]", "1x1 convolution"),
        at="name: add",
        layer="add",
        error=ShapeError,
    ),
    Case(
        "concat-size-mismatch",  # stride 2: (8 + 2 - 3)//2 + 1 = 4, so [8, 4, 4] beside [3, 8, 8]
        spec("""
            name: net
            input: [3, 8, 8]
            layers:
              - {name: c, op: conv2d, out: 8, kernel: 3, stride: 2, padding: 1}
              - {name: cat, op: concat, from: [c, input]}
        """),
        ("cannot concatenate", "[8, 4, 4]", "[3, 8, 8]", "must match"),
        at="name: cat",
        layer="cat",
        error=ShapeError,
    ),
    # --- blocks and expressions ----------------------------------------------------------------
    Case(
        "block-argument-missing",
        spec("""
            name: net
            input: [3, 8, 8]
            blocks:
              unit:
                args: [out]
                layers:
                  - {name: c, op: conv2d, out: $out, kernel: 3}
            layers:
              - {name: b, block: unit}
        """),
        ("block 'unit'", "needs argument 'out'"),
        at="block: unit",
        layer="b",
    ),
    Case(
        "block-argument-unknown",
        spec("""
            name: net
            input: [3, 8, 8]
            blocks:
              unit:
                args: [out]
                layers:
                  - {name: c, op: conv2d, out: $out, kernel: 3}
            layers:
              - name: b
                block: unit
                out: 4
                width: 3
        """),
        ("no argument 'width'", "its arguments: out"),
        at="width: 3",
        layer="b",
    ),
    Case(
        "block-unknown",
        spec("""
            name: net
            input: [3, 8, 8]
            blocks:
              unit:
                layers:
                  - {op: relu}
            layers:
              - {name: b, block: unti}
        """),
        ("unknown block 'unti'", "unit"),
        at="block: unti",
        layer="b",
    ),
    Case(
        "expression-unknown-argument",
        spec("""
            name: net
            input: [3, 8, 8]
            blocks:
              unit:
                args: [out]
                layers:
                  - {name: c, op: conv2d, out: $width * 2, kernel: 3}
            layers:
              - {name: b, block: unit, out: 4}
        """),
        ("$width * 2", "unknown name 'width'", "out"),
        at="$width * 2",
        layer="b.c",
    ),
    Case(
        "expression-attribute",
        spec("""
            name: net
            input: [3, 8, 8]
            blocks:
              unit:
                args: [out]
                layers:
                  - {name: c, op: conv2d, out: $out.__class__, kernel: 3}
            layers:
              - {name: b, block: unit, out: 4}
        """),
        ("not allowed", "only arithmetic"),
        at="$out.__class__",
        layer="b.c",
    ),
    Case(
        "expression-power-tower",  # 2**(64**4) has 16 million bits: refused, not computed
        spec("""
            name: net
            input: [3, 8, 8]
            blocks:
              unit:
                args: [out]
                layers:
                  - {name: c, op: conv2d, out: "$out * (((2**64)**64)**64)**64", kernel: 3}
            layers:
              - {name: b, block: unit, out: 4}
        """),
        ("too large",),
        at="(((2**64)**64)**64)**64",
        layer="b.c",
    ),
    # --- duplicates ----------------------------------------------------------------------------
    Case(
        "duplicate-key",
        DUPLICATE_KEY,
        ("duplicate key 'out'", f"first on line {line(DUPLICATE_KEY, 'out: 4')}"),
        at="out: 8",
    ),
    Case(
        "duplicate-name-in-block",
        DUPLICATE_NAME,
        ("'a' is used twice", f"first on line {line(DUPLICATE_NAME, 'op: relu')}"),
        at="op: tanh",
        layer="b.a",
    ),
    Case(
        "duplicate-name-top-level",
        DUPLICATE_TOP_NAME,
        ("'a' is used twice", f"first on line {line(DUPLICATE_TOP_NAME, 'op: relu')}"),
        at="op: tanh",
        layer="a",
    ),
    # --- values YAML must not turn into anything but plain data --------------------------------
    Case(
        "huge-integer",  # Python refuses int() on more than 4,300 digits
        f"name: net\ninput: [3, {'9' * 5000}, 8]\nlayers: [{{op: relu}}]\n",
        ("cannot read the value", "digits"),
        at="input:",
    ),
]


def write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.file
    path.write_text(case.text)
    return path


def analyse(path: Path) -> None:
    output_shapes(load(str(path)))


def cli(*args: str) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr, result.exception


def cli_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, where a traceback would really reach the user."""
    command = [sys.executable, "-m", "archcalc", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def prefix(path: Path, line: int | None, layer: str | None) -> str:
    """What the CLI's message must start with: `archcalc: error: FILE[:LINE][ layer 'PATH']: `."""
    where = f"{path}:{line}" if line else str(path)
    return f"archcalc: error: {where}" + (f" layer '{layer}'" if layer else "") + ": "


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_library_reports_file_line_layer_and_remedy(case: Case, tmp_path: Path) -> None:
    path = write(tmp_path, case)
    with pytest.raises(case.error) as caught:
        analyse(path)
    error = caught.value
    assert error.location is not None and error.location.file == str(path)
    assert error.location.line == case.line
    assert error.layer == case.layer
    for word in case.words:
        assert word.lower() in error.message.lower(), f"{word!r} missing from {error.message!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cli_prints_one_line_and_exits_2(case: Case, tmp_path: Path) -> None:
    path = write(tmp_path, case)
    code, out, err, exception = cli("summary", str(path))
    assert code == 2 and isinstance(exception, SystemExit)  # not an escaped exception
    assert out == ""
    assert err.startswith(prefix(path, case.line, case.layer)), err
    assert err.endswith("\n") and err.count("\n") == 1
    for word in case.words:
        assert word.lower() in err.lower()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="no such file") as caught:
        load(str(path))
    assert str(path) in str(caught.value)
    code, _, err, _ = cli("analyze", str(path))
    assert code == 2
    assert err == f"archcalc: error: no such file: {path}\n"


def test_a_cycle_through_forward_references(tmp_path: Path) -> None:
    # Forward references are allowed in a scope, so `a` may read `b`; but `b` reads `a`.
    text = spec("""
        name: net
        input: [3, 8, 8]
        layers:
          - {name: a, op: add, from: [input, b]}
          - {name: b, op: relu, from: a}
    """)
    lines = {"a": line(text, "name: a"), "b": line(text, "name: b")}
    path = write(tmp_path, Case("cycle", text, ()))
    with pytest.raises(SpecError, match="cycle") as caught:
        analyse(path)
    error = caught.value
    assert error.layer in lines
    assert error.location is not None and error.location.line == lines[error.layer]
    assert error.message.endswith(("a -> b -> a", "b -> a -> b"))
    code, _, err, _ = cli("summary", str(path))
    assert code == 2 and err.startswith(prefix(path, lines[error.layer], error.layer))


def test_expressions_are_refused_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = spec(f"""
        name: net
        input: [3, 8, 8]
        blocks:
          unit:
            args: [out]
            layers:
              - name: c
                op: conv2d
                out: "$out + __import__('os').system('touch {marker}')"
                kernel: 3
        layers:
          - {{name: b, block: unit, out: 4}}
    """)
    path = write(tmp_path, Case("import", text, ()))
    with pytest.raises(SpecError, match="not allowed") as caught:
        analyse(path)
    assert caught.value.layer == "b.c"
    assert caught.value.location is not None
    assert caught.value.location.line == line(text, "__import__")
    code, _, err, _ = cli("summary", str(path))
    assert code == 2 and "not allowed" in err
    assert not marker.exists()


def test_python_object_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = spec(f"""
        name: net
        input: [3, 8, 8]
        layers:
          - op: !!python/object/apply:os.system ["touch {marker}"]
    """)
    path = write(tmp_path, Case("tag", text, ()))
    with pytest.raises(SpecError, match="python/object/apply:os.system") as caught:
        load(str(path))
    assert caught.value.location == Location(str(path), line(text, "!!python"))
    assert "refused" in caught.value.message
    # A real process: exit 2, one line, no traceback, and the command never ran.
    done = cli_process("summary", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(prefix(path, line(text, "!!python"), None))
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not marker.exists()


def test_deep_nesting_fails_fast(tmp_path: Path) -> None:
    depth = 10_000
    path = tmp_path / "deep.yaml"
    path.write_text("name: net\ninput: [3, 8, 8]\nlayers: " + "[" * depth + "]" * depth + "\n")
    start = time.perf_counter()
    with pytest.raises(SpecError, match="nesting deeper than") as caught:
        load(str(path))
    assert time.perf_counter() - start < FAST
    assert caught.value.location is not None and caught.value.location.line == 3
    code, _, err, _ = cli("summary", str(path))
    assert code == 2 and err.startswith(prefix(path, 3, None))


def test_deep_json_nesting_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"name": "net", "layers": ' + "[" * 10_000 + "]" * 10_000 + "}")
    start = time.perf_counter()
    with pytest.raises(SpecError, match="nesting deeper than"):
        load(str(path))
    assert time.perf_counter() - start < FAST


def test_alias_bomb_fails_fast(tmp_path: Path) -> None:
    # "Billion laughs": 9 levels, each a list of 9 aliases of the one before: 9**9 = 387,420,489
    # strings once expanded.
    rows = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(rows) + "\n")
    start = time.perf_counter()
    with pytest.raises(SpecError, match="expands to more than") as caught:
        load(str(path))
    assert time.perf_counter() - start < FAST
    assert caught.value.location is not None and caught.value.location.file == str(path)
    done = cli_process("summary", str(path))
    assert done.returncode == 2 and "expands to more than" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_valid_json_with_tabs_loads(tmp_path: Path) -> None:
    # JSON allows tabs as whitespace; YAML does not, so a .json file is read as JSON first.
    path = tmp_path / "tabs.json"
    rows = ["{", '\t"name": "net",', '\t"input": [3, 8, 8],', '\t"layers": [{"op": "relu"}]', "}"]
    path.write_text("\n".join(rows) + "\n")
    assert load(str(path)).output == "0"


GOOD = spec("""
    name: net
    input: [3, 8, 8]
    layers:
      - {name: c, op: conv2d, out: 4, kernel: 3, padding: 1}
""")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--input", "3,x,224"], ("--input", "'3,x,224'", "3,224,224")),
        (["--input", "0,224,224"], ("--input", "positive", "'0,224,224'")),
        (["--depth", "0"], ("--depth", "0", ">=1")),
    ],
    ids=["input-not-a-number", "input-zero", "depth-zero"],
)
def test_bad_options_exit_2(args: list[str], words: tuple[str, ...], tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(GOOD)
    assert cli("summary", str(path))[0] == 0  # the spec is fine; only the option is wrong
    code, out, err, exception = cli("summary", str(path), *args)
    assert code == 2 and isinstance(exception, SystemExit)
    assert out == ""
    for word in words:
        assert word in err


@pytest.mark.parametrize("entry", [
    {"op": "conv2d", "out": "x" * 2_000_000, "kernel": 3},  # a value pydantic refuses
    {"op": "c" * 2_000_000},  # an unknown op
    {"op": "relu", "name": "a." + "n" * 2_000_000},  # a name with a dot
    {"op": "conv2d", "out": 4, "kernel": 99, "name": "n" * 2_000_000},  # a shape error in that layer
])
def test_messages_quote_a_short_prefix_of_a_huge_value(tmp_path, entry) -> None:
    spec = tmp_path / "huge.json"
    spec.write_text(json.dumps({"name": "net", "input": [1, 8, 8], "layers": [entry]}))
    result = CliRunner().invoke(main, ["summary", str(spec)])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert len(result.stderr) < 3000  # not the 2,000,000 characters of the value


def test_quote_bounds_strings_numbers_and_containers() -> None:
    assert quote("abc") == "'abc'" and quote([1, 2]) == "[1, 2]"
    long = quote("x" * 10**6)
    assert len(long) < 100 and long.endswith("(1,000,000 characters)")
    assert quote(10**5000) == "an integer of about 5,001 digits"  # repr would refuse (int_max_str_digits)
    assert len(quote(list(range(10**6)))) < 100
