"""Ops that only rearrange or pass data: flatten, reshape, (un)squeeze, permute and identity.

All are views of their input, as in torch (no new tensor, nothing kept for backward), and their
`dim` fields count the batch as 0, as torch's do; the batch axis itself cannot move or change.
torch.reshape copies instead when the input's memory is not in row-major order (after a
permute or transpose): archcalc does not track memory order and counts that copy as a view.
Receptive fields: GLOBAL where spatial positions merge into fewer axes (as flatten), unchanged
where only other axes change; where spatial axes move or regroup, per-axis reads that are exact
or, said with a reason, an upper bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from archcalc.arith import Dim, Shape, equal, product
from archcalc.errors import ShapeError
from archcalc.model import BeforeValidator, WithJsonSchema, model_validator
from archcalc.ops.base import GLOBAL, UNDEFINED, Op, ReceptiveStep, TorchCode, Whole, literal


class Flatten(Op):
    """Joins axes start_dim..end_dim into one; dims count the batch as 0, as torch.flatten does."""

    kind = "flatten"

    start_dim: Whole = 1
    end_dim: Whole = -1

    @property
    def inplace_output(self) -> bool:
        return True  # a view of the input, as torch.flatten returns

    def output_shape(self, inputs: list[Shape]) -> Shape:
        full = (None, *inputs[0])  # the batch axis, so indices mean what they mean in torch
        rank = len(full)
        start = self.start_dim % rank if -rank <= self.start_dim < rank else None
        end = self.end_dim % rank if -rank <= self.end_dim < rank else None
        if start is None or end is None or start == 0 or start > end:
            raise ShapeError(
                f"cannot flatten dims {self.start_dim}..{self.end_dim} of a rank-{rank} tensor "
                "(dims count the batch axis as 0; the batch cannot be flattened)"
            )
        joined = product(list(full[start : end + 1]))
        return (*full[1:start], joined, *full[end + 1 :])

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].reshape(xs[0].shape[0], *self.output_shape([xs[0].shape[1:]]))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(f"nn.Flatten({self.start_dim}, {self.end_dim})")

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Spatial positions merge into features: later layers see every position at once."""
        return GLOBAL if len(self.output_shape(inputs)) < len(inputs[0]) and len(inputs[0]) > 1 else None


class Identity(Op):
    """Passes its input through unchanged."""

    kind = "identity"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0]

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode("nn.Identity()")

    @property
    def inplace_output(self) -> bool:
        return True


def _size_or_infer(value: Any) -> Any:
    """A reshape size: a whole number >= 1, -1 (inferred), or a sympy expression."""
    if hasattr(value, "free_symbols"):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
        raise ValueError(f"must be a whole number of at least 1, or -1 to infer it (got {value!r})")
    return value


SizeOrInfer = Annotated[
    Any,
    BeforeValidator(_size_or_infer),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"const": -1}]}),
]


def _feature_axis(op: Op, dim: int, rank: int, what: str) -> int:
    """The per-example axis (batch excluded) a torch `dim` names in a tensor of `rank` axes
    (batch included); dim 0, the batch, is a ShapeError."""
    if not -rank <= dim < rank or dim % rank == 0:
        raise ShapeError(
            f"{op.kind} {what} {dim} is not a feature axis of a rank-{rank} tensor (dims count the "
            f"batch axis as 0, valid: 1..{rank - 1} or -{rank - 1}..-1; the batch cannot be moved)"
        )
    return dim % rank - 1


def _spatial_step(before: Shape, after: Shape) -> ReceptiveStep:
    """None when the spatial axes (after the first) survive as the trailing axes, GLOBAL when
    they merge into fewer axes, UNDEFINED when they move or split."""
    spatial = before[1:]
    if not spatial:
        return None
    if len(after) - 1 < len(spatial):
        return GLOBAL
    tail = after[len(after) - len(spatial) :]
    return None if all(equal(a, b) for a, b in zip(tail, spatial)) else UNDEFINED


