"""Per-layer figures of the ops transformers are written with: matmul, rmsnorm, roll, reductions.

Each figure is derived by hand in the test (so CI, without torch, checks it); where torch is
installed the same figures are measured from torch: output shapes, torch.utils.flop_counter's
FLOPs (a matrix product of [M, K] by [K, P] is 2*M*K*P there, archcalc's MACs M*K*P), and the
bytes autograd keeps (saved-tensor hooks, each storage counted once).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archcalc.analysis import Analysis, analyze
from archcalc.errors import ArchcalcError
from archcalc.ops import REGISTRY
from archcalc.spec.graph import load

F32 = 4


def saved_bytes(torch: Any, call: Callable[..., Any], shapes: list[tuple[int, ...]], grads: list[bool], batch: int) -> int:
    """Bytes autograd keeps for backward of call(*inputs), each storage counted once."""
    storages: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    xs = [torch.randn(batch, *s, requires_grad=g) for s, g in zip(shapes, grads)]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        call(*xs)
    return sum(storages.values())


# --- matmul ---------------------------------------------------------------------------------------

# q [4, 7, 9] from a trained 1x1 convolution, k [1, 7, 9] from another, scores q @ k^T [4, 7, 7]:
# k^T [1, 9, 7] broadcasts over the 4 leading rows
BROADCAST = """\
name: scores
input: [2, 7, 9]
layers:
  - {name: q, op: conv2d, out: 4, kernel: 1}
  - {name: k, op: conv2d, out: 1, kernel: 1, from: input}
  - {name: kt, op: transpose, dim0: 2, dim1: 3}
  - {name: scores, op: matmul, from: [q, kt]}
