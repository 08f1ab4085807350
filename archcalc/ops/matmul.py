"""The product of two batched tensors, torch.matmul: the building block of attention written by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.arith import Dim, Shape, may_equal, product
from archcalc.errors import ShapeError
from archcalc.ops.base import Op, ReceptiveStep, Saved, TorchCode, elements
from archcalc.ops.window import np


def _is_one(d: Dim) -> bool:
    return isinstance(d, int) and d == 1


class MatMul(Op):
    """torch.matmul(a, b) on the batched tensors [N, ..., M, K] and [N, ..., K, P]: the last two
    axes multiply as matrices, the leading axes broadcast (per axis the sizes agree or one is 1),
    giving [N, ..., M, P] (attention's scores q @ k^T and its weighted sum attn @ v)."""

    kind = "matmul"
    autocast = "lower"  # matmul, bmm: CPU autocast's lower_precision_fp list
    min_inputs = 2
    max_inputs = 2

    def _check_ranks(self, inputs: list[Shape]) -> None:
        """Both per-example ranks equal and at least 2: torch.matmul aligns the batched tensors
        from the right, so any other pairing would meet one's batch axis with the other's features
        (or read a per-example vector [K] as a matrix [N, K] whose rows are the examples)."""
        a, b = inputs
        if len(a) < 2 or len(b) < 2:
            raise ShapeError(
                f"matmul needs matrices, got shapes {list(a)} and {list(b)} (batch excluded): torch.matmul "
                "on the batched tensors would read a per-example vector [K] as a matrix [N, K] whose "
                "rows are the examples; give a vector a size-1 axis ([1, K] or [K, 1], an unsqueeze)"
            )
        if len(a) != len(b):
            low, high = (a, b) if len(a) < len(b) else (b, a)
            fix = [*(1,) * (len(high) - len(low)), *low]
            raise ShapeError(
                f"cannot matmul shapes {list(a)} and {list(b)} (batch excluded): torch.matmul aligns "
                f"the batched tensors [N, ...] from the right, so the batch axis of the {len(low)}-axis "
                f"input would meet axis {len(high) - len(low) - 1} of the other, which holds at batch 1 "
                f"only; give it the shape {fix} (an unsqueeze) so its leading sizes broadcast"
            )

    def must_match(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        """The contracted sizes (a's last axis, b's second to last) and each leading pair of sizes
        neither of which is 1."""
        a, b = inputs
        if len(a) != len(b) or len(a) < 2:
            return []
        lead = [(x, y) for x, y in zip(a[:-2], b[:-2]) if not _is_one(x) and not _is_one(y)]
        return [(a[-1], b[-2]), *lead]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._check_ranks(inputs)
        a, b = inputs
        if not may_equal(a[-1], b[-2]):
            raise ShapeError(
                f"cannot matmul shapes {list(a)} and {list(b)}: the first's last size ({a[-1]}) must "
                f"equal the second's second-to-last size ({b[-2]})"
            )
        if any(not may_equal(x, y) for x, y in self.must_match(inputs)[1:]):
            raise ShapeError(
                f"cannot broadcast the leading axes of {list(a)} and {list(b)} together: on each "
                "axis the sizes must agree or be 1"
            )
        lead = tuple(y if _is_one(x) else x for x, y in zip(a[:-2], b[:-2]))
        return (*lead, a[-2], b[-1])

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        """M*K*P per matrix pair, times the broadcast leading sizes: torch.utils.flop_counter's
        bmm figure (2*b*M*K*P) halved."""
        return elements(output) * inputs[0][-1]

    def gradient_macs(self, inputs: list[Shape], output: Shape, trains: bool, input_grads: tuple[bool, ...]) -> Dim:
        """Each factor needing a gradient gets one product as large as the forward (grad @ b^T, a^T @ grad)."""
        return self.macs(inputs, output) * sum(input_grads)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """Each factor for the other's gradient (bmm keeps `self` when `mat2` needs a gradient and
        vice versa). A factor broadcast along a leading axis is first expanded and reshaped to
        [N*..., rows, cols], which copies it: bmm keeps that copy, of the broadcast size, in place
        of the input (measured: torch 2.14.1 at batch 2 and above; taken as kept whenever the op
        is recorded). Memory order is not tracked: a factor reshape must copy (a permuted input
        whose leading axes do not merge) is counted as its input, as reshape counts it."""
        copies: list[tuple[Dim, str | None]] = []
        partners: list[int] = []
        for i, shape in enumerate(inputs):
            if any(_is_one(d) and not _is_one(o) for d, o in zip(shape[:-2], output[:-2])):
                copies.append((product(list(output[:-2])) * shape[-2] * shape[-1], None))
            else:
                partners.append(i)
        return Saved(for_partners=tuple(partners), extra=tuple(copies))

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Output [.., m, p] reads a's row m (every k) and b's column p (every k); a leading axis
        is element-wise (position 0 of a size-1 axis)."""
        rank = len(inputs[0])
        a_axis = axis + 1  # per-example axis (0: the first, not spatial)
        reads: list[Sequence[int]] = []
        for i, shape in enumerate(inputs):
            contracted = rank - 1 if i == 0 else rank - 2
            if a_axis == contracted:
                reads.append(range(shape[a_axis]))
            else:
                reads.append((0,) if shape[a_axis] == 1 else (unit,))
        return reads

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return None  # no window: receptive_varies sends the pass to the reads

    def receptive_varies(self, inputs: list[Shape]) -> str:
        return "matmul reads every position of the contracted axis (the first input's last axis, the second's second to last)"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return np.matmul(xs[0], xs[1])

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call="torch.matmul({0}, {1})")
