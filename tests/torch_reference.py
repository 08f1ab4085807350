"""torchvision's models measured by torch itself, for the zoo tests' cross-checks.

Imported as `from torch_reference import ...`. torch and torchvision are not test dependencies
(CI does not install them): nothing here imports them at load time, and `measure` skips the
calling test when they are missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

IMAGENET_INPUT = (3, 224, 224)


@dataclass
class Call:
    """One call of a torch leaf module during the forward pass."""

    name: str
    module: Any
    output_shape: tuple[int, ...]  # batch excluded


@dataclass
class Reference:
    """torchvision's model, measured: every figure is taken from torch at test time."""

    name: str
    model: Any  # in eval mode
    params: int
    buffers: int
    output_shape: tuple[int, ...]  # batch excluded
    flops: int
    saved_bytes_per_image: int
    calls: list[Call]  # leaf modules, in execution order
    shortcuts: list[tuple[int, ...]]  # output shapes of the blocks that add their input


def own_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def own_buffers(module: Any) -> int:
    return sum(b.numel() for b in module.buffers(recurse=False))


def torch_view(call: Call, kind: Mapping[str, str]) -> tuple:
    """(op, output shape, own parameters, own buffers) of a torch module call; `kind` maps the
    module's class name to archcalc's op."""
    module = call.module
    return (kind[type(module).__name__], call.output_shape, own_params(module), own_buffers(module))


def archcalc_view(layer: Any) -> tuple:
    """The same four figures of an archcalc layer."""
    return (layer.op, layer.output_shape, layer.params.params, layer.params.buffers)


def assert_layers_match(analysis: Any, measured_layers: Mapping[str, Mapping[str, Any]]) -> None:
    """Each torch leaf module's output shape, own parameters and FLOPs equal those of the archcalc
    layer of its name (add, concat and mul are functions in torch: they have no entry)."""
    layers = {r.path: r for r in analysis.layers}
    for name, layer in measured_layers.items():
        mine = layers[name]
        assert [list(mine.output_shape), mine.params.params, mine.flops.flops] == [
            layer["output_shape"], layer["params"], layer["flops"]], name


def saved_bytes(torch: Any, model: Any, input_shape: tuple[int, ...], batch: int,
                make_input: Callable[[int], Any] | None = None) -> int:
    """Bytes autograd keeps for backward in one forward pass, each storage counted once;
    `make_input(batch)` gives the input (default: a random float image of `input_shape`)."""
    storages: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(make_input(batch) if make_input else torch.randn(batch, *input_shape))
    return sum(storages.values())


def saved_bytes_under(torch: Any, model: Any, input_shape: tuple[int, ...], precision: str,
                      batches: tuple[int, int], make_input: Callable[[int], Any] | None = None) -> int:
    """Bytes saved for backward per example (the difference of `batches`) under archcalc's
    `--precision`: `bf16-mixed`/`fp16-mixed` a forward inside torch.autocast("cpu", the half
    type) on the float32 model; `bf16`/`fp16` a copy of the model cast to the half type, fed a
    float input cast to it too (token ids stay int64)."""
    import copy

    half = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision.removesuffix("-mixed")]
    mixed = precision.endswith("-mixed")
    run = model if mixed else copy.deepcopy(model).to(half)

    def cast_input(batch: int) -> Any:
        x = make_input(batch) if make_input else torch.randn(batch, *input_shape)
        return x if mixed or not x.is_floating_point() else x.to(half)

    def kept(batch: int) -> int:
        scope = torch.autocast("cpu", half) if mixed else contextlib.nullcontext()
        with scope:
            return saved_bytes(torch, run, input_shape, batch, cast_input)

    small, large = batches
    return (kept(large) - kept(small)) // (large - small)


