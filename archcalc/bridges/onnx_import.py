"""`archcalc import onnx`: an ONNX file's graph as archcalc layers (an ImportedNetwork).

Nodes become ops (onnx_ops.MAPPINGS), shape arithmetic is folded (onnx_fold), initializers are
the layers' arrays and are checked against the shapes archcalc's op gives them, and each output
shape archcalc computes is checked against the one ONNX shape inference traces. Layer paths are
the exporter's module scopes (`/layer1/layer1.0/conv1/Conv` is `layer1.0.conv1`). The file is
untrusted: external data is never read, names are sanitised, folded constants are bounded.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archcalc.bridges.imported import ImportedLayer, ImportedNetwork, Unmapped
from archcalc.bridges.onnx_fold import fold
from archcalc.bridges.onnx_fuse import fuse
from archcalc.bridges.onnx_ops import MAPPINGS, Mapped, NodeView, NotMapped
from archcalc.errors import ArchcalcError, BridgeError, quote
from archcalc.names import unique

DEFAULT_SIZE = 224
"""The default of a symbolic input size (torchvision's ImageNet side) when --input gives none."""

_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64", 16: "bfloat16"}
"""ONNX TensorProto element types archcalc's input takes."""

_SMALL = 1 << 16
"""Elements of an initializer read as a value (shape arithmetic, a scalar); larger ones are weights,
of which only the shape is read."""

_NAME_PART = re.compile(r"[^A-Za-z0-9_-]")


def require_onnx() -> Any:
    """The onnx package, or an error saying which extra installs it."""
    try:
        import onnx
    except ImportError:
        raise BridgeError("importing an ONNX file needs the onnx package: pip install 'archcalc[onnx]'") from None
    return onnx


def onnx_network(path: str, *, input_shape: tuple[int | str, ...] | None = None, opaque: bool = False) -> ImportedNetwork:
    """The ONNX model at `path` as archcalc layers. `input_shape` (batch excluded) gives each
    symbolic input size its default (an int) or a new name (a str); a fixed size must be repeated
    as it is. A node archcalc cannot map is listed in `unmapped` (and the layers are left empty),
    or with `opaque` becomes an `opaque` layer (traced output shape, its initializers' element
    count)."""
    onnx = require_onnx()
    try:
        model = onnx.load(path, load_external_data=False)
    except OSError as exc:
        raise BridgeError(f"cannot read {quote(path)}: {exc.strerror or exc}") from None
    except Exception as exc:  # protobuf's DecodeError and kin: not an ONNX file
        raise BridgeError(f"{quote(path)} is not an ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise BridgeError(
            f"an archcalc network has one input and one output; this graph has {len(inputs)} input(s) "
            f"({', '.join(quote(i.name) for i in inputs[:4])}) and {len(graph.output)} output(s)"
        )
    shape, dtype, symbols, renamed = _input(inputs[0], input_shape)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    inferred = _traced(onnx, model, initializers)
    walk = _Walk(graph, initializers, inputs[0].name, opset, inferred, opaque)
    layers, unmapped = walk.run(shape, renamed, symbols)
    if symbols:
        doubled = {name: 2 * value for name, value in symbols.items()}
        again, _ = _Walk(graph, initializers, inputs[0].name, opset, inferred, opaque).run(shape, renamed, doubled)
        _same_fields(layers, again, symbols)
    name = _part(Path(path).stem) or "imported"
    return ImportedNetwork(name, tuple(renamed.get(d, d) if isinstance(d, str) else d for d in shape), dtype, layers, unmapped, {renamed.get(k, k): v for k, v in symbols.items()})


def _input(value: Any, given: tuple[int | str, ...] | None) -> tuple[list[int | str], str, dict[str, int], dict[str, str]]:
    """The graph input's shape without the batch (symbols by sanitised name), dtype, symbol
    defaults, and symbol renames from --input."""
    tensor = value.type.tensor_type
    dtype = _DTYPES.get(tensor.elem_type)
    if dtype is None:
        raise BridgeError(f"the input {quote(value.name)} has ONNX element type {tensor.elem_type}, which archcalc's input does not take")
    if not tensor.HasField("shape") or len(tensor.shape.dim) < 2:
        raise BridgeError(f"the input {quote(value.name)} needs a shape with a batch axis and at least one more")
    dims: list[int | str] = [
        int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else _symbol(d.dim_param or f"d{k}")
        for k, d in enumerate(tensor.shape.dim)
    ][1:]  # axis 0 is the batch, fixed or symbolic; an unnamed axis is a symbol d1, d2, ...
    if given is not None and len(given) != len(dims):
        raise BridgeError(f"--input has {len(given)} sizes; the ONNX input has {len(dims)} besides the batch: {dims}")
    symbols: dict[str, int] = {}
    renamed: dict[str, str] = {}
    for k, dim in enumerate(dims):
        want = given[k] if given is not None else None
        if isinstance(dim, int):
            if want is not None and want != dim:
                raise BridgeError(f"--input gives {want} for axis {k + 1}, which the ONNX input fixes at {dim}")
        elif isinstance(want, str):
            renamed[dim] = want
            symbols.setdefault(dim, DEFAULT_SIZE)
        else:
            symbols.setdefault(dim, DEFAULT_SIZE if want is None else want)
    return dims, dtype, symbols, renamed


def _symbol(name: str) -> str:
    """An ONNX dim_param as a symbol name: an identifier (sanitised, at most 32 characters)."""
    text = re.sub(r"\W", "_", name, flags=re.ASCII)[:32]
    return text if text.isidentifier() else f"s_{text}"


def _traced(onnx: Any, model: Any, initializers: dict[str, Any]) -> dict[str, tuple[int | None, ...]]:
    """Each tensor's shape as ONNX shape inference traces it (None on a symbolic axis), on a copy
    of the graph whose large initializers are inputs of their shape (inference reads no weights,
    and copying them would cost more than the import); {} when inference refuses the graph."""
    graph = model.graph
    large = [t for t in graph.initializer if int(np.prod(t.dims, dtype=object)) > _SMALL]
    light = onnx.helper.make_graph(
        list(graph.node), graph.name,
        [*graph.input, *(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in large if t.name not in {i.name for i in graph.input})],
        list(graph.output), [t for t in graph.initializer if int(np.prod(t.dims, dtype=object)) <= _SMALL],
    )
    copy = onnx.helper.make_model(light, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        return _inferred(onnx.shape_inference.infer_shapes(copy, data_prop=True).graph)
    except Exception:  # a graph inference refuses still imports: the shape checks are skipped
        return {}


def _inferred(graph: Any) -> dict[str, tuple[int | None, ...]]:
    """Each tensor's shape in a graph shape inference has run on (None on a symbolic axis)."""
    shapes: dict[str, tuple[int | None, ...]] = {}
    for value in (*graph.value_info, *graph.output):
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            shapes[value.name] = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return shapes


@dataclass
class _Layer:
    """A layer before it is named: its module scope and leaf name, op, fields, and the layers it
    reads (indices; -1 the input)."""

    scope: tuple[str, ...]
    leaf: str
    op: str
    fields: dict[str, Any]
    reads: list[int]
    source: str
    named: bool = False  # a parameter layer named after its initializer: scope + leaf as they are


@dataclass(frozen=True)
class _Tensor:
    """An activation: the layer making it (-1 the input) and its shape (batch excluded), None when
    an unmapped node made it and shape inference could not trace it."""

    layer: int
    shape: tuple[int, ...] | None


class _Walk:
    """One pass over the nodes in order, with the symbols at given values."""

    def __init__(self, graph: Any, initializers: dict[str, Any], input_name: str, opset: int,
                 inferred: dict[str, tuple[int | None, ...]], opaque: bool) -> None:
        from onnx import numpy_helper

        self.graph, self.opset, self.inferred, self.opaque = graph, opset, inferred, opaque
        self.input_name = input_name
        self.consts: dict[str, Any] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for name, tensor in initializers.items():
            self.shapes[name] = tuple(int(d) for d in tensor.dims)
            if tensor.data_location != 1 and int(np.prod(tensor.dims, dtype=object)) <= _SMALL:
                self.consts[name] = numpy_helper.to_array(tensor)  # small: shape arithmetic may read it
        self.learned = set(initializers)
        self.tensors: dict[str, _Tensor] = {}
        self.layers: list[_Layer] = []
        self.param_layers: dict[str, int] = {}
        self.unmapped: list[Unmapped] = []

    def known(self, name: str) -> bool:
        return name in self.consts or name in self.shapes

    def value(self, name: str) -> Any:
        """A constant's value; a large initializer (a weight) as zeros of its shape, never read."""
        if name in self.consts:
            return self.consts[name]
        return np.broadcast_to(np.zeros((), np.float32), self.shapes[name])

    def run(self, shape: list[int | str], renamed: dict[str, str], symbols: dict[str, int]) -> tuple[list[ImportedLayer], list[Unmapped]]:
        self.tensors[self.input_name] = _Tensor(-1, tuple(symbols[d] if isinstance(d, str) else d for d in shape))
        self.batch = 1
        self.symbolic = bool(symbols)  # traced shapes then hold symbols where ours hold values
        outputs = {o.name for o in self.graph.output}
        nodes = fuse(list(self.graph.node), self.shapes | {k: v.shape for k, v in self.consts.items()}, outputs)
        for node in nodes:
            self.node(node)
        if self.unmapped and not self.opaque:
            return [], self.unmapped
        output = self.tensors.get(self.graph.output[0].name)
        if output is None or output.layer < 0:
            raise BridgeError(f"the graph's output {quote(self.graph.output[0].name)} is computed by no layer archcalc could place")
        return self.named(output.layer), self.unmapped

    def node(self, node: Any) -> None:
        from onnx import helper

        where = quote(node.name or node.op_type)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("value") is not None and hasattr(attrs["value"], "dims"):
            from onnx import numpy_helper

            attrs["value"] = numpy_helper.to_array(attrs["value"])
        names = list(node.input)
        if all(not n or self.known(n) for n in names) and node.domain in ("", "ai.onnx"):
            small = all(not n or n in self.consts for n in names) or node.op_type in ("Shape", "Size")
            value = fold(node.op_type, [self.value(n) if n else None for n in names], attrs, where) if small else None
            if value is not None:
                self.consts[node.output[0]] = value
                self.shapes[node.output[0]] = tuple(value.shape)
                if node.op_type == "Identity" and names[0] in self.learned:
                    self.learned.add(node.output[0])
                return
            if node.op_type == "Identity":
                self.shapes[node.output[0]] = self.shapes[names[0]]
                self.learned.add(node.output[0])
                return
        missing = [n for n in names if n and not self.known(n) and n not in self.tensors]
        if missing:
            raise BridgeError(f"ONNX node {where} reads {quote(missing[0])}, which no earlier node makes (the nodes are not in order)")
        activations = [self.tensors.get(n) for n in names]
        if node.op_type == "Shape" and activations[0] is not None and activations[0].shape is not None:
            full = np.asarray([self.batch, *activations[0].shape], dtype=np.int64)
            self.consts[node.output[0]] = full[attrs.get("start", 0) : attrs.get("end")]
            self.shapes[node.output[0]] = tuple(self.consts[node.output[0]].shape)
            return
        if node.op_type == "CastLike" and names[0] in self.consts:  # a constant in the input's dtype
            self.consts[node.output[0]] = self.consts[names[0]]
            self.shapes[node.output[0]] = tuple(self.consts[names[0]].shape)
            return
        if activations[0] is not None and (node.op_type == "Identity" or node.op_type == "Concat" and len(names) == 1):
            # a copy (torch.cat([x]), as DenseNet's first layer in each block writes it) is no layer
            self.tensors[node.output[0]] = activations[0]
            return
        mapping = MAPPINGS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if any(t is not None and t.shape is None for t in activations):
            if mapping is None:
                self.unmapped.append(Unmapped(f"{node.domain + '.' if node.domain else ''}{node.op_type}", _node_name(node)))
            self.unknown(node)
            return
        view = NodeView(
            node.op_type, attrs, [self.value(n) if n and self.known(n) else None for n in names],
            [t.shape if t is not None else None for t in activations], self.opset, len([o for o in node.output if o]),
        )
        try:
            if mapping is None:
                raise NotMapped("")
            mapped = mapping(view)
            computed = [n for m in mapped for n, w in m.weights.items() if names[w.input] not in self.shapes]
            if computed:
                raise NotMapped(f"its {computed[0]} is computed at run time, not an initializer")
        except NotMapped as why:
            if self.opaque:
                self.opaque_layer(node, where)
                return
            what = f"{node.domain + '.' if node.domain else ''}{node.op_type}" + (f" ({why})" if str(why) else "")
            self.unmapped.append(Unmapped(what, _node_name(node)))
            self.unknown(node)
            return
        for k, m in enumerate(mapped):
            self.place(node, m, k if len(mapped) > 1 else None, where)

    def unknown(self, node: Any) -> None:
        """The outputs of a node left unmapped: shapes as ONNX traced them, for the nodes after."""
        for name in node.output:
            traced = self.inferred.get(name)
            shape = tuple(traced[1:]) if traced and all(d is not None for d in traced[1:]) else None
            self.tensors[name] = _Tensor(-2, shape)  # type: ignore[arg-type]

    def opaque_layer(self, node: Any, where: str) -> None:
        traced = self.inferred.get(node.output[0])
        if not traced or any(d is None for d in traced[1:]) or len(traced) < 2:
            raise BridgeError(f"ONNX node {where} ({node.op_type}) cannot be kept opaque: shape inference does not trace its output's shape")
        params = sum(int(np.prod(self.shapes[n], dtype=object)) for n in node.input if n in self.learned)
        reads = [self.tensors[n].layer for n in node.input if n in self.tensors]
        scope, leaf = _scope(node)
        self.layers.append(_Layer(scope, leaf, "opaque", {"shape": [int(d) for d in traced[1:]], "params": params, "traced": f"ONNX {node.op_type}"[:200]}, reads, f"ONNX node {where} ({node.op_type})"))
        self.tensors[node.output[0]] = _Tensor(len(self.layers) - 1, tuple(int(d) for d in traced[1:]))
        for name in node.output[1:]:
            self.tensors[name] = _Tensor(-2, None)  # type: ignore[arg-type]

    def place(self, node: Any, m: Mapped, part: int | None, where: str) -> None:
        """Append the layer `m` describes, after checking its arrays and output shape."""
        from archcalc.ops import REGISTRY

        names = list(node.input)
        reads: list[int] = []
        shapes: list[tuple[int, ...]] = []
        for i in m.reads:
            tensor = self.tensors.get(names[i])
            if tensor is None:  # an initializer read as a tensor: a parameter layer
                other = next((self.tensors[n].shape for n in names if n in self.tensors), ()) or ()
                tensor = self.parameter(names[i], len(other) + 1, where)
            reads.append(tensor.layer)
            shapes.append(tensor.shape)  # type: ignore[arg-type]
        source = f"ONNX node {where} ({node.op_type})"
        try:
            op = REGISTRY[m.op].model_validate(m.fields)
            output = tuple(op.output_shape(shapes))
            arrays = {**op.buffers(shapes), **op.parameters(shapes)}
        except (ValueError, ArchcalcError) as exc:
            text = exc.message if isinstance(exc, ArchcalcError) else str(exc).splitlines()[-1].strip()
            raise BridgeError(f"{source} as {m.op} {m.fields}: {text}") from None
        for name, weight in m.weights.items():
            given = _strip(self.shapes[names[weight.input]], len(arrays.get(name, ())))
            given = given[::-1] if weight.transposed else given
            if name not in arrays or tuple(arrays[name]) != given:
                expected = list(arrays[name]) if name in arrays else "none"
                raise BridgeError(f"{source}: initializer {quote(names[weight.input])} has shape {list(given)}, but archcalc's {m.op} {m.fields} gives its {name} {expected}")
        missing = set(op.parameters(shapes)) - set(m.weights)
        if missing:
            raise BridgeError(f"{source}: archcalc's {m.op} {m.fields} has arrays {sorted(missing)} the node does not hold")
        traced = self.inferred.get(node.output[m.output])
        if traced and len(traced) == len(output) + 1 and any(t is not None and t != o for t, o in zip(traced[1:], output)) and not self.symbolic:
            raise BridgeError(f"{source} as {m.op} {m.fields}: archcalc computes the output shape {list(output)}, ONNX shape inference {list(traced[1:])}")
        if len(traced or ()) not in (0, len(output) + 1) and not self.symbolic:
            raise BridgeError(f"{source} as {m.op} {m.fields}: archcalc computes a rank-{len(output) + 1} output, ONNX shape inference rank {len(traced or ())}")
        scope, leaf = _scope(node)
        self.layers.append(_Layer(scope, leaf if part is None else f"{leaf}_{part}", m.op, m.fields, reads, source))
        self.tensors[node.output[m.output]] = _Tensor(len(self.layers) - 1, output)

    def parameter(self, name: str, rank: int, where: str) -> _Tensor:
        """The `parameter` layer holding initializer `name`, made once however many nodes read it."""
        if name not in self.param_layers:
            shape = list(self.shapes[name])
            if not shape or any(d < 1 for d in shape):
                raise BridgeError(f"ONNX node {where} reads the constant {quote(name)} of shape {shape} as a tensor; archcalc's parameter needs sizes >= 1")
            lead = len(shape) == rank and shape[0] == 1  # [1, *shape]: broadcast over the batch
            fields: dict[str, Any] = {"shape": shape[1:]} if lead and len(shape) > 1 else {"shape": shape, "batch_axis": False}
            parts = tuple(_part(p) for p in name.split("."))
            self.layers.append(_Layer(parts[:-1], parts[-1], "parameter", fields, [], f"ONNX initializer {quote(name)}", named=True))
            self.param_layers[name] = len(self.layers) - 1
        index = self.param_layers[name]
        return _Tensor(index, tuple(self.layers[index].fields["shape"]))

    def named(self, output: int) -> list[ImportedLayer]:
        """The layers the output depends on, named by their module scopes, made unique."""
        needed = {output}
        for k in range(output, -1, -1):
            if k in needed:
                needed.update(r for r in self.layers[k].reads if r >= 0)
        kept = [k for k in range(len(self.layers)) if k in needed]
        scopes = Counter(self.layers[k].scope for k in kept if not self.layers[k].named)
        # scopes holding other paths: a parameter layer's path (`features.1.0.layer_scale`) is
        # inside its whole scope, a module's layer inside its scope's ancestors only
        containers = {layer.scope[:n] for layer in self.layers for n in range(len(layer.scope) + layer.named)}
        paths: dict[int, str] = {}
        used: set[str] = set()
        for k in kept:
            layer = self.layers[k]
            own = layer.scope and not layer.named and scopes[layer.scope] == 1 and layer.scope not in containers
            parts = layer.scope if own else (*layer.scope, layer.leaf)
            paths[k] = unique(".".join(parts), used, first=1)
        return [
            ImportedLayer(paths[k], self.layers[k].op, self.layers[k].fields, tuple(paths[r] if r >= 0 else "input" for r in self.layers[k].reads), self.layers[k].source)
            for k in kept
        ]


def _node_name(node: Any) -> str:
    """How a message names a node: its name, or its first output when it has none."""
    return node.name or f"(unnamed, output {node.output[0] if node.output else '?'})"


def _strip(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """An initializer's shape without leading 1s beyond `rank` (Gemm's bias may be [1, out])."""
    while len(shape) > rank and shape[0] == 1:
        shape = shape[1:]
    return shape


def _scope(node: Any) -> tuple[tuple[str, ...], str]:
    """The module scope and leaf name of a node: the TorchScript exporter names a node
    `/layer1/layer1.0/conv1/Conv`, each scope relative to the one before (`layer1.0` under
    `layer1` is its child `0`); the dynamo exporter lists the scopes' full paths in the metadata
    `pkg.torch.onnx.name_scopes` (`['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d_1']`,
    the last the ATen call); any other name is a leaf at the top."""
    scopes = _name_scopes(node)
    if scopes:
        leaf = re.sub(r"_\d+$", "", scopes[-1])  # `add_3`: numbered across the whole program
        return tuple(_part(p) for p in scopes[-2].split(".") if p) if len(scopes) > 2 else (), _part(leaf.lower())
    name = node.name or node.op_type
    if not name.startswith("/"):
        return (), _part(name.lower())
    segments = [s for s in name.split("/") if s]
    path: list[str] = []
    previous = ""
    for segment in segments[:-1]:
        relative = segment[len(previous) + 1 :] if previous and segment.startswith(previous + ".") else segment
        path.extend(_part(p) for p in relative.split("."))
        previous = segment
    return tuple(path), _part(segments[-1].lower()) if segments else _part(node.op_type.lower())


def _name_scopes(node: Any) -> list[str]:
    """The dynamo exporter's `pkg.torch.onnx.name_scopes` of a node (a Python list literal), or []."""
    text = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), "")
    if not text or len(text) > 4096:
        return []
    try:
        scopes = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return []
    return scopes if isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes) else []


def _part(text: str) -> str:
    """One part of a layer path from untrusted text: letters, digits, `_` and `-`, at most 64
    characters, never `input` (the network's input) or empty."""
    part = _NAME_PART.sub("_", text)[:64] or "_"
    return "input_" if part == "input" else part


def _same_fields(first: list[ImportedLayer], second: list[ImportedLayer], symbols: dict[str, int]) -> None:
    """Refuse a graph whose layers' fields change with the symbolic sizes (a reshape to a size
    computed from the input's height), found by importing it at two values of the symbols."""
    for a, b in zip(first, second):
        if a.fields != b.fields:
            changed = next(k for k in a.fields if a.fields.get(k) != b.fields.get(k))
            raise BridgeError(
                f"{a.source}: its {changed} depends on the symbolic input sizes {sorted(symbols)} "
                f"({a.fields.get(changed)} at {symbols}); archcalc cannot write it as a formula: "
                "export the model with fixed sizes"
            )
