"""A spec as PyTorch source: an `nn.Module` whose module tree names its parameters and buffers
as the spec does (layer path + '.' + the op's array name) and whose forward runs the layers in
the network's order, one line each; a block instance read from outside through one output has a
forward of its own in its block's class (one class per block and structure: a `when:` that
leaves a layer out makes a second), which its parent's forward calls, so the module reads like a
hand-written one and `archcalc import torch` finds the block's layers inside it. Every identifier in the file is made here: a layer's name
goes in as a string literal (render.escape.python_string) or, when it is a plain identifier, as
that identifier.
Generating the source needs no torch; running it does.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from archcalc.errors import ArchcalcError, Location
from archcalc.figures.shapes import output_shapes
from archcalc.names import unique
from archcalc.ops.base import TorchCode
from archcalc.render.escape import python_string
from archcalc.spec.graph import INPUT, Layer, Network

CLASS_NAME = "Net"

MODULE_ATTRIBUTES = frozenset(
    """T_destination add_module append apply bfloat16 buffers call_super_init children clear
    compile cpu cuda double dump_patches eval extend extra_repr float forward get_buffer
    get_extra_state get_parameter get_submodule half insert ipu items keys load_state_dict
    modules mtia named_buffers named_children named_modules named_parameters parameters pop
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type update values xpu
    zero_grad""".split()
)
"""Public attributes of nn.Module, nn.ModuleDict and nn.Sequential (torch 2.14.1): add_module
refuses a child of one of these names, as it does any name starting with an underscore that the
class already has (checked against torch in tests/test_torch_export.py)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DEFINED = re.compile(r"^(?:class|def) ([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)

HEADER = '''\
"""A PyTorch module written by `archcalc export` from a spec.

NAME is the spec's network name. Net() builds the layers (torch's default initialisation; load
weights with load_state_dict); Net()(x) takes the batch first, as the spec's input.
"""

import torch
import torch.nn.functional as F
from torch import nn
'''


class ExportError(ArchcalcError):
    """A network that cannot be written as PyTorch: symbolic sizes, or ops without a PyTorch form."""


def plain_name(name: str) -> bool:
    """A name usable as a Python attribute of a module: an ASCII identifier, no keyword, no
    nn.Module attribute, no leading underscore."""
    return bool(_IDENTIFIER.match(name)) and not keyword.iskeyword(name) and not name.startswith("_") and name not in MODULE_ATTRIBUTES


@dataclass
class _Node:
    """A module in the generated tree: the layer's constructor (None for a container) and its
    children by name, in the order the spec lists them; `block` names a block instance."""

    constructor: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)
    block: str | None = None
    array: str | None = None  # 'parameter' or 'buffer': the layer's module is its one array

    @property
    def indexed(self) -> bool:
        """Children named 0, 1, 2, ... in order and all modules: an nn.Sequential holds them
        (torchvision's layer1.0)."""
        names = list(self.children)
        return bool(names) and names == [str(i) for i in range(len(names))] and all(c.array is None for c in self.children.values())

    @property
    def modules(self) -> dict[str, _Node]:
        """The children a container holds: an array is registered on it, not held."""
        return {k: c for k, c in self.children.items() if c.array is None}


def _codes(network: Network) -> dict[str, TorchCode]:
    """Each layer's TorchCode; an ExportError listing every layer whose op has no PyTorch form."""
    if network.symbolic:
        raise ExportError(
            f"export writes a module for numeric sizes, but {', '.join(network.symbols)} "
            "ha" + ("ve" if len(network.symbols) > 1 else "s") + " no value: give numbers with --input (e.g. --input 3,224,224)"
        )
    shapes = output_shapes(network)
    codes: dict[str, TorchCode] = {}
    missing: list[str] = []
    for layer in network.layers:
        try:
            codes[layer.path] = layer.op.torch_code([shapes[i] for i in layer.inputs])
        except NotImplementedError as exc:
            missing.append(f"  {layer.path}: {exc}")
    if missing:
        raise ExportError(
            f"{len(missing)} layer{'s have' if len(missing) > 1 else ' has'} no PyTorch form, so the "
            "network cannot be exported:\n" + "\n".join(missing),
            location=Location(network.file) if network.file else None,
        )
    return codes


