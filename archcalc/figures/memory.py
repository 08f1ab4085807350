"""The memory pass: weights, activations (sum and inference peak), and what training keeps.

Every figure is `fixed + batch * per_example` bytes, so the largest batch for a budget is found
exactly by one division. Tensors are identified by storage: an in-place op's output is its input's
tensor, so PyTorch's sharing (ReLU(inplace=True) after batch norm) is counted once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from archcalc.arith import Dim, Shape
from archcalc.dtypes import BYTES, INTEGER
from archcalc.errors import OptionError
from archcalc.figures.figure import Figure, Formula, GlanceRow, PerOp, Sweepable, Total, plain, walk
from archcalc.figures.params import ParamCount
from archcalc.ops.base import AttentionKernel, Op, elements
from archcalc.spec.graph import INPUT, Layer, Network

if TYPE_CHECKING:
    from archcalc.analysis import Analysis

# Copies of the trainable parameters each optimizer keeps (torch.optim's state per parameter).
OPTIMIZER_STATES: dict[str, int] = {
    "sgd": 0,
    "momentum": 1,
    "nesterov": 1,
    "adagrad": 1,
    "rmsprop": 1,
    "adadelta": 2,
    "adam": 2,
    "adamw": 2,
    "nadam": 2,
    "amsgrad": 3,
}


@dataclass(frozen=True)
class MemoryOptions:
    """How the network is run: batch, element types, optimizer, mixed precision."""

    batch: Dim = 1
    dtype: str = "float32"  # activations (and weights unless weight_dtype is given)
    weight_dtype: str | None = None
    optimizer: str = "adam"
    mixed_precision: Literal["fp16", "bf16"] | None = None
    attention: AttentionKernel = "fused"  # what attention keeps for backward (ops.base.AttentionKernel)
    checkpoint: tuple[str, ...] = ()  # blocks recomputed in backward (figures.checkpointing): paths, calls or every-block

    @property
    def activation_bytes(self) -> int:
        return 2 if self.mixed_precision else BYTES[self.dtype]

    @property
    def parameter_bytes(self) -> int:
        """Bytes of the master copy of each parameter (fp32 under mixed precision)."""
        return 4 if self.mixed_precision else BYTES[self.weight_dtype or self.dtype]


@dataclass(frozen=True)
class Linear:
    """A figure that grows with the batch: fixed + batch * per_example bytes."""

    fixed: Dim
    per_example: Dim

    def at(self, batch: Dim) -> Dim:
        return self.fixed + batch * self.per_example


@dataclass(frozen=True)
class LayerMemory:
    """Per example: bytes of the layer's output and of what it keeps for backward."""

    output: Dim
    saved: Dim


@dataclass(frozen=True)
class Memory:
    """All memory figures in bytes for the options given (`batch` applied)."""

    options: MemoryOptions
    layers: dict[str, LayerMemory]
    weights: Dim
    buffers: Dim
    activations_sum: Dim
    inference_peak: Dim
    peak_layer: str
    training_activations: Dim
    gradients: Dim
    optimizer_state: Dim
    attention: AttentionKernel | None = None
    """The attention kernel the saved figures assume; None when no layer attends (ops.base.Op.attends)."""
    checkpointed: tuple[str, ...] = ()
    """The block instances recomputed in backward (figures.checkpointing.checkpointed_blocks)."""
    recomputation: Dim = 0
    """Bytes the largest checkpointed block's recomputation keeps at once in backward, part of training_activations."""
    recomputed_block: str | None = None

    @property
    def training_total(self) -> Dim:
        return self.weights + self.buffers + self.gradients + self.optimizer_state + self.training_activations

    @property
    def inference_total(self) -> Dim:
        return self.weights + self.buffers + self.inference_peak


def check_options(options: MemoryOptions) -> None:
    """OptionError for a batch below 1, an unknown dtype or optimizer."""
    if isinstance(options.batch, int) and options.batch < 1:
        raise OptionError(f"the batch must be at least 1, got {options.batch}")
    for name in (options.dtype, options.weight_dtype):
        if name is not None and name not in BYTES:
            raise OptionError(f"unknown dtype '{name}' (known: {', '.join(BYTES)})")
    if options.attention not in ("fused", "math"):
        raise OptionError(f"unknown attention kernel '{options.attention}' (known: fused, math)")
    if options.optimizer not in OPTIMIZER_STATES:
        raise OptionError(f"unknown optimizer '{options.optimizer}' (known: {', '.join(OPTIMIZER_STATES)})")


