"""The JSON contracts (`analyze --json`, `compare --json`, `report --format json`), byte for byte, on
a few networks: a refactoring changes no figure.

The golden files are the contract as it stood when it was pinned; when a change to them is
intended, regenerate with `ARCHCALC_REGOLD=1 python -m pytest tests/test_golden_json.py` and
review the diff by eye.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main

ROOT = SPECS.parent

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"

CASES = {
    "resnet18": ["analyze", "specs/resnet18.yaml", "--json"],
    "inception_v3": ["analyze", "specs/inception_v3.yaml", "--batch", "8", "--dtype", "float16", "--json"],
    "unet": ["analyze", "specs/unet.yaml", "--optimizer", "rmsprop", "--json"],
    "neon_cnn1_symbolic": ["analyze", "specs/neon_cnn1.yaml", "--symbolic", "--input", "3,H,W", "--batch", "B", "--json"],
    "transfer": ["analyze", "tests/data/golden/transfer.yaml", "--batch", "4", "--precision", "bf16-mixed", "--optimizer", "sgd", "--json"],
    "compare": ["compare", "specs/resnet18.yaml", "specs/unet.yaml", "--batch", "16", "--json"],
    "report_resnet50": ["report", "specs/resnet50.yaml", "--format", "json"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_is_unchanged(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths in the output are as given: relative to the checkout
    result = CliRunner().invoke(main, CASES[case])
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{case}.json"
    if os.environ.get("ARCHCALC_REGOLD"):
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()
