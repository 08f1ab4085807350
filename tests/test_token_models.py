"""What language models need beyond single ops: position ids and rotary tables the batch shares,
HF's Conv1D (a transposed linear), blocks that take a second input (LLaMA's rotary table in every
layer) and a layer returned beside the output (BertModel's pooler). Figures derived by hand.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from torch_reference import saved_bytes

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import ShapeError, SpecError
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load_data
from archcalc.verify import verify

S, H, D = 6, 2, 4  # tokens, heads, head_dim
E = H * D

ROTARY = {
    "name": "rope",
    "input": {"shape": [S], "dtype": "int64"},
    "blocks": {
        "attend": {
            "inputs": ["table"],
            "layers": [
                {"name": "q_proj", "op": "linear", "out": E, "bias": False, "from": "input"},
                {"name": "q", "op": "rotary", "from": ["q_proj", "table"]},
                {"name": "o_proj", "op": "linear", "out": E, "bias": False},
            ],
        },
    },
    "layers": [
        {"name": "embed", "op": "embedding", "vocab": 11, "dim": E},
        {"name": "position_ids", "op": "sequence_ids", "from": "input"},
        {"name": "rotary_emb", "op": "rotary_embedding", "head_dim": D},
        {"name": "layers", "block": "attend", "repeat": 2, "from": ["embed", "rotary_emb"]},
    ],
}


def test_a_block_takes_a_second_input_shared_by_every_copy() -> None:
    network = load_data(ROTARY)
    layers = {layer.path: layer for layer in network.layers}
    assert layers["layers.0.q"].inputs == ("layers.0.q_proj", "rotary_emb")
    assert layers["layers.1.q"].inputs == ("layers.1.q_proj", "rotary_emb")
    assert layers["layers.1.q_proj"].inputs == ("layers.0.o_proj",)  # the copies chain on `input`


def test_rotary_figures_by_hand() -> None:
    a = analyze(load_data(ROTARY), MemoryOptions(batch=1))
    layers = {r.path: r for r in a.layers}
    assert layers["rotary_emb"].output_shape == (2, S, D)
    # inv_freq and original_inv_freq, D/2 each: buffers as model.buffers() counts them
    assert a.totals.buffers == D
    assert layers["position_ids"].memory.output == 0 and layers["rotary_emb"].memory.output == 0
    # x*cos, rotate_half*sin, the sum: 3 per element, the negated half 1/2
    assert layers["layers.0.q"].flops.elementwise == 3 * S * E + S * E // 2
    # cos and sin are kept for x's gradient, but the batch shares them: nothing per example
    assert layers["layers.0.q"].memory.saved == 0
    # per copy: q_proj keeps the embedding (the first) or o_proj's output; o_proj keeps the
    # rotated q; the embedding keeps its ids (8 bytes each)
    assert a.memory.training_activations == 4 * S * E * 4 + S * 8


def test_rotary_verifies_against_the_executor() -> None:
    assert verify(load_data(ROTARY), batch=2).mismatches == ()


def test_a_block_given_the_wrong_number_of_inputs_is_a_clear_error() -> None:
    spec = {**ROTARY, "layers": [*ROTARY["layers"][:3], {**ROTARY["layers"][3], "from": "embed"}]}
    with pytest.raises(SpecError, match=r"takes 2 input\(s\) \(input, table\), got 1"):
        load_data(spec)


def test_an_input_name_is_a_name() -> None:
    blocks = {"attend": {**ROTARY["blocks"]["attend"], "inputs": ["input"]}}
    with pytest.raises(SpecError, match="input name 'input'"):
        load_data({**ROTARY, "blocks": blocks})


POOLED = {
    "name": "pooled",
    "input": {"shape": [S], "dtype": "int64"},
    "layers": [
        {"name": "embed", "op": "embedding", "vocab": 11, "dim": E},
        {"name": "ln", "op": "layernorm"},
        {"name": "first", "op": "slice", "dim": 1, "start": 0, "end": 1, "from": "ln"},
        {"name": "pool", "op": "linear", "out": E},
        {"name": "pooled", "op": "tanh", "returned": True},
    ],
    "output": "ln",
}


def test_a_returned_layer_may_be_left_unconnected_and_counts() -> None:
    a = analyze(load_data(POOLED), MemoryOptions(batch=1))
    assert a.output_shape == (S, E)
    assert a.totals.params == 11 * E + 2 * E + E * E + E
    # the pooler's linear keeps the slice's storage, the layer norm's whole output [S, E]; tanh
    # keeps its output [1, E]; layer norm keeps its input and two per-row statistics
    ln = S * E * 4 + 2 * S * 4
    assert a.memory.training_activations == S * 8 + ln + S * E * 4 + E * 4


def test_without_returned_an_unconnected_layer_is_an_error() -> None:
    layers = [*POOLED["layers"][:-1], {"name": "pooled", "op": "tanh"}]
    with pytest.raises(SpecError, match="never used"):
        load_data({**POOLED, "layers": layers})


def test_returned_belongs_on_one_op_entry() -> None:
    with pytest.raises(SpecError, match="'returned' is true or false"):
        load_data({**POOLED, "layers": [*POOLED["layers"][:-1], {"name": "pooled", "op": "tanh", "returned": "yes"}]})


BERT_IDS = {
    "name": "ids",
    "input": {"shape": ["S"], "dtype": "int64"},
    "symbols": {"S": S},
    "layers": [
        {"name": "position_ids", "op": "sequence_ids", "buffer": 16},
        {"name": "token_type_ids", "op": "sequence_ids", "values": "zeros", "buffer": 16, "from": "input"},
        {"name": "words", "op": "embedding", "vocab": 11, "dim": E, "from": "input"},
        {"name": "positions", "op": "embedding", "vocab": 16, "dim": E, "from": "position_ids"},
        {"name": "types", "op": "embedding", "vocab": 2, "dim": E, "from": "token_type_ids"},
        {"name": "add", "op": "add", "from": ["words", "positions", "types"]},
    ],
}


def test_buffered_ids_are_buffers_and_cost_nothing_per_example() -> None:
    a = analyze(load_data(BERT_IDS), MemoryOptions(batch=1))
    layers = {r.path: r for r in a.layers}
    assert a.totals.buffers == 2 * 16  # BertEmbeddings' position_ids and token_type_ids [1, 512]
    assert layers["position_ids"].output_shape == (S,)
    assert layers["positions"].memory.output == 0  # positions are the same for every example
    assert a.memory.training_activations == S * 8  # the word ids only (the add keeps nothing)


def test_buffered_ids_refuse_a_longer_sequence() -> None:
    with pytest.raises(ShapeError, match="at most 16 tokens"):
        analyze(load_data(BERT_IDS, input_shape=(17,)), MemoryOptions(batch=1))


def test_conv1d_is_a_transposed_linear() -> None:
    spec = {"name": "c", "input": [S, E], "layers": [{"name": "c_attn", "op": "linear", "out": 3 * E, "transposed": True}]}
    a = analyze(load_data(spec), MemoryOptions(batch=1))
    layer = a.layers[0]
    assert layer.params.params == E * 3 * E + 3 * E
    assert layer.flops.macs == S * E * 3 * E


def test_rotary_keeps_nothing_per_example_in_torch() -> None:
    """transformers' apply_rotary_pos_emb on q [N, heads, S, D] that needs a gradient: autograd's
    saved bytes do not grow with the batch (it keeps cos and sin, shared)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    cos, sin = torch.randn(1, S, D), torch.randn(1, S, D)
    weight = torch.randn(E, E, requires_grad=True)

    def model(x: Any) -> Any:
        q = (x @ weight).view(x.shape[0], S, H, D).transpose(1, 2)
        return apply_rotary_pos_emb(q, q, cos, sin)[0]

    measured = [saved_bytes(torch, model, (S, E), batch) for batch in (2, 3)]
    # only the matmul's input x [N, S, E] grows with the batch: one example's
    assert measured[1] - measured[0] == S * E * 4
    assert np.isfinite(measured).all()