def nothing_per_example(budget: int, fixed: Dim) -> OptionError:
    """The answer to --fit when the total does not grow with the batch (nothing trains or is kept)."""
    fits = "fits" if isinstance(fixed, int) and fixed <= budget else "does not fit"
    return OptionError(
        f"nothing in this network is kept per example (no layer trains, or none keeps a tensor), so the "
        f"total is {fixed:,} bytes at every batch and {fits} {budget:,} bytes; --fit has no batch to find"
        if isinstance(fixed, int) else f"nothing is kept per example, so --fit has no batch to find (the total is {fixed})"
    )


def check_batch_symbol(network: Network, batch: Dim) -> None:
    """OptionError when a symbolic batch has the name of one of the spec's sizes: sympy would
    merge the two into one symbol and every formula would silently be wrong."""
    name = getattr(batch, "name", None)
    if name is not None and name in network.symbols:
        raise OptionError(
            f"the batch symbol '{name}' is also a size in the spec; name the batch differently "
            f"(e.g. --batch M) or rename the spec's symbol '{name}'"
        )


def storage_of(network: Network) -> dict[str, str]:
    """The storage each layer's output lives in: its own, or its input's for in-place ops."""
    ids = {INPUT: INPUT}
    for layer in network.layers:
        ids[layer.path] = ids[layer.inputs[0]] if layer.op.inplace_output else layer.path
    return ids


class Storage(NamedTuple):
    """An activation storage at inference: alive while layers born..last_use run."""

    born: int  # position in network.order of the layer creating it, -1 for the input
    last_use: int  # of its last reader or writer; len(network.order) for the network's output
    nbytes: Dim  # per example: its creator's output (a view or an in-place op adds no bytes)


def element_bytes(network: Network, size: int) -> dict[str, int]:
    """Bytes per example of one element of the input and of each layer's output: `size` (the
    activation dtype's), an integer type's own (token ids: the input's int64 through views),
    or 0 for a tensor the whole batch shares (a learned class token, positions 0..S-1)."""
    dtypes: dict[str, str | None] = {INPUT: network.dtype if network.dtype in INTEGER else None}
    batched = {INPUT: True}
    result = {INPUT: BYTES[dtypes[INPUT]] if dtypes[INPUT] else size}
    for layer in network.layers:
        dtype = dtypes[layer.path] = layer.op.output_dtype([dtypes[i] for i in layer.inputs])
        batched[layer.path] = layer.op.per_example and any(batched[i] for i in layer.inputs)
        result[layer.path] = (BYTES[dtype] if dtype else size) if batched[layer.path] else 0
    return result


def live_storages(network: Network, shapes: dict[str, Shape], sizes: dict[str, int]) -> dict[str, Storage]:
    """Every activation storage, keyed as by storage_of, in creation order: a storage lives from
    its creation to its last reader (the output to the end); `sizes` are element_bytes'."""
    ids = storage_of(network)
    born = {INPUT: -1}
    last_use = {INPUT: -1}
    for position, layer in enumerate(network.layers):
        born.setdefault(ids[layer.path], position)
        for source in (*layer.inputs, layer.path):
            last_use[ids[source]] = position
    for path in (network.output, *(layer.path for layer in network.layers if layer.returned)):
        last_use[ids[path]] = len(network.order)  # returned: alive to the end
    return {t: Storage(born[t], last_use[t], elements(shapes[t]) * sizes[t]) for t in born}


