"""Attention on token tensors [S, E]: scaled dot-product attention (torch.nn.functional.
scaled_dot_product_attention, the heads split and merged as Hugging Face models do) and
torch.nn.MultiheadAttention (self-attention with its packed in-projection, as torchvision's ViT)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archcalc.arith import Dim, Shape, may_equal
from archcalc.errors import ShapeError
from archcalc.model import Field, model_validator
from archcalc.ops.base import (
    GLOBAL,
    MASK,
    AttentionKernel,
    Op,
    PositiveInt,
    ReceptiveStep,
    Saved,
    TorchCode,
    elements,
    expect_rank,
    literal,
    whole_axes_reads,
)
from archcalc.ops.window import np

SOFTMAX_FLOPS = 3
"""FLOPs per score of the softmax (exp, sum, divide), as the softmax op counts them."""


@dataclass(frozen=True)
class Heads:
    """The sizes of one attention: query heads, key/value heads, head_dim, query and key lengths."""

    heads: int
    kv_heads: int
    head_dim: Dim
    s: Dim
    s_kv: Dim

    @property
    def scores(self) -> Dim:
        """Elements of the attention matrix per example: heads * S * S_kv."""
        return self.heads * self.s * self.s_kv


def product_macs(h: Heads) -> Dim:
    """q k^T and attn v: 2 * heads * S * S_kv * head_dim multiply-accumulates, the two bmm of
    SDPBackend.MATH as torch.utils.flop_counter counts them (a causal mask skips none)."""
    return 2 * h.scores * h.head_dim


def score_flops(h: Heads, biased: bool) -> Dim:
    """Per score: the scale, the softmax, and the add of a bias or causal mask (not in the MACs)."""
    return h.scores * (1 + SOFTMAX_FLOPS + (1 if biased else 0))


Extra = tuple[tuple[Dim, str | None], ...]
"""New tensors kept for backward, as Saved.extra: (elements per example, dtype or None)."""


def sdpa_kept(h: Heads, dropout: float, bias: bool, kernel: AttentionKernel, v_copied: bool) -> tuple[bool, Extra]:
    """What scaled_dot_product_attention keeps for backward on the CPU: whether q, k, v and the
    output are kept as they are, and the new tensors it keeps (Saved.extra).

    The flash kernel (torch's `fused` choice, aten/src/ATen/native/transformers/sdp_utils_cpp.cpp
    picks it without dropout and without a float mask that needs a gradient; a bias input is taken
    to need one, as a learned bias does) keeps q, k, v, its output and a float32 log-sum-exp
    [heads, S]. Otherwise the math path (attention.cpp,
    _scaled_dot_product_attention_math) keeps q and k each scaled by sqrt(scale), the softmax's
    output [heads, S, S_kv], dropout's mask and dropped matrix, and v: a contiguous copy of the
    heads (repeated for grouped-query attention) when `v_copied`, else v itself (the caller's).
    """
    if kernel == "fused" and dropout == 0 and not bias:
        return True, ((h.heads * h.s, "float32"),)
    scaled = (h.heads * h.s * h.head_dim, h.heads * h.s_kv * h.head_dim)
    v = (h.heads * h.s_kv * h.head_dim,) if v_copied else ()
    dropped = ((h.scores, MASK), (h.scores, None)) if dropout > 0 else ()
    return False, (*((n, None) for n in (*scaled, h.scores, *v)), *dropped)


def split_heads(x: Any, heads: int) -> Any:
    """[N, S, heads*D] -> [N, heads, S, D], as view(N, S, heads, D).transpose(1, 2)."""
    n, s, width = x.shape
    return x.reshape(n, s, heads, width // heads).transpose(0, 2, 1, 3)


def attend(q: Any, k: Any, v: Any, bias: Any, causal: bool, scale: float) -> Any:
    """softmax(q k^T * scale + bias) v on [N, heads, S, D] arrays, k and v with as many heads;
    a causal mask keeps the keys j <= i (torch's is_causal: the top-left triangle); the softmax
    subtracts each row's maximum first, so large scores do not overflow."""
    scores = q @ k.swapaxes(-1, -2) * scale
    if bias is not None:
        scores = scores + bias
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], dtype=bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v


def merge_heads(x: Any) -> Any:
    """[N, heads, S, D] -> [N, S, heads*D], as transpose(1, 2).reshape(N, S, -1)."""
    n, heads, s, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, s, heads * d)


