"""Learned tables and tensors: an embedding looked up by token id, and a bare learnable tensor
(ViT's class token and position embedding), as torch.nn.Embedding and nn.Parameter hold them."""

from __future__ import annotations

from typing import Any

from archcalc.arith import Shape
from archcalc.model import Field
from archcalc.ops.base import NonNegativeInt, Op, Saved, Width


class Embedding(Op):
    """Row `i` of a [vocab, dim] table for each integer id `i` of the input: ids of any shape
    [...] give [..., dim] (torch.nn.Embedding(vocab, dim, padding_idx))."""

    kind = "embedding"
    index_bound = "vocab"

    vocab: Width
    dim: Width
    padding_idx: NonNegativeInt | None = None  # its row gets no gradient; counted all the same

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (*inputs[0], self.dim)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        return {"weight": (self.vocab, self.dim)}

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """The ids, for the weight gradient only (autograd's embedding_backward reads `indices`);
        ids never need a gradient themselves."""
        return Saved(for_weights=(0,))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return weights["weight"][xs[0]]

    def describe(self) -> str:
        return f"{self.vocab}x{self.dim}"


class Parameter(Op):
    """A learnable tensor of `shape` (batch excluded) that the whole batch shares, read with no
    input: ViT's class token [1, D] joined by a concat, its position embedding [S, D] added.
    Its one array's name is empty, so its full name is the layer's path (`class_token`), and
    PyTorch shapes it with a leading 1 for the batch ([1, 1, D])."""

    kind = "parameter"
    min_inputs = 0
    max_inputs = 0
    per_example = False

    shape: list[Width] = Field(min_length=1)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return tuple(self.shape)

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        return {"": (1, *self.shape)}

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> int:
        return 0  # the array itself, shared by the batch: no new tensor

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return weights[""]

    def describe(self) -> str:
        return "x".join(map(str, self.shape))