def inference_candidates(network: Network, storages: dict[str, Storage]) -> list[tuple[str, Dim]]:
    """Per layer, the bytes of every storage alive while it runs (born <= i <= last_use): one
    sweep adding each storage at its birth and dropping it after its last use, linear in layers."""
    born: dict[int, list[Dim]] = {}
    dead: dict[int, list[Dim]] = {}
    for storage in storages.values():
        born.setdefault(storage.born, []).append(storage.nbytes)
        dead.setdefault(storage.last_use, []).append(storage.nbytes)
    live: Dim = sum(born.get(-1, ()), 0) - sum(dead.get(-1, ()), 0)
    candidates: list[tuple[str, Dim]] = []
    for i, layer in enumerate(network.layers):
        live += sum(born.get(i, ()), 0)
        candidates.append((layer.path, live))
        live -= sum(dead.get(i, ()), 0)
    return candidates


class Gradients(NamedTuple):
    """Whether a layer's own parameters train, and which of its inputs need a gradient."""

    trains: bool
    inputs: tuple[bool, ...]

    @property
    def recorded(self) -> bool:
        """Autograd records the layer (and it keeps tensors) if it trains or an input needs a gradient."""
        return self.trains or any(self.inputs)


def gradients(network: Network, counts: dict[str, ParamCount]) -> dict[str, Gradients]:
    """Per layer: does it train, and which inputs need a gradient (an earlier layer trains)."""
    result = {INPUT: Gradients(False, ())}
    for layer in network.layers:
        result[layer.path] = Gradients(counts[layer.path].trains, tuple(result[i].recorded for i in layer.inputs))
    return result


class Recomputation(NamedTuple):
    """Checkpointing's part of training: the blocks recomputed, and per example the bytes the
    largest one's recomputation keeps (its layers' saved tensors, made afresh) and which it is."""

    blocks: tuple[str, ...]
    per_example: Dim
    block: str | None


def activation_profile(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions) -> tuple[dict[str, LayerMemory], Linear, str, Linear, Recomputation]:
    """Per-example output and saved bytes per layer, the inference peak and the training set:
    what is kept at the end of the forward plus, under checkpointing, the largest block's
    recomputation (a checkpointed block's layers keep nothing in the forward; it keeps its inputs)."""
    from archcalc.figures.checkpointing import checkpointed_blocks, owners

    size = options.activation_bytes
    ids = storage_of(network)
    sizes = element_bytes(network, size)
    storages = live_storages(network, shapes, sizes)
    candidates = inference_candidates(network, storages)
    if network.symbolic:
        from archcalc.symbolic.symbols import peak as symbolic_peak

        peak, peak_layer = symbolic_peak(candidates, network.symbols.values(), network.defaults)
    else:
        peak_layer, peak = max(candidates, key=lambda c: c[1])  # the first layer at the maximum
    # training: storages kept for backward, counted once each, plus per-layer extras
    grads = gradients(network, counts)
    kept: dict[str, Dim] = {}
    blocks = checkpointed_blocks(network, options.checkpoint)
    owner = owners(network, blocks)
    recomputed: dict[str, dict[str, Dim]] = {b: {} for b in blocks}  # per block: what its recomputation keeps
    once: PerOp[tuple[tuple[int, ...], bool, tuple[Dim, ...]]] = PerOp()

    def plan(op: Op, grad: Gradients, in_shapes: list[Shape], output: Shape, batched: bool) -> tuple[tuple[int, ...], bool, tuple[Dim, ...]]:
        """The inputs the op keeps for backward, whether it keeps its output, and its extras'
        bytes per example (none when its output is shared by the batch)."""
        saved = op.saved_for_backward_with(in_shapes, output, options.attention)
        extras = tuple(count * (BYTES[dtype] if dtype else size) if batched else 0 for count, dtype in saved.extra)
        return saved.kept_inputs(grad.trains, grad.inputs), saved.output, extras

    def step(layer: Layer) -> LayerMemory:
        output = shapes[layer.path]
        saved_bytes: Dim = 0
        grad = grads[layer.path]
        block = owner[layer.path]
        if block is not None:  # the checkpoint keeps the block's inputs, whether or not they need a gradient
            for source in layer.inputs:
                t = ids[source]
                if owner[t] != block and t not in kept:
                    kept[t] = storages[t].nbytes
                    saved_bytes += storages[t].nbytes
        if grad.recorded:
            in_shapes = [shapes[i] for i in layer.inputs]
            batched = sizes[layer.path] != 0
            kept_inputs, keeps_output, extras = once(
                layer.op, (grad, batched, output, *in_shapes), lambda: plan(layer.op, grad, in_shapes, output, batched)
            )
            tensors = [ids[layer.inputs[k]] for k in kept_inputs] + ([ids[layer.path]] if keeps_output else [])
            if block is not None:  # made again in backward: the block's own tensors (its inputs are kept)
                again = recomputed[block]
                again.update({t: storages[t].nbytes for t in tensors if owner[t] == block})
                again.update({f"{layer.path}#{n}": extra for n, extra in enumerate(extras)})
                return LayerMemory(elements(output) * sizes[layer.path], saved_bytes)
            for t in tensors:
                kept[t] = storages[t].nbytes
                saved_bytes += storages[t].nbytes
            for n, extra in enumerate(extras):
                kept[f"{layer.path}#{n}"] = extra
                saved_bytes += extra
        return LayerMemory(elements(output) * sizes[layer.path], saved_bytes)

    layers = walk(network, step)
    training = sum(kept.values(), 0)
    again = [(b, sum(recomputed[b].values(), 0)) for b in blocks]
    if not again:
        recomputation = Recomputation((), 0, None)
    elif network.symbolic:
        from archcalc.symbolic.symbols import peak as symbolic_peak

        most, largest = symbolic_peak(again, network.symbols.values(), network.defaults)
        recomputation = Recomputation(blocks, most, largest)
    else:
        largest, most = max(again, key=lambda c: c[1])
        recomputation = Recomputation(blocks, most, largest)
    return layers, Linear(0, peak), peak_layer, Linear(0, training + recomputation.per_example), recomputation