_SDPA = '''\
class ScaledDotProductAttention(nn.Module):
    """F.scaled_dot_product_attention on tokens [N, S, heads * D], the heads split and merged as Hugging
    Face models do; an additive bias [N, ...] broadcast to [N, heads, S, S_kv] from the right."""

    def __init__(self, heads, kv_heads, causal=False, dropout=0.0, scale=None):
        super().__init__()
        self.heads, self.kv_heads, self.causal, self.dropout, self.scale = heads, kv_heads, causal, dropout, scale

    def forward(self, q, k, v, bias=None):
        q = q.unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k, v = (t.unflatten(-1, (self.kv_heads, -1)).transpose(1, 2) for t in (k, v))
        causal = self.causal
        if bias is not None:
            bias = bias.reshape(bias.shape[0], *(1,) * (4 - bias.dim()), *bias.shape[1:])
            if causal:  # SDPA takes a mask or is_causal, not both: the causal mask joins the bias
                bias = bias + torch.full((q.shape[2], k.shape[2]), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
                causal = False
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0, is_causal=causal,
            scale=self.scale, enable_gqa=self.kv_heads != self.heads,
        )
        return out.transpose(1, 2).flatten(2)
'''


class Attention(Op):
    """Scaled dot-product attention over q [S, heads*D], k and v [S_kv, kv_heads*D] and an optional
    additive bias broadcastable to [heads, S, S_kv], the heads merged back: [S, heads*D]."""

    kind = "attention"
    aliases = ("scaled_dot_product_attention", "sdpa")
    autocast = "lower"  # scaled_dot_product_attention: CPU autocast's lower_precision_fp list
    min_inputs = 3
    max_inputs = 4
    attends = True

    heads: PositiveInt
    kv_heads: PositiveInt | None = None
    causal: bool = False
    dropout: float = Field(default=0.0, ge=0, lt=1)
    scale: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_heads(self) -> Attention:
        if self.heads % self.key_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.key_heads})")
        return self

    @property
    def key_heads(self) -> int:
        """The key/value heads (grouped-query attention), by default one per query head."""
        return self.kv_heads or self.heads

    def _heads(self, inputs: list[Shape]) -> Heads:
        q, k = inputs[0], inputs[1]
        return Heads(self.heads, self.key_heads, q[-1] // self.heads, q[0], k[0])

    def must_match(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        """k and v: the same length and width; a bias: each size 1 or the one it broadcasts to."""
        if len(inputs) < 3 or any(len(s) != 2 for s in inputs[:3]):
            return []
        h = self._heads(inputs)
        pairs = [(inputs[0][-1], h.heads * h.head_dim), (inputs[1][0], inputs[2][0])]
        pairs += [(k[-1], h.kv_heads * h.head_dim) for k in inputs[1:3]]
        if len(inputs) == 4 and len(inputs[3]) <= 3:
            target = (h.heads, h.s, h.s_kv)[3 - len(inputs[3]):]
            pairs += [(d, t) for d, t in zip(inputs[3], target) if not (isinstance(d, int) and d == 1)]
        return pairs

    def output_shape(self, inputs: list[Shape]) -> Shape:
        for shape, name in zip(inputs[:3], ("q", "k", "v")):
            if len(shape) != 2:
                raise ShapeError(f"attention's {name} must be tokens [S, heads*head_dim] (batch excluded), got {list(shape)}")
        if len(inputs) == 4 and len(inputs[3]) > 3:
            raise ShapeError(f"attention's bias must broadcast to [heads, S, S_kv], got {list(inputs[3])}")
        h = self._heads(inputs)
        if not all(may_equal(a, b) for a, b in self.must_match(inputs)):
            shapes = ", ".join(str(list(s)) for s in inputs)
            raise ShapeError(
                f"attention with {h.heads} heads and {h.kv_heads} key/value heads cannot take {shapes}: "
                f"q needs a width divisible by {h.heads} (heads x head_dim), k and v the same length and "
                f"kv_heads x head_dim = {h.kv_heads} x {h.head_dim} features, and a bias sizes that are 1 "
                f"or [{h.heads}, {h.s}, {h.s_kv}] from the right"
            )
        return inputs[0]

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        return product_macs(self._heads(inputs))

    def gradient_macs(self, inputs: list[Shape], output: Shape, trains: bool, input_grads: tuple[bool, ...]) -> Dim:
        """The backward of SDPBackend.MATH's two products, one product each (heads*S*S_kv*head_dim):
        dV = P^T dO for v, dP = dO V^T when q or k needs a gradient, then dQ = dS K, dK = dS^T Q."""
        q, k, v = input_grads[:3]
        return product_macs(self._heads(inputs)) // 2 * (q + k + v + (q or k))

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return score_flops(self._heads(inputs), len(inputs) == 4 or self.causal)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return GLOBAL  # every output token mixes every key and value token

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        return whole_axes_reads(inputs, axis, unit, range(len(inputs[0]) - 1))

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return self.saved_for_backward_with(inputs, output, "fused")

    def saved_for_backward_with(self, inputs: list[Shape], output: Shape, attention: AttentionKernel) -> Saved:
        """sdpa_kept on q, k, v split into heads by a view: the math path copies v's heads unless
        there is one head (then the view is contiguous and v's own storage is kept)."""
        h = self._heads(inputs)
        keeps_qkv, extra = sdpa_kept(h, self.dropout, len(inputs) == 4, attention, v_copied=h.heads > 1)
        if keeps_qkv:
            return Saved(inputs=(0, 1, 2), output=True, extra=extra)
        return Saved(inputs=() if h.heads > 1 else (2,), extra=extra)

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        """q, k and v split into heads (k and v repeated to every head), the bias broadcast, the
        scores three times over (the product, the exponentials, the weights) and the output."""
        h = self._heads(inputs)
        return elements(inputs[0]) + 2 * h.heads * h.s_kv * h.head_dim + 4 * h.scores + 2 * elements(output)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        q = split_heads(xs[0], self.heads)
        group = self.heads // self.key_heads
        k, v = (np.repeat(split_heads(x, self.key_heads), group, axis=1) for x in xs[1:3])
        bias = None
        if len(xs) == 4:
            bias = xs[3].reshape(len(xs[3]), *(1,) * (4 - xs[3].ndim), *xs[3].shape[1:])
        scale = self.scale if self.scale is not None else 1 / float(np.sqrt(q.shape[-1]))
        return merge_heads(attend(q, k, v, bias, self.causal, scale))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """ScaledDotProductAttention (defined in the file): torch has scaled_dot_product_attention
        but no module that splits and merges the heads around it."""
        settings = [self.heads, self.key_heads, self.causal, self.dropout, self.scale]
        return TorchCode(f"ScaledDotProductAttention({', '.join(map(literal, settings))})", defines=(_SDPA,))

    def describe(self) -> str:
        kv = f"/{self.kv_heads} kv" if self.kv_heads and self.kv_heads != self.heads else ""
        return f"{self.heads} heads{kv}" + (" causal" if self.causal else "")


class MultiheadAttention(Op):
    """torch.nn.MultiheadAttention(E, heads, dropout, bias, batch_first=True) as self-attention
    on tokens [S, E] with need_weights=False (torchvision's ViT): the packed in-projection, scaled
    dot-product attention with scale 1/sqrt(E/heads), then out_proj."""

    kind = "multihead_attention"
    autocast = "lower"  # its in- and out-projections (linear) and SDPA: CPU autocast's lower_precision_fp list
    attends = True
    init = {"in_proj_weight": "fan_in", "out_proj.weight": "fan_in"}

    heads: PositiveInt
    dropout: float = Field(default=0.0, ge=0, lt=1)
    bias: bool = True

    def _heads(self, inputs: list[Shape]) -> Heads:
        s, e = inputs[0]
        return Heads(self.heads, self.heads, e // self.heads, s, s)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        expect_rank(self, inputs[0], 2, "S, E")
        e = inputs[0][-1]
        if not may_equal(e, self.heads * (e // self.heads)):
            raise ShapeError(f"multihead_attention's embedding width {e} must be divisible by heads ({self.heads})")
        return inputs[0]

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        """As torch names them: in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight/.bias."""
        e = inputs[0][-1]
        weights = {"in_proj_weight": (3 * e, e), "out_proj.weight": (e, e)}
        if not self.bias:
            return weights
        return {"in_proj_weight": (3 * e, e), "in_proj_bias": (3 * e,), "out_proj.weight": (e, e), "out_proj.bias": (e,)}

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        """The in-projection (S x 3E x E), the two products of attention, out_proj (S x E x E)."""
        s, e = inputs[0]
        return 4 * s * e * e + product_macs(self._heads(inputs))

    def gradient_macs(self, inputs: list[Shape], output: Shape, trains: bool, input_grads: tuple[bool, ...]) -> Dim:
        """The projections' weight gradients (4 S E^2) when they train; the in-projection's input
        gradient (3 S E^2) when the input needs one; and, when anything does, out_proj's input
        gradient (S E^2) and both attention products' (2 x their forward: q, k and v all need one)."""
        s, e = inputs[0]
        recorded = trains or input_grads[0]
        return (4 * s * e * e if trains else 0) + (3 * s * e * e if input_grads[0] else 0) + (
            s * e * e + 2 * product_macs(self._heads(inputs)) if recorded else 0)

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        s, e = inputs[0]
        return (4 * s * e if self.bias else 0) + score_flops(self._heads(inputs), False)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return GLOBAL

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        return whole_axes_reads(inputs, axis, unit, range(len(inputs[0]) - 1))

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return self.saved_for_backward_with(inputs, output, "fused")

    def saved_for_backward_with(self, inputs: list[Shape], output: Shape, attention: AttentionKernel) -> Saved:
        """What F.multi_head_attention_forward keeps in train mode (torch/nn/functional.py), per
        example: the in-projection's input, a contiguous copy of x transposed to [S, N, E] (x
        itself at batch 1); the packed q, k, v [3, S, N, E], one storage whose views SDPA keeps
        (the math path keeps v, a view of it); sdpa_kept's new tensors; and the heads merged
        [S, N, E], out_proj's input, which is the flash kernel's output itself."""
        s, e = inputs[0]
        _, extra = sdpa_kept(self._heads(inputs), self.dropout, False, attention, v_copied=False)
        return Saved(extra=((s * e, None), (3 * s * e, None), *extra, (s * e, None)))

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        """The packed projection and its heads (6 S E), the scores three times over, the merged
        heads and out_proj's result (2 S E)."""
        return 8 * elements(inputs[0]) + 3 * self._heads(inputs).scores

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        packed = x @ weights["in_proj_weight"].T
        out_bias = 0
        if self.bias:
            packed, out_bias = packed + weights["in_proj_bias"], weights["out_proj.bias"]
        q, k, v = (split_heads(part, self.heads) for part in np.split(packed, 3, axis=-1))
        merged = merge_heads(attend(q, k, v, None, False, 1 / float(np.sqrt(q.shape[-1]))))
        return merged @ weights["out_proj.weight"].T + out_bias

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.MultiheadAttention called as torchvision's ViT calls it: self(x, x, x, need_weights=False)."""
        e = inputs[0][-1]
        module = f"nn.MultiheadAttention({literal(e)}, {literal(self.heads)}, dropout={literal(self.dropout)}, bias={self.bias}, batch_first=True)"
        return TorchCode(module, call="{m}({0}, {0}, {0}, need_weights=False)[0]")

    def describe(self) -> str:
        return f"{self.heads} heads"
