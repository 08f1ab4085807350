"""The layer graph for drawing: blocks folded to a depth, as Graphviz DOT, Mermaid, GraphML or JSON.

Folding works like `summary --depth`: every layer whose path has more components than the depth
joins the node of its path's first `depth` components (`layer2.0.conv1` -> `layer2` at depth 1),
which sums its members' parameters and shows the output shape of its last layer. Edges between
folded nodes are kept once each; edges inside a node disappear. An edge is a skip connection when
its source is not the node just before its target in execution order, and a dense connection when
it feeds a concatenation (DenseNet, Inception); renderers draw both apart from the main flow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from archcalc.analysis import Analysis, _plain
from archcalc.arith import Dim, Shape
from archcalc.names import unique
from archcalc.render.escape import dot, mermaid, xml
from archcalc.spec.blocks import Blocks, prefix
from archcalc.spec.graph import INPUT


@dataclass(frozen=True)
class Node:
    """A layer, a folded block (`block`), or the network input; `layers` are the paths it stands for."""

    id: str
    op: str  # the op, or for a folded block its block name
    block: bool
    output_shape: Shape
    params: Dim
    layers: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    skip: bool  # the source is not the node just before the target in execution order
    dense: bool  # the edge feeds a concatenation


@dataclass(frozen=True)
class LayerGraph:
    """Nodes in execution order (the input first) and their deduplicated edges."""

    name: str
    input_shape: Shape
    depth: int | None
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def collapse(analysis: Analysis, depth: int | None = None) -> LayerGraph:
    """The network's graph with blocks folded to `depth` path components (None: every layer)."""
    network = analysis.network
    nodes = [Node(INPUT, INPUT, False, network.input_shape, 0, ())]
    for group in Blocks(network.blocks).fold(analysis.layers, depth):
        rows = group.members
        if group.folded:
            params = sum((r.params.params for r in rows), 0)
            nodes.append(Node(group.name, group.kind, True, rows[-1].output_shape, params, tuple(r.path for r in rows)))
        else:
            r = rows[0]
            nodes.append(Node(group.name, r.op, False, r.output_shape, r.params.params, (group.name,), r.detail))
    previous = {b.id: a.id for a, b in pairwise(nodes)}
    found: dict[tuple[str, str], bool] = {}  # (source, target) -> feeds a concatenation
    for layer in network.layers:
        target = prefix(layer.path, depth)
        for source_path in layer.inputs:
            source = prefix(source_path, depth)
            if source != target:
                key = (source, target)
                found[key] = found.get(key, False) or layer.op.joins_along is not None
    edges = tuple(Edge(s, t, previous[t] != s, dense) for (s, t), dense in found.items())
    return LayerGraph(network.name, network.input_shape, depth, tuple(nodes), edges)


