"""The Python API: load a spec (a zoo name, a path, YAML/JSON text or a dict) and analyse it.

The same passes and the same ArchcalcError family as the command line; results are the frozen
dataclasses of archcalc.analysis. Documented, with examples a test runs, in docs/api.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from archcalc.analysis import Analysis
from archcalc.analysis import analyze as run
from archcalc.arith import MAX_SIZE
from archcalc.errors import OptionError, quote
from archcalc.figures.memory import HALF, MemoryOptions, Precision, check_options
from archcalc.options import parse_batch
from archcalc.spec.graph import Network, load_data
from archcalc.spec.source import check_text, parse_text, read_file
from archcalc.spec.zoo import resolve

Source = str | os.PathLike[str] | Mapping[str, Any]
InputShape = Sequence[int | str] | str | None


def _input_shape(shape: InputShape) -> tuple[int | str, ...] | None:
    """The input shape (batch excluded) as sizes >= 1 and symbol names, or an OptionError."""
    if shape is None:
        return None
    parts = shape.split(",") if isinstance(shape, str) else list(shape)
    checked: list[int | str] = []
    for part in parts:
        if isinstance(part, str) and part.strip().isidentifier():
            checked.append(part.strip())
        elif isinstance(part, str) and part.strip().isascii() and part.strip().isdigit():
            checked.append(int(part))
        elif isinstance(part, int) and not isinstance(part, bool):
            checked.append(part)
        else:
            checked.append(0)  # refused below
        if isinstance(checked[-1], int) and not 1 <= checked[-1] < MAX_SIZE:
            raise OptionError(
                f"input_shape must be sizes >= 1 or symbol names, like (3, 224, 224) or (3, 'H', 'W'); got {quote(shape)}"
            )
    return tuple(checked)


def load(source: Source, *, input_shape: InputShape = None, symbolic: bool = False) -> Network:
    """The expanded, validated network of a zoo name (`"resnet50"`), a spec file's path, or a
    dict with the spec's keys (validated as a file is; its errors have no file or line).

    A string is never parsed as YAML (a mistyped file name would read as a one-word spec):
    text goes to `loads`. `input_shape` (batch excluded) overrides the spec's input; a name in
    it (`(3, "H", "W")`) is a symbol, and `symbolic=True` keeps every size the spec names symbolic.
    """
    shape = _input_shape(input_shape)
    if isinstance(source, Mapping):
        return load_data(dict(source), None, input_shape=shape, symbolic=symbolic)
    if isinstance(source, (str, os.PathLike)):
        path = str(resolve(os.fspath(source))[0])
        return load_data(read_file(path), path, input_shape=shape, symbolic=symbolic)
    raise TypeError(f"load() takes a zoo name, a path or a dict, not {type(source).__name__}; for YAML/JSON text use loads()")


def loads(text: str, *, input_shape: InputShape = None, symbolic: bool = False, name: str = "<string>") -> Network:
    """The network of a spec given as YAML or JSON text (JSON is YAML), held to the size limit of a
    file; errors say `<string>:LINE` (or `name:LINE`)."""
    if not isinstance(text, str):
        raise TypeError(f"loads() takes the spec's text as str, not {type(text).__name__}")
    data = parse_text(check_text(text, name), name)
    return load_data(data, name, input_shape=_input_shape(input_shape), symbolic=symbolic)


def analyze(
    network: Network | Source,
    *,
    batch: int | str = 1,
    dtype: str = "float32",
    weight_dtype: str | None = None,
    optimizer: str = "adam",
    precision: Precision | None = None,
    attention: Literal["fused", "math"] = "fused",
    fp32_gradients: bool = False,
    dropout_mask: Literal["activation", "bool"] = "activation",
    devices: int | str | None = None,
    zero: Literal[0, 1, 2, 3] = 0,
    tp: int | str = 1,
    sequence_parallel: bool = False,
    kv_cache: bool = False,
) -> Analysis:
    """Shapes, parameters, FLOPs, receptive fields and memory of every layer, with totals.

    `network` is a loaded Network, or anything `load` takes. The memory options are those of
    `archcalc memory`: `batch` a whole number >= 1 or a symbol's name (`"B"`), `dtype` and
    `weight_dtype` one of archcalc.dtypes.BYTES, `optimizer` one of sgd, momentum, nesterov,
    adagrad, rmsprop, adadelta, adam, adamw, nadam, amsgrad; `precision` "fp32", "bf16", "fp16",
    "bf16-mixed" or "fp16-mixed" (None: fp32, or bf16/fp16 for a dtype "bfloat16"/"float16");
    `attention` "fused" or "math" (what attention keeps for backward); `fp32_gradients` under a
    mixed precision, fp32 gradients besides the half ones (docs/memory.md); `dropout_mask`
    "activation" or "bool"; `devices`, `zero`, `tp`, `sequence_parallel` as --devices, --zero, --tp,
    --sequence-parallel (one device's figures: docs/memory.md, Sharding), `devices` and `tp` whole
    numbers or symbols' names; `kv_cache` True sizes inference as generation with a key/value cache
    at the context the input's sequence gives (docs/memory.md, "KV cache").
    """
    if not isinstance(network, Network):
        network = load(network)
    if precision is not None and precision not in ("fp32", *HALF):
        raise OptionError(f"precision must be one of fp32, {', '.join(HALF)} or None, got {quote(precision)}")
    if not isinstance(fp32_gradients, bool):
        raise OptionError(f"fp32_gradients must be True or False, got {quote(fp32_gradients)}")
    if not isinstance(kv_cache, bool):
        raise OptionError(f"kv_cache must be True or False, got {quote(kv_cache)}")
    options = MemoryOptions(
        batch=_batch(batch), dtype=dtype, weight_dtype=weight_dtype, optimizer=str(optimizer).lower(),
        precision=precision, attention=attention, fp32_gradients=fp32_gradients, dropout_mask=dropout_mask,
        devices=None if devices is None else _batch(devices, "devices"), zero=zero, tp=_batch(tp, "tp"),
        sequence_parallel=sequence_parallel, kv_cache=kv_cache,
    )
    check_options(options)
    return run(network, options)


def _batch(batch: int | str, name: str = "batch") -> Any:
    """The batch (or `name`: devices, tp) as an int >= 1, or as a positive-integer symbol named by a string."""
    if isinstance(batch, bool) or not isinstance(batch, (int, str)):
        raise OptionError(f"{name} must be a whole number >= 1 or a symbol name like 'B', got {quote(batch)}")
    if isinstance(batch, int):
        if not 1 <= batch < MAX_SIZE:
            raise OptionError(f"{name} must be at least 1, got {quote(batch)}")
        return batch
    value = parse_batch(batch, name)
    if isinstance(value, str):
        from archcalc.symbolic.symbols import symbol

        return symbol(value)
    return value