"""


def test_matmul_figures_by_hand(analyse_text: Callable[[str], Analysis]) -> None:
    """[4, 7, 9] @ [1, 9, 7] = [4, 7, 7]; MACs 4 * 7 * 9 * 7 = 1,764, no parameters.
    Saved per example: the input (2*7*9 floats, both convolutions' weight gradients), q
    (4*7*9 floats) for k's gradient, and k^T expanded to the broadcast [4, 9, 7] and reshaped to
    [N*4, 9, 7], a copy (4*9*7 floats), for q's gradient."""
    layer = {r.path: r for r in analyse_text(BROADCAST).layers}["scores"]
    assert layer.output_shape == (4, 7, 7)
    assert layer.flops.macs == 4 * 7 * 9 * 7
    assert layer.flops.elementwise == 0
    assert layer.params.params == 0
    assert layer.memory.saved == (4 * 7 * 9 + 4 * 9 * 7) * F32
    total = analyse_text(BROADCAST).memory.training_activations
    assert total == (2 * 7 * 9 + 4 * 7 * 9 + 4 * 9 * 7) * F32


def test_matmul_figures_match_torch() -> None:
    """torch 2.14.1: at batch 1 the expanded k^T reshapes to a view (its stride-0 axis merges with
    a batch of 1), from batch 2 on to a copy, so per example is batch 3 minus batch 2."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    q, k = torch.nn.Conv2d(2, 4, 1), torch.nn.Conv2d(2, 1, 1)

    def net(x: Any) -> Any:
        return q(x) @ k(x).transpose(-2, -1)

    per_example = saved_bytes(torch, net, [(2, 7, 9)], [False], 3) - saved_bytes(torch, net, [(2, 7, 9)], [False], 2)
    assert per_example == (2 * 7 * 9 + 4 * 7 * 9 + 4 * 9 * 7) * F32
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        y = torch.matmul(torch.randn(2, 4, 7, 9), torch.randn(2, 1, 9, 7))
    assert tuple(y.shape[1:]) == (4, 7, 7)
    assert counter.get_total_flops() == 2 * 2 * (4 * 7 * 9 * 7)  # batch 2, 2 FLOPs per MAC


@pytest.mark.parametrize(("a", "b", "message"), [
    ((3, 4), (5, 6), "last size"),
    ((2, 3, 4), (3, 4, 5), "broadcast"),
    ((3, 4), (2, 4, 5), "unsqueeze"),
    ((4,), (4, 5), "vector"),
])
def test_matmul_refuses_what_torch_refuses_or_misreads(a: tuple[int, ...], b: tuple[int, ...], message: str) -> None:
    with pytest.raises(ArchcalcError, match=message):
        REGISTRY["matmul"]().output_shape([a, b])


def test_matmul_receptive_reads() -> None:
    """[4, 7, 9] @ [4, 9, 5]: output row m (spatial axis 0) reads a's row m and every row of b;
    output column p (axis 1) reads every column of a and b's column p."""
    op = REGISTRY["matmul"]()
    shapes = [(4, 7, 9), (4, 9, 5)]
    assert [list(r) for r in op.receptive_reads(shapes, 0, 3)] == [[3], list(range(9))]
    assert [list(r) for r in op.receptive_reads(shapes, 1, 2)] == [list(range(9)), [2]]


def test_matmul_in_sequence_length_symbols(tmp_path: Path) -> None:
    """Scores of an [L, 8] sequence with itself: [L, L], L*8*L MACs."""
    from archcalc.symbolic.symbols import symbol

    path = tmp_path / "att.yaml"
    path.write_text(
        "name: att\ninput: [L, 8]\nsymbols: {L: 16}\nlayers:\n"
        "  - {name: t, op: transpose, dim0: 1, dim1: 2}\n"
        "  - {name: s, op: matmul, from: [input, t]}\n"
    )
    layer = analyze(load(str(path), symbolic=True)).layers[-1]
    length = symbol("L")
    assert layer.output_shape == (length, length)
    assert (layer.flops.macs - 8 * length**2).expand() == 0


# --- rmsnorm ----------------------------------------------------------------------------------------

TOKENS = """\
name: tokens
input: [3, 8]
layers:
  - {name: proj, op: linear, out: 8}
  - {name: norm, op: rmsnorm, implementation: IMPLEMENTATION}
"""


@pytest.mark.parametrize("implementation", ["torch", "hf"])
def test_rmsnorm_figures_by_hand(analyse_text: Callable[[str], Analysis], implementation: str) -> None:
    """[3, 8] tokens, normalised over the 8 features: 3 rows. Parameters: the weight, 8.
    Element-wise: 4 per element (square, sum, scale, weight) and 2 per row (eps, rsqrt),
    4*24 + 2*3 = 102; no matrix product. Saved in float32: the input (24 floats, proj's
    output), 3 rsqrt values and the normalised result (24 floats): (24 + 3 + 24) * 4 = 204."""
    layer = analyse_text(TOKENS.replace("IMPLEMENTATION", implementation)).layers[-1]
    assert layer.output_shape == (3, 8)
    assert layer.params.params == 8
    assert layer.flops.macs == 0
    assert layer.flops.elementwise == 4 * 24 + 2 * 3
    assert layer.memory.saved == (24 + 3 + 24) * F32


def test_rmsnorm_counts_no_flops_in_torch() -> None:
    """torch.utils.flop_counter counts no matrix product in RMSNorm (archcalc's MACs: 0)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        torch.nn.RMSNorm(8)(torch.randn(2, 3, 8))
    assert counter.get_total_flops() == 0


# --- roll -----------------------------------------------------------------------------------------

ROLLED = """\
name: shifted
input: [2, 8]
layers:
  - {name: conv, op: conv1d, out: 2, kernel: 3, padding: 1}
  - {name: roll, op: roll, shifts: 2, dims: 2}
"""


def test_roll_figures_by_hand(analyse_text: Callable[[str], Analysis]) -> None:
    """torch.roll copies (2*8 floats out) with no arithmetic and keeps nothing for backward
    (RollBackward0 rolls the gradient back by -shifts): only the convolution's input, 2*8 floats."""
    analysis = analyse_text(ROLLED)
    layer = analysis.layers[-1]
    assert layer.output_shape == (2, 8)
    assert (layer.params.params, layer.flops.macs, layer.flops.elementwise) == (0, 0, 0)
    assert layer.memory.saved == 0
    assert analysis.memory.training_activations == 2 * 8 * F32


def test_roll_fields_by_hand(tmp_path: Path) -> None:
    """Shift 2 on 8 positions: output unit u reads conv unit (u - 2) mod 8, whose field is
    [u - 3, u - 1] clipped to the input: unit 0 reads conv unit 6 (inputs 5..7), unit 1 unit 7
    (6..7, the padding read nothing), unit 2 unit 0 (0..1), unit 5 unit 3 (2..4)."""
    from archcalc.figures.receptive_field import unit_extents
    from archcalc.figures.shapes import output_shapes

    path = tmp_path / "shifted.yaml"
    path.write_text(ROLLED)
    network = load(str(path))
    first, last = unit_extents(network, output_shapes(network))["roll"][0]
    assert [(first[u], last[u]) for u in (0, 1, 2, 5)] == [(5, 7), (6, 7), (0, 1), (2, 4)]


@pytest.mark.parametrize(("fields", "shape"), [
    ({"shifts": 1, "dims": 0}, (3, 4)),  # the batch
    ({"shifts": 1, "dims": 3}, (3, 4)),  # no such axis
])
def test_roll_refuses_axes_it_cannot_roll(fields: dict[str, Any], shape: tuple[int, ...]) -> None:
    with pytest.raises(ArchcalcError, match="not a feature axis"):
        REGISTRY["roll"](**fields).output_shape([shape])


def test_roll_refuses_unaligned_shifts() -> None:
    with pytest.raises(ValueError, match="must align"):
        REGISTRY["roll"](shifts=[1, 2], dims=[1])
