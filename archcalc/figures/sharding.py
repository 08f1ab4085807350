"""Per-device memory of training spread over devices: ZeRO across data-parallel replicas, tensor
and sequence parallelism (docs/memory.md, "Sharding").

`--devices N` counts every device; with tensor parallelism of degree t the N devices form
dp = N / t data-parallel replicas of t devices each. ZeRO (Rajbhandari et al. 2020, §5) splits
across the dp replicas: stage 1 the optimizer state, 2 also the gradients, 3 also the parameters.
Tensor parallelism (Shoeybi et al. 2019, §3) splits the layers marked `parallel: column|row`;
sequence parallelism (Korthikanti et al. 2022, §4.2.2) splits every activation t ways too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archcalc.arith import Dim, Shape, ceil_div, divide, is_numeric
from archcalc.errors import OptionError
from archcalc.figures.figure import plain
from archcalc.spec.graph import INPUT, Network

if TYPE_CHECKING:
    from archcalc.figures.memory import MemoryOptions
    from archcalc.figures.params import ParamCount

ZERO_SHARDS = {"optimizer_state": 1, "gradients": 2, "weights": 3}
"""The ZeRO stage from which each component is split across the data-parallel devices (§5.1-5.3)."""


def per_device(options: MemoryOptions) -> bool:
    """Whether the figures are one device's: devices, ZeRO or tensor parallelism given."""
    return options.devices is not None or options.zero != 0 or options.tp != 1


def sharding_note(options: MemoryOptions) -> str:
    """`, per device of 8 (8 data-parallel x tensor-parallel 1), ZeRO 3` for a title; empty for one device."""
    if not per_device(options):
        return ""
    devices = options.devices if options.devices is not None else options.tp
    sequence = " + sequence-parallel" if options.sequence_parallel else ""
    zero = f", ZeRO {options.zero}" if options.zero else ""
    alone = " (one data-parallel device: ZeRO splits nothing)" if options.zero and data_parallel(options) == 1 else ""
    return f", per device of {devices} ({data_parallel(options)} data-parallel x tensor-parallel {options.tp}{sequence}){zero}{alone}"


def sharding_json(o: MemoryOptions) -> dict[str, Any]:
    """`per_device: true` and the devices, data-parallel replicas, ZeRO stage and tensor/sequence parallelism."""
    return {
        "per_device": True, "devices": plain(o.devices if o.devices is not None else o.tp), "data_parallel": plain(data_parallel(o)),
        "zero": o.zero, "tensor_parallel": plain(o.tp), "sequence_parallel": o.sequence_parallel,
    }


def data_parallel(options: MemoryOptions) -> Dim:
    """dp = devices / t, the data-parallel replicas (1 when --devices is not given)."""
    return 1 if options.devices is None else divide(options.devices, options.tp)


def check_sharding(options: MemoryOptions) -> None:
    """OptionError for a ZeRO stage outside 0-3, a degree below 1, devices t does not divide, or
    sequence parallelism without tensor parallelism (it splits what tensor parallelism leaves whole)."""
    if options.zero not in (0, 1, 2, 3):
        raise OptionError(f"--zero takes a ZeRO stage 0, 1, 2 or 3, got {options.zero}")
    for name, value in (("--tp", options.tp), ("--devices", options.devices)):
        if isinstance(value, int) and value < 1:
            raise OptionError(f"{name} must be at least 1, got {value}")
    if options.sequence_parallel and options.tp == 1:
        raise OptionError("--sequence-parallel splits activations across the tensor-parallel devices: give --tp T > 1 too")
    devices, tp = options.devices, options.tp
    if devices is not None and is_numeric(devices, tp) and devices % tp:
        raise OptionError(
            f"--devices counts every device, tensor-parallel ones included, so it must be a multiple of "
            f"--tp {tp}: {devices} is not (e.g. --devices {devices - devices % tp or tp} for {(devices // tp) or 1} data-parallel replica(s))"
        )


def zero_share(component: str, count: Dim, options: MemoryOptions) -> Dim:
    """One device's elements of a component: ceil(count / dp) from its ZeRO stage on (the flat
    buffer padded to a multiple of dp, as DeepSpeed and FSDP's FlatParameter pad it), else all."""
    if options.zero < ZERO_SHARDS[component]:
        return count
    dp = data_parallel(options)
    if is_numeric(count, dp):
        return ceil_div(count, dp)
    import sympy  # symbolic mode: written ceiling(Psi/N), as the papers' Psi/N rounds up

    return sympy.ceiling(count / dp)


def split_layers(network: Network) -> dict[str, bool]:
    """Per layer (and the input): whether its output is split across the tensor-parallel devices:
    a column-parallel layer's is; a row-parallel layer's is whole (all-reduced) and it must read a
    split tensor; any other op's output is split when its inputs are (attention on split heads,
    an activation of a column-parallel output), and mixing split and whole inputs is an error."""
    split = {INPUT: False}
    for layer in network.layers:
        parallel = layer.op.tensor_parallel
        inputs = [split[i] for i in layer.inputs]
        if parallel == "column":
            split[layer.path] = True
        elif parallel == "row":
            if not inputs[0]:
                raise OptionError(
                    f"layer '{layer.path}' is row-parallel but reads '{layer.inputs[0]}', which every device "
                    "holds whole: a row-parallel layer reads what a column-parallel layer split (mark one before it)"
                )
            split[layer.path] = False
        elif any(inputs) and not all(inputs):
            raise OptionError(
                f"layer '{layer.path}' mixes inputs split across the tensor-parallel devices with whole ones "
                f"({', '.join(i for i, s in zip(layer.inputs, inputs) if s)} split); end the split with a row-parallel layer first"
            )
        else:
            split[layer.path] = any(inputs)
    if not any(layer.op.tensor_parallel for layer in network.layers):
        raise OptionError(
            "--tp splits the layers marked `parallel: column` or `parallel: row` (Megatron-LM's column- and "
            "row-parallel linear layers), and this spec marks none"
        )
    return split


def activation_share(network: Network, options: MemoryOptions) -> Callable[[str, Dim], Dim]:
    """One device's bytes of a tensor the layer at a path created: nbytes / t when tensor
    parallelism splits it (split_layers) or sequence parallelism splits every activation
    (Korthikanti et al. 2022, Table 2: (sbh/t)(34 + 5as/h)), else nbytes."""
    tp = options.tp
    if tp == 1:
        return lambda path, nbytes: nbytes
    split = split_layers(network)

    def share(path: str, nbytes: Dim) -> Dim:
        if not (options.sequence_parallel or split[path]):
            return nbytes
        if is_numeric(nbytes, tp) and nbytes % tp:
            raise OptionError(f"'{path}' keeps {nbytes:,} bytes per example, which --tp {tp} does not split evenly")
        return divide(nbytes, tp)

    return share


def tensor_parallel_parameters(network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], tp: Dim) -> tuple[Dim, Dim]:
    """One tensor-parallel device's parameters and trainable parameters: each layer's whole
    parameters plus its split ones (`Op.split_parameters`) divided by t."""
    params: Dim = 0
    trainable: Dim = 0
    for layer in network.layers:
        count = counts[layer.path]
        split = 0 if count.tied_to else layer.op.split_parameters([shapes[i] for i in layer.inputs])
        if is_numeric(split, tp) and split % tp:
            raise OptionError(f"layer '{layer.path}' has {split:,} parameters to split, which --tp {tp} does not divide")
        mine = count.params - split + divide(split, tp)
        params += mine
        trainable += 0 if count.frozen else mine
    return params, trainable
