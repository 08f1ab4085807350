"""Fuzzing every command with random and mutated specs and options, in-process (issue 11).

Whatever the spec or option, a command exits 0, or 2 with a message (1 only when `verify` finds
a disagreement), prints no traceback, finishes within seconds and writes no file but its `-o`.
Specs are zoo and hand-written specs with values replaced by random ones (numbers of any size,
booleans, floats, strings, expressions, lists, mappings) or with their text cut and spliced.
Names stay within printable ASCII without markup brackets: escaping user text in every output
format is tested with the output formats (docs/security.md, "What archcalc writes").
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archcalc.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"
SECONDS = 30  # per command, on a loaded machine; a hang fails long before pytest's own timeout

BLOCKS = """
name: blocks
input: [3, H, W]
symbols: {H: 16, W: 12, k: 4}
blocks:
  unit:
    args: {out: null, stride: 1, down: false}
    layers:
      - {name: conv, op: conv2d, out: $out, kernel: 3, stride: $stride, padding: 1, bias: false}
      - {name: bn, op: batchnorm2d}
      - {name: side, op: conv2d, out: $out, kernel: 1, stride: $stride, from: input, when: $down}
      - {name: add, op: add, from: [bn, side]}
      - {name: relu, op: relu, inplace: true}
layers:
  - {name: stem, op: conv2d, out: $k, kernel: 3, padding: 1}
  - {name: stage, block: unit, repeat: 2, out: "$k * 2", stride: "2 if $i == 0 else 1", down: $i == 0}
  - {name: pool, op: max_pool2d, kernel: 2, ceil_mode: true}
  - {name: gap, op: global_avg_pool}
  - {name: fc, op: linear, out: 10}
"""

MERGES = """
name: merges
input: [4, 10]
layers:
  - {name: a, op: conv1d, out: 6, kernel: 3, padding: same}
  - {name: b, op: avg_pool1d, kernel: 2, stride: 1, padding: 1, from: input, count_include_pad: false}
  - {name: c, op: conv1d, out: 6, kernel: 1, from: b}
  - {name: cat, op: concat, from: [a, c], dim: 2}
  - {name: s, op: slice, dim: 1, start: 0, end: 3}
  - {name: f, op: flatten}
  - {name: d, op: dropout, p: 0.1}
  - {name: o, op: linear, out: 2}
"""

SOURCES = [BLOCKS, MERGES, (SPECS / "lenet5.yaml").read_text(), (SPECS / "squeezenet1_1.yaml").read_text()]
SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:,$'\"+-*/%()<>=!{}#&|?@"
EXPRESSIONS = [
    "$1 +", "$'x' * 10**9", "$[1] * 9", "$2j", "$(-1) ** 0.5", "$2 ** 1000", "$10 ** 400", "$not 1",
    "$H > 3", "$max()", "$min(1)", "$k // 0", "$k / 3", "$k - $k", "$i", "$out", "$nope", "$1e308 * 10",
    "$" + "+".join(["1"] * 300), "$" + "(" * 60 + "1" + ")" * 60, "$" + "not " * 300 + "1", "$__import__('os')",
]
values = st.one_of(
    st.integers(-3, 70),
    st.sampled_from([0, -1, 2**31, 2**63, 2**600, 2**1100, 10**400]),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(SAFE, max_size=12),
    st.sampled_from(EXPRESSIONS),
    st.lists(st.integers(-2, 5), max_size=4),
    st.lists(st.lists(st.integers(-1, 3), max_size=3), max_size=3),
    st.dictionaries(st.sampled_from(["op", "out", "kernel", "shape", "x"]), st.integers(-1, 4), max_size=2),
)


def _slots(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in parsed YAML a value can be put: each key's value, each list item."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield (*path, key)
        yield from _slots(child, (*path, key))


@st.composite
def specs(draw: st.DrawFn) -> str:
    """A spec's text: a source with 1-3 values replaced, or its text spliced."""
    text = draw(st.sampled_from(SOURCES))
    if draw(st.integers(0, 4)) == 0:  # text surgery: delete, repeat or insert a stretch
        at = draw(st.integers(0, len(text)))
        length = draw(st.integers(0, 40))
        cut = draw(st.sampled_from(["delete", "repeat", "insert"]))
        if cut == "delete":
            return text[:at] + text[at + length :]
        if cut == "repeat":
            return text[:at] + text[at : at + length] * draw(st.integers(2, 5)) + text[at + length :]
        return text[:at] + draw(st.text(SAFE + "\n[]", max_size=20)) + text[at:]
    data = yaml.safe_load(text)
    slots = list(_slots(data))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(slots))
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = draw(values)
        slots = list(_slots(data))
    return yaml.safe_dump(data, sort_keys=False)


sizes = st.one_of(
    st.sampled_from(["1", "2", "0", "-1", "²", "\u0663", "B", "N", "x", "9" * 30, "9" * 400, str(2**600), "1.5", ""]),
    st.integers(1, 40).map(str),
)
shapes = st.one_of(
    st.none(),
    st.lists(sizes, min_size=1, max_size=4).map(",".join),
    st.sampled_from(["3,H,W", "3,16,16", "4,10", "3,2**600,3", "3x16x16"]),
)
budgets = st.sampled_from(["1GiB", "16GiB", "1", "0", "1.5MiB", "9" * 20, "9" * 400, "12\u0663GiB", "lots", "2TB"])


