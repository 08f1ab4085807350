"""Token ids, embeddings, learned tensors the batch shares, and tied weights.

Expected figures are derived by hand in each test; where torch is installed, the same tiny
networks are built in torch and measured (parameters, and bytes autograd saves per example).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from torch_reference import saved_bytes

from archcalc.analysis import analyze
from archcalc.errors import SpecError
from archcalc.executor import execute, random_weights
from archcalc.figures.memory import MemoryOptions
from archcalc.figures.receptive_field import unit_extents
from archcalc.review.report import build_report
from archcalc.spec.graph import load_data
from archcalc.verify import verify

S, D, VOCAB = 8, 16, 50

LANGUAGE = {
    "name": "lm",
    "input": {"shape": [S], "dtype": "int64"},
    "layers": [
        {"name": "wte", "op": "embedding", "vocab": VOCAB, "dim": D},
        {"name": "ln", "op": "layernorm"},
        {"name": "head", "op": "linear", "out": VOCAB, "bias": False, "tied_to": "wte"},
    ],
}

# ViT's stem on a 3x16x16 image: 4x4 patches, a class token, a position embedding
PATCHES = (16 // 4) ** 2
VISION = {
    "name": "vit",
    "input": [3, 16, 16],
    "layers": [
        {"name": "conv_proj", "op": "conv2d", "out": D, "kernel": 4, "stride": 4},
        {"op": "flatten", "start_dim": 2},
        {"name": "tokens", "op": "transpose", "dim0": 1, "dim1": 2},
        {"name": "class_token", "op": "parameter", "shape": [1, D]},
        {"name": "cat", "op": "concat", "from": ["class_token", "tokens"], "dim": 1},
        {"name": "pos_embedding", "op": "parameter", "shape": [PATCHES + 1, D]},
        {"name": "add", "op": "add", "from": ["cat", "pos_embedding"]},
        {"name": "ln", "op": "layernorm"},
    ],
}


def test_tied_head_is_counted_once() -> None:
    a = analyze(load_data(LANGUAGE), MemoryOptions(batch=1))
    layers = {r.path: r for r in a.layers}
    # the table [VOCAB, D] once, layer norm's weight and bias; the head's weight is the table
    assert a.totals.params == VOCAB * D + 2 * D
    assert layers["head"].params.params == 0 and layers["head"].params.tied_to == "wte"
    # the head's weight trains (through the table), so it keeps its input for that gradient
    assert layers["head"].memory.saved == S * D * 4
    assert a.memory.gradients == a.totals.params * 4


def test_token_ids_are_int64_and_the_embedding_keeps_them() -> None:
    a = analyze(load_data(LANGUAGE), MemoryOptions(batch=1))
    layers = {r.path: r for r in a.layers}
    assert layers["wte"].memory.saved == S * 8  # the ids, int64, for the table's gradient
    assert layers["wte"].memory.output == S * D * 4
    # saved: ids (S*8); layer norm's input and its mean and rstd per row (S*D*4 + 2*S*4);
    # the head's input (S*D*4)
    assert a.memory.training_activations == S * 8 + S * D * 4 + 2 * S * 4 + S * D * 4


def test_class_token_and_position_embedding_are_shared_by_the_batch() -> None:
    a = analyze(load_data(VISION), MemoryOptions(batch=1))
    layers = {r.path: r for r in a.layers}
    assert layers["class_token"].params.params == D
    assert layers["pos_embedding"].params.params == (PATCHES + 1) * D
    assert layers["class_token"].memory.output == 0  # one copy whatever the batch
    assert layers["cat"].output_shape == (PATCHES + 1, D)
    # conv keeps the image; concat and add keep nothing; layer norm its input, mean and rstd
    assert a.memory.training_activations == 3 * 16 * 16 * 4 + (PATCHES + 1) * D * 4 + 2 * (PATCHES + 1) * 4


@pytest.mark.parametrize("spec", [LANGUAGE, VISION], ids=["language", "vision"])
def test_executor_agrees(spec: dict[str, Any]) -> None:
    assert verify(load_data(spec), batch=2).mismatches == ()


def test_executor_draws_ids_below_the_vocabulary_and_shares_the_table() -> None:
    network = load_data(LANGUAGE)
    weights = random_weights(network, seed=1, dtype="float64")
    assert set(weights) == {"wte", "ln"}  # the head has no arrays of its own
    ids = np.arange(S)[None, :] % VOCAB
    run = execute(network, ids, weights=weights, dtype="float64")
    ln = weights["ln"]
    rows = weights["wte"]["weight"][ids]
    normed = (rows - rows.mean(-1, keepdims=True)) / np.sqrt(rows.var(-1, keepdims=True) + 1e-5)
    expected = (normed * ln["weight"] + ln["bias"]) @ weights["wte"]["weight"].T
    np.testing.assert_allclose(run.output, expected, rtol=1e-10)


@pytest.mark.parametrize(("tied_to", "message"), [
    ("wt", "did you mean 'wte'"),
    ("ln", "does not match"),
    ("head", "not another layer"),
])
def test_bad_ties_are_clear_errors(tied_to: str, message: str) -> None:
    spec = {**LANGUAGE, "layers": [*LANGUAGE["layers"][:2], {**LANGUAGE["layers"][2], "tied_to": tied_to}]}
    with pytest.raises(Exception, match=message) as caught:
        analyze(load_data(spec), MemoryOptions())
    assert "head" in str(caught.value)


def test_a_parameter_takes_no_from() -> None:
    layers = [{"name": "x", "op": "linear", "out": 4}, {"op": "parameter", "shape": [4], "from": "x"}]
    with pytest.raises(SpecError, match="reads no input"):
        load_data({"name": "p", "input": [4], "layers": layers})


# ConvNeXt's layer scale on a 3x3 convolution: a [C, 1, 1] parameter times the branch, whose
# fields vary per unit after the permute (so the per-unit pass runs over the parameter too)
LAYER_SCALE = {
    "name": "layer_scale",
    "input": [2, 8, 8],
    "layers": [
        {"name": "conv", "op": "conv2d", "out": 4, "kernel": 3, "padding": 1},
        {"name": "gamma", "op": "parameter", "shape": [4, 1, 1]},
        {"name": "mul", "op": "mul", "from": ["gamma", "conv"]},
        {"name": "channels_last", "op": "permute", "dims": [0, 2, 3, 1]},
    ],
}


@pytest.mark.parametrize("spec", [VISION, LAYER_SCALE], ids=["vision", "layer_scale"])
def test_a_parameter_starts_a_path_that_reads_no_input(spec: dict[str, Any]) -> None:
    """Depth, the design review and receptive fields (per unit too) take a layer without
    inputs: it reads no input position and adds no weighted layer to the longest path."""
    network = load_data(spec)
    report = build_report(network, MemoryOptions())
    analysis = analyze(network, MemoryOptions())
    # one convolution on every path: conv_proj (VISION), conv (LAYER_SCALE)
    assert analysis.total("depth") == 1
    assert report.glance is not None
    extents = unit_extents(network, analysis.results["shapes"])
    if "gamma" in extents:
        # the parameter's units read nothing (first > last); the product reads what the 3x3
        # convolution with padding 1 reads: unit u sees positions u - 1 .. u + 1, clipped
        assert extents["gamma"] == [([8], [-1]), ([8], [-1])]
        first, last = extents["mul"][0]
        assert first == [max(u - 1, 0) for u in range(8)]
        assert last == [min(u + 1, 7) for u in range(8)]


def torch_language(torch: Any) -> Any:
    """The same network in torch: an embedding, a layer norm and a head tied to the table."""

    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = torch.nn.Embedding(VOCAB, D)
            self.ln = torch.nn.LayerNorm(D)
            self.head = torch.nn.Linear(D, VOCAB, bias=False)
            self.head.weight = self.wte.weight

        def forward(self, ids: Any) -> Any:
            return self.head(self.ln(self.wte(ids)))

    return Tied()


def torch_vision(torch: Any) -> Any:
    class Stem(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_proj = torch.nn.Conv2d(3, D, 4, 4)
            self.class_token = torch.nn.Parameter(torch.zeros(1, 1, D))
            self.pos_embedding = torch.nn.Parameter(torch.zeros(1, PATCHES + 1, D))
            self.ln = torch.nn.LayerNorm(D)

        def forward(self, x: Any) -> Any:
            x = self.conv_proj(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
            return self.ln(x + self.pos_embedding)

    return Stem()


@pytest.mark.parametrize(("spec", "build", "make"), [
    (LANGUAGE, torch_language, lambda torch, b: torch.randint(0, VOCAB, (b, S))),
    (VISION, torch_vision, lambda torch, b: torch.randn(b, 3, 16, 16)),
], ids=["language", "vision"])
def test_against_torch(spec: dict[str, Any], build: Any, make: Any) -> None:
    torch = pytest.importorskip("torch")
    model = build(torch).train()
    per_example = (saved_bytes(torch, model, (), 2, lambda b: make(torch, b))
                   - saved_bytes(torch, model, (), 1, lambda b: make(torch, b)))
    a = analyze(load_data(spec), MemoryOptions(batch=1))
    assert a.totals.params == sum(p.numel() for p in model.parameters())  # tied: counted once
    assert a.memory.training_activations == per_example


def test_sequence_length_as_a_symbol() -> None:
    """`--input S`: S (sympy's singleton's name) is a fine symbol; per token the ids (8 bytes),
    layer norm's input, mean and rstd (4*D + 8) and the head's input (4*D) are kept."""
    from archcalc.symbolic.symbols import symbol

    s, b = symbol("S"), symbol("B")
    network = load_data(LANGUAGE, input_shape=("S",))
    a = analyze(network, MemoryOptions(batch=b))
    assert a.output_shape == (s, VOCAB)
    assert (a.memory.training_activations - b * s * (8 + 4 * D + 8 + 4 * D)).expand() == 0


def test_formula_of_a_fixed_size_network_is_in_the_batch(tmp_path: Any) -> None:
    """ViT's position embedding fits one image size only: `formula` says so and writes the
    formulas in the batch, instead of failing on the H and W it names by default."""
    import json

    from click.testing import CliRunner

    from archcalc.cli import main

    path = tmp_path / "vit.json"
    path.write_text(json.dumps(VISION))
    result = CliRunner().invoke(main, ["formula", str(path), "--what", "memory", "--batch", "B"])
    assert result.exit_code == 0, result.output
    assert "takes its input at 3x16x16 only (layer 'add'" in result.stderr
    # per example: the image the convolution keeps, and layer norm's input, mean and rstd
    saved = 3 * 16 * 16 * 4 + (PATCHES + 1) * D * 4 + 2 * (PATCHES + 1) * 4
    assert f"training_activations = {saved}*B" in result.stdout
    named = CliRunner().invoke(main, ["formula", str(path), "--input", "3,H,W"])
    assert named.exit_code == 2 and "cannot add shapes" in named.stderr  # the user named them


@pytest.mark.parametrize("command", [["report"], ["rf", "--at", "add", "--unit", "0,0"], ["analyze", "--json"]])
def test_commands_take_a_tensor_with_no_input(tmp_path: Any, command: list[str]) -> None:
    """A learned [C, H, W] map added to a convolution's output: it reads no input position, so
    the fields and the depth are the convolution's."""
    import json

    from click.testing import CliRunner

    from archcalc.cli import main

    spec = {"name": "posmap", "input": [3, 8, 8], "layers": [
        {"name": "conv", "op": "conv2d", "out": 4, "kernel": 3, "padding": 1},
        {"name": "pos", "op": "parameter", "shape": [4, 8, 8]},
        {"name": "add", "op": "add", "from": ["conv", "pos"]},
    ]}
    path = tmp_path / "posmap.json"
    path.write_text(json.dumps(spec))
    result = CliRunner().invoke(main, [command[0], str(path), *command[1:]])
    assert result.exit_code == 0, result.output
    if command[0] == "rf":  # the corner unit: the 3x3 window clipped by the zero padding
        assert "rows 0..1 (2), columns 0..1 (2)" in result.stdout


def test_fit_solves_for_the_sequence_length(tmp_path: Any) -> None:
    """--fit with --input S: the largest batch as a formula in S, and at batch 1 the longest
    sequence, past the million the image search stops at: per token 144 bytes are kept
    (test_sequence_length_as_a_symbol) and the weights, gradients and Adam's two states take
    4 * 832 * 4 = 13,312 bytes."""
    import json

    from click.testing import CliRunner

    from archcalc.cli import main

    path = tmp_path / "lm.json"
    path.write_text(json.dumps(LANGUAGE))
    result = CliRunner().invoke(main, ["memory", str(path), "--fit", "1GiB", "--input", "S", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout)["fit"]
    longest = (2**30 - 13_312) // 144
    assert fit["square_input"] == longest == 7_456_448
    assert fit["per_example"] == "144*S"


def test_an_op_taking_a_range_of_inputs_says_the_range() -> None:
    """attention reads q, k and v, and an optional additive bias: 3 to 4 inputs."""
    with pytest.raises(SpecError, match=r"attention takes 3 to 4 input\(s\), got 1"):
        load_data({"name": "a", "input": [4, 6], "layers": [{"op": "attention", "heads": 2}]})
