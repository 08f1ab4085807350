"""Integer ids per token position that the whole batch shares: position ids (GPT-2 and LLaMA
compute torch.arange(S) in every forward; BERT slices a registered buffer) and BERT's token type
ids (a buffer of zeros), as Hugging Face transformers builds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from archcalc.arith import Dim, Shape, provably_below
from archcalc.errors import ShapeError
from archcalc.ops.base import Op, PositiveInt, TorchCode, literal
from archcalc.ops.window import np


class SequenceIds(Op):
    """[S] int64 ids for a sequence of S tokens (the input's first axis; its values are not
    read): `values: positions` gives 0..S-1, `zeros` gives 0s. Without `buffer` they are computed
    per forward (GPT2Model's and LlamaModel's torch.arange); with `buffer: L` they are the first
    S of a registered [1, L] buffer (BertEmbeddings' position_ids and token_type_ids,
    max_position_embeddings long), a buffer as model.buffers() counts it, persistent or not;
    `max_length` bounds S without a buffer (GPT-2's positions index wpe's 1024 rows).
    Shared by the batch: no memory per example, nothing to keep for backward, no arithmetic."""

    kind = "sequence_ids"
    per_example = False
    init = {"": "count"}  # int64, as HF's buffers (their values are what `values` says)

    values: Literal["positions", "zeros"] = "positions"
    buffer: PositiveInt | None = None
    max_length: PositiveInt | None = None  # without a buffer: the rows of the table the ids index (GPT-2's wpe, 1024)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        if not inputs[0]:
            raise ShapeError("sequence_ids needs a sequence: an input [S] of token ids or [S, D] of tokens")
        length = inputs[0][0]
        if self.buffer is not None and provably_below(self.buffer - length, 0):
            raise ShapeError(
                f"sequence_ids reads the first {length} ids of a buffer of {self.buffer} "
                f"(max_position_embeddings): the sequence is at most {self.buffer} tokens long"
            )
        if self.max_length is not None and provably_below(self.max_length - length, 0):
            raise ShapeError(
                f"sequence_ids numbers {length} positions, but the table they index has "
                f"{self.max_length} rows (max_position_embeddings): the sequence is at most {self.max_length} tokens long"
            )
        return (length,)

    def output_dtype(self, inputs: list[str]) -> str | None:
        return "int64"

    def buffers(self, inputs: list[Shape]) -> dict[str, Shape]:
        """HF registers the ids [1, L]; its array's name is empty, so its name is the layer's path."""
        return {"": (1, self.buffer)} if self.buffer is not None else {}

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        return [()]  # the input's length only, no values

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        return 0  # shared by the batch: nothing per example

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        length = xs[0].shape[1]
        if self.values == "zeros":
            return np.zeros((1, length), dtype=np.int64)
        return np.arange(length, dtype=np.int64)[None]

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """The ids computed per forward, as the executor computes them; with `buffer`, the buffer
        HF registers (torch.arange or zeros [1, L]) is held too, under the layer's name, but not read."""
        if self.values == "zeros":
            ids, buffer = "torch.zeros(1, {0}.shape[1], dtype=torch.int64, device={0}.device)", "torch.zeros(1, {}, dtype=torch.int64)"
        else:
            ids, buffer = "torch.arange({0}.shape[1], device={0}.device)[None]", "torch.arange({})[None]"
        return TorchCode(None if self.buffer is None else buffer.format(literal(self.buffer)), call=ids)

    def describe(self) -> str:
        return self.values + (f" of {self.buffer}" if self.buffer is not None else "")
