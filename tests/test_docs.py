"""The docs' tables are well formed, and docs/zoo.md's table is the zoo: one row per spec, with
its input and, where PyTorch's figures are recorded, PyTorch's parameter count."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import SPECS

ROOT = SPECS.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
SEPARATOR = re.compile(r"\|( *:?-+:? *\|)+")


def _cells(row: str) -> list[str]:
    """A table row's cells: split at pipes not escaped with a backslash (GitHub's rule, which
    splits inside code spans too)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().removeprefix("|").removesuffix("|"))]


def _tables(page: Path) -> list[tuple[int, list[str]]]:
    """Each table outside code fences: its first line's number and its rows."""
    tables: list[tuple[int, list[str]]] = []
    fenced, start, rows = False, 0, []
    for number, line in enumerate([*page.read_text().splitlines(), ""], 1):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("|"):
            start, rows = (start if rows else number), [*rows, line]
        elif rows:
            tables.append((start, rows))
            rows = []
    return tables


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_table_row_has_the_header_s_cells(page: Path) -> None:
    for start, rows in _tables(page):
        assert len(rows) >= 3 and SEPARATOR.fullmatch(rows[1].strip()), f"{page.name}:{start}: header, separator, rows"
        widths = [len(_cells(row)) for row in rows]
        assert set(widths) == {widths[0]}, f"{page.name}:{start}: cells per row {widths}"


def test_the_zoo_page_lists_every_spec_once_with_its_input() -> None:
    (_, rows), *_ = _tables(ROOT / "docs" / "zoo.md")
    assert _cells(rows[0]) == ["spec", "source", "input", "params", "check"]
    listed = [_cells(row) for row in rows[2:]]
    assert sorted(cells[0] for cells in listed) == sorted(f"`{p.name}`" for p in SPECS.glob("*.yaml"))
    recorded = json.loads((ROOT / "tests" / "data" / "torch_measurements.json").read_text())["zoo"]
    for name, _, shown_input, params, _ in listed:
        spec = yaml.safe_load((SPECS / name.strip("`")).read_text())
        shape = spec["input"]["shape"] if isinstance(spec["input"], dict) else spec["input"]  # {shape, dtype}: token ids
        assert shown_input == "×".join(str(n) for n in shape), name
        torch = recorded.get(spec["name"])
        if torch is not None:  # what torch counted (tests/record_torch.py)
            assert params == f"{torch['params']:,}", name


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_no_page_points_at_the_project_s_bookkeeping(page: Path) -> None:
    # a reader cannot look up "issue 5" or wait for "a later feature": say what holds today
    stale = re.compile(r"\bissue \d+|\ba later (feature|version|wave)\b|\bwave \d+\b|\bTODO\b", re.IGNORECASE)
    assert not stale.findall(page.read_text()), page.name


def test_the_readme_counts_the_torchvision_classifiers_it_checks() -> None:
    recorded = json.loads((ROOT / "tests" / "data" / "torch_measurements.json").read_text())["zoo"]
    classifiers = [name for name, entry in recorded.items() if entry["builder"].startswith("torchvision.models.") and not entry["builder"].startswith(("torchvision.models.segmentation.", "torchvision.models.video."))]
    assert f"{len(classifiers)} of torchvision's classifier constructors" in (ROOT / "README.md").read_text()


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_link_reaches_a_file_and_heading(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.DOTALL | re.MULTILINE)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)
            assert anchor in {_anchor(h) for h in headings}, f"{page.name}: {target}"