class _View(Op):
    """A view of the input's storage: no new tensor, nothing kept, no arithmetic."""

    @property
    def inplace_output(self) -> bool:
        return True

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return _spatial_step(inputs[0], self.output_shape(inputs))

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Element-wise where the spatial axes stay; where they regroup (same rank, other sizes)
        a unit is taken to read the whole of every spatial axis (receptive_varies says so)."""
        if self.receptive_step(inputs) == UNDEFINED:
            return [range(inputs[0][axis + 1])]
        return super().receptive_reads(inputs, axis, unit)

    def receptive_varies(self, inputs: list[Shape]) -> str:
        """Regrouped spatial axes are read whole: an upper bound, said so."""
        if self.receptive_step(inputs) != UNDEFINED:
            return ""
        return (
            f"{self.kind} regroups the spatial axes {list(inputs[0][1:])} into "
            f"{list(self.output_shape(inputs)[1:])}: each unit is taken to read all of them (an upper bound)"
        )


class _Move(_View):
    """A view that reorders axes (permute, transpose): output axis i is input axis order[i]."""

    def _moved(self, shape: Shape) -> list[int]:
        """Per-example axis order (0: the channels): output axis i is input axis order[i]."""
        raise NotImplementedError

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        order = self._moved(inputs[0])
        return None if order == sorted(order) else UNDEFINED

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Input spatial axis a read at the unit's own position when it stays in place; else all
        of it: exact when it moved to the channels (a unit's field is the union over its
        channels), an upper bound when it moved to another spatial axis (a field is kept per axis
        and cannot follow one) or for a later layer that separates those channels again."""
        if self._moved(inputs[0])[axis + 1] == axis + 1:
            return [(unit,)]
        return [range(inputs[0][axis + 1])]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        """Which spatial axes moved, and whether their whole-axis reads are exact or a bound."""
        order = self._moved(inputs[0])
        moved = [(a, order.index(a)) for a in range(1, len(order)) if order.index(a) != a]  # input axis a to b
        if not moved:
            return ""
        spatial = [f"{a - 1}->{b - 1}" for a, b in moved if b > 0]
        if spatial:
            return (
                f"{self.kind} moves spatial axes ({', '.join(spatial)}); a field is kept per axis and "
                "cannot follow one, so each unit is taken to read the whole of a moved axis (an upper bound)"
            )
        return (
            f"{self.kind} moves spatial axis {moved[0][0] - 1} into the channels: every unit reads all of it "
            "(later layers that separate those channels again are taken to, an upper bound)"
        )


class Reshape(_View):
    """x.reshape(batch, *shape) (x.view): `shape` excludes the batch axis; one -1 is inferred from
    the element count, which must stay the same."""

    kind = "reshape"
    aliases = ("view",)

    shape: list[SizeOrInfer]

    @model_validator(mode="after")
    def _one_inferred(self) -> Reshape:
        if sum(1 for d in self.shape if isinstance(d, int) and d == -1) > 1:
            raise ValueError(f"only one size can be -1 (inferred), got {self.shape}")
        return self

    def output_shape(self, inputs: list[Shape]) -> Shape:
        total = product(list(inputs[0]))
        known = product([d for d in self.shape if not (isinstance(d, int) and d == -1)])
        where = (
            f"cannot reshape {list(inputs[0])} ({total} elements per example) to {self.shape} "
            "(the shape excludes the batch axis, which reshape keeps)"
        )
        if any(isinstance(d, int) and d == -1 for d in self.shape):
            if isinstance(total, int) and isinstance(known, int) and total % known:
                raise ShapeError(f"{where}: {total} is not divisible by {known}")
            inferred: Dim = total // known
            return tuple(inferred if isinstance(d, int) and d == -1 else d for d in self.shape)
        if not equal(known, total):
            raise ShapeError(f"{where}: {known} elements")
        return tuple(self.shape)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].reshape(xs[0].shape[0], *self.output_shape([xs[0].shape[1:]]))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """x.reshape(batch, *shape), the inferred size written out."""
        return TorchCode(call=f"{{0}}.reshape({{0}}.shape[0], {', '.join(map(literal, self.output_shape(inputs)))})")

    def describe(self) -> str:
        return "->" + "x".join(map(str, self.shape))


class Unsqueeze(_View):
    """Inserts an axis of size 1 at `dim` (the batch is dim 0), as torch.unsqueeze."""

    kind = "unsqueeze"

    dim: int

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        axis = _feature_axis(self, self.dim, len(shape) + 2, "dim")
        return (*shape[:axis], 1, *shape[axis:])

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return None  # only a size-1 axis appears

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].reshape(xs[0].shape[0], *self.output_shape([xs[0].shape[1:]]))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call=f"{{0}}.unsqueeze({self.dim})")

    def describe(self) -> str:
        return f"dim {self.dim}"


