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
from archcalc.figures.sharding import (
    activation_share,
    check_sharding,
    per_device,
    sharding_json,
    sharding_note,
    tensor_parallel_parameters,
    zero_share,
)
from archcalc.ops.base import MASK, PARAMETERS, AttentionKernel, Op, elements
from archcalc.spec.graph import INPUT, Layer, Network

if TYPE_CHECKING:
    from archcalc.analysis import Analysis
    from archcalc.figures.generation import Generation

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


Precision = Literal["fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed"]
"""How a network is trained (docs/memory.md, Precision): `fp32` every tensor at --dtype; `bf16`,
`fp16` the model cast to the half type (model.to(dtype)); `bf16-mixed`, `fp16-mixed` activations
as torch.autocast makes them, half weights and gradients, an fp32 master copy with the optimizer
(ZeRO's mixed-precision Adam, Rajbhandari et al. 2020, section 3.1)."""

HALF: dict[str, str] = {"bf16": "bfloat16", "fp16": "float16", "bf16-mixed": "bfloat16", "fp16-mixed": "float16"}
"""The half type of each precision but fp32."""


@dataclass(frozen=True)
class MemoryOptions:
    """How the network is run: batch, element types, optimizer, precision policy.

    `dtype` is every tensor's type under precision fp32 (float32, float64, int8...); `precision`
    left out (None) is fp32, or the pure half policy of a dtype float16 or bfloat16 (fp16, bf16),
    which it is then set to. `fp32_gradients`: a mixed policy keeping fp32 gradients besides the
    half ones (ZeRO-Infinity, Rajbhandari et al. 2021, section 3: 20 bytes per parameter)."""

    batch: Dim = 1
    dtype: str = "float32"  # every tensor under precision fp32 (weights too unless weight_dtype is given)
    weight_dtype: str | None = None
    optimizer: str = "adam"
    precision: Precision = None  # type: ignore[assignment]  # set by __post_init__
    attention: AttentionKernel = "fused"  # what attention keeps for backward (ops.base.AttentionKernel)
    fp32_gradients: bool = False
    dropout_mask: Literal["activation", "bool"] = "activation"  # a dropout mask's element: the activation dtype (PyTorch on the CPU) or bool (CUDA's fused kernel)
    devices: Dim | None = None  # all devices, tensor-parallel ones included; None: one data-parallel replica (tp devices)
    zero: Literal[0, 1, 2, 3] = 0  # ZeRO stage across the data-parallel devices (sharding.py)
    tp: Dim = 1  # tensor-parallel degree (Megatron-LM: layers with `parallel: column|row`)
    sequence_parallel: bool = False  # Megatron's sequence parallelism with tp: every activation split t ways
    kv_cache: bool = False  # inference is generation with a key/value cache at context S (figures.generation)
    checkpoint: tuple[str, ...] = ()  # blocks recomputed in backward (figures.checkpointing): paths, calls or every-block

    def __post_init__(self) -> None:
        if self.precision is None:  # --dtype bfloat16 alone is --precision bf16
            object.__setattr__(self, "precision", {"float16": "fp16", "bfloat16": "bf16"}.get(self.dtype, "fp32"))

    @property
    def autocast(self) -> str | None:
        """The type torch.autocast lowers to under a mixed policy, else None (no autocast)."""
        return HALF[self.precision] if self.precision.endswith("-mixed") else None

    @property
    def activation_dtype(self) -> str:
        """The type of every float activation without autocast; under it, the input's (fp32)."""
        if self.precision in ("bf16", "fp16"):
            return HALF[self.precision]
        return "float32" if self.autocast else self.dtype

    @property
    def parameter_dtype(self) -> str:
        """The type of the parameters the forward pass reads as the model holds them: fp32 under
        autocast (it casts them per op), else --weight-dtype or the activations'."""
        return "float32" if self.autocast else self.weight_dtype or self.activation_dtype


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
    generation: Generation | None = None
    """Under --kv-cache: the cache and the prefill and decoding-step peaks at the batch; the
    inference peak is then the larger of the two phases'."""
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
    check_sharding(options)
    check_precision(options)