def _tree(network: Network, codes: dict[str, TorchCode]) -> _Node:
    """The module tree: a node per path prefix, a constructor where a layer has a module."""
    root = _Node()
    arrays = _arrays(network)
    for layer in network.layers:
        code = codes[layer.path]
        if code.module is None or layer.tied_to is not None:
            continue
        node = root
        parts = layer.path.split(".")
        for depth, part in enumerate(parts):
            if not part:
                raise ExportError(f"the path '{layer.path}' has an empty name between dots", layer=layer.path)
            if part in MODULE_ATTRIBUTES or part.startswith("_"):
                raise ExportError(
                    f"'{part}' cannot name a PyTorch module (nn.Module has an attribute of that name, or "
                    "may: torch keeps its own state in names starting with _); rename the layer",
                    location=layer.location, layer=layer.path,
                )
            if node.constructor is not None:
                raise ExportError(f"'{'.'.join(parts[:depth])}' is a layer and also contains this one", layer=layer.path)
            node = node.children.setdefault(part, _Node())
            prefix = ".".join(parts[: depth + 1])
            node.block = network.blocks.get(prefix, node.block)
        if node.children:
            raise ExportError(f"this layer also contains the layer '{layer.path}.{next(iter(node.children))}'", layer=layer.path)
        node.constructor = code.module
        node.array = arrays.get(layer.path)
    return root


def _arrays(network: Network) -> dict[str, str]:
    """The layers whose one array is named '' ('parameter' or 'buffer'): torch registers it on
    the parent module under the layer's name, where no container can hold it."""
    shapes = output_shapes(network)
    kinds: dict[str, str] = {}
    for layer in network.layers:
        inputs = [shapes[i] for i in layer.inputs]
        if layer.tied_to is None and "" in layer.op.parameters(inputs):
            kinds[layer.path] = "parameter"
        elif layer.tied_to is None and "" in layer.op.buffers(inputs):
            kinds[layer.path] = "buffer"
    return kinds


@dataclass(frozen=True)
class _Call:
    """A block instance whose layers run in a forward of its own class: the layers (consecutive
    in the network's order), the tensors they read from outside (in order of first reading) and
    the one layer read from outside (or the network's output), which the forward returns."""

    path: str
    layers: tuple[Layer, ...]
    inputs: tuple[str, ...]
    output: str


def _node(tree: _Node, path: str) -> _Node | None:
    node: _Node | None = tree
    for part in path.split("."):
        node = node.children.get(part) if node is not None else None
    return node


def _calls(network: Network, tree: _Node) -> dict[str, _Call]:
    """The block instances (nested ones too) that become a call: their layers run one after
    another, read outside tensors, hand ONE tensor on, and neither return a layer nor tie weights
    (their module is reached from the network's root); the others stay flat in their parent."""
    index = {path: i for i, path in enumerate(network.order)}
    calls: dict[str, _Call] = {}
    for path in network.blocks:
        node = _node(tree, path)
        if node is None or node.constructor is not None or not node.children:
            continue
        layers = tuple(layer for layer in network.layers if layer.path.startswith(path + "."))
        inside = {layer.path for layer in layers}
        first = index[layers[0].path] if layers else 0
        if not layers or [index[layer.path] for layer in layers] != list(range(first, first + len(layers))):
            continue
        if any(layer.returned or layer.tied_to is not None for layer in layers):
            continue
        outputs = [
            layer.path for layer in layers
            if layer.path == network.output or any(r not in inside for r in network.readers.get(layer.path, ()))
        ]
        inputs = tuple(dict.fromkeys(i for layer in layers for i in layer.inputs if i not in inside))
        if len(outputs) == 1 and inputs:
            calls[path] = _Call(path, layers, inputs, outputs[0])
    return calls


def _access(root: _Node, path: str, contained: bool = False) -> str:
    """The expression reaching a layer's module from `self`: .name for a plain name, [i] in a
    Sequential, ['name'] in a ModuleDict, getattr(parent, 'name') under a layer's own module;
    `contained`: `self` is a block's container (its children reached as from a container)."""
    expr, node = "self", root
    for part in path.split("."):
        if node.children[part].array is not None:
            expr = f"{expr}.{part}" if plain_name(part) else f"getattr({expr}, {python_string(part)})"
        elif (node is not root or contained) and node.constructor is None:
            expr += f"[{part}]" if node.indexed else (f".{part}" if plain_name(part) else f"[{python_string(part)}]")
        else:
            expr = f"{expr}.{part}" if plain_name(part) else f"getattr({expr}, {python_string(part)})"
        node = node.children[part]
    return expr


def _variables(paths: list[str], inputs: dict[str, str]) -> dict[str, str]:
    """A Python variable per layer: x_ and the path's letters, digits and underscores (others
    become _), numbered when two paths give the same name; the inputs keep theirs (x, x0, x1...)."""
    names = dict(inputs)
    taken = {*inputs.values(), "self", *keyword.kwlist}
    for path in paths:
        names[path] = unique("x_" + re.sub(r"[^A-Za-z0-9_]", "_", path.replace(".", "_")), taken)
    return names


