"""What PyTorch keeps for one GPT-style transformer layer on the CPU, against archcalc and against
Korthikanti et al. 2022's sbh(34 + 5as/h): recorded by tests/record_korthikanti.py into
tests/data/korthikanti_measurements.json (checked without torch), and measured again where torch is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load

DATA = Path(__file__).parent / "data"
RECORD = json.loads((DATA / "korthikanti_measurements.json").read_text())
S, H, A = RECORD["s"], RECORD["h"], RECORD["heads"]


def archcalc_saved(dtype: str, **options: object) -> int:
    network = load(str(DATA / "korthikanti_block.yaml"))
    return analyze(network, MemoryOptions(dtype=dtype, attention="math", **options)).memory.training_activations  # type: ignore[arg-type]


def test_float32_layer_equals_pytorch() -> None:
    assert archcalc_saved("float32") == RECORD["float32"]["saved_bytes_per_sequence"]  # 1,378,304


def test_bfloat16_layer_is_korthikanti_plus_masks_and_norm_statistics() -> None:
    korthikanti = S * H * (34 + 5 * A * S // H)  # sbh(34 + 5as/h), b = 1: 606,208 bytes
    # PyTorch on the CPU keeps each dropout mask as the scaled noise in the input's dtype: 2 bytes
    # an element where the paper counts 1, for attention's [a, s, s] mask and the two [s, h] ones
    masks = A * S * S + 2 * S * H
    # and each layer norm its mean and 1/std per row, in the input's dtype (bfloat16) here
    norm_statistics = 2 * 2 * S * 2
    assert RECORD["bfloat16"]["saved_bytes_per_sequence"] == korthikanti + masks + norm_statistics  # 689,152
    # archcalc with the paper's 1-byte masks is the paper's figure plus the statistics, which it
    # prices in the parameters' type as layer_norm_cpu keeps them (bfloat16 in a layer cast to it)
    assert archcalc_saved("bfloat16", dropout_mask="bool") == korthikanti + norm_statistics
    assert archcalc_saved("bfloat16") == RECORD["bfloat16"]["saved_bytes_per_sequence"]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_record_equals_pytorch_now(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    from record_korthikanti import kept, layer

    torch.manual_seed(0)
    model = layer(torch).to(getattr(torch, dtype))
    two, three = kept(torch, model, 2, getattr(torch, dtype)), kept(torch, model, 3, getattr(torch, dtype))
    assert sum(three.values()) - sum(two.values()) == RECORD[dtype]["saved_bytes_per_sequence"]