def check_precision(options: MemoryOptions) -> None:
    """OptionError for an unknown precision, or a dtype, weight dtype or fp32 gradients that
    contradict it: --dtype names every tensor's type under fp32 only (a half precision fixes it)."""
    known = ("fp32", *HALF)
    if options.precision not in known:
        raise OptionError(f"unknown precision '{options.precision}' (known: {', '.join(known)})")
    pure = {"float16": "fp16", "bfloat16": "bf16"}
    if options.precision == "fp32" and options.dtype in pure:
        raise OptionError(
            f"--dtype {options.dtype} contradicts --precision fp32; a model cast to {options.dtype} is "
            f"--precision {pure[options.dtype]}"
        )
    allowed = ("float32",) if options.autocast else ("float32", HALF.get(options.precision, "float32"))
    if options.precision != "fp32" and options.dtype not in allowed:
        raise OptionError(
            f"--dtype {options.dtype} contradicts --precision {options.precision}, which fixes the "
            "tensors' types; --dtype names every tensor's type under --precision fp32 only"
        )
    if options.autocast and options.weight_dtype is not None:
        raise OptionError(
            f"--weight-dtype contradicts --precision {options.precision}, which keeps half weights and "
            "an fp32 master copy; drop --weight-dtype, or use --precision fp32 with --dtype and --weight-dtype"
        )
    if options.fp32_gradients and not options.autocast:
        raise OptionError(
            f"--fp32-gradients keeps fp32 gradients besides the half ones of a mixed precision; "
            f"--precision {options.precision} has one set of gradients (use bf16-mixed or fp16-mixed)"
        )


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


def compute_dtype(op: Op, inputs: list[str], options: MemoryOptions) -> str:
    """The float type an op computes in: the activations' without autocast; under it, as
    torch.autocast's lists put the op (ops.base.Autocast): the half type, fp32, or the widest of
    its float inputs (and of its own fp32 parameters, for `promote`), as type promotion does."""
    half = options.autocast
    if half is None:
        return options.activation_dtype
    if op.autocast == "lower":
        return half
    floats = [d for d in inputs if d not in INTEGER]
    if op.autocast == "fp32" or op.autocast == "promote" or not floats:
        floats.append("float32")
    return max(floats, key=BYTES.__getitem__)


def cast_dtype(op: Op, source: str, options: MemoryOptions) -> str | None:
    """The type autocast casts an input of type `source` to before the op reads it (a new
    tensor, which the op keeps if it keeps that input), or None when the op reads it as it is."""
    if options.autocast is None or source in INTEGER or op.autocast not in ("lower", "fp32"):
        return None
    target = options.autocast if op.autocast == "lower" else "float32"
    return target if source != target else None


def tensor_dtypes(network: Network, options: MemoryOptions) -> dict[str, str]:
    """The element type of the input and of each layer's output: an integer type an op fixes
    (token ids, through views), else the type it computes in (compute_dtype); the input is
    float32 under autocast (the caller's tensor), the activations' type otherwise."""
    dtypes = {INPUT: network.dtype if network.dtype in INTEGER else options.activation_dtype}
    for layer in network.layers:
        inputs = [dtypes[i] for i in layer.inputs]
        dtypes[layer.path] = layer.op.output_dtype(inputs) or compute_dtype(layer.op, inputs, options)
    return dtypes


def element_bytes(network: Network, options: MemoryOptions, dtypes: dict[str, str] | None = None) -> dict[str, int]:
    """Bytes per example of one element of the input and of each layer's output (tensor_dtypes,
    or `dtypes` when the caller has them already), or 0 for a tensor the whole batch shares (a
    learned class token, positions 0..S-1)."""
    dtypes = tensor_dtypes(network, options) if dtypes is None else dtypes
    batched = {INPUT: True}
    result = {INPUT: BYTES[dtypes[INPUT]]}
    for layer in network.layers:
        batched[layer.path] = layer.op.per_example and any(batched[i] for i in layer.inputs)
        result[layer.path] = BYTES[dtypes[layer.path]] if batched[layer.path] else 0
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