def measure(
    name: str,
    input_shape: tuple[int, ...] = IMAGENET_INPUT,
    build: Mapping[str, Any] | None = None,
) -> Reference:
    """torchvision.models.<name>(weights=None, **build), seeded, on a random `input_shape` image
    (batch excluded): every leaf module's call, the FLOPs, and the bytes saved for backward."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **(build or {})).eval()
    calls: list[Call] = []
    handles = [
        module.register_forward_hook(
            lambda m, _i, o, module_name=module_name: calls.append(
                Call(module_name, m, tuple(o.shape[1:])))
        )
        for module_name, module in model.named_modules()
        if not list(module.children())
    ]
    # torchvision's inverted residual blocks: use_res_connect (MobileNet, EfficientNet) or
    # apply_residual (MNASNet) when stride 1 keeps the width
    shortcuts: list[tuple[int, ...]] = []
    handles += [
        module.register_forward_hook(lambda _m, _i, o: shortcuts.append(tuple(o.shape[1:])))
        for module in model.modules()
        if getattr(module, "use_res_connect", False) or getattr(module, "apply_residual", False)
    ]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        output_shape = tuple(model(torch.randn(1, *input_shape)).shape[1:])
    for handle in handles:
        handle.remove()
    # Train mode. Per image = batch 2 minus batch 1, which cancels what does not grow with the
    # batch: the parameters autograd saves and batch norm's per-channel statistics. On the CPU,
    # dropout saves a float32 mask, as archcalc assumes.
    model.train()
    per_image = (saved_bytes(torch, model, input_shape, 2)
                 - saved_bytes(torch, model, input_shape, 1))
    return Reference(
        name=name,
        model=model.eval(),
        params=sum(p.numel() for p in model.parameters()),
        buffers=sum(b.numel() for b in model.buffers()),
        output_shape=output_shape,
        flops=counter.get_total_flops(),
        saved_bytes_per_image=per_image,
        calls=calls,
        shortcuts=shortcuts,
    )


@contextlib.contextmanager
def attention_decomposed(torch: Any) -> Iterator[None]:
    """flop_counter counts attention only on SDPA's math path, and nn.MultiheadAttention reaches
    SDPA in eval mode only with its fast path off: both, restored after (ViT-B/16 reads 22.5 or
    33.7 GFLOPs otherwise, instead of 35.1)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def measure_module(
    torch: Any, model: Any, input_shape: tuple[int, ...], batches: tuple[int, int] = (1, 2),
    make_input: Callable[[int], Any] | None = None, attention: bool = False,
) -> dict[str, Any]:
    """A module's parameters, buffers, output shape and flop_counter FLOPs (one example, eval
    mode), bytes saved for backward per example in train mode ((saved at the larger batch -
    saved at the smaller) / their difference, which cancels what does not grow with the batch),
    and, per leaf module, its output shape (from a forward hook), parameters and FLOPs.
    `make_input(batch)` gives the input (token ids for a language model; default a float image);
    a model returning an object with `logits` or `last_hidden_state` (HF) is measured on that.
    `attention`: FLOPs counted with attention decomposed (attention_decomposed); the saved bytes
    are always the default kernel's (fused SDPA on the CPU)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    shapes: dict[str, list[int]] = {}

    def record(name: str) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            shapes.setdefault(name, list(output.shape[1:]))  # a module called twice: its first
        return hook

    leaves = {name: module for name, module in model.named_modules()
              if name and not list(module.children())}
    handles = [module.register_forward_hook(record(name)) for name, module in leaves.items()]
    counter = FlopCounterMode(display=False)
    decomposed = attention_decomposed(torch) if attention else contextlib.nullcontext()
    with torch.no_grad(), counter, decomposed:
        output = model(make_input(1) if make_input else torch.randn(1, *input_shape))
    for handle in handles:
        handle.remove()
    if isinstance(output, dict) and "out" in output:  # torchvision's segmentation models: {"out": ..., "aux": ...}
        output = output["out"]
    for field in ("logits", "last_hidden_state"):  # HF transformers' model outputs
        output = getattr(output, field, output)
    root = type(model).__name__
    flops = {name[len(root) + 1:]: sum(counts.values())
             for name, counts in counter.get_flop_counts().items() if name.startswith(root + ".")}
    model.train()
    small, large = batches
    grown = (saved_bytes(torch, model, input_shape, large, make_input)
             - saved_bytes(torch, model, input_shape, small, make_input))
    model.eval()
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "output_shape": list(output.shape[1:]),
        "flops": counter.get_total_flops(),
        "saved_bytes_per_example": grown // (large - small),
        "layers": {
            name: {"output_shape": shapes.get(name), "params": own_params(module),
                   "flops": flops.get(name, 0)}
            for name, module in leaves.items()
        },
    }


def assert_small_model_matches(torch: Any, spec: dict[str, Any], model: Any) -> None:
    """A spec equals a torch module built to match it: every array's name and shape (state_dict),
    parameters, buffers, output shape, FLOPs and saved bytes per example, measured from batches
    2 and 3 (where torch.matmul copies a one-window stage's factors, as at every larger batch)."""
    from archcalc.analysis import analyze
    from archcalc.executor import expected_arrays
    from archcalc.figures.memory import MemoryOptions
    from archcalc.spec.graph import expand
    from archcalc.spec.spec import parse_spec

    network = expand(parse_spec(spec), spec)
    arrays = {f"{path}.{k}" if k else path: list(shape)
              for path, own in expected_arrays(network).items() for k, (shape, _) in own.items()}
    assert arrays == {k: list(v.shape) for k, v in model.state_dict().items()}
    measured = measure_module(torch, model, tuple(spec["input"]), (2, 3))
    analysis = analyze(network, MemoryOptions(batch=1))
    got = [analysis.totals.params, analysis.totals.buffers, list(analysis.output_shape),
           analysis.totals.flops, analysis.memory.training_activations]
    assert got == [measured[k] for k in ("params", "buffers", "output_shape", "flops", "saved_bytes_per_example")]
