"""A PyTorch model as an ImportedNetwork: captured with torch.export (a saved `.pt2` program, or
a module built by `PACKAGE.MODULE:CALLABLE`), each ATen operator mapped to an archcalc op
(archcalc.bridges.torch_ops), each layer named by the module that ran it.

Names: a module that holds no other module and runs one operator gives the layer its path
(`layer1.0.conv1`); its second and third calls take `relu2`, `relu3` (torchvision's Bottleneck
runs one ReLU three times). An operator a module runs among others (`layer1.0`'s residual add)
is named by the module path and the op (`layer1.0.add`, `add2`, ...).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archcalc.bridges.imported import ImportedLayer, ImportedNetwork, Unmapped
from archcalc.bridges.torch_ops import PASS_THROUGH, RULES, WEIGHTED
from archcalc.errors import BridgeError

if TYPE_CHECKING:
    from archcalc.spec.graph import Network

EXTRA = "pip install 'archcalc[torch]'"
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def require_torch() -> Any:
    """The torch module, or a BridgeError saying which extra to install."""
    try:
        import torch
    except ImportError:
        raise BridgeError(f"importing a PyTorch model needs torch: {EXTRA}") from None
    return torch


@dataclass(frozen=True)
class Captured:
    """A torch.export program and what the spec writer also wants: module classes by path."""

    program: Any  # torch.export.ExportedProgram
    name: str


def build(target: str, kwargs: dict[str, Any]) -> Any:
    """The nn.Module `PACKAGE.MODULE:CALLABLE(**kwargs)` builds, in eval mode."""
    torch = require_torch()
    if not _CALLABLE.match(target):
        raise BridgeError(f"expected PACKAGE.MODULE:CALLABLE (e.g. torchvision.models:resnet50), got {target!r}")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BridgeError(f"cannot import {module_name!r}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise BridgeError(f"{module_name!r} has no callable {attribute!r}")
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise BridgeError(f"{target}(**{json.dumps(kwargs)}) failed: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise BridgeError(f"{target} returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def capture(model: Any, input_shape: tuple[int, ...], name: str) -> Captured:
    """The model traced by torch.export on a batch of 2 (so the batch axis is told apart from
    sizes of 1); an export failure is a BridgeError with torch's reason."""
    torch = require_torch()
    example = torch.zeros((2, *input_shape))
    try:
        program = torch.export.export(model, (example,), strict=False)
    except Exception as exc:  # torch raises many kinds; each means "cannot capture"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BridgeError(f"torch.export could not capture the model: {first[:400]}") from None
    return Captured(program, name)


def load_program(path: str) -> Captured:
    """A program saved by torch.export.save."""
    torch = require_torch()
    try:
        program = torch.export.load(path)
    except Exception as exc:  # a corrupt or foreign file
        raise BridgeError(f"cannot load {path!r} as a torch.export program: {exc}") from None
    return Captured(program, Path(path).stem)


def _leaf(path: str) -> str:
    return path.rpartition(".")[2]


class _Namer:
    """Layer names from module paths, unique within the network."""

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = set(modules)
        self.used: set[str] = set()

    def holds_modules(self, path: str) -> bool:
        return any(m.startswith(path + ".") for m in self.modules)

    def take(self, base: str) -> str:
        name, n = base, 2
        while name in self.used or self.holds_modules(name):
            name, n = f"{base}{n}", n + 1
        self.used.add(name)
        return name


