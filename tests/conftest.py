"""Shared fixtures: paths to the zoo and a helper that writes a spec and analyses it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import pytest

from archcalc.analysis import Analysis, analyze
from archcalc.spec.graph import load

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture
def analyse_text(tmp_path: Path) -> Callable[[str], Analysis]:
    """Write YAML text to a file and analyse it."""

    def run(text: str, name: str = "net.yaml") -> Analysis:
        path = tmp_path / name
        path.write_text(text)
        return analyze(load(str(path)))

    return run


def zoo(name: str) -> Analysis:
    return analyze(load(str(SPECS / f"{name}.yaml")))


zoo_once = functools.lru_cache(maxsize=None)(zoo)  # a large spec analysed once for a test file's checks


# Hypothesis: a quick default for every run, a larger profile for nightly-style runs
# (HYPOTHESIS_PROFILE=nightly python -m pytest tests/test_executor_agreement.py).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "default"))
