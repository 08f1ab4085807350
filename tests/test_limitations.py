"""docs/limitations.md's workarounds give the figures the page states for them."""

from __future__ import annotations

import re
from pathlib import Path

import archcalc

PAGE = Path(__file__).resolve().parent.parent / "docs" / "limitations.md"


def _spec(name: str) -> str:
    """The page's ```yaml block whose spec has this name."""
    for block in re.findall(r"^```yaml\n(.*?)^```$", PAGE.read_text(), re.DOTALL | re.MULTILINE):
        if f"name: {name}\n" in block:
            return block
    raise AssertionError(f"no spec named {name} on the page")


def test_a_layer_applied_twice_through_tied_to() -> None:
    a = archcalc.analyze(archcalc.loads(_spec("unrolled")))
    assert a.totals.params == 16 * 16 + 16 == 272
    # the input (64 bytes) for the weight's gradient; act0's output, which step1 keeps as its
    # input too (one storage, 64); act1's output (64)
    assert a.memory.training_activations == 3 * 16 * 4 == 192
