"""A spec as PyTorch source: an `nn.Module` whose module tree names its parameters and buffers
as the spec does (layer path + '.' + the op's array name) and whose forward runs the layers in
the network's order, one line each. Every identifier in the file is made here: a layer's name
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
from archcalc.ops.base import TorchCode
from archcalc.render.escape import python_string
from archcalc.spec.graph import INPUT, Network

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
    tensor: str | None = None  # "parameter" or "buffer": the layer is one array named by its path

    @property
    def modules(self) -> dict[str, _Node]:
        """The children that are modules (an array is registered on its parent instead)."""
        return {name: child for name, child in self.children.items() if child.tensor is None}

    @property
    def indexed(self) -> bool:
        """Children named 0, 1, 2, ... in order: an nn.Sequential holds them (torchvision's layer1.0)."""
        return bool(self.children) and list(self.children) == [str(i) for i in range(len(self.children))] and len(self.modules) == len(self.children)


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
    """The module tree: a node per path prefix, a constructor where a layer has a module (or is
    one array, `tensor`: a `parameter`, a `buffer`, whose array is named by the layer's path)."""
    root = _Node()
    shapes = output_shapes(network)
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
        inputs = [shapes[i] for i in layer.inputs]
        node.tensor = "parameter" if "" in layer.op.parameters(inputs) else "buffer" if "" in layer.op.buffers(inputs) else None
    return root


def _arrays(tree: _Node, prefix: str = "") -> list[tuple[str, str, _Node]]:
    """The one-array layers: (parent path, name, node), registered on their parent module."""
    found = []
    for name, child in tree.children.items():
        if child.tensor is not None:
            found.append((prefix, name, child))
        found.extend(_arrays(child, f"{prefix}{name}."))
    return found


def _class_names(tree: _Node, taken: set[str]) -> dict[tuple[str, bool], str]:
    """A Python class name per (block name, indexed) of the block instances with children:
    the block's name in CamelCase (letters and digits only), made unique."""
    names: dict[tuple[str, bool], str] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.children.values()))
        if node.block is None or node.constructor is not None or not node.children:
            continue
        key = (node.block, node.indexed)
        if key in names:
            continue
        words = re.findall(r"[A-Za-z0-9]+", node.block)
        base = "".join(w[:1].upper() + w[1:] for w in words) or "Block"
        base = base if base[0].isalpha() else "Block" + base
        name, n = base, 2
        while name in taken or keyword.iskeyword(name):
            name, n = f"{base}{n}", n + 1
        taken.add(name)
        names[key] = name
    return names


def _construct(node: _Node, classes: dict[tuple[str, bool], str], indent: str) -> str:
    """The constructor expression of a node: its layer's module, or a container of its children
    (nn.Sequential for 0, 1, 2..., else an nn.ModuleDict keyed by the names as string literals;
    a block instance's container is its block's class)."""
    if node.constructor is not None:
        return node.constructor
    inner = indent + "    "
    if node.indexed:
        items = [f"{inner}{_construct(child, classes, inner)}," for child in node.children.values()]
        base = "nn.Sequential"
    else:
        items = [f"{inner}{python_string(name)}: {_construct(child, classes, inner)}," for name, child in node.modules.items()]
        base = "nn.ModuleDict"
    name = classes.get((node.block, node.indexed), base) if node.block else base
    if node.indexed:
        return f"{name}(\n" + "\n".join(items) + f"\n{indent})"
    return f"{name}({{\n" + "\n".join(items) + f"\n{indent}}})"


def _access(root: _Node, path: str) -> str:
    """The expression reaching a layer's module from `self`: .name for a plain name, [i] in a
    Sequential, ['name'] in a ModuleDict, getattr(parent, 'name') under a layer's own module."""
    expr, node = "self", root
    for part in path.split("."):
        if node.children[part].tensor is not None:  # an array: an attribute of its parent
            expr = f"{expr}.{part}" if plain_name(part) else f"getattr({expr}, {python_string(part)})"
        elif node is not root and node.constructor is None:
            expr += f"[{part}]" if node.indexed else (f".{part}" if plain_name(part) else f"[{python_string(part)}]")
        else:
            expr = f"{expr}.{part}" if plain_name(part) else f"getattr({expr}, {python_string(part)})"
        node = node.children[part]
    return expr


def _variables(network: Network) -> dict[str, str]:
    """A Python variable per layer: x_ and the path's letters, digits and underscores (others
    become _), numbered when two paths give the same name; the input is x."""
    names = {INPUT: "x"}
    taken = {"x", "self"}
    for path in network.order:
        base = "x_" + re.sub(r"[^A-Za-z0-9_]", "_", path.replace(".", "_"))
        name, n = base, 2
        while name in taken or keyword.iskeyword(name):
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names[path] = name
    return names


def torch_source(network: Network) -> str:
    """The Python source of module Net for a numeric network; an ExportError for symbolic sizes
    or ops without a PyTorch form (every such layer listed)."""
    codes = _codes(network)
    tree = _tree(network, codes)
    defines: list[str] = []
    for code in codes.values():
        defines.extend(d.strip() + "\n" for d in code.defines if d.strip() + "\n" not in defines)
    taken = {CLASS_NAME, "torch", "nn", "F", "NAME", *(m for d in defines for m in _DEFINED.findall(d))}
    classes = _class_names(tree, taken)
    lines = [HEADER, f"NAME = {python_string(network.name)}\n"]
    lines += [f"\n{d}" for d in defines]
    for (block, indexed), name in classes.items():
        base = "nn.Sequential" if indexed else "nn.ModuleDict"
        # the name in a comment (repr has no line break), never in the class, whose attributes
        # would shadow a layer of that name
        lines.append(f"\n# the spec's block {python_string(block)}\nclass {name}({base}):\n    \"\"\"A block instance: the container of its layers, which Net.__init__ builds.\"\"\"\n")
    lines.append(_net_class(network, codes, tree, classes))
    return "\n".join(lines).replace("\n\n\n\n", "\n\n\n")


def _net_class(network: Network, codes: dict[str, TorchCode], tree: _Node, classes: dict[tuple[str, bool], str]) -> str:
    """class Net: __init__ building the tree (frozen layers' parameters set not to train) and
    forward, one line per layer in execution order."""
    init = []
    for name, child in tree.modules.items():
        built = _construct(child, classes, "        ")
        target = f"self.{name} = " if plain_name(name) else f"self.add_module({python_string(name)}, "
        init.append(f"        {target}{built}{'' if plain_name(name) else ')'}")
    for parent, name, node in _arrays(tree):
        owner = _access(tree, parent[:-1]) if parent else "self"
        init.append(f"        {owner}.register_{node.tensor}({python_string(name)}, {node.constructor})")
    for layer in network.layers:
        if layer.frozen and layer.tied_to is None and codes[layer.path].module is not None:
            init.append(f"        {_access(tree, layer.path)}.requires_grad_(False)")
    variables = _variables(network)
    body = []
    for layer in network.layers:
        code = codes[layer.path]
        inputs = [variables[i] for i in layer.inputs]
        call = code.call
        if layer.tied_to is not None:
            source = codes.get(layer.tied_to)
            if source is None or source.module is None:
                raise ExportError(f"tied to '{layer.tied_to}', which has no module to share", layer=layer.path)
            call = code.functional or code.call
        module = _access(tree, layer.tied_to or layer.path) if (code.module is not None or layer.tied_to) else ""
        body.append(f"        {variables[layer.path]} = {call.format(*inputs, m=module, x=', '.join(inputs))}")
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
