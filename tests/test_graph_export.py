"""`archcalc graph`: the layer graph folded to a depth, as DOT, Mermaid, GraphML and JSON."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from conftest import zoo

from archcalc.cli import main
from archcalc.render.graph_export import collapse, to_dot, to_graphml, to_mermaid

# A stem, then a residual block repeated twice (3x3 conv, ReLU, add the block's input), then a head.
RESIDUAL = """
name: tiny_res
input: [3, 8, 8]
blocks:
  res:
    args: {out: 4}
    layers:
      - {name: conv, op: conv2d, out: $out, kernel: 3, padding: 1}
      - {name: relu, op: relu}
      - {name: add, op: add, from: [relu, input]}
layers:
  - {name: stem, op: conv2d, out: 4, kernel: 1}
  - {name: stage, block: res, repeat: 2}
  - {name: pool, op: global_avg_pool}
  - {name: fc, op: linear, out: 2}
"""

# b reads a; cat joins a and b (a dense connection, as in DenseNet).
DENSE = """
name: tiny_dense
input: [2, 4, 4]
layers:
  - {name: a, op: conv2d, out: 3, kernel: 1}
  - {name: b, op: conv2d, out: 3, kernel: 1}
  - {name: cat, op: concat, from: [a, b]}
"""

BLOCK_PARAMS = 4 * 4 * 3 * 3 + 4  # one block's 3x3 conv, 4 -> 4 channels, with bias


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def edge_set(graph) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in graph.edges}


def test_every_layer_is_a_node_at_full_depth(analyse_text) -> None:
    graph = collapse(analyse_text(RESIDUAL))
    assert [n.id for n in graph.nodes] == [
        "input", "stem",
        "stage.0.conv", "stage.0.relu", "stage.0.add",
        "stage.1.conv", "stage.1.relu", "stage.1.add",
        "pool", "fc",
    ]
    chain = [
        ("input", "stem"), ("stem", "stage.0.conv"), ("stage.0.conv", "stage.0.relu"),
        ("stage.0.relu", "stage.0.add"), ("stage.0.add", "stage.1.conv"),
        ("stage.1.conv", "stage.1.relu"), ("stage.1.relu", "stage.1.add"),
        ("stage.1.add", "pool"), ("pool", "fc"),
    ]
    skips = [("stem", "stage.0.add"), ("stage.0.add", "stage.1.add")]  # each block's input to its add
    assert edge_set(graph) == set(chain) | set(skips)
    assert {(e.source, e.target) for e in graph.edges if e.skip} == set(skips)
    assert not any(e.dense for e in graph.edges)
    conv = next(n for n in graph.nodes if n.id == "stage.0.conv")
    assert (conv.op, conv.block, conv.output_shape, conv.params) == ("conv2d", False, (4, 8, 8), BLOCK_PARAMS)


def test_depth_one_folds_the_repeated_block_into_one_node(analyse_text) -> None:
    graph = collapse(analyse_text(RESIDUAL), depth=1)
    assert [n.id for n in graph.nodes] == ["input", "stem", "stage", "pool", "fc"]
    assert edge_set(graph) == {("input", "stem"), ("stem", "stage"), ("stage", "pool"), ("pool", "fc")}
    assert not any(e.skip for e in graph.edges)  # the skips now run inside `stage`: no self-loops
    stage = graph.nodes[2]
    assert stage.block and stage.op == "res ×2"
    assert stage.params == 2 * BLOCK_PARAMS
    assert stage.output_shape == (4, 8, 8)  # stage.1.add's
    assert stage.layers == ("stage.0.conv", "stage.0.relu", "stage.0.add", "stage.1.conv", "stage.1.relu", "stage.1.add")


def test_depth_two_keeps_one_node_per_block_instance(analyse_text) -> None:
    graph = collapse(analyse_text(RESIDUAL), depth=2)
    assert [n.id for n in graph.nodes] == ["input", "stem", "stage.0", "stage.1", "pool", "fc"]
    assert [(n.op, n.params) for n in graph.nodes[2:4]] == [("res", BLOCK_PARAMS), ("res", BLOCK_PARAMS)]
    # stem -> stage.0 comes from two layer edges (to conv and to add): kept once
    assert edge_set(graph) == {("input", "stem"), ("stem", "stage.0"), ("stage.0", "stage.1"), ("stage.1", "pool"), ("pool", "fc")}
    assert len(graph.edges) == 5


def test_concat_inputs_are_dense_edges(analyse_text) -> None:
    graph = collapse(analyse_text(DENSE))
    kinds = {(e.source, e.target): (e.skip, e.dense) for e in graph.edges}
    assert kinds == {
        ("input", "a"): (False, False),
        ("a", "b"): (False, False),
        ("a", "cat"): (True, True),  # b runs between a and cat
        ("b", "cat"): (False, True),
    }


def test_resnet18_at_depth_one_is_a_chain_of_stages() -> None:
    graph = collapse(zoo("resnet18"), depth=1)
    names = ["input", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc"]
    assert [n.id for n in graph.nodes] == names
    assert edge_set(graph) == set(pairwise(names))
    layer2 = graph.nodes[6]
    assert layer2.op == "basic ×2"
    # two basic blocks of 3x3 convs with batch norm, plus the 1x1 projection (as test_cli's summary)
    assert layer2.params == (128 * 64 * 9 + 128 * 128 * 9 + 2 * 128 * 2) + (128 * 128 * 9 * 2 + 2 * 128 * 2) + (128 * 64 + 2 * 128)
    assert sum(n.params for n in graph.nodes) == 11_689_512  # torchvision docs: ResNet-18


def test_mermaid_draws_skips_dotted_and_dense_edges_thick(analyse_text) -> None:
    text = to_mermaid(collapse(analyse_text(RESIDUAL)))
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert "    n_stem -.-> n_stage_0_add" in lines
    assert "    n_stage_0_relu --> n_stage_0_add" in lines
    assert '    n_stage_0_conv["stage.0.conv<br/>conv2d<br/>4×8×8<br/>148 params"]' in lines
    dense = to_mermaid(collapse(analyse_text(DENSE))).splitlines()
    assert "    n_b ==> n_cat" in dense and "    n_a -.-> n_cat" in dense
    assert dense[-1] == "    linkStyle 2,3 stroke:#1a73e8,stroke-width:2px"  # the 3rd and 4th edges


def test_awkward_layer_names_get_safe_mermaid_ids_and_labels(analyse_text) -> None:
    spec = """
