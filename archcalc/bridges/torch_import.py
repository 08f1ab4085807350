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
from archcalc.bridges.torch_ops import PASS_THROUGH, RULES, WEIGHTED, module_rule
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
    """The nn.Module `PACKAGE.MODULE:CALLABLE(**kwargs)` builds, in training mode (what
    archcalc measures: a stochastic-depth or dropout layer does nothing in eval mode)."""
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
    return model.train()


def capture(model: Any, input_shape: tuple[int, ...], name: str, dtype: str = "float32") -> Captured:
    """The model traced by torch.export on a batch of 2 (the batch axis told apart from sizes of
    1, and batch norm in training has two values per channel) of zeros of `dtype` (int64 for token
    ids: 0 is a valid id); an export failure is a BridgeError with torch's reason."""
    torch = require_torch()
    example = torch.zeros((2, *input_shape), dtype=getattr(torch, dtype))
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
    return _Mapper(captured, opaque).run()


_SPLITS = frozenset({"aten.chunk.default", "aten.split.Tensor", "aten.split_with_sizes.default"})
_GETITEM = "<built-in function getitem>"


class _Mapper:
    """One pass over the program's nodes in execution order."""

    def __init__(self, captured: Captured, opaque: bool) -> None:
        program = captured.program
        signature = program.graph_signature
        self.name = captured.name
        self.opaque = opaque
        self.params = dict(signature.inputs_to_parameters)
        self.buffers = dict(signature.inputs_to_buffers)
        self.user_inputs = list(signature.user_inputs)
        if len(self.user_inputs) != 1:
            raise BridgeError(f"the model takes {len(self.user_inputs)} inputs; archcalc imports models of one input tensor")
        self.graph = list(program.graph.nodes)
        self.namer = _Namer(modules(captured))
        self.produced: dict[str, str] = {}  # graph node name -> layer path (or `input`)
        self.pieces: dict[str, tuple[int, list[tuple[int, int]]]] = {}  # a split: dim, [start, end) per piece
        self.layers: list[ImportedLayer] = []
        self.unmapped: list[Unmapped] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.weights: dict[str, dict[str, tuple[int, ...]]] = {}
        self.calls: dict[tuple[str, int], int] = {}  # operators per module call
        self.whole: dict[str, list[Any]] = {}  # a call of a module mapped whole (MODULES) -> its nodes
        self.call_of: dict[str, tuple[str, str, str]] = {}  # node name -> (that call, path, class)
        for node in self.graph:
            if node.op != "call_function":
                continue
            for key, (path, kind) in (node.meta.get("nn_module_stack") or {}).items():
                if module_rule(str(kind)) is not None:
                    self.whole.setdefault(str(key), []).append(node)
                    self.call_of[node.name] = (str(key), str(path), str(kind))
                    break
            if node.name in self.call_of and self.whole[self.call_of[node.name][0]][0] is not node:
                continue  # a module mapped whole counts once, as one operator of its own path
            if not self.passes(node) and str(node.target) not in _SPLITS:
                path, _, call = _module(node) if node.name not in self.call_of else (self.call_of[node.name][1], "", 0)
                self.calls[path, call] = self.calls.get((path, call), 0) + 1

    def passes(self, node: Any) -> bool:
        """An operator that changes nothing archcalc measures, its output read as its input: an
        alias or clone, a one-tensor cat, an expand of the batch axis alone, the batch axis of 1
        given to a parameter or buffer (`p[None]`: archcalc's `batch_axis: false` array), or the
        first result of a tuple (getitem 0 of an operator that is not a split)."""
        target = str(node.target)
        if target in PASS_THROUGH or self.updates_state(node):
            return True
        if target == _GETITEM:
            return bool(node.args[1] == 0 and str(node.args[0].target) not in _SPLITS)
        if target in ("aten.cat.default", "aten.concat.default"):
            return len(_tensors(node.args[0])) == 1
        if target == "aten.unsqueeze.default":
            first = getattr(node.args[0], "name", None)
            return node.args[1] == 0 and (first in self.params or first in self.buffers)
        if target == "aten.expand.default":
            before, after = _shape(node.args[0]), _shape(node)
            return before is not None and after is not None and before[1:] == after[1:]
        return False

    def updates_state(self, node: Any) -> bool:
        """An in-place update of a buffer (batch norm's num_batches_tracked += 1 in training):
        state, not data; archcalc counts the buffer with its layer."""
        first = node.args[0] if node.args else None
        parts = str(node.target).split(".")
        return len(parts) > 2 and parts[1].endswith("_") and getattr(first, "name", None) in self.buffers

    def run(self) -> Mapped:
        input_shape: tuple[int, ...] = ()
        dtype = "float32"
        for node in self.graph:
            if node.op == "placeholder" and node.name in self.user_inputs:
                self.produced[node.name] = "input"
                input_shape = (_shape(node) or (0,))[1:]
                dtype = "int64" if str(getattr(node.meta.get("val"), "dtype", "")) == "torch.int64" else dtype
            elif node.op == "call_function":
                self.visit(node)
        network = ImportedNetwork(self.name, input_shape, dtype, self.layers, self.unmapped)
        return Mapped(network, self.shapes, self.weights)

    def add(self, layer: ImportedLayer, out: tuple[int, ...], weights: dict[str, tuple[int, ...]]) -> str:
        self.layers.append(layer)
        self.shapes[layer.path] = out
        self.weights[layer.path] = weights
        return layer.path

    def state(self, node: Any) -> str:
        """The layer of a parameter or buffer read as data (a class token, a layer scale),
        named by its state_dict name: a `parameter` (or `buffer`) the batch shares."""
        if node.name in self.produced:
            return self.produced[node.name]
        key = self.params.get(node.name) or self.buffers[node.name]
        shape = _shape(node) or (1,)
        batch_axis = len(shape) > 1 and shape[0] == 1
        fields: dict[str, Any] = {"shape": list(shape[1:] if batch_axis else shape), "batch_axis": batch_axis}
        op = "parameter" if node.name in self.params else "buffer"
        layer = ImportedLayer(self.namer.take(key), op, fields, (), f"{op} {key}")
        self.produced[node.name] = self.add(layer, tuple(fields["shape"]), {"": shape} if op == "parameter" else {})
        return layer.path

    def module(self, node: Any) -> None:
        """At the last operator of a call of a module mapped whole: one layer for all of them,
        named by the module's path, reading what the call reads from outside."""
        key, path, kind = self.call_of[node.name]
        nodes = self.whole[key]
        if node is not nodes[-1]:
            return
        inside = {n.name for n in nodes}
        sources = [s for n in nodes for a in (*n.args, *n.kwargs.values()) for s in _tensors(a) if s.name not in inside]
        state = {s.name: s for s in sources if s.name in self.params}
        data = list({s.name: s for s in sources if s.name not in self.params and s.name not in self.buffers}.values())
        relative = {self.params[name][len(path) + 1:]: _shape(s) or () for name, s in state.items()}
        operators = [(str(n.target), _arguments(n)) for n in nodes if hasattr(n.target, "_schema")]
        rule = module_rule(kind)
        assert rule is not None  # whole holds only such modules' calls
        mapped = rule(operators, set(relative))
        output = next((n for n in nodes if any(u.name not in inside for u in n.users) and _shape(n) is not None), nodes[-1])
        out = (_shape(output) or (1,))[1:]
        if mapped is None and not self.opaque:
            self.unmapped.append(Unmapped(f"{kind} (module mapped whole)", f"{path} (nodes {nodes[0].name}..{node.name})"))
            return
        if mapped is None:
            mapped = ("opaque", {"shape": list(out), "params": sum(_numel(v) for v in relative.values()), "traced": kind})
        op, fields = mapped
        inputs = tuple(self.produced.get(s.name, s.name) for s in data)
        layer = ImportedLayer(self.namer.take(path), op, fields, inputs, f"{kind} at {path}")
        self.add(layer, out, relative)
        for n in nodes:
            self.produced[n.name] = layer.path

    def visit(self, node: Any) -> None:
        if node.name in self.call_of:
            self.module(node)
            return
        target = str(node.target)
        sources = [n for a in (*node.args, *node.kwargs.values()) for n in _tensors(a)]
        if self.updates_state(node):
            return
        if self.passes(node):
            if sources and (sources[0].name in self.params or sources[0].name in self.buffers):
                self.produced[node.name] = self.state(sources[0])
            elif sources and sources[0].name in self.produced:
                self.produced[node.name] = self.produced[sources[0].name]
            return
        if target in _SPLITS:
            self.split(node)
            return
        out = _shape(node)
        path, _, call = _module(node)
        where = path or "(top level)"
        mapped: tuple[str, dict[str, Any]] | None = None
        if target == _GETITEM and node.args[0].name in self.pieces:
            dim, ranges = self.pieces[node.args[0].name]
            start, end = ranges[node.args[1]]
            mapped, sources = ("slice", {"dim": dim, "start": start, "end": end}), [node.args[0]]
        elif target in RULES and out is not None:
            mapped = RULES[target](_arguments(node), out)
        own = target in WEIGHTED or mapped is None  # the parameters are the layer's own (an opaque one's too)
        state = [s for s in sources if s.name in self.params or s.name in self.buffers]
        data = [s for s in sources if not (own and s in state)]
        if mapped is None and not self.opaque:
            self.unmapped.append(Unmapped(target, f"{where} (node {node.name})"))
            self.produced[node.name] = node.name
            return
        inputs = tuple(self.state(s) if s in state else self.produced.get(s.name, s.name) for s in data)
        if mapped is None:
            count = sum(_numel(_shape(s)) for s in state if s.name in self.params)
            op, fields = "opaque", {"shape": list((out or (1,))[1:]), "params": count, "traced": target}
        else:
            op, fields = mapped
        if path and self.calls.get((path, call), 0) == 1 and not self.namer.holds_modules(path):
            base = path if call == 0 else f"{path}{call + 1}"
        else:
            short = op if mapped is not None else target.split(".")[1] if target.startswith("aten.") else "opaque"
            base = f"{path}.{short}" if path else short
        weights = {_leaf(self.params[s.name]): _shape(s) or () for s in state if s.name in self.params} if own else {}
        if op == "select":  # x[:, i]: a slice of one, then that axis squeezed out (both views, as select)
            before = (out or (1,))[1:]
            sliced = (*before[: fields["dim"] - 1], 1, *before[fields["dim"] - 1:])
            first = ImportedLayer(self.namer.take(f"{base}_slice"), "slice", {"dim": fields["dim"], "start": fields["index"], "end": fields["index"] + 1}, inputs, f"{target} in {where} (node {node.name})")
            inputs = (self.add(first, sliced, {}),)
            op, fields = "squeeze", {"dim": fields["dim"]}
        layer = ImportedLayer(self.namer.take(base), op, fields, inputs, f"{target} in {where} (node {node.name})")
        self.produced[node.name] = self.add(layer, (out or (1,))[1:], weights)

    def split(self, node: Any) -> None:
        """chunk/split: each piece a getitem reads becomes a `slice` of the input."""
        pieces = node.meta.get("val") or []
        dim = int(_arguments(node).get("dim", 0))
        sizes = [int(p.shape[dim]) for p in pieces]
        self.pieces[node.name] = (dim, [(sum(sizes[:i]), sum(sizes[: i + 1])) for i in range(len(sizes))])
        self.produced[node.name] = self.produced.get(node.args[0].name, node.args[0].name)


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
    unused = unused_parameters(captured)
    if unused:
        shown = ", ".join(unused[:5]) + (f" and {len(unused) - 5} more" if len(unused) > 5 else "")
        warnings.append(f"{len(unused)} parameter(s) the traced forward never reads are not in the spec: {shown}")
    return text, warnings


def unused_parameters(captured: Captured) -> list[str]:
    """The state_dict names of parameters no operator reads (an auxiliary head a forward skips):
    model.parameters() counts them, the spec cannot."""
    signature = captured.program.graph_signature
    readers = {node.name: len(node.users) for node in captured.program.graph.nodes if node.op == "placeholder"}
    return [key for name, key in signature.inputs_to_parameters.items() if not readers.get(name)]