def memory(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions) -> Memory:
    """All memory figures for `options` (checked first)."""
    check_options(options)
    check_batch_symbol(network, options.batch)
    layers, peak, peak_layer, training, recomputation = activation_profile(network, shapes, counts, options)
    params = sum((c.params for c in counts.values()), 0)
    trainable = sum((c.trainable for c in counts.values()), 0)
    buffers = sum((c.buffers for c in counts.values()), 0)
    master = options.parameter_bytes
    weights = params * master + (params * 2 if options.mixed_precision else 0)  # + half copy
    batch = options.batch
    return Memory(
        options,
        layers,
        weights=weights,
        buffers=buffers * master,
        activations_sum=batch * sum((m.output for m in layers.values()), 0),
        inference_peak=peak.at(batch),
        peak_layer=peak_layer,
        training_activations=training.at(batch),
        gradients=trainable * master,
        optimizer_state=OPTIMIZER_STATES[options.optimizer] * trainable * master,
        attention=options.attention if any(layer.op.attends for layer in network.layers) else None,
        checkpointed=recomputation.blocks,
        recomputation=batch * recomputation.per_example,
        recomputed_block=recomputation.block,
    )


def batch_total(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions, train: bool) -> Linear:
    """The training total (weights, buffers, gradients, optimizer state; saved activations per
    example) or the inference total (weights, buffers; the inference peak per example) as
    fixed + batch * per_example bytes, from the figures at batch 1 under `options`."""
    one = memory(network, shapes, counts, replace(options, batch=1))
    if train:
        return Linear(one.weights + one.buffers + one.gradients + one.optimizer_state, one.training_activations)
    return Linear(one.weights + one.buffers, one.inference_peak)


def largest_batch(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions, budget: int, train: bool) -> int:
    """The largest batch whose total (training or inference) fits `budget` bytes, exactly."""
    total = batch_total(network, shapes, counts, options, train)
    fixed, per_example = total.fixed, total.per_example
    if per_example == 0:
        raise nothing_per_example(budget, fixed)
    if budget < fixed + per_example:
        raise OptionError(
            f"a budget of {budget:,} bytes does not fit even batch 1: the weights and optimizer "
            f"need {fixed:,} bytes and each example {per_example:,} more"
        )
    return (budget - fixed) // per_example


def options_json(o: MemoryOptions) -> dict[str, Any]:
    """The batch, dtype, optimizer and mixed precision that memory figures were priced with."""
    return {
        "batch": plain(o.batch), "dtype": o.dtype, "optimizer": o.optimizer, "mixed_precision": o.mixed_precision,
        **({"checkpoint": list(o.checkpoint)} if o.checkpoint else {}),
    }


