"""Tables and tensors: an embedding looked up by token id, a bare learnable tensor (ViT's class
token and position embedding) or constant one (a registered buffer), and rows of a table read by
an index tensor, as torch.nn.Embedding, nn.Parameter, register_buffer and `table[index]` hold them."""

from __future__ import annotations

from typing import Any, Literal

from archcalc.arith import Shape
from archcalc.errors import ShapeError
from archcalc.model import Field
from archcalc.ops.base import Init, NonNegativeInt, Op, Saved, TorchCode, Width, literal
from archcalc.ops.window import np


class Embedding(Op):
    """Row `i` of a [vocab, dim] table for each integer id `i` of the input: ids of any shape
    [...] give [..., dim] (torch.nn.Embedding(vocab, dim, padding_idx))."""

    kind = "embedding"
    autocast = "promote"  # on no autocast list: its output has its table's type (fp32 under autocast)
    index_bound = "vocab"
    looks_up = True

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

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(f"nn.Embedding({literal(self.vocab)}, {literal(self.dim)}, padding_idx={literal(self.padding_idx)})")

    def describe(self) -> str:
        return f"{self.vocab}x{self.dim}"


class _Shared(Op):
    """A tensor of `shape` (batch excluded) that the whole batch shares, read with no input. Its
    one array's name is empty, so its full name is the layer's path. PyTorch shapes it with a
    leading 1 that broadcasts over the batch ([1, *shape]), or, with `batch_axis: false`, as
    `shape` itself (a table read by index, such as Swin's [(2W-1)^2, heads] bias table)."""

    autocast = "promote"  # the tensor itself, of the parameters' type

    min_inputs = 0
    max_inputs = 0
    per_example = False

    shape: list[Width] = Field(min_length=1)
    batch_axis: bool = True

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return tuple(self.shape)

    def _array(self) -> Shape:
        return (1, *self.shape) if self.batch_axis else tuple(self.shape)

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> int:
        return 0  # the array itself, shared by the batch: no new tensor

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        array = weights[""]
        return array if self.batch_axis else array[None]  # the executor's arrays lead with the batch

    def _read(self, array: str) -> TorchCode:
        """The array (Python source), read whole: with a batch axis of 1 the batch shares, or given one."""
        return TorchCode(array, call="{m}" if self.batch_axis else "{m}[None]")

    def describe(self) -> str:
        return "x".join(map(str, self.shape))


class Parameter(_Shared):
    """A learnable tensor the batch shares (nn.Parameter): ViT's class token [1, D] joined by a
    concat, its position embedding [S, D] added (PyTorch: [1, 1, D] and [1, S, D])."""

    kind = "parameter"

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        return {"": self._array()}

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.Parameter, assigned under the layer's name (its array's name is empty)."""
        return self._read(f"nn.Parameter(torch.zeros({literal(self._array())}))")


class Buffer(_Shared):
    """A constant tensor the batch shares (a module's register_buffer): Swin's relative position
    index (int64) and Swin V2's table of log-spaced relative coordinates. In a seeded run an int64
    buffer holds zeros and a float one small values; their contents do not change any figure."""

    kind = "buffer"

    dtype: Literal["float32", "int64"] = "float32"

    @property
    def init(self) -> dict[str, Init]:  # type: ignore[override]
        return {"": "count" if self.dtype == "int64" else "shift"}

    def buffers(self, inputs: list[Shape]) -> dict[str, Shape]:
        return {"": self._array()}

    def output_dtype(self, inputs: list[str]) -> str | None:
        return "int64" if self.dtype == "int64" else None

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """A tensor, registered as a buffer under the layer's name (its array's name is empty)."""
        return self._read(f"torch.zeros({literal(self._array())}, dtype=torch.{self.dtype})")

    def describe(self) -> str:
        return f"{super().describe()} {self.dtype}"


_INDEX_ROWS = '''\
def index_rows(table, ids):
    """table[ids] per example: rows of each example's table [N, T, ...] (or of one the batch shares, N = 1) picked by ids [N, ...]."""
    examples = torch.arange(table.shape[0], device=table.device).view(-1, *(1,) * (ids.dim() - 1))
    return table[examples, ids]
'''


class Index(Op):
    """Rows of a table picked by integer ids, `table[ids]` (torch's advanced indexing along the
    first axis, index_select): a table [T, ...] and ids [...] give [..., *table[1:]]. Swin reads
    its relative position bias table [(2W-1)^2, heads] by the index buffer [N*N] this way."""

    kind = "index"
    min_inputs = 2
    max_inputs = 2

    def output_shape(self, inputs: list[Shape]) -> Shape:
        table, ids = inputs
        if not table:
            raise ShapeError("index needs a table with at least one axis (batch excluded) to pick rows from")
        return (*ids, *table[1:])

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """The ids, when the table needs a gradient (IndexBackward0 keeps `indices`)."""
        return Saved(for_partners=(1,))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        table, ids = xs
        if table.shape[0] == 1:
            return table[0][ids]
        return table[np.arange(len(table)).reshape(-1, *(1,) * (ids.ndim - 1)), ids]

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """index_rows (defined in the file): torch's indexing reads one table, not one per example."""
        return TorchCode(call="index_rows({0}, {1})", defines=(_INDEX_ROWS,))