name: awkward
input: [4]
layers:
  - {name: 'end', op: linear, out: 4}
  - {name: 'a-b', op: relu}
  - {name: 'a_b', op: relu}
  - {name: 'say "x" <y>', op: linear, out: 2}
"""
    text = to_mermaid(collapse(analyse_text(spec)))
    assert "n_end[" in text  # a bare `end` would close the flowchart
    assert "n_a_b[" in text and "n_a_b_2[" in text
    assert 'say #quot;x#quot; #lt;y#gt;' in text
    for line in text.splitlines()[3:]:
        if "[" in line:  # a node: only the label's own quotes remain
            assert line.count('"') == 2, line


def test_dot_is_well_formed_and_styles_skips(analyse_text) -> None:
    text = to_dot(collapse(analyse_text(RESIDUAL)))
    assert text.startswith('digraph "tiny_res" {') and text.rstrip().endswith("}")
    assert '  "stem" -> "stage.0.add" [style=dashed];' in text
    assert '  "stage.0.relu" -> "stage.0.add";' in text
    dense = to_dot(collapse(analyse_text(DENSE)))
    assert '"b" -> "cat" [color="#1a73e8", penwidth=2];' in dense
    folded = to_dot(collapse(analyse_text(RESIDUAL), depth=1))
    assert '"stage" [label="stage\\nres ×2\\n4×8×8\\n296 params", style="rounded,filled"' in folded


def test_dot_quotes_backslashes_and_quotes(analyse_text) -> None:
    spec = "name: 'q\"\\'\ninput: [4]\nlayers:\n  - {name: 'a\"b', op: linear, out: 2}\n"
    text = to_dot(collapse(analyse_text(spec)))  # the name is q"\ : a quote and one backslash
    assert text.startswith('digraph "q\\"\\\\" {')
    assert '"input" -> "a\\"b";' in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize("depth", [None, 1, 2])
def test_graphviz_renders_the_dot(depth) -> None:
    text = to_dot(collapse(zoo("densenet121"), depth))
    done = subprocess.run(["dot", "-Tsvg"], check=False, input=text, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout


def test_graphml_reads_back_with_networkx(analyse_text) -> None:
    graph = collapse(analyse_text(RESIDUAL))
    back = nx.read_graphml(io.BytesIO(to_graphml(graph).encode()))
    assert back.number_of_nodes() == 10 and back.number_of_edges() == 11
    assert back.nodes["stage.0.conv"]["params"] == "148"
    assert back.nodes["stage.0.conv"]["output_shape"] == "[4, 8, 8]"
    assert back.edges["stem", "stage.0.add"]["skip"] == "true"
    assert all(isinstance(v, str) for _, data in back.nodes(data=True) for v in data.values())


def test_graphml_of_resnet50_has_a_node_per_layer() -> None:
    analysis = zoo("resnet50")
    back = nx.read_graphml(io.BytesIO(to_graphml(collapse(analysis)).encode()))
    assert back.number_of_nodes() == len(analysis.layers) + 1  # and the input


def test_cli_json_has_nodes_and_edges(tmp_path: Path) -> None:
    spec = tmp_path / "res.yaml"
    spec.write_text(RESIDUAL)
    code, out, _ = run("graph", str(spec), "--format", "json", "--depth", "1")
    assert code == 0
    data = json.loads(out)
    assert [n["id"] for n in data["nodes"]] == ["input", "stem", "stage", "pool", "fc"]
    assert data["nodes"][2] == {**data["nodes"][2], "op": "res ×2", "block": True, "params": 296, "output_shape": [4, 8, 8]}
    assert {(e["source"], e["target"]) for e in data["edges"]} == {("input", "stem"), ("stem", "stage"), ("stage", "pool"), ("pool", "fc")}


def test_cli_input_override_reaches_the_shapes(tmp_path: Path) -> None:
    spec = tmp_path / "res.yaml"
    spec.write_text(RESIDUAL)
    code, out, _ = run("graph", str(spec), "--format", "json", "--input", "3,16,16")
    assert code == 0
    assert json.loads(out)["nodes"][1]["output_shape"] == [4, 16, 16]


def test_cli_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "resnet18.mmd"
    code, out, err = run("graph", "resnet18", "--format", "mermaid", "--depth", "1", "-o", str(target))
    assert code == 0 and out == ""
    assert f"wrote {target}" in err
    assert target.read_text().startswith("flowchart TD\n")


def test_cli_unwritable_output_is_a_clean_error(tmp_path: Path) -> None:
    code, _, err = run("graph", "resnet18", "-o", str(tmp_path / "no" / "such" / "dir.dot"))
    assert code == 2
    assert "cannot write" in err and "Traceback" not in err


def test_cli_bad_format_is_a_usage_error() -> None:
    code, _, err = run("graph", "resnet18", "--format", "png")
    assert code == 2
    assert "Invalid value for '--format'" in err


def test_cli_help_has_examples() -> None:
    code, out, _ = run("graph", "-h")
    assert code == 0 and "Example" in out