@dataclass
class _Writer:
    """The forward bodies of the network and of each block instance that is a call."""

    network: Network
    codes: dict[str, TorchCode]
    tree: _Node
    calls: dict[str, _Call]

    def _outermost(self, scope: str, path: str) -> _Call | None:
        """The call directly inside `scope` that holds the layer `path`, if any."""
        parts = path.split(".")
        low = len(scope.split(".")) if scope else 0
        for depth in range(low + 1, len(parts)):
            call = self.calls.get(".".join(parts[:depth]))
            if call is not None:
                return call
        return None

    def body(self, scope: str, layers: tuple[Layer, ...], inputs: dict[str, str], indent: str) -> tuple[list[str], dict[str, str]]:
        """The lines running `layers` inside `scope` ('' is the network) and the variables they
        set, by absolute path; a call's layers are one line calling its container."""
        cut = len(scope) + 1 if scope else 0
        root = _node(self.tree, scope) if scope else self.tree
        assert root is not None
        local = _variables([layer.path[cut:] for layer in layers], {})
        variables = dict(inputs) | {layer.path: local[layer.path[cut:]] for layer in layers}
        lines: list[str] = []
        done: set[str] = set()
        for layer in layers:
            call = self._outermost(scope, layer.path)
            if call is not None:
                if call.path not in done:
                    done.add(call.path)
                    args = ", ".join(variables[i] for i in call.inputs)
                    lines.append(f"{indent}{variables[call.output]} = {_access(root, call.path[cut:], bool(scope))}({args})")
                continue
            code = self.codes[layer.path]
            names = [variables[i] for i in layer.inputs]
            text = code.call
            if layer.tied_to is not None:
                source = self.codes.get(layer.tied_to)
                if source is None or source.module is None:
                    raise ExportError(f"tied to '{layer.tied_to}', which has no module to share", layer=layer.path)
                text = code.functional or code.call
            module = _access(self.tree, layer.tied_to) if layer.tied_to else (_access(root, layer.path[cut:], bool(scope)) if code.module is not None else "")
            lines.append(f"{indent}{variables[layer.path]} = {text.format(*names, m=module, x=', '.join(names))}")
        return lines, variables

    def forward(self, call: _Call) -> str:
        """The block's forward method: its inputs as arguments, its output returned."""
        names = ["x"] if len(call.inputs) == 1 else [f"x{i}" for i in range(len(call.inputs))]
        lines, variables = self.body(call.path, call.layers, dict(zip(call.inputs, names, strict=True)), "        ")
        arguments = ", ".join(f"{n}: torch.Tensor" for n in names)
        return "\n".join([f"    def forward(self, {arguments}) -> torch.Tensor:", *lines, f"        return {variables[call.output]}"])


def _classes(tree: _Node, writer: _Writer, taken: set[str]) -> tuple[dict[str, str], list[str]]:
    """A Python class per block instance with children (by instance path), and the classes'
    source: one class per block, container kind and forward (a call's; none for a flat one),
    named after the block in CamelCase (letters and digits only), made unique."""
    by_key: dict[tuple[str, bool, str], str] = {}
    names: dict[str, str] = {}
    sources: list[str] = []
    stack: list[tuple[str, _Node]] = [("", tree)]
    while stack:
        path, node = stack.pop()
        stack.extend(reversed([(f"{path}.{k}" if path else k, child) for k, child in node.children.items()]))
        if node.block is None or node.constructor is not None or not node.children:
            continue
        call = writer.calls.get(path)
        forward = writer.forward(call) if call is not None else ""
        key = (node.block, node.indexed, forward)
        if key not in by_key:
            words = re.findall(r"[A-Za-z0-9]+", node.block)
            base = "".join(w[:1].upper() + w[1:] for w in words) or "Block"
            base = base if base[0].isalpha() else "Block" + base
            name = by_key[key] = unique(base, taken, separator="")
            kind = "nn.Sequential" if node.indexed else "nn.ModuleDict"
            doc = "its layers, which Net.__init__ builds, and their forward" if forward else "the container of its layers, which Net.__init__ builds"
            # the name in a comment (repr has no line break), never in the class, whose
            # attributes would shadow a layer of that name
            sources.append(f"\n# the spec's block {python_string(node.block)}\nclass {name}({kind}):\n    \"\"\"A block instance: {doc}.\"\"\"\n" + (f"\n{forward}\n" if forward else ""))
        names[path] = by_key[key]
    return names, sources