def _input(shape: str | None) -> list[str]:
    return [] if shape is None else ["--input", shape]


@st.composite
def numeric_commands(draw: st.DrawFn) -> list[str]:
    """A command that needs no sympy, with random options (SPEC stands for the spec's path)."""
    shape, batch = draw(shapes), draw(sizes)
    choices = [
        ["summary", "SPEC", *_input(shape), *draw(st.sampled_from([[], ["--depth", "1"], ["--depth", "0"]]))],
        ["analyze", "SPEC", "--json", *_input(shape), "--batch", batch, "--dtype", draw(st.sampled_from(["float16", "int8", "fp8"])),
         "--optimizer", draw(st.sampled_from(["adam", "SGD", "lion"]))],
        ["memory", "SPEC", *_input(shape), "--batch", batch, *draw(st.sampled_from([[], ["--infer"], ["--precision", "bf16-mixed"]])),
         *draw(st.sampled_from([[], ["--fit", draw(budgets)]]))],
        ["flops", "SPEC", *_input(shape), "--batch", batch],
        ["rf", "SPEC", *_input(shape)],
        ["report", "SPEC", *_input(shape), "--batch", batch, *draw(st.sampled_from([[], ["--format", "json", "-o", "out.json"], ["--format", "markdown"]]))],
        ["graph", "SPEC", *_input(shape), "--format", draw(st.sampled_from(["dot", "mermaid", "json"])), *draw(st.sampled_from([[], ["-o", "out.dot"]]))],
        ["compare", "SPEC", "lenet5", *_input(shape), "--batch", batch],
        ["verify", "SPEC", *_input(shape), "--batch", draw(st.sampled_from(["1", "2", "0", "²"])),
         "--seed", draw(st.sampled_from(["0", "7", "-1", "9" * 30])), *draw(st.sampled_from([[], ["--max-memory", draw(budgets)]]))],
    ]
    return draw(st.sampled_from(choices))


@st.composite
def symbolic_commands(draw: st.DrawFn) -> list[str]:
    """A command that builds formulas (sympy): fewer examples, each slower."""
    choices = [
        ["summary", "SPEC", "--symbolic"],
        ["memory", "SPEC", "--symbolic", "--batch", draw(st.sampled_from(["B", "M", "4"])), *draw(st.sampled_from([[], ["--fit", draw(budgets)]]))],
        ["formula", "SPEC", "--what", draw(st.sampled_from(["shapes", "memory", "flops", "rf"])), "--format", draw(st.sampled_from(["text", "json"]))],
        ["solve", "SPEC", "--valid-inputs"],
        ["sweep", "SPEC", "--batch", draw(st.sampled_from(["1..4", "2", "0..3", "1..99999999999999999999"])),
         *draw(st.sampled_from([[], ["--what", "flops"], ["-o", "grid.csv"]]))],
    ]
    return draw(st.sampled_from(choices))


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when a command runs longer than `seconds`."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the command ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(tmp_path: Path, text: str, command: list[str]) -> None:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    for old in work.iterdir():
        old.unlink()
    spec = work / "spec.yaml"
    spec.write_text(text)
    args = [str(spec) if a == "SPEC" else a for a in command]
    before = set(os.listdir(work))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with _deadline(SECONDS):
            result = CliRunner().invoke(main, args)
    finally:
        os.chdir(cwd)
    allowed = {0, 1, 2} if command[0] == "verify" else {0, 2}
    shown = f"archcalc {' '.join(a[:60] for a in command)}\n--- spec ---\n{text[:2000]}\n--- stderr ---\n{result.stderr[-2000:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{result.exc_info}\n{shown}"
    assert result.exit_code in allowed, shown
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, shown
    if result.exit_code == 2:
        assert "error" in result.stderr.lower(), shown
    written = set(os.listdir(work)) - before
    outputs = {command[i + 1] for i, a in enumerate(command) if a in ("-o", "--output")}
    assert written <= outputs, f"wrote {sorted(written - outputs)}\n{shown}"
    if result.exit_code != 0:
        assert not written, f"failed but wrote {sorted(written)}\n{shown}"


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="the per-command deadline needs SIGALRM")


@FUZZ
@given(text=specs(), command=numeric_commands())
def test_numeric_commands_on_mutated_specs(tmp_path_factory: pytest.TempPathFactory, text: str, command: list[str]) -> None:
    _check(tmp_path_factory.mktemp("fuzz"), text, command)


@settings(FUZZ, max_examples=12)
@given(text=specs(), command=symbolic_commands())
def test_symbolic_commands_on_mutated_specs(tmp_path_factory: pytest.TempPathFactory, text: str, command: list[str]) -> None:
    _check(tmp_path_factory.mktemp("fuzz"), text, command)


@pytest.mark.parametrize("command", [["schema"], ["--version"], ["summary", "--help"], ["nonsense"]])
def test_commands_without_a_spec(tmp_path: Path, command: list[str]) -> None:
    _check(tmp_path, "", command)