def peak_of(network: Network, candidates: list[tuple[str, Dim]]) -> tuple[Dim, str]:
    """The largest candidate and its layer: the first at the maximum, or in symbolic mode an exact
    formula (symbolic.symbols.peak)."""
    if network.symbolic:
        from archcalc.symbolic.symbols import peak as symbolic_peak

        return symbolic_peak(candidates, network.symbols.values(), network.defaults)
    layer, peak = max(candidates, key=lambda c: c[1])
    return peak, layer


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
    recomputation (a checkpointed block's layers keep nothing in the forward; it keeps its inputs).
    Each tensor is priced at its type (tensor_dtypes); an input autocast casts before the op
    keeps it is a new tensor of the cast type (cast_dtype), one per op that casts it."""
    from archcalc.figures.checkpointing import checkpointed_blocks, owners

    ids = storage_of(network)
    dtypes = tensor_dtypes(network, options)
    sizes = element_bytes(network, options, dtypes)
    storages = live_storages(network, shapes, sizes)
    candidates = inference_candidates(network, storages)
    peak, peak_layer = peak_of(network, candidates)
    # training: storages kept for backward, counted once each, plus per-layer extras
    grads = gradients(network, counts)
    share = activation_share(network, options)
    kept: dict[str, Dim] = {}
    blocks = checkpointed_blocks(network, options.checkpoint)
    owner = owners(network, blocks)
    recomputed: dict[str, dict[str, Dim]] = {b: {} for b in blocks}  # per block: what its recomputation keeps
    once: PerOp[tuple[tuple[int, ...], bool, tuple[Dim, ...]]] = PerOp()
    parameter_bytes = BYTES[options.parameter_dtype]

    def plan(op: Op, grad: Gradients, in_shapes: list[Shape], output: Shape, computes: str, batched: bool) -> tuple[tuple[int, ...], bool, tuple[Dim, ...]]:
        """The inputs the op keeps for backward, whether it keeps its output, and its extras'
        bytes per example (none when its output is shared by the batch)."""
        saved = op.saved_for_backward_with(in_shapes, output, options.attention)
        # an extra's element: the computed type's (None), the parameters' or a dropout mask's (--dropout-mask)
        types = {None: BYTES[computes], PARAMETERS: parameter_bytes, MASK: 1 if options.dropout_mask == "bool" else BYTES[computes]}
        extras = tuple(count * (types[dtype] if dtype in types else BYTES[dtype]) if batched else 0 for count, dtype in saved.extra)
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
                    kept[t] = share(t, storages[t].nbytes)
                    saved_bytes += kept[t]
        if grad.recorded:
            op = layer.op
            in_shapes = [shapes[i] for i in layer.inputs]
            in_dtypes = [dtypes[i] for i in layer.inputs]
            batched = sizes[layer.path] != 0
            computes = compute_dtype(op, in_dtypes, options)
            kept_inputs, keeps_output, extras = once(
                op, (grad, batched, output, computes, *in_shapes),
                lambda: plan(op, grad, in_shapes, output, computes, batched),
            )
            tensors: list[tuple[str, str, Dim]] = []  # (key, the storage it splits as, bytes)
            for k in kept_inputs:
                t = ids[layer.inputs[k]]
                cast = cast_dtype(op, dtypes[layer.inputs[k]], options)
                if cast is None:
                    tensors.append((t, t, storages[t].nbytes))
                else:  # autocast's copy of the input, made by this op
                    per_element = BYTES[cast] if sizes[layer.inputs[k]] else 0
                    tensors.append((f"{layer.path}<{k}", t, elements(in_shapes[k]) * per_element))
            if keeps_output:
                tensors.append((ids[layer.path], ids[layer.path], storages[ids[layer.path]].nbytes))
            tensors.extend((f"{layer.path}#{n}", layer.path, extra) for n, extra in enumerate(extras))
            if block is not None:  # made again in backward: the block's own tensors (its inputs are kept)
                made = {key: share(split, nbytes) for key, split, nbytes in tensors if key != split or owner[key] == block}
                recomputed[block].update(made)
                return LayerMemory(elements(output) * sizes[layer.path], saved_bytes)
            for key, split, nbytes in tensors:
                kept[key] = share(split, nbytes)
                saved_bytes += kept[key]
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


def parameters_per_device(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], tp: Dim) -> tuple[Dim, Dim]:
    """Parameters and trainable parameters on one tensor-parallel device (all of them without --tp)."""
    if tp == 1:
        return sum((c.params for c in counts.values()), 0), sum((c.trainable for c in counts.values()), 0)
    return tensor_parallel_parameters(network, shapes, counts, tp)


def parameter_state(params: Dim, trainable: Dim, options: MemoryOptions) -> tuple[Dim, Dim, Dim]:
    """Weights, gradients and optimizer state in bytes on one device, k = OPTIMIZER_STATES copies
    per trainable parameter: 4, 4, 4k bytes per parameter in fp32 (the parameter type's size for
    another --dtype or --weight-dtype); 2, 2, 2k in a model cast to half; 2, 2, 4 + 4k under a
    mixed policy, the fp32 master copy counted with the optimizer as ZeRO counts it (Rajbhandari
    et al. 2020, section 3.1: 2 + 2 + 12 for Adam), + 4 gradient bytes with fp32_gradients (20
    bytes, ZeRO-Infinity section 3). A frozen parameter has its weights only. Each is split
    across the data-parallel devices from its ZeRO stage on (sharding.zero_share)."""
    states = OPTIMIZER_STATES[options.optimizer]
    if options.autocast:
        weight, gradient, state = 2, 2 + (4 if options.fp32_gradients else 0), 4 + 4 * states
    else:
        weight = gradient = BYTES[options.parameter_dtype]
        state = weight * states
    return (
        zero_share("weights", params, options) * weight,
        zero_share("gradients", trainable, options) * gradient,
        zero_share("optimizer_state", trainable, options) * state,
    )


def memory(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions) -> Memory:
    """All memory figures for `options` (checked first)."""
    check_options(options)
    check_batch_symbol(network, options.batch)
    layers, peak, peak_layer, training, recomputation = activation_profile(network, shapes, counts, options)
    found = None
    if options.kv_cache:
        from archcalc.figures.generation import generation

        found = generation(network, shapes, options)
        peak, peak_layer = Linear(0, found.peak), found.peak_layer
    weights, grads, optimizer_state = parameter_state(*parameters_per_device(network, shapes, counts, options.tp), options)
    buffers = sum((c.buffers for c in counts.values()), 0)
    batch = options.batch
    return Memory(
        options,
        layers,
        weights=weights,
        buffers=buffers * BYTES[options.parameter_dtype],
        activations_sum=batch * sum((m.output for m in layers.values()), 0),
        inference_peak=peak.at(batch),
        peak_layer=peak_layer,
        training_activations=training.at(batch),
        gradients=grads,
        optimizer_state=optimizer_state,
        attention=options.attention if any(layer.op.attends for layer in network.layers) else None,
        generation=None if found is None else found.at(batch),
        checkpointed=recomputation.blocks,
        recomputation=batch * recomputation.per_example,
        recomputed_block=recomputation.block,
    )


def fewest_devices(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], options: MemoryOptions, budget: int, train: bool) -> int:
    """The fewest devices (dp replicas of --tp devices) whose per-device total (training, or
    inference) fits `budget` bytes at the batch given: only the ZeRO shards ceil(count / dp)
    shrink as dp grows, so a binary search over dp on them finds it exactly."""
    tp = options.tp
    one = memory(network, shapes, counts, replace(options, devices=tp))  # dp = 1
    activations = one.training_activations if train else one.inference_peak
    params, trainable = parameters_per_device(network, shapes, counts, tp)

    def total(dp: int) -> int:
        weights, grads, optimizer_state = parameter_state(params, trainable, replace(options, devices=dp * tp))
        return int(one.buffers + activations + weights + (grads + optimizer_state if train else 0))

    if total(1) <= budget:
        return tp
    most = max(params, 1)  # from here on every shard is one element: more devices split nothing
    if options.zero == 0 or total(most) > budget:
        what = "ZeRO stage 0 splits nothing across data-parallel devices (give --zero 1, 2 or 3)" if options.zero == 0 else (
            f"even one parameter per device leaves {total(most):,} bytes (activations, buffers and what ZeRO {options.zero} does not split)"
        )
        raise OptionError(f"no number of devices fits {budget:,} bytes: {what}")
    low, high = 1, most  # total(low) > budget >= total(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if total(middle) <= budget else (middle, high)
    return high * tp


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
    """The batch, dtype, optimizer and precision policy that memory figures were priced with, and
    (only where given) fp32 gradients, the dropout mask's element, how the figures are one
    device's, the cache policy and the checkpointed blocks."""
    return {
        "batch": plain(o.batch), "dtype": o.dtype, "optimizer": o.optimizer, "precision": o.precision,
        **({"fp32_gradients": True} if o.fp32_gradients else {}),
        **({"dropout_mask": o.dropout_mask} if o.dropout_mask != "activation" else {}),
        **(sharding_json(o) if per_device(o) else {}),
        **({"kv_cache": True} if o.kv_cache else {}),  # only under the cache policy
        **({"checkpoint": list(o.checkpoint)} if o.checkpoint else {}),
    }


def generation_json(g: Generation) -> dict[str, Any]:
    """The cache at the context and batch, and the peak of each phase of generation (bytes)."""
    return {
        "context": plain(g.context), "cache": plain(g.cache),
        "prefill_peak": plain(g.prefill), "prefill_peak_layer": g.prefill_layer,
        "decode_peak": plain(g.decode), "decode_peak_layer": g.decode_layer, "peak_phase": g.phase,
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
        **({"generation": generation_json(m.generation)} if m.generation else {}),
    }


def inference_parts(analysis: Analysis) -> tuple[Dim, list[Storage]]:
    """The inference total as weights and buffers plus the batch times the largest, over layers,
    of the live storages' bytes: a sweep takes that largest at every grid point, where one
    symbolic peak (kept for sample sizes) would miss the peak of other inputs."""
    m = analysis.memory
    network = analysis.network
    storages = live_storages(network, analysis.results["shapes"], element_bytes(network, m.options))
    return m.weights + m.buffers, list(storages.values())


def precision_note(o: MemoryOptions) -> str:
    """The precision policy figures assume: `precision fp32` (with its --dtype when not float32,
    its --weight-dtype when given), `precision bf16-mixed` (`, fp32 gradients` when kept)."""
    types = "" if o.dtype == "float32" or o.precision != "fp32" else f" ({o.dtype})"
    weights = f", weights {o.weight_dtype}" if o.weight_dtype else ""
    return f"precision {o.precision}{types}{weights}{', fp32 gradients' if o.fp32_gradients else ''}"


def attention_note(m: Memory) -> str:
    """`, attention fused` (or math) where a layer attends: the kernel the saved bytes assume."""
    return f", attention {m.attention}" if m.attention else ""


def _formulas(analysis: Analysis) -> dict[str, Any]:
    m = analysis.memory
    return {
        "weights": m.weights, "buffers": m.buffers, "activations_sum": m.activations_sum,
        "inference_peak": m.inference_peak, "training_activations": m.training_activations,
        "gradients": m.gradients, "optimizer_state": m.optimizer_state, "training_total": m.training_total,
        **({"kv_cache": m.generation.cache, "prefill_peak": m.generation.prefill, "decode_peak": m.generation.decode} if m.generation else {}),
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
        assumes=lambda a: precision_note(a.memory.options) + attention_note(a.memory) + sharding_note(a.memory.options) + (", generation with a KV cache" if a.memory.generation else ""),
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
