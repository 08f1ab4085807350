"""The NumPy executor: runs a network forward on real arrays to verify what the analysis claims.

Weights are seeded random (or given, keyed by layer path and parameter name, shaped as PyTorch
shapes them). Tensors are freed after their last reader, so a large network runs in bounded
memory, and the peak bytes of live activations actually held are measured by storage: in-place
ops and views share their input's memory, exactly as they do in NumPy; arrays the whole batch
shares (position ids, a rotary table, Swin's position bias and shift mask) are left out, as the analysis prices them at nothing per
example. Before anything is
allocated, the run's working memory (weights, live activations and each op's temporaries, such
as im2col columns) is estimated and refused above a cap: by default half the available memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archcalc.dtypes import INTEGER
from archcalc.errors import ArchcalcError
from archcalc.figures.shapes import output_shapes
from archcalc.lazy import lazy_import
from archcalc.ops.base import elements
from archcalc.spec.graph import INPUT, Network
from archcalc.units import human_bytes

np = lazy_import("numpy")

Weights = dict[str, dict[str, Any]]


class ExecutionError(ArchcalcError):
    """Arrays given to the executor do not fit the network (wrong names or shapes)."""


@dataclass(frozen=True)
class Run:
    """What happened when the network ran: every layer's output shape, the output, the peak."""

    shapes: dict[str, tuple[int, ...]]
    output: Any
    peak_bytes: int
    peak_layer: str
    weights: Weights


def expected_arrays(network: Network) -> dict[str, dict[str, tuple[tuple[int, ...], bool]]]:
    """Per layer, each array's PyTorch shape and whether it is a buffer."""
    shapes = output_shapes(network)
    arrays: dict[str, dict[str, tuple[tuple[int, ...], bool]]] = {}
    for layer in network.layers:
        inputs = [shapes[i] for i in layer.inputs]
        if layer.tied_to is not None:
            continue  # its arrays are its source's
        own = {k: (tuple(v), False) for k, v in layer.op.parameters(inputs).items()}
        own.update({k: (tuple(v), True) for k, v in layer.op.buffers(inputs).items()})
        if own:
            arrays[layer.path] = own
    return arrays


