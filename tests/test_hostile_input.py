"""Hostile and careless input: every case is one line on stderr and exit 2, never a traceback,
a hang or a figure silently wrong (issue 11; limits in docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main


def run(*args: str) -> tuple[int, str]:
    """Exit status and stderr of the CLI run in-process."""
    result = CliRunner().invoke(main, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stderr


def refused(*args: str, words: tuple[str, ...] = ()) -> str:
    """Assert the command exits 2 with one `archcalc: error:` line saying `words`; that line."""
    code, err = run(*args)
    lines = [row for row in err.splitlines() if row and not row.startswith("using the built-in")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(("archcalc: error:", "Error:")), err
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a spec (layers given as YAML lines) and return its path."""

    def make(layers: str, head: str = "name: t\ninput: [3, 8, 8]\n", name: str = "net.yaml") -> str:
        path = tmp_path / name
        path.write_text(head + "layers:\n" + layers)
        return str(path)

    return make


# --- accepted but wrong --------------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    "{op: conv2d, out: 4, kernel: true}",
    "{op: conv2d, out: 4, kernel: 1, stride: true}",
    "{op: max_pool2d, kernel: [2, false]}",
    "{op: conv2d, out: true, kernel: 1}",
    "{op: flatten, start_dim: true}",
])
def test_booleans_are_not_sizes(write, entry: str) -> None:
    refused("summary", write(f"  - {entry}\n"), words=("true" if "true" in entry else "false",))


def test_a_boolean_input_size_is_refused(write) -> None:
    refused("summary", write("  - {op: relu}\n", head="name: t\ninput: [true, 8, 8]\n"), words=("input",))


@pytest.mark.parametrize("width", ["$k / 3", "$k - $k", "$-$k", "$k * 0.5"])
def test_symbolic_widths_must_be_whole_and_positive(write, width: str) -> None:
    # k/3 and k*0.5 are fractions for most k; k - k is 0; -k is negative for every k
    path = write(f"  - {{op: conv2d, out: \"{width}\", kernel: 1}}\n", head="name: t\ninput: [3, 8, 8]\nsymbols: {k: 6}\n")
    refused("summary", path, "--symbolic", words=("whole number",))


def test_batch_symbol_cannot_merge_with_a_spec_symbol(write) -> None:
    path = write("  - {op: conv2d, out: 4, kernel: 1}\n", head="name: t\ninput: [3, B, B]\nsymbols: {B: 8}\n")
    for command in ("memory", "flops", "analyze"):
        refused(command, path, "--symbolic", "--batch", "B", words=("batch symbol 'B'",))
    assert run("memory", path, "--symbolic", "--batch", "M")[0] == 0
