"""Dropout: zeroes elements at random while training; an identity at inference."""

from __future__ import annotations

from pydantic import Field

from .base import Op


class Dropout(Op):
    """Element-wise dropout with drop probability `p` (PyTorch's default 0.5)."""

    kind = "dropout"

    p: float = Field(default=0.5, ge=0, lt=1)

    def describe(self) -> str:
        return f"p={self.p}"
