"""Generation with a key/value cache (`--kv-cache`): the cache's bytes against the closed form
2 x layers x kv_heads x head_dim x bytes x B x S (Kwon et al. 2023, vLLM, §3) and against what
transformers' DynamicCache holds (tests/data/hf_measurements.json, recorded by tests/record_hf.py),
the prefill and decoding-step peaks derived by hand on a small decoder, and --fit solving for the
batch, the context, and the curve of both, checked at its boundaries (b fits, b + 1 does not).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SPECS
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import OptionError
from archcalc.figures.memory import MemoryOptions
from archcalc.figures.params import parameter_counts
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import load, load_data
from archcalc.symbolic.solve import fit
from archcalc.symbolic.symbols import symbol

HF = json.loads((Path(__file__).parent / "data" / "hf_measurements.json").read_text())["models"]

# one layer: q [S, 8] for 2 heads of 4, one key/value head (k and v [S, 4]), a head of 11 logits
TINY: dict[str, Any] = {
    "name": "tiny_decoder",
    "input": {"shape": ["S"], "dtype": "int64"},
    "symbols": {"S": 6},
    "layers": [
        {"name": "embed", "op": "embedding", "vocab": 11, "dim": 8},
        {"name": "q", "op": "linear", "out": 8, "from": "embed"},
        {"name": "k", "op": "linear", "out": 4, "from": "embed"},
        {"name": "v", "op": "linear", "out": 4, "from": "embed"},
        {"name": "key_cache", "op": "kv_cache", "from": "k"},
        {"name": "value_cache", "op": "kv_cache", "from": "v"},
        {"name": "attn", "op": "attention", "from": ["q", "key_cache", "value_cache"], "heads": 2, "kv_heads": 1, "causal": True},
        {"name": "head", "op": "linear", "out": 11},
    ],
}


def generation(network: Any, batch: Any = 1) -> Any:
    return analyze(network, MemoryOptions(batch=batch, kv_cache=True)).memory


def test_gpt2_cache_is_the_closed_form_symbolically() -> None:
    # GPT2Config: 12 layers, 12 heads of 64, every head its own keys and values; float32
    B, S = symbol("B"), symbol("S")
    m = generation(load(str(SPECS / "gpt2.yaml"), symbolic=True), B)
    assert m.generation.context == S
    assert (m.generation.cache - 2 * 12 * 12 * 64 * 4 * B * S).expand() == 0


def test_llama_cache_counts_the_key_value_heads_only() -> None:
    # grouped-query attention: 4 layers, 8 query heads sharing 2 key/value heads of 64
    B, S = symbol("B"), symbol("S")
    m = generation(load(str(SPECS / "llama_decoder.yaml"), symbolic=True), B)
    assert (m.generation.cache - 2 * 4 * 2 * 64 * 4 * B * S).expand() == 0


@pytest.mark.parametrize("name", sorted(n for n in HF if "kv_cache_bytes" in HF[n]))
def test_cache_equals_what_transformers_holds(name: str) -> None:
    """model(ids, use_cache=True).past_key_values: the keys and values of every layer, in bytes."""
    for point, recorded in HF[name]["kv_cache_bytes"].items():
        batch, length = map(int, point.split("x"))
        m = generation(load(str(SPECS / f"{name}.yaml"), input_shape=(length,)), batch)
        assert m.generation.cache == recorded, point


@pytest.mark.parametrize("name", sorted(n for n in HF if "kv_cache_bytes" in HF[n]))
def test_cache_against_live_transformers(name: str) -> None:
    """The same, run now on the meta device (no arithmetic) at a batch and length not recorded."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    record_hf = record_module()
    with torch.device("meta"):
        model = record_hf.build(torch, name, "sdpa").eval()
    measured = record_hf.cache_bytes(torch, model, torch.zeros(2, 40, dtype=torch.long, device="meta"))
    assert generation(load(str(SPECS / f"{name}.yaml"), input_shape=(40,)), 2).generation.cache == measured