def _count(value: Dim) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _shape(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def label_lines(node: Node) -> list[str]:
    """A node's label: name, op (or block name), output shape, parameters."""
    if node.id == INPUT:
        return [INPUT, _shape(node.output_shape)]
    return [node.id, node.op, _shape(node.output_shape), f"{_count(node.params)} params"]


def _title(graph: LayerGraph) -> str:
    folded = f", blocks folded to depth {graph.depth}" if graph.depth is not None else ""
    return f"{graph.name} (input {_shape(graph.input_shape)}{folded})"


# --- Graphviz DOT -------------------------------------------------------------------------------

def to_dot(graph: LayerGraph) -> str:
    """Graphviz DOT: folded blocks shaded, skip connections dashed, concatenation inputs blue."""
    lines = [
        f"digraph {dot(graph.name)} {{",
        "  // dashed: skip connections; blue: inputs of a concatenation; shaded: folded blocks",
        f"  graph [label={dot(_title(graph))}, labelloc=t, fontname=\"Helvetica\", rankdir=TB];",
        '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];',
        '  edge [arrowsize=0.7, color="#555555"];',
    ]
    for node in graph.nodes:
        label = "\\n".join(dot(line)[1:-1] for line in label_lines(node))
        style = ", shape=oval" if node.id == INPUT else ', style="rounded,filled", fillcolor="#e8f0fe"' if node.block else ""
        lines.append(f'  {dot(node.id)} [label="{label}"{style}];')
    for edge in graph.edges:
        attributes = (["style=dashed"] if edge.skip else []) + (['color="#1a73e8"', "penwidth=2"] if edge.dense else [])
        extra = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {dot(edge.source)} -> {dot(edge.target)}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- Mermaid ------------------------------------------------------------------------------------

def _mermaid_ids(graph: LayerGraph) -> dict[str, str]:
    """Node ids Mermaid accepts (letters, digits, `_`; prefixed, so `end` cannot clash), unique."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for node in graph.nodes:
        ids[node.id] = unique("n_" + re.sub(r"[^A-Za-z0-9_]", "_", node.id), taken)
    return ids


def to_mermaid(graph: LayerGraph) -> str:
    """A Mermaid `flowchart TD` for a ```mermaid block in Markdown: skips dotted, dense edges thick."""
    ids = _mermaid_ids(graph)
    lines = [
        "flowchart TD",
        f"    %% {mermaid(_title(graph))}",
        "    %% dotted: skip connections; thick blue: inputs of a concatenation; shaded: folded blocks",
    ]
    for node in graph.nodes:
        label = "<br/>".join(mermaid(line) for line in label_lines(node))
        opening, closing = ('(["', '"])') if node.id == INPUT else ('["', '"]')
        lines.append(f"    {ids[node.id]}{opening}{label}{closing}")
    dense: list[str] = []
    for index, edge in enumerate(graph.edges):
        arrow = "-.->" if edge.skip else "==>" if edge.dense else "-->"
        lines.append(f"    {ids[edge.source]} {arrow} {ids[edge.target]}")
        if edge.dense:
            dense.append(str(index))
    blocks = [ids[n.id] for n in graph.nodes if n.block]
    if blocks:
        lines.append("    classDef block fill:#e8f0fe,stroke:#1a73e8")
        lines.append(f"    class {','.join(blocks)} block")
    if dense:
        lines.append(f"    linkStyle {','.join(dense)} stroke:#1a73e8,stroke-width:2px")
    return "\n".join(lines) + "\n"


# --- GraphML and JSON ---------------------------------------------------------------------------

def to_graphml(graph: LayerGraph) -> str:
    """GraphML (networkx.write_graphml) with string attributes only, for yEd, Gephi or networkx;
    names through escape.xml, so the file is well-formed whatever they hold."""
    import networkx as nx

    g = nx.DiGraph(name=xml(graph.name), input_shape=json.dumps(_plain(graph.input_shape)), depth=str(graph.depth or ""))
    for node in graph.nodes:
        g.add_node(
            xml(node.id),
            label=xml("\n".join(label_lines(node))),
            op=xml(node.op),
            block=str(node.block).lower(),
            output_shape=json.dumps(_plain(node.output_shape)),
            params=str(node.params),
            layers=str(len(node.layers)),
            detail=xml(node.detail),
        )
    for edge in graph.edges:
        g.add_edge(xml(edge.source), xml(edge.target), skip=str(edge.skip).lower(), dense=str(edge.dense).lower())
    return "\n".join(nx.generate_graphml(g)) + "\n"


def graph_json(graph: LayerGraph) -> dict[str, Any]:
    """{"nodes": [...], "edges": [...]} with the network's name, input and the folding depth."""
    return {
        "name": graph.name,
        "input": _plain(graph.input_shape),
        "depth": graph.depth,
        "nodes": [
            {
                "id": n.id,
                "op": n.op,
                "block": n.block,
                "output_shape": _plain(n.output_shape),
                "params": _plain(n.params),
                "layers": list(n.layers),
                "detail": n.detail,
            }
            for n in graph.nodes
        ],
        "edges": [{"source": e.source, "target": e.target, "skip": e.skip, "dense": e.dense} for e in graph.edges],
    }


def to_json(graph: LayerGraph) -> str:
    return json.dumps(graph_json(graph), indent=2) + "\n"


FORMATS: dict[str, Callable[[LayerGraph], str]] = {
    "dot": to_dot,
    "mermaid": to_mermaid,
    "graphml": to_graphml,
    "json": to_json,
}


def export(analysis: Analysis, fmt: str, depth: int | None = None) -> str:
    """The graph of an analysed network as text in one of FORMATS."""
    return FORMATS[fmt](collapse(analysis, depth))