class Squeeze(_View):
    """Drops axes of size 1, as torch.squeeze: those named by `dim` (one or a list; a named axis
    of another size stays, as in torch), or all of them; never the batch axis (torch would drop a
    batch of 1 too). A symbolic size is taken as not 1."""

    kind = "squeeze"

    dim: int | list[int] | None = None

    def _dropped(self, shape: Shape) -> set[int]:
        if self.dim is None:
            named = set(range(len(shape)))
        else:
            dims = self.dim if isinstance(self.dim, list) else [self.dim]
            named = {_feature_axis(self, d, len(shape) + 1, "dim") for d in dims}
        return {a for a in named if isinstance(shape[a], int) and shape[a] == 1}

    def output_shape(self, inputs: list[Shape]) -> Shape:
        dropped = self._dropped(inputs[0])
        return tuple(n for a, n in enumerate(inputs[0]) if a not in dropped)

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return None  # only size-1 axes go

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].reshape(xs[0].shape[0], *self.output_shape([xs[0].shape[1:]]))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """x.squeeze of the axes that go, named (torch would also drop a batch of 1)."""
        dropped = tuple(sorted(a + 1 for a in self._dropped(inputs[0])))
        return TorchCode(call=f"{{0}}.squeeze({literal(dropped)})" if dropped else "{0}")

    def describe(self) -> str:
        return "" if self.dim is None else f"dim {self.dim}"


class Permute(_Move):
    """Reorders the axes, as x.permute(*dims): `dims` names every axis, the batch (0) first."""

    kind = "permute"

    dims: list[int]

    def _order(self, shape: Shape) -> list[int]:
        """Per-example axis order (batch excluded)."""
        rank = len(shape) + 1
        if len(self.dims) != rank or not all(-rank <= d < rank for d in self.dims) or sorted(
            d % rank for d in self.dims
        ) != list(range(rank)):
            raise ShapeError(
                f"permute dims {self.dims} must name each of the {rank} axes of {['batch', *shape]} "
                "once (dims count the batch axis as 0)"
            )
        if self.dims[0] % rank != 0:
            raise ShapeError(
                f"permute dims {self.dims} must keep the batch axis first: start with 0, as in "
                "x.permute(0, 2, 3, 1)"
            )
        return [d % rank - 1 for d in self.dims[1:]]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return tuple(inputs[0][a] for a in self._order(inputs[0]))

    def _moved(self, shape: Shape) -> list[int]:
        return self._order(shape)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].transpose(0, *(a + 1 for a in self._order(xs[0].shape[1:])))

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call=f"{{0}}.permute({', '.join(map(str, self.dims))})")

    def describe(self) -> str:
        return str(self.dims)


class Transpose(_Move):
    """Swaps axes dim0 and dim1, as torch.transpose (the batch is dim 0 and cannot move)."""

    kind = "transpose"

    dim0: int
    dim1: int

    def _axes(self, shape: Shape) -> tuple[int, int]:
        rank = len(shape) + 1
        return (_feature_axis(self, self.dim0, rank, "dim0"), _feature_axis(self, self.dim1, rank, "dim1"))

    def output_shape(self, inputs: list[Shape]) -> Shape:
        a, b = self._axes(inputs[0])
        shape = list(inputs[0])
        shape[a], shape[b] = shape[b], shape[a]
        return tuple(shape)

    def _moved(self, shape: Shape) -> list[int]:
        a, b = self._axes(shape)
        order = list(range(len(shape)))
        order[a], order[b] = b, a
        return order

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        a, b = self._axes(xs[0].shape[1:])
        return xs[0].swapaxes(a + 1, b + 1)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call=f"{{0}}.transpose({self.dim0}, {self.dim1})")

    def describe(self) -> str:
        return f"{self.dim0}<->{self.dim1}"


class Contiguous(Op):
    """x.contiguous(): a copy in row-major order, keeping nothing for backward. Written where
    torch copies without saying so: torch.matmul folds a permuted factor's leading axes into one
    batch axis by a reshape that must copy (Swin's q, k^T and v), and bmm keeps that copy, not
    the input (measured with saved_tensors_hooks); archcalc does not track memory order."""

    kind = "contiguous"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].copy()

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        return TorchCode(call="{0}.contiguous()")