def _shape(node: Any) -> tuple[int, ...] | None:
    value = node.meta.get("val") if hasattr(node, "meta") else None
    shape = getattr(value, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def _value(arg: Any) -> Any:
    """An argument as a rule reads it: a tensor as its shape, a list element by element."""
    if hasattr(arg, "meta"):
        return _shape(arg)
    if isinstance(arg, (list, tuple)):
        return [_value(a) for a in arg]
    return arg


def _arguments(node: Any) -> dict[str, Any]:
    """The operator's arguments by schema name, defaults filled in."""
    schema = node.target._schema
    found: dict[str, Any] = {}
    for index, argument in enumerate(schema.arguments):
        if index < len(node.args):
            found[argument.name] = _value(node.args[index])
        elif argument.name in node.kwargs:
            found[argument.name] = _value(node.kwargs[argument.name])
        elif argument.has_default_value():
            found[argument.name] = argument.default_value
    return found


def _tensors(arg: Any) -> list[Any]:
    """The graph nodes an argument passes (a list for torch.cat)."""
    if hasattr(arg, "meta"):
        return [arg]
    if isinstance(arg, (list, tuple)):
        return [n for a in arg for n in _tensors(a)]
    return []


def _module(node: Any) -> tuple[str, str, int]:
    """(module path, class, call number) of the innermost module running `node`."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", "", 0
    key, (path, kind) = list(stack.items())[-1]
    call = str(key).rpartition("@")[2] if "@" in str(key) else "0"
    return str(path), str(kind), int(call) if call.isdigit() else 0


def modules(captured: Captured) -> dict[str, str]:
    """Module path -> class name of every module the program ran (for naming blocks)."""
    kinds: dict[str, str] = {}
    for node in captured.program.graph.nodes:
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            if path:
                kinds.setdefault(str(path), str(kind))
    return kinds


@dataclass(frozen=True)
class Mapped:
    """The imported network, and per layer what torch traced: its output shape (batch
    excluded) and its parameters' shapes by name (`weight`, `bias`)."""

    network: ImportedNetwork
    shapes: dict[str, tuple[int, ...]]
    weights: dict[str, dict[str, tuple[int, ...]]]


def to_network(captured: Captured, opaque: bool = False) -> Mapped:
    """The program's operators as archcalc layers; with `opaque`, an unmapped operator becomes
    an `opaque` layer of its traced shape and parameter count, else it is listed in `unmapped`."""
    program = captured.program
    signature = program.graph_signature
    params = dict(signature.inputs_to_parameters)
    buffers = dict(signature.inputs_to_buffers)
    user_inputs = list(signature.user_inputs)
    if len(user_inputs) != 1:
        raise BridgeError(f"the model takes {len(user_inputs)} inputs; archcalc imports models of one input tensor")
    graph = list(program.graph.nodes)
    kinds = modules(captured)
    namer = _Namer(kinds)
    produced: dict[str, str] = {}  # graph node name -> layer path (or `input`)
    layers: list[ImportedLayer] = []
    unmapped: list[Unmapped] = []
    input_shape: tuple[int, ...] = ()
    shapes: dict[str, tuple[int, ...]] = {}
    weights: dict[str, dict[str, tuple[int, ...]]] = {}
    calls: dict[tuple[str, int], int] = {}  # mapped operators per module call
    for node in graph:
        if node.op == "call_function" and str(node.target) in RULES:
            path, _, call = _module(node)
            calls[path, call] = calls.get((path, call), 0) + 1
    for node in graph:
        if node.op == "placeholder":
            if node.name in user_inputs:
                produced[node.name] = "input"
                input_shape = (_shape(node) or (0,))[1:]
            continue
        if node.op == "output":
            continue
        target = str(node.target)
        sources = [n for a in (*node.args, *node.kwargs.values()) for n in _tensors(a)]
        data = [s for s in sources if s.name not in params and s.name not in buffers]
        if target in PASS_THROUGH or (node.op == "call_function" and target == "<built-in function getitem>" and node.args[1] == 0):
            if data and data[0].name in produced:
                produced[node.name] = produced[data[0].name]
            continue
        out = _shape(node)
        path, kind, call = _module(node)
        rule = RULES.get(target)
        mapped = rule(_arguments(node), out or ()) if rule is not None and out is not None else None
        if len(data) < len(sources) and target not in WEIGHTED:
            mapped = None  # a parameter read as data (a class token): no archcalc op takes it so
        where = path or "(top level)"
        if mapped is None and not opaque:
            unmapped.append(Unmapped(target, f"{where} (node {node.name})"))
            produced[node.name] = node.name
            continue
        if mapped is None:
            count = sum(_numel(_shape(s)) for s in sources if s.name in params)
            op, fields = "opaque", {"shape": list((out or (1,))[1:]), "params": count, "traced": target}
        else:
            op, fields = mapped
        if path and calls.get((path, call), 0) == 1 and not namer.holds_modules(path):
            base = path if call == 0 else f"{path}{call + 1}"
        else:
            base = f"{path}.{op}" if path else op
        name = namer.take(base)
        inputs = tuple(produced.get(s.name, s.name) for s in data)
        layers.append(ImportedLayer(name, op, fields, inputs, f"{target} in {where} (node {node.name})"))
        produced[node.name] = name
        shapes[name] = (out or (1,))[1:]
        weights[name] = {_leaf(params[s.name]): _shape(s) or () for s in sources if s.name in params}
    return Mapped(ImportedNetwork(captured.name, input_shape, "float32", layers, unmapped), shapes, weights)


def _numel(shape: tuple[int, ...] | None) -> int:
    total = 1
    for d in shape or ():
        total *= d
    return total


def unmapped_message(unmapped: list[Unmapped]) -> str:
    """Every operation archcalc has no op for, one a line, and what to do."""
    lines = [f"  {u.what} at {u.where}" for u in unmapped]
    return (f"{len(unmapped)} operation(s) have no archcalc op:\n" + "\n".join(lines)
            + "\n(--opaque keeps each as an `opaque` layer of its traced shape, whose FLOPs and memory are unknown)")


def check(mapped: Mapped, network: Network) -> None:
    """The written spec against what torch traced: every layer's output shape and parameter
    shapes must agree, else a BridgeError naming the layer (a mapping rule is wrong)."""
    from archcalc.figures.shapes import output_shapes

    ours = output_shapes(network)
    for layer in network.layers:
        traced = mapped.shapes.get(layer.path)
        if traced is not None and tuple(ours[layer.path]) != traced:
            raise BridgeError(f"archcalc computes the shape {list(ours[layer.path])}, torch traced {list(traced)}", layer=layer.path)
        inputs = [ours[p] for p in layer.inputs]
        expected = {k: tuple(v) for k, v in layer.op.parameters(inputs).items()}
        found = mapped.weights.get(layer.path, {})
        if not layer.op.known_costs:  # an opaque layer holds the count as one array
            expected, found = {"params": sum(_numel(s) for s in expected.values())}, {"params": sum(_numel(s) for s in found.values())}
        if expected != found:
            raise BridgeError(f"archcalc's {layer.op.kind} has parameters {expected}, the model's are {found}", layer=layer.path)


def import_model(source: str, kwargs: dict[str, Any], input_shape: tuple[int, ...] | None, opaque: bool) -> tuple[str, list[str]]:
    """The spec text of a model (`PACKAGE.MODULE:CALLABLE` or a `.pt2` file) and a warning per
    opaque layer; a BridgeError listing every unmapped operation without `opaque`."""
    from archcalc.api import loads
    from archcalc.bridges.spec_writer import write_spec

    if source.endswith(".pt2"):
        captured = load_program(source)
    else:
        if input_shape is None:
            raise BridgeError("--input is needed to trace a model built by a callable (e.g. --input 3,224,224)")
        name = source.rpartition(":")[2]
        captured = capture(build(source, kwargs), input_shape, name)
    mapped = to_network(captured, opaque)
    if mapped.network.unmapped:
        raise BridgeError(unmapped_message(mapped.network.unmapped))
    text = write_spec(mapped.network, modules(captured))
    check(mapped, loads(text, name=f"<spec of {captured.name}>"))
    warnings = [
        f"layer '{layer.path}' is opaque ({layer.fields['traced']}): its FLOPs and saved tensors are unknown"
        for layer in mapped.network.layers if layer.op == "opaque"
    ]
    return text, warnings
