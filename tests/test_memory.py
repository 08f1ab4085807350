"""Memory: hand derivations on small stacks, PyTorch's saved tensors on the zoo, and options."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main
from archcalc.figures.memory import MemoryOptions, largest_batch
from archcalc.figures.params import parameter_counts
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import load

SMALL = """
name: small
input: [1, 8, 8]
layers:
  - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}   # 4x8x8, 40 params
  - {name: relu, op: relu, inplace: true}
  - {name: pool, op: max_pool2d, kernel: 2}                    # 4x4x4
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out: 10}                            # 650 params
"""


def test_small_stack_by_hand(analyse_text) -> None:
    from archcalc.analysis import analyze

    network = analyse_text(SMALL).network
    m = analyze(network, MemoryOptions(batch=3, optimizer="adam")).memory
    # float32 tensors per example: input 64*4 = 256 B; conv output 256*4 = 1,024 B (the in-place
    # ReLU writes into it); pool output 64*4 = 256 B (flatten is a view of it); fc output 40 B.
    assert m.activations_sum == 3 * (1024 + 1024 + 256 + 256 + 40)
    # alive while conv runs: input + conv output = 1,280 B; later steps hold less.
    assert m.inference_peak == 3 * 1280
    assert m.peak_layer == "conv"
    # kept for backward: conv's input 256 + ReLU's output 1,024 + max-pool indices 64 int64 = 512
    # (its input is the ReLU output, already kept) + fc's input 256 = 2,048 B per example.
    assert m.training_activations == 3 * 2048
    params = 40 + 650
    assert m.weights == m.gradients == 4 * params
    assert m.optimizer_state == 2 * 4 * params  # Adam: two moments
    assert m.training_total == 4 * params * 4 + 3 * 2048


def test_frozen_layers_keep_nothing_before_the_first_trainable_one(analyse_text) -> None:
    from archcalc.analysis import analyze

    frozen = SMALL.replace("padding: 1}", "padding: 1, frozen: true}")
    m = analyze(analyse_text(frozen).network, MemoryOptions(optimizer="momentum")).memory
    assert m.training_activations == 256  # only fc's input
    assert m.gradients == 4 * 650
    assert m.optimizer_state == 4 * 650  # one momentum buffer, trainable parameters only


@pytest.mark.parametrize(
    ("optimizer", "copies"),
    [("sgd", 0), ("momentum", 1), ("nesterov", 1), ("adagrad", 1), ("rmsprop", 1),
     ("adadelta", 2), ("adam", 2), ("adamw", 2), ("nadam", 2), ("amsgrad", 3)],
)
def test_optimizer_state_copies(analyse_text, optimizer: str, copies: int) -> None:
    from archcalc.analysis import analyze

    m = analyze(analyse_text(SMALL).network, MemoryOptions(optimizer=optimizer)).memory
    assert m.optimizer_state == copies * 4 * 690


def test_dense_block_concatenations_stay_alive(analyse_text) -> None:
    from archcalc.analysis import analyze

    result = analyse_text(
        """
name: dense
input: [2, 4, 4]
layers:
  - {name: c1, op: conv2d, out: 2, kernel: 1}
  - {name: cat1, op: concat, from: [input, c1]}      # 4 channels
  - {name: c2, op: conv2d, out: 2, kernel: 1}
  - {name: cat2, op: concat, from: [cat1, c2]}       # 6 channels