def test_memory_of_gpt2_in_batch_and_sequence_length() -> None:
    """`archcalc memory gpt2 --input S --batch B`: exact formulas in S and B (1,112,848 bytes per
    token of a sequence, tests/test_hf_measurements.py checks it against transformers), and
    --fit in S: the longest sequence that fits at a given batch."""
    runner = CliRunner()
    shown = runner.invoke(main, ["memory", "specs/gpt2.yaml", "--input", "S", "--batch", "B"])
    assert shown.exit_code == 0, shown.output
    assert "1112848*B*S + 1991036928" in shown.output  # training: saved per token + weights, grads, adam
    fit = runner.invoke(main, ["memory", "specs/gpt2.yaml", "--input", "S", "--batch", "8", "--fit", "24GiB", "--json"])
    found = json.loads(fit.output)["fit"]
    # memory would take (24 GiB - 1,991,036,928) / (8 * 1,112,848) = 2670.6... tokens at batch 8,
    # but GPT-2 has 1,024 positions (n_positions): the network, not memory, sets the longest
    assert (24 * 2**30 - 1_991_036_928) // (8 * 1_112_848) == 2670
    assert found["square_input"] == found["input_limit"] == 1024
    fit = runner.invoke(main, ["memory", "specs/gpt2.yaml", "--input", "S", "--batch", "64", "--fit", "24GiB", "--json"])
    found = json.loads(fit.output)["fit"]
    # at batch 64 memory is what stops it: (24 GiB - 1,991,036,928) / (64 * 1,112,848) = 333.8...
    assert found["square_input"] == (24 * 2**30 - 1_991_036_928) // (64 * 1_112_848) == 333
    assert "input_limit" not in found


@pytest.mark.parametrize(("name", "largest"), [
    ("bert_base", 512),  # BertEmbeddings' position_ids buffer: max_position_embeddings
    ("gpt2", 1024),  # GPT2Config's n_positions: wpe's rows
    ("llama_decoder", None),  # rotary positions are computed for any length
])
def test_solve_answers_in_the_sequence_length(name: str, largest: int | None) -> None:
    solved = runner_json(["solve", f"specs/{name}.yaml", "--valid-inputs", "--input", "S", "--json"])
    (axis,) = solved["axes"]
    assert [axis["name"], axis["smallest_valid"], axis.get("largest_valid")] == ["S", 1, largest]
    assert axis["dropping"] == [] and axis["nearest_no_drop"] == 128  # no window along a sequence


def runner_json(args: list[str]) -> Any:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)