def record_module() -> Any:
    """tests/record_hf.py, imported by path (it is a script)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("record_hf", Path(__file__).parent / "record_hf.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("record_hf", module)
    spec.loader.exec_module(module)
    return module


def test_prefill_and_decode_by_hand() -> None:
    """Per token in float32: ids 8 bytes, embed 32, q 32, k 16, v 16, each cache 16, attn 32,
    head 44. Layers run embed, q, k, v, key_cache, value_cache, attn, head (positions 0..7).

    Prefill over S tokens, the caches alive to the end, each other tensor to its last reader,
    the head for the last position only (44 bytes, generate()'s logits_to_keep=1); alive at each
    layer: embed 8S+32S = 40S, q 32S+32S = 64S, k 64S+16S = 80S, v 80S+16S = 96S, key_cache
    q+k+v+kc = 80S, value_cache q+v+kc+vc = 80S, attn q+kc+vc+attn = 96S, head kc+vc+attn+head =
    64S + 44: the peak is 96 S, first at v (for S >= 2). Without the cache policy the caches die
    after attn and the head holds all S positions: 32S + 44S = 76S at head, the peak 96 S at v too.

    One decoding step, 1 token: the same tensors at 1 token, the caches grown to S positions
    (16 S each) from their layer to the end, and the replaced caches (16 (S-1) each) from before
    the step to their torch.cat: embed 40 + 32(S-1) = 32S + 8, q 32S + 32, k 32S + 48, v 32S + 64,
    key_cache q+k+v 64 + kc 16S + old kc and vc 32(S-1) = 48S + 32, value_cache q+v 48 + kc+vc 32S
    + old vc 16(S-1) = 48S + 32, attn 64 + 32S, head 76 + 32S. At S = 6: 320 at key_cache, the
    first of the two at the maximum (attn 256, head 268).
    """
    S = 6
    m = generation(load_data(TINY), batch=3)
    g = m.generation
    assert g.cache == 3 * 2 * 1 * 1 * 4 * 4 * S  # 2 x layers x kv_heads x head_dim x bytes x B x S
    assert (g.prefill, g.prefill_layer) == (3 * 96 * S, "v")
    assert (g.decode, g.decode_layer) == (3 * (48 * S + 32), "key_cache")
    assert (m.inference_peak, m.peak_layer, g.phase) == (3 * 96 * S, "v", "prefill")
    plain = analyze(load_data(TINY), MemoryOptions(batch=3)).memory
    assert (plain.inference_peak, plain.peak_layer, plain.generation) == (3 * 96 * S, "v", None)


def test_prefill_and_decode_symbolically() -> None:
    """The same network in S: prefill's peak is the larger of 96S and 64S + 44 (the head wins at
    S = 1), the decoding step's the larger of 48S + 32 and 32S + 76 (the head wins at S = 1, 2)."""
    S = symbol("S")
    g = generation(load_data(TINY, symbolic=True)).generation
    for n in range(1, 9):
        assert g.prefill.subs(S, n) == max(96 * n, 64 * n + 44)
        assert g.decode.subs(S, n) == max(48 * n + 32, 32 * n + 76)
    assert g.cache == 32 * S


def test_a_single_token_generation_is_one_forward() -> None:
    """At S = 1 prefill and the decoding step run the same tensors (no cache to replace): the same peak."""
    g = generation(load_data(TINY, input_shape=(1,))).generation
    assert (g.prefill, g.decode) == (108, 108)


def test_the_cache_policy_changes_no_training_figure() -> None:
    network = load(str(SPECS / "gpt2.yaml"), input_shape=(64,))
    on, off = generation(network, 2), analyze(network, MemoryOptions(batch=2)).memory
    assert (on.training_total, on.training_activations) == (off.training_total, off.training_activations)


@pytest.mark.parametrize("name, why", [("resnet18", "it has no attention"), ("bert_base", "an encoder's")])
def test_a_network_without_a_cache_is_refused(name: str, why: str) -> None:
    with pytest.raises(OptionError, match=f"no layer of {name} caches keys and values: .*{why}"):
        generation(load(str(SPECS / f"{name}.yaml")))


# --- --fit -------------------------------------------------------------------------------------


def fits(name: str, batch: int, length: int, budget: int) -> bool:
    """The numeric route: the inference total at this batch and context, against the budget."""
    m = generation(load(str(SPECS / f"{name}.yaml"), input_shape=(length,)), batch)
    return m.inference_total <= budget


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["memory", *args, "--kv-cache", "-q"])


BUDGET = 2 << 30


@settings(max_examples=6, deadline=None)
@given(budget=st.integers(1_400, 400_000), batch=st.integers(1, 6))
def test_solver_against_brute_force(budget: int, batch: int) -> None:
    """On the small decoder: every curve point (b fits, b + 1 does not) and the longest context
    at a batch (it fits, one more token does not), each checked by the numeric figures alone."""
    symbolic = load_data(TINY, symbolic=True)
    shapes = output_shapes(symbolic)
    counts = parameter_counts(symbolic, shapes)

    def total(b: int, n: int) -> int:
        return int(generation(load_data(TINY, input_shape=(n,)), b).inference_total)

    try:
        curve = fit(symbolic, shapes, counts, MemoryOptions(batch=symbol("B"), kv_cache=True), budget, False).curve
    except OptionError:  # not even the weights fit
        assert total(1, 1) > budget
        return
    for n, b in curve:
        assert total(b, n) <= budget < total(b + 1, n), (n, b)
    longest = fit(symbolic, shapes, counts, MemoryOptions(batch=batch, kv_cache=True), budget, False).square_input
    if longest is None:
        assert total(batch, 1) > budget
    else:
        assert total(batch, longest) <= budget < total(batch, longest + 1)


