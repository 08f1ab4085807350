"""Training FLOPs per step (figures.training): backward and recomputation by hand on a small
network, and GPT-2's step against Kaplan et al.'s 6N per token, the formula derived here."""

from __future__ import annotations

from typing import Any

from conftest import SPECS

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.figures.training import non_embedding_params, training_json
from archcalc.spec.graph import load, load_data


def mlp(frozen_first: bool = False, checkpoint: bool = False) -> dict[str, Any]:
    """Features [16] -> linear 32 -> ReLU -> linear 8, the last two layers a block."""
    return {
        "name": "mlp", "input": [16],
        "blocks": {"head": {"layers": [{"name": "act", "op": "relu"}, {"name": "out", "op": "linear", "out": 8}]}},
        "layers": [
            {"name": "fc", "op": "linear", "out": 32, "frozen": frozen_first},
            {"name": "head", "block": "head", "checkpoint": checkpoint},
        ],
    }


def test_backward_counts_the_gradients_autograd_computes() -> None:
    """fc: 16*32 = 512 MACs, out: 32*8 = 256 MACs, 2 FLOPs each. The input needs no gradient,
    so fc computes only its weight gradient (512 MACs) and out both its own (2 x 256). With fc
    frozen, nothing before out needs a gradient: out computes its weight gradient alone (256)."""
    trains = analyze(load_data(mlp()))
    assert trains.total("training_forward_flops") == 2 * (512 + 256)
    assert trains.total("training_backward_flops") == 2 * (512 + 2 * 256)
    frozen = analyze(load_data(mlp(frozen_first=True)))
    assert frozen.total("training_backward_flops") == 2 * 256


def test_recomputation_stops_at_the_last_saved_tensor() -> None:
    """torch.utils.checkpoint's early stop: the recomputed head saves ReLU's output (after the
    ReLU runs) and then `out`'s input and weight, which autograd saves before the product runs,
    so the recomputation ends there and `out`'s 256 MACs are not run again."""
    plain = analyze(load_data(mlp()))
    checkpointed = analyze(load_data(mlp(checkpoint=True)))
    assert checkpointed.total("training_recomputation_flops") == 0
    assert checkpointed.total("training_backward_flops") == plain.total("training_backward_flops")
    step = training_json(analyze(load_data(mlp(checkpoint=True)), MemoryOptions(batch=4)))
    assert step["step_flops_at_batch"] == 4 * 2 * (512 + 256 + 512 + 2 * 256)


def test_gpt2_step_is_six_n_per_token_plus_attention_and_the_output_head() -> None:
    """Kaplan et al. (2020, Table 1): a forward costs 2N FLOPs per token plus attention, N the
    non-embedding parameters; a step 3x that (6N). What torch runs, per token at context S:
    - the products with weights: per layer c_attn (3 d^2), attn.c_proj (d^2), c_fc (4 d^2) and
      mlp.c_proj (4 d^2), W = 12 L d^2 in all, 2W forward and 4W backward: 6W;
    - attention's two products (q k^T and the scores times v, S*d MACs each per token, the causal
      mask skipping none): 4 L S d forward, 8 L S d backward: 12 L S d, the term 6N leaves out;
    - the output head tied to the token embedding (d x V, not in N): 2 d V forward, 4 d V
      backward (the input's gradient and the tied weight's): 6 d V.
    N also holds biases and layer norms, which do no products: N - W of them."""
    L, d, V, S = 12, 768, 50257, 128
    analysis = analyze(load(str(SPECS / "gpt2.yaml"), input_shape=(S,)))
    W = 12 * L * d * d
    N = non_embedding_params(analysis)
    assert N == 124_439_808 - V * d - 1024 * d  # transformers' count less wte and wpe
    exact = analysis.total("training_flops")
    assert exact == S * (6 * W + 12 * L * S * d + 6 * d * V)
    kaplan = 6 * N * S + 12 * L * S * d * S
    assert exact - kaplan == S * (6 * d * V - 6 * (N - W))
    assert 0.30 < (exact - kaplan) / exact < 0.31  # the head is 30% of GPT-2 small's step
    step = training_json(analysis)
    assert (step["tokens_per_step"], step["six_n_flops_at_batch"]) == (S, 6 * N * S)


def test_gpt2_step_formula_in_the_sequence_length() -> None:
    """The same figure symbolically: one formula in S, quadratic through attention."""
    network = load(str(SPECS / "gpt2.yaml"), input_shape=("S",))
    S = network.symbols["S"]
    L, d, V = 12, 768, 50257
    step = analyze(network).total("training_flops")
    assert (step - S * (72 * L * d * d + 12 * L * S * d + 6 * d * V)).expand() == 0
