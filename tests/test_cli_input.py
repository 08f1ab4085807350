"""The command line's input: a spec on standard input (`-`), --quiet, and a symbol as --batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main

RESNET18_TEXT = (SPECS / "resnet18.yaml").read_text()
RESNET18_PARAMS = 11_689_512  # torchvision docs: resnet18 has 11,689,512 parameters

# A spec whose fifth line is a convolution too large for what reaches it: 8 - 3 + 1 = 6 < 7.
TOO_WIDE = """name: small
input: [3, 8, 8]
layers:
  - {op: conv2d, out: 4, kernel: 3}
  - {op: conv2d, out: 4, kernel: 7}
"""


def run(*args: str, stdin: str | bytes | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_a_spec_on_stdin_gives_the_same_json_as_its_file() -> None:
    code, out, err = run("analyze", "-", "--json", stdin=RESNET18_TEXT)
    assert code == 0 and err == ""
    assert json.loads(out)["totals"]["params"] == RESNET18_PARAMS
    assert out == run("analyze", str(SPECS / "resnet18.yaml"), "--json")[1]


def test_errors_in_a_spec_on_stdin_say_stdin_and_the_line() -> None:
    code, out, err = run("summary", "-", stdin=TOO_WIDE)
    assert code == 2 and out == ""
    assert err.startswith("archcalc: error: <stdin>:5 layer '1':")
    code, _, err = run("summary", "-", stdin="name: x\ninput: [3, 8, 8]\nlayers:\n  - {op: conv2d, out: 4, kernal: 3}\n")
    assert code == 2 and "<stdin>:4" in err and "did you mean 'kernel'" in err


def test_stdin_is_bounded_like_a_file_and_must_be_utf8() -> None:
    code, _, err = run("summary", "-", stdin=RESNET18_TEXT, env={"ARCHCALC_MAX_SPEC_BYTES": "100"})
    assert code == 2 and "<stdin> is larger than 100 bytes, the limit for a spec" in err
    code, _, err = run("summary", "-", stdin=b"name: \xff\n")
    assert code == 2 and "cannot read <stdin>: not UTF-8 text (byte 6)" in err


def test_commands_that_read_the_spec_twice_read_stdin_once(tmp_path: Path) -> None:
    # formula and solve load the spec numerically and symbolically: stdin must serve both
    code, out, _ = run("formula", "-", "--what", "params", stdin=RESNET18_TEXT)
    assert code == 0 and "11689512" in out
    code, out, _ = run("solve", "-", "--valid-inputs", stdin=RESNET18_TEXT)
    assert code == 0 and "resnet18" in out
    target = tmp_path / "net.dot"
    code, _, err = run("graph", "-", "-o", str(target), stdin=RESNET18_TEXT)
    assert code == 0 and target.read_text().startswith("digraph") and f"wrote {target}" in err


def test_compare_reads_one_spec_from_stdin() -> None:
    code, out, _ = run("compare", "-", "resnet18", "--json", "-q", stdin=TOO_WIDE.replace("kernel: 7", "kernel: 3"))
    assert code == 0
    assert [n["name"] for n in json.loads(out)["networks"]] == ["small", "resnet18"]


def test_sweep_says_it_needs_a_file() -> None:
    code, _, err = run("sweep", "-", "--batch", "1..4", stdin=RESNET18_TEXT)
    assert code == 2 and "not standard input" in err


@pytest.mark.parametrize("quiet", [["-q"], ["--quiet"]])
def test_quiet_silences_the_built_in_spec_note_on_the_group_or_the_command(quiet: list[str]) -> None:
    code, out, err = run("analyze", "resnet18", "--json")
    assert code == 0 and "using the built-in spec" in err
    for args in ([*quiet, "analyze", "resnet18", "--json"], ["analyze", "resnet18", "--json", *quiet]):
        code, quiet_out, err = run(*args)
        assert code == 0 and err == "" and quiet_out == out


def test_quiet_silences_the_wrote_note_but_not_errors(tmp_path: Path) -> None:
    target = tmp_path / "net.dot"
    code, _, err = run("graph", "resnet18", "-o", str(target), "-q")
    assert code == 0 and err == "" and target.is_file()
    code, _, err = run("-q", "summary", "resnt18")
    assert code == 2 and "did you mean resnet18" in err


def test_every_command_offers_quiet() -> None:
    for command in main.commands:
        code, out, _ = run(command, "-h")
        assert code == 0 and "--quiet" in out, command


@pytest.mark.parametrize("command", ["analyze", "memory", "flops"])
def test_a_symbol_as_batch_needs_symbolic_mode(command: str) -> None:
    code, out, err = run(command, "resnet18", "--batch", "abc")
    assert code == 2 and out == ""
    assert "--batch 'abc' is a symbol, which only symbolic mode takes: add --symbolic" in err
    assert run(command, "resnet18", "--batch", "abc", "--symbolic")[0] == 0
    assert run(command, "resnet18", "--batch", "B", "--input", "3,H,W")[0] == 0  # names in --input ask for it too


def test_compare_has_no_symbolic_flag_and_says_how_to_ask() -> None:
    code, _, err = run("compare", "resnet18", "alexnet", "--batch", "abc")
    assert code == 2 and "only symbolic mode takes: name the input's sizes, as in --input 3,H,W" in err


def test_formula_is_symbolic_by_nature() -> None:
    code, out, _ = run("formula", "resnet18", "--what", "memory", "--batch", "B")
    assert code == 0 and "B*" in out


@pytest.mark.parametrize("command", [["report", "resnet18"], ["verify", "resnet18"], ["sweep", "resnet18"]])
def test_commands_with_a_numeric_batch_refuse_a_symbol(command: list[str]) -> None:
    code, out, err = run(*command, "--batch", "abc")
    assert code == 2 and out == "" and "'abc'" in err


def test_json_on_stdin_may_be_indented_with_tabs() -> None:
    # YAML refuses tabs as indentation; JSON allows them, and stdin has no .json suffix to say which
    spec = {"name": "tabs", "input": [4], "layers": [{"op": "linear", "out": 2}]}
    code, out, _ = run("analyze", "-", "--json", stdin=json.dumps(spec, indent="\t"))
    assert code == 0 and json.loads(out)["totals"]["params"] == 4 * 2 + 2


def test_a_real_pipe_into_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "archcalc", "analyze", "-", "--json"],
        input=RESNET18_TEXT, capture_output=True, text=True, cwd=SPECS.parent, check=False,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["totals"]["params"] == RESNET18_PARAMS