def test_the_curve_of_largest_batches_over_the_context() -> None:
    result = run("gpt2", "--fit", "2GiB", "--batch", "B", "--input", "S", "--json")
    assert result.exit_code == 0, result.output
    curve = json.loads(result.output)["fit"]["curve"]
    lengths = [p["length"] for p in curve]
    assert lengths[:4] == [1, 2, 4, 8] and lengths[-1] <= 1024  # powers of two, the last where batch 1 fits
    assert [p["batch"] for p in curve] == sorted((p["batch"] for p in curve), reverse=True)
    for point in (curve[0], curve[len(curve) // 2], curve[-1]):
        n, b = point["length"], point["batch"]
        assert fits("gpt2", b, n, BUDGET) and not fits("gpt2", b + 1, n, BUDGET), point


def test_the_longest_context_at_a_batch() -> None:
    result = run("gpt2", "--fit", "1GiB", "--batch", "8", "--input", "S", "--json")
    found = json.loads(result.output)["fit"]
    longest = found["square_input"]
    assert "input_limit" not in found and longest < 1024  # memory, not the position table, ends it
    assert fits("gpt2", 8, longest, 1 << 30) and not fits("gpt2", 8, longest + 1, 1 << 30)


def test_the_longest_context_stops_at_the_position_table() -> None:
    # GPT-2's wpe has 1024 rows: memory would allow more at batch 1 in 24 GiB
    result = run("gpt2", "--fit", "24GiB", "--batch", "1", "--input", "S", "--json")
    found = json.loads(result.output)["fit"]
    assert (found["square_input"], found["input_limit"]) == (1024, 1024)


def test_the_largest_batch_at_a_context() -> None:
    result = run("llama_decoder", "--fit", "1GiB", "--input", "512")
    assert result.exit_code == 0, result.output
    batch = int(result.output.rsplit(":", 1)[1].replace(",", ""))
    assert fits("llama_decoder", batch, 512, 1 << 30) and not fits("llama_decoder", batch + 1, 512, 1 << 30)
    assert "at context 512" in result.output


def test_the_table_and_json_under_the_cache_policy() -> None:
    result = run("gpt2", "--batch", "2", "--input", "128", "--json")
    memory = json.loads(result.output)["memory"]
    assert memory["kv_cache"] is True and json.loads(result.output)["mode"] == "inference"
    assert memory["generation"]["cache"] == 2 * 12 * 12 * 64 * 4 * 2 * 128
    assert memory["inference_peak"] == max(memory["generation"]["prefill_peak"], memory["generation"]["decode_peak"])
    table = run("gpt2", "--batch", "2", "--input", "128").output
    assert "generating with a KV cache" in table and "18,874,368" in table  # the cache's bytes
    assert "Decode step peak" in table and "Training total" not in table


def test_json_is_valid_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from archcalc.schemas import output_schema

    for args in (("llama_decoder", "--input", "64", "--json"), ("llama_decoder", "--fit", "1GiB", "--batch", "B", "--input", "S", "--json")):
        jsonschema.Draft202012Validator(output_schema("memory")).validate(json.loads(run(*args).output))


def test_the_library_takes_the_policy_too() -> None:
    import archcalc

    g = archcalc.analyze("llama_decoder", batch=2, kv_cache=True).memory.generation
    assert g.cache == 2 * 4 * 2 * 64 * 4 * 2 * 128  # the spec's S = 128
    with pytest.raises(OptionError, match="kv_cache must be True or False"):
        archcalc.analyze("llama_decoder", kv_cache="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("command", [
    ["analyze", "llama_decoder", "--input", "32"],
    ["compare", "gpt2", "llama_decoder", "--input", "32"],
    ["formula", "llama_decoder"],
])
def test_every_command_s_json_under_the_policy_is_valid(command: list[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from archcalc.schemas import output_schema

    result = CliRunner().invoke(main, [*command, "--kv-cache", "--json", "-q"])
    assert result.exit_code == 0, result.output
    jsonschema.Draft202012Validator(output_schema(command[0])).validate(json.loads(result.output))


def test_sweep_refuses_the_policy_and_says_where_to_go() -> None:
    result = CliRunner().invoke(main, ["sweep", "gpt2", "--kv-cache", "--batch", "1..4", "-q"])
    assert result.exit_code == 2 and "memory --kv-cache --fit BUDGET --batch B --input S" in result.output


def test_explicit_training_is_refused() -> None:
    result = run("gpt2", "--train")
    assert result.exit_code == 2 and "--kv-cache sizes generation, which is inference" in result.output