def memory_json(m: Memory) -> dict[str, Any]:
    """Exact byte counts for the batch, dtype and optimizer the analysis was run with."""
    return {
        **options_json(m.options),
        **({"attention": m.attention} if m.attention else {}),  # only where a layer attends
        "weights": plain(m.weights),
        "buffers": plain(m.buffers),
        "activations_sum": plain(m.activations_sum),
        "inference_peak": plain(m.inference_peak),
        "inference_peak_layer": m.peak_layer,
        "training_activations": plain(m.training_activations),
        **({"checkpointed_blocks": list(m.checkpointed), "recomputation": plain(m.recomputation),
            "recomputed_block": m.recomputed_block} if m.checkpointed else {}),
        "gradients": plain(m.gradients),
        "optimizer_state": plain(m.optimizer_state),
        "training_total": plain(m.training_total),
    }


def inference_parts(analysis: Analysis) -> tuple[Dim, list[Storage]]:
    """The inference total as weights and buffers plus the batch times the largest, over layers,
    of the live storages' bytes: a sweep takes that largest at every grid point, where one
    symbolic peak (kept for sample sizes) would miss the peak of other inputs."""
    m = analysis.memory
    network = analysis.network
    storages = live_storages(network, analysis.results["shapes"], element_bytes(network, m.options.activation_bytes))
    return m.weights + m.buffers, list(storages.values())


def attention_note(m: Memory) -> str:
    """`, attention fused` (or math) where a layer attends: the kernel the saved bytes assume."""
    return f", attention {m.attention}" if m.attention else ""


def _formulas(analysis: Analysis) -> dict[str, Any]:
    m = analysis.memory
    return {
        "weights": m.weights, "buffers": m.buffers, "activations_sum": m.activations_sum,
        "inference_peak": m.inference_peak, "training_activations": m.training_activations,
        "gradients": m.gradients, "optimizer_state": m.optimizer_state, "training_total": m.training_total,
    }


def _glance_text(g: Mapping[str, Any]) -> tuple[str, str]:
    from archcalc.units import human_bytes

    attention = f" (attention {g['attention']})" if g.get("attention") else ""
    return f"Memory at batch {g['batch']}", (
        f"weights {human_bytes(g['weights'])}; inference peak {human_bytes(g['inference_peak'])} at "
        f"{g['peak_layer']}; training total {human_bytes(g['training_total'])}{attention}"
    )


MEMORY = Figure(
    "memory", "Memory", "bytes", lower_is_better=True,
    needs=("shapes", "params"),
    run=lambda network, done, options: memory(network, done["shapes"], done["params"], options),
    per_layer=lambda m: m.layers,
    layer_json=lambda m, analysis: {"output_bytes": plain(m.output), "saved_for_backward_bytes": plain(m.saved)},
    totals=(
        Total("memory", "Memory", "bytes", lambda a: memory_json(a.memory)),
        Total(
            "training_memory", "Training memory, batch {batch}", "bytes", lambda a: a.memory.training_total,
            lower_is_better=True, json=False, compare=30,
        ),
        Total(
            "inference_peak", "Inference peak, batch {batch}", "bytes", lambda a: a.memory.inference_peak,
            lower_is_better=True, json=False, compare=31,
        ),
    ),
    formula=Formula(
        lambda m: {"output_bytes": m.output, "saved_bytes": m.saved}, _formulas,
        assumes=lambda a: attention_note(a.memory).removeprefix(", "),
    ),
    sweeps=(
        Sweepable("training_bytes", "training memory", "bytes", lambda a: a.memory.training_total, train=True),
        Sweepable("inference_bytes", "inference memory", "bytes", lambda a: a.memory.inference_total, train=False, peak=inference_parts),
    ),
    glance=GlanceRow(40, lambda a: {
        "batch": a.memory.options.batch, "weights": a.memory.weights, "inference_peak": a.memory.inference_peak,
        "peak_layer": a.memory.peak_layer, "training_total": a.memory.training_total,
        **({"attention": a.memory.attention} if a.memory.attention else {}),
    }, _glance_text),
)