def _construct(node: _Node, path: str, classes: dict[str, str], indent: str) -> str:
    """The constructor expression of a node: its layer's module, or a container of its children
    (nn.Sequential for 0, 1, 2..., else an nn.ModuleDict keyed by the names as string literals;
    a block instance's container is its block's class)."""
    if node.constructor is not None:
        return node.constructor
    inner = indent + "    "
    parts = [(f"{path}.{k}" if path else k, k, child) for k, child in node.modules.items()]
    if node.indexed:
        items = [f"{inner}{_construct(child, p, classes, inner)}," for p, _, child in parts]
        name = classes.get(path, "nn.Sequential")
        return f"{name}(\n" + "\n".join(items) + f"\n{indent})"
    items = [f"{inner}{python_string(k)}: {_construct(child, p, classes, inner)}," for p, k, child in parts]
    name = classes.get(path, "nn.ModuleDict")
    return f"{name}({{\n" + "\n".join(items) + f"\n{indent}}})"


def torch_source(network: Network) -> str:
    """The Python source of module Net for a numeric network; an ExportError for symbolic sizes
    or ops without a PyTorch form (every such layer listed)."""
    codes = _codes(network)
    tree = _tree(network, codes)
    defines: list[str] = []
    for code in codes.values():
        defines.extend(d.strip() + "\n" for d in code.defines if d.strip() + "\n" not in defines)
    taken = {CLASS_NAME, "torch", "nn", "F", "NAME", *keyword.kwlist, *(m for d in defines for m in _DEFINED.findall(d))}
    writer = _Writer(network, codes, tree, _calls(network, tree))
    classes, sources = _classes(tree, writer, taken)
    lines = [HEADER, f"NAME = {python_string(network.name)}\n"]
    lines += [f"\n{d}" for d in defines]
    lines += sources
    lines.append(_net_class(network, writer, classes))
    return "\n".join(lines).replace("\n\n\n\n", "\n\n\n")


def _array_nodes(node: _Node, path: str) -> list[tuple[str, _Node]]:
    """The array nodes under `node` (at `path`), by path, in the spec's order."""
    found: list[tuple[str, _Node]] = []
    for name, child in node.children.items():
        here = f"{path}.{name}" if path else name
        found.extend([(here, child)] if child.array is not None else _array_nodes(child, here))
    return found


def _net_class(network: Network, writer: _Writer, classes: dict[str, str]) -> str:
    """class Net: __init__ building the tree (frozen layers' parameters set not to train) and
    forward, one line per layer or block call in execution order."""
    tree, codes = writer.tree, writer.codes
    init = []
    for name, child in tree.modules.items():
        built = _construct(child, name, classes, "        ")
        target = f"self.{name} = " if plain_name(name) else f"self.add_module({python_string(name)}, "
        init.append(f"        {target}{built}{'' if plain_name(name) else ')'}")
    for path, node in _array_nodes(tree, ""):
        parent, _, name = path.rpartition(".")
        owner = _access(tree, parent) if parent else "self"
        init.append(f"        {owner}.register_{node.array}({python_string(name)}, {node.constructor})")
    for layer in network.layers:
        if layer.frozen and layer.tied_to is None and codes[layer.path].module is not None:
            init.append(f"        {_access(tree, layer.path)}.requires_grad_(False)")
    body, variables = writer.body("", tuple(network.layers), {INPUT: "x"}, "        ")
    returned = [variables[layer.path] for layer in network.layers if layer.returned]
    outputs = ", ".join([variables[network.output], *returned])
    result = f"({outputs})" if returned else outputs
    kind = f"tuple[{', '.join(['torch.Tensor'] * (1 + len(returned)))}]" if returned else "torch.Tensor"
    return "\n".join([
        f"\nclass {CLASS_NAME}(nn.Module):",
        '    """The spec\'s network; named_parameters() and named_buffers() name its arrays as the spec does."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *init,
        "",
        f"    def forward(self, x: torch.Tensor) -> {kind}:",
        *body,
        f"        return {result}",
        "",
    ])


def torch_module(network: Network) -> object:
    """An instance of the exported Net (the source run in a fresh namespace); needs torch."""
    namespace: dict[str, object] = {"__name__": f"archcalc_export_{CLASS_NAME}"}
    exec(compile(torch_source(network), f"<archcalc export of {network.name!r}>", "exec"), namespace)  # noqa: S102
    return namespace[CLASS_NAME]()  # type: ignore[operator]
