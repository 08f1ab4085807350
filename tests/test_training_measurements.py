"""archcalc's training step against what PyTorch measured (tests/data/training_measurements.json,
written by tests/record_training.py): activation checkpointing's saved bytes and recomputation,
and the forward, backward and recomputation FLOPs. Runs without torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS

from archcalc.analysis import Analysis, analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load_data
from archcalc.spec.source import read_file

DATA = json.loads((Path(__file__).resolve().parent / "data" / "training_measurements.json").read_text())
ENTRIES: dict[str, Any] = DATA["entries"]
SPEC = {"resnet18": "resnet18", "resnet18_frozen": "resnet18", "resnet50": "resnet50", "gpt2": "gpt2"}


def spec_data(name: str) -> Any:
    """The spec torch's model was measured as: the zoo's, with the recorded modules frozen."""
    data = read_file(str(SPECS / f"{SPEC[name]}.yaml"))
    frozen = set(ENTRIES[name]["frozen"])
    for entry in data["layers"]:
        if entry.get("name") in frozen:
            entry["frozen"] = True
    return data


def step(name: str, checkpoint: tuple[str, ...] = ()) -> Analysis:
    entry = ENTRIES[name]
    network = load_data(spec_data(name), SPEC[name], input_shape=tuple(entry["input"]))
    return analyze(network, MemoryOptions(batch=1, checkpoint=checkpoint))


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_step_flops_equal_flop_counter(name: str) -> None:
    """flop_counter's forward, backward without checkpointing, and backward with every block
    checkpointed (which runs the recomputation): each exactly archcalc's."""
    measured = ENTRIES[name]["flops"]
    plain, checkpointed = step(name), step(name, ("every-block",))
    assert plain.total("training_forward_flops") == measured["forward"]
    assert plain.total("training_backward_flops") == measured["backward"]
    assert plain.total("training_recomputation_flops") == 0
    assert (checkpointed.total("training_backward_flops") + checkpointed.total("training_recomputation_flops")
            == measured["backward_checkpointed"])


@pytest.mark.parametrize("name", sorted(n for n in ENTRIES if "checkpointed" in ENTRIES[n] and n != "gpt2"))
def test_checkpointed_saved_bytes_equal_torch(name: str) -> None:
    """Every block checkpointed: the bytes kept after the forward, and the largest recomputation."""
    measured = ENTRIES[name]["checkpointed"]
    m = step(name, ("every-block",)).memory
    assert m.training_activations - m.recomputation == measured["saved_bytes_per_example"]
    assert m.recomputation == max(measured["recomputed_bytes_per_example"])


def test_checkpointed_gpt2_equals_transformers() -> None:
    """transformers' gradient checkpointing keeps each GPT2Block's input. It also turns the KV
    cache off (use_cache=False: GPT2Model passes no cache to a checkpointed block), so the block
    recomputed has no DynamicCache copies: the spec's kv_cache entries are dropped and attention
    reads key and value directly, as GPT2Attention then does."""
    measured = ENTRIES["gpt2"]["checkpointed"]
    data = spec_data("gpt2")
    attention = data["blocks"]["attention"]["layers"]
    attention[:] = [e for e in attention if e.get("op") != "kv_cache"]
    next(e for e in attention if e.get("name") == "sdpa")["from"] = ["query", "key", "value"]
    network = load_data(data, "gpt2", input_shape=tuple(ENTRIES["gpt2"]["input"]))
    m = analyze(network, MemoryOptions(batch=1, checkpoint=("transformer.h",))).memory
    assert m.training_activations - m.recomputation == measured["saved_bytes_per_example"]
    assert m.recomputation == max(measured["recomputed_bytes_per_example"])
    # the zoo's GPT-2 (cache on) keeps the same after the forward: the cache lives inside the blocks
    zoo = step("gpt2", ("every-block",)).memory
    assert zoo.training_activations - zoo.recomputation == measured["saved_bytes_per_example"]
