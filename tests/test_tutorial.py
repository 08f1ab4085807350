"""docs/tutorial.md shows real runs: every `$ archcalc ...` block's output is what the command
prints, and every spec the page shows is the file the commands read.

Commands run from the checkout's root through click's CliRunner, at COLUMNS=100 and without
colour (output that is not a terminal: what `archcalc ... > out.txt` writes), stdout and stderr
together as a terminal shows them; trailing spaces are dropped on both sides. When the output is
meant to change, `ARCHCALC_REGOLD=1 python -m pytest tests/test_tutorial.py` rewrites the page's
output blocks (and its copies of the spec files) from real runs: review the diff by eye, and the
prose around any figure that moved.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "tutorial.md"
REGOLD = bool(os.environ.get("ARCHCALC_REGOLD"))
ENV = {"COLUMNS": "100", "LINES": "50", "NO_COLOR": "1", "FORCE_COLOR": None, "TTY_COMPATIBLE": None, "TTY_INTERACTIVE": None}

# ```console / $ archcalc ARGS / output / ```: one command per block
COMMAND = re.compile(r"^```console\n\$ archcalc (?P<args>[^\n]*)\n(?P<output>.*?)^```$", re.DOTALL | re.MULTILINE)
# <!-- file: PATH --> then a ```yaml block: the whole file
FILE = re.compile(r"^<!-- file: (?P<path>\S+) -->\n```yaml\n(?P<text>.*?)^```$", re.DOTALL | re.MULTILINE)
# <!-- excerpt: PATH --> then a ```yaml block: consecutive lines of the file
EXCERPT = re.compile(r"^<!-- excerpt: (?P<path>\S+) -->\n```yaml\n(?P<text>.*?)^```$", re.DOTALL | re.MULTILINE)


def _commands() -> list[str]:
    return [m.group("args") for m in COMMAND.finditer(PAGE.read_text())]


def _trimmed(text: str) -> str:
    return "".join(f"{line.rstrip()}\n" for line in text.splitlines())


def _run(args: str) -> tuple[int, str]:
    result = CliRunner(env=ENV).invoke(main, shlex.split(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, _trimmed(result.output)


def _replace_block(pattern: re.Pattern[str], index: int, group: str, text: str) -> None:
    """Rewrite one group of the page's index-th match of pattern (ARCHCALC_REGOLD)."""
    page = PAGE.read_text()
    match = list(pattern.finditer(page))[index]
    PAGE.write_text(page[: match.start(group)] + text + page[match.end(group) :])


COMMANDS = _commands()


def test_the_tutorial_walks_through_every_step() -> None:
    verbs = {shlex.split(args)[0] for args in COMMANDS}
    assert {"summary", "memory", "flops", "rf", "solve", "formula", "compare", "report"} <= verbs
    assert len(COMMANDS) == len(set(COMMANDS)), "each command once: the test finds a block by it"


@pytest.mark.parametrize("args", COMMANDS)
def test_every_command_prints_what_the_page_shows(args: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the page's paths are relative to the checkout
    status, output = _run(args)
    # an error is shown as such: exit 2 and archcalc's message, never a traceback
    assert status == (2 if output.startswith("archcalc: error:") else 0), output
    if REGOLD:
        _replace_block(COMMAND, COMMANDS.index(args), "output", output)
    shown = [m.group("output") for m in COMMAND.finditer(PAGE.read_text())][COMMANDS.index(args)]
    assert shown == output


def test_the_specs_shown_are_the_files() -> None:
    files = list(FILE.finditer(PAGE.read_text()))
    assert files, "the page shows its spec"
    for index, match in enumerate(files):
        text = (ROOT / match.group("path")).read_text()
        if REGOLD:
            _replace_block(FILE, index, "text", text)
        assert list(FILE.finditer(PAGE.read_text()))[index].group("text") == text
    for match in EXCERPT.finditer(PAGE.read_text()):
        assert match.group("text") in (ROOT / match.group("path")).read_text(), match.group("path")
