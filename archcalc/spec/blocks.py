"""A network's blocks: layers grouped by their path cut to a depth, and what each group is.

A layer's path is the spec's names joined by dots (`layer2.0.conv1`: the block call `layer2`,
its instance `0`, the layer `conv1`), so the path's first `depth` components name the block the
layer belongs to at that depth. `summary --depth`, `graph --depth` and the report's block tree
all fold a network this way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    """A layer as folding sees it: its path and its op's name."""

    @property
    def path(self) -> str: ...

    @property
    def op(self) -> str: ...


L = TypeVar("L", bound=Named)


@dataclass(frozen=True)
class Group(Generic[L]):
    """The layers under one path prefix, in execution order, and what they are."""

    name: str  # the prefix; for a single layer, its path
    kind: str  # a single layer's op, or a folded block's kind (`Blocks.kind`)
    members: tuple[L, ...]
    folded: bool  # a block standing for its layers, not one layer under its own name


def prefix(path: str, depth: int | None) -> str:
    """The group a path belongs to at `depth`: its first `depth` components (None: the path)."""
    return path if depth is None else ".".join(path.split(".")[:depth])


class Blocks:
    """A network's block instances (path -> block name), indexed once for folding its layers."""

    def __init__(self, blocks: Mapping[str, str]) -> None:
        self.blocks = blocks
        self.copies: dict[str, list[str]] = {}  # path -> block names of the instances under it
        for path, name in blocks.items():
            self.copies.setdefault(path.rpartition(".")[0], []).append(name)

    def kind(self, name: str, ops: Iterable[str]) -> str:
        """What a folded group is: its block's name; `basic ×2` for a repeated block (one copy:
        `basic`); `relu ×3` for a repeated op; else `block`."""
        if name in self.blocks:
            return self.blocks[name]
        under = self.copies.get(name, [])
        if under and len(set(under)) == 1:
            return under[0] if len(under) == 1 else f"{under[0]} ×{len(under)}"
        names = list(ops)
        if len(set(names)) == 1:
            return f"{names[0]} ×{len(names)}"
        return "block"

    def fold(self, layers: Sequence[L], depth: int | None) -> list[Group[L]]:
        """The layers grouped by their path's first `depth` components (None: one group per
        layer), in the order of each group's first layer."""
        members: dict[str, list[L]] = {}
        for layer in layers:
            members.setdefault(prefix(layer.path, depth), []).append(layer)
        groups = []
        for name, rows in members.items():
            folded = len(rows) > 1 or rows[0].path != name
            kind = self.kind(name, (r.op for r in rows)) if folded else rows[0].op
            groups.append(Group(name, kind, tuple(rows), folded))
        return groups
