"""Rotary position embedding (Su et al. 2021, RoFormer) as transformers' LLaMA applies it: a
table of cos and sin per position (LlamaRotaryEmbedding), then each query or key head rotated by
it (apply_rotary_pos_emb: x * cos + rotate_half(x) * sin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.arith import Dim, Shape, may_equal
from archcalc.errors import ShapeError
from archcalc.model import Field, model_validator
from archcalc.ops.base import Op, PositiveInt, Saved, TorchCode, elements, literal
from archcalc.ops.window import np

_ROTARY_EMBEDDING = '''\
class RotaryEmbedding(nn.Module):
    """cos and sin of positions x inv_freq, stacked [N, 2, S, head_dim] (transformers' LlamaRotaryEmbedding,
    default rope), inv_freq = 1 / theta^(2i / head_dim) computed from theta in float64 (the buffers hold it)."""

    def __init__(self, head_dim, theta=10000.0):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)
        self.register_buffer("original_inv_freq", inv_freq.float(), persistent=False)

    def forward(self, positions):
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float64, device=positions.device) / self.head_dim
        freqs = positions.double()[..., None] / self.theta**exponents
        angles = torch.cat((freqs, freqs), dim=-1)
        return torch.stack((angles.cos(), angles.sin()), dim=1).to(self.inv_freq.dtype)
'''


class RotaryEmbedding(Op):
    """cos and sin of position * inv_freq, stacked: position ids [S] give [2, S, head_dim], row 0
    cos and row 1 sin of (freqs, freqs), freqs = positions x inv_freq, inv_freq =
    1 / theta^(2i / head_dim) (LlamaRotaryEmbedding's default rope; its forward returns the two
    as a tuple). Buffers as model.buffers() counts them: inv_freq and original_inv_freq, each
    [head_dim / 2]. Shared by the batch (the positions are): nothing per example, and nothing
    kept for backward (nothing in it needs a gradient)."""

    kind = "rotary_embedding"
    per_example = False

    head_dim: PositiveInt
    theta: float = Field(default=10000.0, gt=0)

    @model_validator(mode="after")
    def _even(self) -> RotaryEmbedding:
        if self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even: rotary embedding rotates pairs of features")
        return self

    def output_shape(self, inputs: list[Shape]) -> Shape:
        if len(inputs[0]) != 1:
            raise ShapeError(f"rotary_embedding takes position ids [S] (sequence_ids), got {list(inputs[0])}")
        return (2, inputs[0][0], self.head_dim)

    def output_dtype(self, inputs: list[str]) -> str | None:
        return None  # cast to the activations' dtype, as LlamaRotaryEmbedding does

    def buffers(self, inputs: list[Shape]) -> dict[str, Shape]:
        return {"inv_freq": (self.head_dim // 2,), "original_inv_freq": (self.head_dim // 2,)}

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        """positions x inv_freq (S * head_dim/2), then cos and sin and their scaling (attention_scaling, 1)."""
        s = inputs[0][0]
        return s * (self.head_dim // 2) + 2 * elements(output)

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        return [()]  # positions, shared: no token's value

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        return 0  # shared by the batch

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """The buffers hold 1 / theta^(2i / head_dim); computed here from `theta` likewise, in
        float64, then float32 (the activations') unless the positions are float64 already."""
        dtype = np.float64 if xs[0].dtype == np.float64 else np.float32
        inv_freq = 1.0 / (self.theta ** (np.arange(0, self.head_dim, 2, dtype=np.float64) / self.head_dim))
        freqs = xs[0].astype(np.float64)[..., None] * inv_freq  # [1, S, head_dim / 2]
        emb = np.concatenate([freqs, freqs], axis=-1)
        return np.stack([np.cos(emb), np.sin(emb)], axis=1).astype(dtype)  # [1, 2, S, head_dim]

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """RotaryEmbedding (defined in the file), its buffers non-persistent as transformers' are."""
        return TorchCode(f"RotaryEmbedding({literal(self.head_dim)}, {literal(self.theta)})", defines=(_ROTARY_EMBEDDING,))

    def describe(self) -> str:
        return f"head_dim {self.head_dim}"


_ROTARY = '''\
def apply_rotary(x, table):
    """x * cos + rotate_half(x) * sin per head of tokens [N, S, heads * head_dim], a table [N, 2, S, head_dim]
    (transformers' apply_rotary_pos_emb; rotate_half(x) = cat(-x2, x1) of each head's two halves)."""
    heads = x.unflatten(-1, (-1, table.shape[-1]))
    cos, sin = table[:, 0, :, None], table[:, 1, :, None]
    x1, x2 = heads.chunk(2, dim=-1)
    return (heads * cos + torch.cat((-x2, x1), dim=-1) * sin).flatten(2)
'''


class Rotary(Op):
    """Rotates tokens [S, heads * head_dim] by a rotary table [2, S, head_dim] (rotary_embedding):
    per head, x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1) of x's two halves
    (transformers' apply_rotary_pos_emb, for the query or the key). The products keep cos and sin
    for x's gradient, which the batch shares: nothing per example; the sum is a new tensor."""

    kind = "rotary"
    min_inputs = 2
    max_inputs = 2

    def must_match(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        x, table = inputs
        if len(x) != 2 or len(table) != 3:
            return []
        head_dim = table[2]
        return [(x[0], table[1]), (x[1], head_dim * (x[1] // head_dim)), (table[0], 2)]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        x, table = inputs
        if len(x) != 2 or len(table) != 3:
            raise ShapeError(
                f"rotary takes tokens [S, heads*head_dim] and a table [2, S, head_dim] (rotary_embedding), "
                f"got {list(x)} and {list(table)}"
            )
        if not all(may_equal(a, b) for a, b in self.must_match(inputs)):
            raise ShapeError(
                f"rotary cannot rotate tokens {list(x)} by a table {list(table)}: the table needs the "
                f"tokens' length and a head_dim that divides their width"
            )
        return x

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        """Per element: x * cos, rotate_half's value * sin, their sum; the negated half: 1/2."""
        n = elements(output)
        return 3 * n + n // 2

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return Saved(for_partners=(1,))  # cos and sin, for x's gradient (shared: no bytes per example)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x, table = xs
        n, s, width = x.shape
        head_dim = table.shape[-1]
        heads = x.reshape(n, s, width // head_dim, head_dim)
        cos, sin = table[:, 0, :, None, :], table[:, 1, :, None, :]  # [1, S, 1, head_dim]
        half = head_dim // 2
        rotated = np.concatenate([-heads[..., half:], heads[..., :half]], axis=-1)
        return (heads * cos + rotated * sin).reshape(n, s, width)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """apply_rotary (defined in the file): transformers writes it as a function, not a module."""
        return TorchCode(call="apply_rotary({0}, {1})", defines=(_ROTARY,))

