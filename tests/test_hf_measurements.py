"""archcalc against Hugging Face transformers' language models: GPT-2, BERT-base and a small LLaMA.

tests/record_hf.py measured each model, built from its config with dropout 0, in torch
(tests/data/hf_measurements.json, versions inside): parameters, buffers, output shape and
torch.utils.flop_counter FLOPs per sequence (attention on the math kernel, so its products
count), and the bytes autograd saves per sequence for attn_implementation eager, sdpa (the flash
kernel on the CPU) and sdpa on the math kernel, at 128 and 256 tokens. The recorded figures are
checked without torch; where torch and transformers are installed, the models are rebuilt on the
meta device and compared layer by layer (names, parameters) and in FLOPs.

What each attention implementation keeps: `--attention fused` is sdpa's flash kernel, `--attention
math` is torch's math kernel, and HF's eager attention keeps exactly what the math kernel keeps,
tensor for tensor in size (the query and key copies that matmul folds [N, heads, S, D] into,
the softmax's output, the value copy; the math kernel keeps q and k scaled instead of copied),
so eager equals `--attention math` to the byte (recorded, per model and length).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load

DATA = json.loads((Path(__file__).parent / "data" / "hf_measurements.json").read_text())
MODELS: dict[str, Any] = DATA["models"]
LENGTHS = ("128", "256")
# archcalc's --attention per recorded implementation
KERNELS = {"sdpa": "fused", "sdpa_math": "math", "eager": "math"}


def test_recorded_with_the_pinned_torch() -> None:
    assert DATA["torch"].startswith("2.14.1")
    assert set(MODELS) == {"gpt2", "bert_base", "llama_decoder"}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("length", LENGTHS)
def test_spec_matches_transformers(name: str, length: str) -> None:
    entry = MODELS[name]
    network = load(str(SPECS / f"{name}.yaml"), input_shape=(int(length),))
    got = analyze(network, MemoryOptions(batch=1))
    assert [got.totals.params, got.totals.buffers] == [entry["params"], entry["buffers"]]
    assert list(got.output_shape) == entry["output_shape"][length]
    assert got.totals.flops == entry["flops"][length]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("implementation", sorted(KERNELS))
def test_saved_bytes_per_sequence_match_transformers(name: str, implementation: str) -> None:
    recorded = MODELS[name]["saved_bytes_per_example"][implementation]
    for length in LENGTHS:
        network = load(str(SPECS / f"{name}.yaml"), input_shape=(int(length),))
        options = MemoryOptions(batch=1, attention=KERNELS[implementation])
        assert analyze(network, options).memory.training_activations == recorded[length], length


def test_the_published_parameter_counts() -> None:
    # transformers' num_parameters() as issue 14 quotes them (the model cards round to 124M, 110M)
    assert MODELS["gpt2"]["params"] == 124_439_808
    assert MODELS["bert_base"]["params"] == 109_482_240


def _meta_model(torch: Any, name: str) -> Any:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("record_hf", Path(__file__).parent / "record_hf.py")
    assert spec and spec.loader
    record_hf = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("record_hf", record_hf)
    spec.loader.exec_module(record_hf)
    with torch.device("meta"):
        return record_hf.build(torch, name, "sdpa").eval()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_layers_and_flops_against_live_transformers(name: str) -> None:
    """Each HF leaf module with parameters is the spec's layer of the same path, with as many
    parameters (a tied head: none of its own in archcalc, the table's in torch); the FLOPs of a
    forward at 128 tokens on the meta device (no arithmetic runs) equal archcalc's."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = _meta_model(torch, name)
    analysis = analyze(load(str(SPECS / f"{name}.yaml")), MemoryOptions(batch=1))
    layers = {r.path: r for r in analysis.layers}
    for path, module in model.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        if own and not list(module.children()):
            tied = layers[path].params.tied_to
            assert (layers[tied] if tied else layers[path]).params.params == own, path
    counter = FlopCounterMode(display=False)
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(ids)
    assert counter.get_total_flops() == analysis.totals.flops


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("implementation", sorted(KERNELS))
def test_formulas_in_the_sequence_length_give_what_transformers_kept(name: str, implementation: str) -> None:
    """`archcalc memory NAME --input S`: one formula in S (linear for the flash kernel, quadratic
    for the math kernel's attention matrices), equal to the recorded bytes at both lengths."""
    sympy = pytest.importorskip("sympy")
    network = load(str(SPECS / f"{name}.yaml"), input_shape=("S",))
    formula = analyze(network, MemoryOptions(batch=1, attention=KERNELS[implementation])).memory.training_activations
    s = sympy.Symbol("S", integer=True, positive=True)
    assert formula.free_symbols == {s}
    assert sympy.degree(formula, s) == (1 if KERNELS[implementation] == "fused" else 2)
    for length, recorded in MODELS[name]["saved_bytes_per_example"][implementation].items():
        assert formula.subs(s, int(length)) == recorded


BY_PRECISION = [(name, precision) for name, entry in sorted(MODELS.items())
                for precision in entry.get("saved_bytes_per_example_by_precision", {})]


@pytest.mark.parametrize(("name", "precision"), BY_PRECISION)
def test_saved_bytes_per_sequence_under_autocast_match_transformers(name: str, precision: str) -> None:
    """sdpa (the flash kernel) under torch.autocast("cpu", half), recorded by tests/record_hf.py
    (PRECISIONS): the residual stream, the embeddings and every layer norm stay float32, each
    linear layer keeps its own half copy of a float32 input."""
    for length, recorded in MODELS[name]["saved_bytes_per_example_by_precision"][precision].items():
        network = load(str(SPECS / f"{name}.yaml"), input_shape=(int(length),))
        options = MemoryOptions(batch=1, precision=precision)  # type: ignore[arg-type]
        assert analyze(network, options).memory.training_activations == recorded, length
