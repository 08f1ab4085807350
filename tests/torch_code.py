"""One op's PyTorch form (Op.torch_code) run as the generated file would run it: the defines and
the module constructor executed with torch, nn and F, the module held under the layer's name, the
NumPy executor's seeded weights for that layer loaded by name, the call evaluated on batched
tensors. tests/test_torch_code_ops.py compares what it returns with the op's NumPy forward."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from archcalc.executor import random_weights
from archcalc.ops.base import Op
from archcalc.spec.graph import load_data

LAYER = "layer"
"""The layer's name in the one-layer network and in the module that holds it."""


def seeded_weights(op: Op, kind: str, fields: dict[str, Any], inputs: list[tuple[int, ...]], dtype: str) -> dict[str, Any]:
    """The executor's seeded arrays (random_weights, float64) of the op as the one layer of a
    network on its input; an op without inputs reads none (an identity keeps the input used).
    An op of several inputs has no arrays (attention, matmul, index): none to seed."""
    if not op.parameters(inputs) and not op.buffers(inputs):
        return {}
    assert len(inputs) <= 1, f"{kind} has arrays and {len(inputs)} inputs: seed them in a network of its own"
    layer = {"name": LAYER, "op": kind, **fields}
    if inputs:
        network = {"name": "one", "input": {"shape": list(inputs[0]), "dtype": dtype}, "layers": [layer]}
    else:
        network = {"name": "one", "input": [1], "layers": [{"name": "x", "op": "identity", "returned": True}, layer]}
    return random_weights(load_data(network), seed=0, dtype="float64").get(LAYER, {})


def array_names(op: Op, inputs: list[tuple[int, ...]]) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Each array's name in the holding module (the layer's name, then the op's name for it, if
    any), with its shape and whether it is a buffer."""
    arrays = {name: (tuple(shape), False) for name, shape in op.parameters(inputs).items()}
    arrays.update({name: (tuple(shape), True) for name, shape in op.buffers(inputs).items()})
    return {f"{LAYER}.{name}" if name else LAYER: value for name, value in arrays.items()}


@dataclass(frozen=True)
class Ran:
    """What one op did in PyTorch (its output and the input tensors it was given) and in NumPy."""

    output: Any
    inputs: list[Any]
    expected: Any


def run(torch: Any, op: Op, kind: str, fields: dict[str, Any], xs: list[Any]) -> Ran:
    """`op` on the batched arrays `xs` in PyTorch and in its NumPy forward, the same seeded
    weights in both, in float64 (an int64 array stays int64)."""
    inputs = [tuple(x.shape[1:]) for x in xs]
    dtype = "int64" if xs and xs[0].dtype.kind == "i" else "float32"
    weights = seeded_weights(op, kind, fields, inputs, dtype)
    code = op.torch_code(inputs)
    namespace: dict[str, Any] = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
    for source in code.defines:
        exec(source, namespace)
    holder = torch.nn.Module()
    if code.module is not None:
        built = eval(code.module, namespace)
        if isinstance(built, (torch.nn.Module, torch.nn.Parameter)):
            setattr(holder, LAYER, built)
        else:  # a tensor: the layer's buffer (an op whose one array is named '')
            holder.register_buffer(LAYER, built)
    holder.double().eval()
    held = {**dict(holder.named_parameters()), **dict(holder.named_buffers())}
    expected = array_names(op, inputs)
    assert {k: tuple(v.shape) for k, v in held.items()} == {k: shape for k, (shape, _) in expected.items()}
    assert [k for k, _ in holder.named_buffers()] == [k for k, (_, buffer) in expected.items() if buffer]
    assert [k for k, _ in holder.named_parameters()] == [k for k, (_, buffer) in expected.items() if not buffer]
    with torch.no_grad():
        for name, tensor in held.items():
            tensor.copy_(torch.from_numpy(np.asarray(weights[name.removeprefix(LAYER).removeprefix(".")])))
        names = [f"x{i}" for i in range(len(xs))]
        tensors = [torch.from_numpy(x.copy()) for x in xs]
        namespace.update({"holder": holder, **dict(zip(names, tensors))})
        call = code.call.format(*names, m=f"holder.{LAYER}", x=", ".join(names))
        output = eval(call, namespace)
    return Ran(output, tensors, op.forward([x.copy() for x in xs], weights))