def random_weights(network: Network, seed: int = 0, dtype: Any = "float32") -> Weights:
    """Seeded weights that keep activations bounded through deep stacks, each array started as
    its op's `init` says (ops.base.Init): kernels and matrices uniform in +-1/sqrt(fan_in)
    (PyTorch's default bound), scales near 1, shifts near 0, running variances in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    weights: Weights = {}
    for path, arrays in expected_arrays(network).items():
        init = network.layer(path).op.init
        own = {}
        for name, (shape, _) in arrays.items():
            scheme = init.get(name, "shift")
            if scheme == "count":
                own[name] = np.zeros(shape, dtype=np.int64)
                continue
            unit = rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
            if scheme == "fan_in":
                values = (2 * unit - 1) * (1.0 / np.sqrt(max(1, int(np.prod(shape[1:])))))
            elif scheme == "variance":
                values = 0.5 + unit
            elif scheme == "scale":
                values = 0.9 + 0.2 * unit
            else:
                values = 0.2 * unit - 0.1
            own[name] = values.astype(dtype, copy=False)
        weights[path] = own
    return weights


def check_weights(network: Network, weights: Mapping[str, Mapping[str, Any]]) -> None:
    """An ExecutionError naming the layer and expected shape of a missing, extra or misshaped array."""
    expected = expected_arrays(network)
    for path in weights:
        if path not in expected:
            raise ExecutionError(f"weights given for '{path}', which has no parameters or is not a layer", layer=path)
    for path, arrays in expected.items():
        given = weights.get(path, {})
        for name, (shape, _) in arrays.items():
            if name not in given:
                raise ExecutionError(f"missing weight '{name}' of shape {list(shape)}", layer=path)
            if tuple(np.shape(given[name])) != shape:
                raise ExecutionError(
                    f"weight '{name}' has shape {list(np.shape(given[name]))}, expected {list(shape)}",
                    layer=path,
                )
        for name in given:
            if name not in arrays:
                raise ExecutionError(f"unexpected weight '{name}' (this layer has: {', '.join(arrays)})", layer=path)


def available_memory() -> int:
    """Bytes the machine can still give (MemAvailable from /proc/meminfo), else its physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for row in meminfo:
                if row.startswith("MemAvailable:"):
                    return int(row.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory_cap() -> int:
    """Half the available memory: the executor's default ceiling on its working memory."""
    return available_memory() // 2


def working_memory(network: Network, batch: int = 1, dtype: Any = "float32") -> tuple[int, str]:
    """Bytes a run holds at its fullest, and the layer running then: weights (and, while the
    largest is drawn, its uniform draw, a scaled copy and a float64 product), the activations
    alive as execute() frees them, and the running layer's output and temporaries
    (Op.forward_workspace: im2col columns, padded copies)."""
    size = np.dtype(dtype).itemsize
    arrays = [shape for own in expected_arrays(network).values() for shape, _ in own.values()]
    counts = [int(elements(s)) for s in arrays] or [0]
    weights = sum(counts) * size + max(counts) * (2 * size + 8)
    shapes = output_shapes(network)
    readers = {INPUT: 0, **{p: 0 for p in network.order}}
    for layer in network.layers:
        for source in layer.inputs:
            readers[source] += 1
    live = {INPUT}
    storage = {INPUT: INPUT}  # the path whose array a path's output lives in
    sizes = {INPUT: int(elements(network.input_shape))}  # elements per example, per storage
    peak, peak_layer = 0, INPUT
    for layer in network.layers:
        path = layer.path
        storage[path] = storage[layer.inputs[0]] if layer.op.inplace_output else path
        sizes.setdefault(storage[path], int(elements(shapes[path])))
        workspace = int(layer.op.forward_workspace([shapes[i] for i in layer.inputs], shapes[path]))
        live.add(path)
        held = sum(sizes[s] for s in {storage[p] for p in live}) + workspace
        if held > peak:
            peak, peak_layer = held, path
        for source in layer.inputs:
            readers[source] -= 1
            if readers[source] == 0 and source != network.output:
                live.discard(source)
    return weights + peak * batch * size, peak_layer


def check_memory(network: Network, batch: int, dtype: Any, cap: int | None) -> None:
    """An ExecutionError, before anything is allocated, when the run would need more than `cap`
    bytes (default: half the available memory)."""
    cap = default_memory_cap() if cap is None else cap
    needed, layer = working_memory(network, batch, dtype)
    if needed > cap:
        raise ExecutionError(
            f"running this needs about {human_bytes(needed)} ({needed:,} bytes: weights, live activations "
            f"and the temporaries of '{layer}' at batch {batch}), more than the cap of {human_bytes(cap)}; "
            "lower --batch or --input, or raise --max-memory"
        )


def _storage(array: Any) -> Any:
    """The array that owns the memory a (possibly viewed) array lives in."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def execute(
    network: Network,
    x: Any = None,
    *,
    batch: int = 1,
    dtype: Any = "float32",
    seed: int = 0,
    weights: Weights | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    max_memory: int | None = None,
) -> Run:
    """Run the network forward (inference) on `x`, or on seeded random input of `batch` examples,
    unless its working memory would pass `max_memory` bytes (default: half the available memory)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ExecutionError(f"the executor runs float32 or float64, not {dtype}")
    if network.symbolic:
        names = ", ".join(network.symbols)
        raise ExecutionError(f"the executor runs numbers, but {names} ha{'ve' if len(network.symbols) > 1 else 's'} no value")
    check_memory(network, batch if x is None else int(np.shape(x)[0]), dtype, max_memory)
    expected_input = (batch if x is None else np.shape(x)[0], *network.input_shape)
    if x is None:
        x = _random_input(network, expected_input, seed, dtype)
    elif tuple(np.shape(x))[1:] != tuple(network.input_shape):
        raise ExecutionError(
            f"input array has shape {list(np.shape(x))}; expected [batch, {', '.join(map(str, network.input_shape))}]"
        )
    if weights is None:
        weights = random_weights(network, seed, dtype)
    else:
        check_weights(network, weights)
    readers: dict[str, int] = {INPUT: 0}
    for layer in network.layers:
        readers[layer.path] = 0
        for source in layer.inputs:
            readers[source] += 1
    from archcalc.figures.memory import MemoryOptions, element_bytes

    shared = {path for path, size in element_bytes(network, MemoryOptions()).items() if size == 0}  # not per example
    live: dict[str, Any] = {INPUT: x}
    shapes: dict[str, tuple[int, ...]] = {}
    peak, peak_layer = 0, INPUT
    total = len(network.order)
    for step, layer in enumerate(network.layers):
        inputs = [live[i] for i in layer.inputs]
        try:
            out = layer.op.forward(inputs, weights.get(layer.tied_to or layer.path, {}))
        except ArchcalcError as exc:
            raise exc.located(layer.location, layer.path) from None
        except (MemoryError, OverflowError) as exc:  # past the estimate: NumPy's own limits
            raise ExecutionError(
                f"NumPy cannot run this layer ({type(exc).__name__}: {exc}); lower --batch or --input",
                location=layer.location, layer=layer.path,
            ) from None
        live[layer.path] = out
        shapes[layer.path] = tuple(out.shape[1:])
        held = sum(a.nbytes for a in {id(s): s for s in (_storage(a) for p, a in live.items() if p not in shared)}.values())
        if held > peak:
            peak, peak_layer = held, layer.path
        for source in layer.inputs:
            readers[source] -= 1
            if readers[source] == 0 and source != network.output:
                del live[source]
        if progress:
            progress(step + 1, total, layer.path)
    return Run(shapes, live[network.output], peak, peak_layer, weights)


def _random_input(network: Network, shape: tuple[int, ...], seed: int, dtype: Any) -> Any:
    """Seeded normal values, or for an integer input (token ids) ids below every index bound
    the network's ops declare (the smallest embedding's vocabulary)."""
    rng = np.random.default_rng(seed + 1)
    if network.dtype not in INTEGER:
        return rng.standard_normal(shape).astype(dtype)
    bounds = [getattr(op, op.index_bound) for op in (layer.op for layer in network.layers) if op.index_bound]
    return rng.integers(0, min(bounds, default=2), size=shape, dtype=np.dtype(network.dtype))


def parameter_sizes(network: Network, weights: Weights) -> dict[str, int]:
    """Learnable elements per layer as the executor's arrays hold them (buffers excluded)."""
    expected = expected_arrays(network)
    return {
        path: sum(int(np.size(a)) for name, a in arrays.items() if not expected[path][name][1])
        for path, arrays in weights.items()
    }

