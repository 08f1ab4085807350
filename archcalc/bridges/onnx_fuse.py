"""Node patterns that are one archcalc op: MatMul(x, W) + b is a linear layer (how exporters write
torch.nn.Linear on more than two axes), Mul(x, Sigmoid(x)) is SiLU (opsets before Swish), x / sqrt(2) -> Erf -> + 1 -> * x -> * 0.5
is GELU (opsets before Gelu), and
Reshape to [N, g, C/g, H, W], Transpose(0, 2, 1, 3, 4), Reshape back is a channel shuffle
(torchvision's shufflenetv2.channel_shuffle)."""

from __future__ import annotations

from collections import Counter
from typing import Any


def fuse(nodes: list[Any], constants: dict[str, tuple[int, ...]], outputs: set[str]) -> list[Any]:
    """The nodes with each pattern replaced by one node of a private op type (`archcalc.Linear`,
    `archcalc.SiLU`) at the first node's place, named as that node. `constants` maps each constant
    tensor to its shape; `outputs` are the graph's outputs, which are never fused away."""
    from onnx import helper

    constants = _constant_shapes(nodes, constants)
    readers = Counter(name for node in nodes for name in node.input)
    consumer = {name: node for node in nodes for name in node.input}
    producer = {name: node for node in nodes for name in node.output}
    replaced: dict[int, Any] = {}
    dropped: set[int] = set()

    def only_reader(name: str) -> Any | None:
        return consumer[name] if readers[name] == 1 and name not in outputs else None

    for node in nodes:
        if node.op_type == "MatMul" and len(node.input) == 2 and node.input[0] not in constants:
            weight = constants.get(node.input[1])
            if weight is None or len(weight) != 2:
                continue
            inputs = [node.input[0], node.input[1]]
            output = node.output[0]
            add = only_reader(output)
            if add is not None and add.op_type == "Add":
                bias = add.input[1] if add.input[0] == output else add.input[0]
                if constants.get(bias) in ((weight[1],), (1, weight[1])):
                    inputs.append(bias)
                    output = add.output[0]
                    dropped.add(id(add))
            replaced[id(node)] = helper.make_node("archcalc.Linear", inputs, [output], name=node.name)
        elif node.op_type == "Sigmoid":
            mul = only_reader(node.output[0])
            if mul is not None and mul.op_type == "Mul" and set(mul.input) == {node.input[0], node.output[0]}:
                replaced[id(node)] = helper.make_node("archcalc.SiLU", [node.input[0]], [mul.output[0]], name=mul.name)
                dropped.add(id(mul))
        elif node.op_type == "Erf":  # x * 0.5 * (1 + erf(x / sqrt 2)), torch's GELU before opset 20
            divide = producer.get(node.input[0])
            add = only_reader(node.output[0])
            times_x = only_reader(add.output[0]) if add is not None and add.op_type == "Add" else None
            half = only_reader(times_x.output[0]) if times_x is not None and times_x.op_type == "Mul" else None
            if divide is None or divide.op_type != "Div" or divide.input[1] not in constants or only_reader(divide.output[0]) is not node or half is None or half.op_type != "Mul":
                continue
            x = divide.input[0]
            if x in times_x.input and any(i in constants for i in add.input) and any(i in constants for i in half.input):
                replaced[id(divide)] = helper.make_node("Gelu", [x], [half.output[0]], name=node.name)
                dropped.update((id(node), id(add), id(times_x), id(half)))
        elif node.op_type == "Reshape" and node.input[0] not in constants:
            transpose = only_reader(node.output[0])
            if transpose is None or transpose.op_type != "Transpose" or list(_perm(transpose)) != [0, 2, 1, 3, 4]:
                continue
            back = only_reader(transpose.output[0])
            if back is not None and back.op_type == "Reshape":
                replaced[id(node)] = helper.make_node("archcalc.ChannelShuffle", list(node.input), [back.output[0]], name=node.name)
                dropped.update((id(transpose), id(back)))
    for node in nodes:
        if id(node) in replaced:  # the exporter's module path, which names the layer
            replaced[id(node)].metadata_props.extend(node.metadata_props)
    return [replaced.get(id(n), n) for n in nodes if id(n) not in dropped]


def _perm(node: Any) -> list[int]:
    """A Transpose node's `perm` attribute ([] when absent)."""
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [])


def _constant_shapes(nodes: list[Any], shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """`shapes` with the outputs of Constant nodes and of Identity nodes copying a constant (the
    PyTorch exporter writes one Identity per initializer equal to another)."""
    known = dict(shapes)
    for node in nodes:
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name.startswith("value")), None)
            if value is not None:
                known[node.output[0]] = tuple(value.t.dims) if value.name == "value" else (len(value.ints) or len(value.floats),) if value.name.endswith("s") else ()
        elif node.op_type == "Identity" and node.input[0] in known:
            known[node.output[0]] = known[node.input[0]]
    return known