"""
    )
    m = analyze(result.network, MemoryOptions(dtype="float16")).memory
    # 16 positions, 2 bytes: input 64 B, c1 64, cat1 128, c2 64, cat2 192.
    # Alive at cat2: cat1 (128) + c2 (64) + cat2 (192) = 384; at cat1: input + c1 + cat1 = 256.
    assert m.inference_peak == 384 and m.peak_layer == "cat2"


def test_ceil_mode_max_pool_keeps_int64_indices(analyse_text) -> None:
    result = analyse_text(
        "name: p\ninput: [1, 5, 5]\nlayers:\n  - {op: conv2d, out: 1, kernel: 1}\n"
        "  - {name: pool, op: max_pool2d, kernel: 2, ceil_mode: true}\n"
    )
    pool = next(r for r in result.layers if r.path == "pool")
    assert pool.output_shape == (1, 3, 3)  # ceil((5-2)/2)+1 = 3
    assert pool.memory.saved == 25 * 4 + 9 * 8  # its input and 9 int64 indices


@pytest.mark.parametrize(
    ("model", "saved"),
    [
        # torch 2.14.1 CPU, train mode, float32: bytes of the tensors autograd saves for
        # backward (saved_tensors_hooks, deduplicated by storage), batch 2 minus batch 1.
        ("resnet18", 22_179_840),
        ("resnet50", 85_909_504),
        ("vgg16", 73_355_264),
        ("alexnet", 3_741_184),
    ],
)
def test_training_activations_match_pytorch(model: str, saved: int) -> None:
    network = load(str(SPECS / f"{model}.yaml"))
    from archcalc.analysis import analyze

    measured = analyze(network, MemoryOptions(batch=1)).memory.training_activations
    assert abs(measured - saved) <= 0.05 * saved
    assert measured == saved  # in fact exact


def test_fit_finds_the_largest_batch_exactly() -> None:
    network = load(str(SPECS / "resnet18.yaml"))
    shapes = output_shapes(network)
    counts = parameter_counts(network, shapes)
    options = MemoryOptions(optimizer="sgd")
    params = 11_689_512
    fixed = 2 * 4 * params + 4 * 9_620  # weights and gradients, float32 buffers
    budget = fixed + 5 * 22_179_840
    assert largest_batch(network, shapes, counts, options, budget, train=True) == 5
    assert largest_batch(network, shapes, counts, options, budget - 1, train=True) == 4


@pytest.mark.parametrize("options", [
    MemoryOptions(dtype="float16", weight_dtype="float32", optimizer="adamw"),
    MemoryOptions(optimizer="momentum", precision="bf16-mixed"),
    MemoryOptions(dtype="float64", optimizer="amsgrad"),
])
@pytest.mark.parametrize("train", [True, False])
def test_fit_keeps_every_option_and_agrees_with_the_total_at_that_batch(analyse_text, options: MemoryOptions, train: bool) -> None:
    from dataclasses import replace

    from archcalc.figures.memory import memory

    network = analyse_text(SMALL).network
    shapes = output_shapes(network)
    counts = parameter_counts(network, shapes)

    def total(batch: int) -> int:
        m = memory(network, shapes, counts, replace(options, batch=batch))
        return m.training_total if train else m.inference_total

    budget = (total(37) + total(38)) // 2  # the totals at batches 37 and 38 differ by an example's bytes
    assert total(37) < budget < total(38)
    assert largest_batch(network, shapes, counts, replace(options, batch=5), budget, train) == 37


def test_mixed_precision_halves_activations_and_counts_the_master_copy_with_the_optimizer(analyse_text) -> None:
    from archcalc.analysis import analyze

    network = analyse_text(SMALL).network
    half = analyze(network, MemoryOptions(precision="bf16-mixed")).memory
    # ZeRO's mixed-precision Adam: 2 + 2 + (4 master + 4 + 4) bytes for each of the 690 parameters
    assert [half.weights, half.gradients, half.optimizer_state] == [690 * 2, 690 * 2, 690 * 12]
    # autocast: conv keeps a bf16 copy of the fp32 input (64 x 2), relu's bf16 output (256 x 2),
    # the pool its int64 indices (64 x 8) and fc its bf16 input (64 x 2)
    assert half.training_activations == 128 + 512 + 512 + 128


def test_memory_command_prints_the_table() -> None:
    result = CliRunner().invoke(main, ["memory", str(SPECS / "resnet18.yaml"), "--batch", "128"])
    assert result.exit_code == 0, result.output
    for word in ("Weights", "Inference peak", "Saved for backward", "Training total", "GiB"):
        assert word in result.stdout
    assert f"{128 * 22_179_840:,}" in result.stdout


@pytest.mark.parametrize(
    "args",
    [["--batch", "-3"], ["--dtype", "float13"], ["--optimizer", "lion"], ["--fit", "1KiB"], ["--fit", "lots"]],
)
def test_bad_memory_options_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["memory", str(SPECS / "resnet18.yaml"), *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.strip()


def test_adaptive_average_to_one_keeps_nothing(analyse_text) -> None:
    # PyTorch turns adaptive_avg_pool2d to 1x1 into a mean (nothing saved); to 2x2 it keeps its input.
    def saved(output: int) -> int:
        result = analyse_text(
            "name: a\ninput: [2, 4, 4]\nlayers:\n  - {op: conv2d, out: 2, kernel: 1}\n"
            f"  - {{name: pool, op: adaptive_avg_pool2d, output: {output}}}\n"
        )
        return next(r.memory.saved for r in result.layers if r.path == "pool")

    assert saved(1) == 0
    assert saved(2) == 2 * 4 * 4 * 4
