"""Output files: no command writes over the spec it reads, and no failure leaves a half-written file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner

from archcalc.cli import main
from archcalc.errors import OptionError
from archcalc.render.files import atomic, write

NET = {"name": "net", "input": [1, 8, 8], "layers": [{"op": "conv2d", "out": 2, "kernel": 3}]}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "net.json"  # JSON: a name an output of `graph --format json` could take
    path.write_text(json.dumps(NET))
    return path


@pytest.mark.parametrize("command", [
    ("graph", "--format", "json"),
    ("formula", "--what", "params", "--format", "json"),
    ("report", "--format", "json"),
])
def test_output_over_the_spec_is_refused(spec: Path, command: tuple[str, ...]) -> None:
    before = spec.read_text()
    code, _, err = run(command[0], str(spec), *command[1:], "-o", str(spec))
    assert code == 2 and "being read" in err and "Traceback" not in err
    assert spec.read_text() == before


@pytest.mark.parametrize("command", [
    ("graph", "--format", "json"),
    ("formula", "--what", "params"),
    ("report", "--format", "json"),
    ("sweep", "--batch", "1..4"),
    ("sweep", "--batch", "1..4", "--plot"),
])
def test_every_command_refuses_a_folder_in_the_same_words(spec: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    plot = command[-1] == "--plot"
    folder = tmp_path / ("out.png" if plot else "out.csv")  # names sweep accepts: the folder is what is refused
    folder.mkdir()
    code, _, err = run(command[0], str(spec), *command[1:], *([] if plot else ["-o"]), str(folder))
    assert code == 2 and f"cannot write {folder}: it is a directory" in err and "Traceback" not in err


def test_other_names_for_the_spec_are_refused(spec: Path, tmp_path: Path) -> None:
    before = spec.read_text()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.json").symlink_to(spec)
    os.link(spec, tmp_path / "hard.json")
    for other in ("sub/../net.json", "link.json", "hard.json", "NET.JSON", "Net.Json"):
        code, _, err = run("graph", str(spec), "--format", "json", "-o", str(tmp_path / other))
        assert code == 2 and "being read" in err, other
    # the case-insensitive match also guards a spec read through another spelling
    code, _, err = run("formula", str(spec), "-o", str(tmp_path / "sub" / ".." / "NET.json"))
    assert code == 2 and "being read" in err
    assert spec.read_text() == before and not (tmp_path / "NET.JSON").exists()


def test_report_to_an_upper_case_spelling_of_a_yaml_spec_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [1, 8, 8]\nlayers:\n  - {op: conv2d, out: 2, kernel: 3}\n")
    code, _, err = run("report", str(spec), "--format", "markdown", "-o", str(tmp_path / "net.YAML"))
    assert code == 2 and "being read" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml"]


def test_sweep_output_and_plot_over_the_spec_are_refused(spec: Path) -> None:
    for option in ("-o", "--plot"):
        code, _, err = run("sweep", str(spec), "--batch", "1..4", option, str(spec))
        assert code == 2 and "being read" in err


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old contents")
    with pytest.raises(RuntimeError):
        with atomic(str(target)) as file:
            file.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failed_sweep_leaves_the_old_csv(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "grid.csv"
    target.write_text("previous grid\n")

    def failing(result: Any, out: IO[str], progress: Any = None) -> None:
        out.write("B,params\n1,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("archcalc.symbolic.sweep.write_csv", failing)
    code, _, err = run("sweep", str(spec), "--batch", "1..4", "-o", str(target))
    assert code == 2 and "No space left on device" in err
    assert target.read_text() == "previous grid\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.csv", "net.json"]


def test_rewriting_keeps_the_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "shared.dot"
    target.write_text("x")
    target.chmod(0o640)
    write(str(target), [], lambda file: file.write("digraph {}\n"))
    assert target.read_text() == "digraph {}\n" and target.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.dot"
    write(str(fresh), [], lambda file: file.write("y"))
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_existing_spec_that_is_not_the_input_is_still_refused(spec: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("name: other\n")
    with pytest.raises(OptionError, match="looks like a spec"):
        write(str(other), [str(spec)], lambda file: file.write("text"))
    assert other.read_text() == "name: other\n"
