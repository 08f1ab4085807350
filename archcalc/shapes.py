"""The shape pass: every layer's output shape, in execution order."""

from __future__ import annotations

from typing import Any

from .arith import MAX_SIZE, Shape
from .errors import ArchcalcError, ShapeError
from .graph import INPUT, Network


def output_shapes(network: Network) -> dict[str, Shape]:
    """Output shape (batch excluded) of the input and every layer; errors name the layer."""
    tidy = _identity
    if network.symbolic:
        from .symbolic import simplify_dim as tidy
    shapes: dict[str, Shape] = {INPUT: network.input_shape}
    for layer in network.layers:
        inputs = [shapes[i] for i in layer.inputs]
        try:
            shapes[layer.path] = shape = tuple(tidy(d) for d in layer.op.output_shape(inputs))
            if any(isinstance(d, int) and d >= MAX_SIZE for d in shape):
                raise ShapeError(f"the output {list(shape)} is beyond what any machine can hold (sizes stay below 2**1024)")
        except ArchcalcError as exc:
            raise exc.located(layer.location, layer.path) from None
    return shapes


def _identity(dim: Any) -> Any:
    return dim
