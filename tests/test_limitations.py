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


def test_the_transformer_layer_without_its_attention_products() -> None:
    a = archcalc.analyze(archcalc.loads(_spec("encoder_layer")))
    d, n = 384, 196
    # nn.TransformerEncoderLayer(d, 6, 4d): in_proj 3d*d + 3d, out_proj d*d + d, linear1 d*4d + 4d,
    # linear2 4d*d + d, norm1 and norm2 2d each
    assert a.totals.params == (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d) + 4 * d == 12 * d * d + 13 * d
    assert a.totals.params == 1_774_464
    # per token: d*3d + d*d + d*4d + 4d*d multiply-accumulates
    assert a.totals.macs == n * (3 * d * d + d * d + 4 * d * d + 4 * d * d) == 346_816_512
    assert a.totals.output == (n, d)
    # what the page says to add by hand: QK^T and the weighted sum of V, N^2 * d each
    assert 2 * n * n * d == 29_503_488
