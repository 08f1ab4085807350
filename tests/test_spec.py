"""The spec format: blocks, arguments, expressions, repeats, `when`, `from`, JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archcalc.analysis import analyze
from archcalc.spec.expr import ExpressionError, evaluate
from archcalc.spec.graph import load


def test_expressions_are_arithmetic_on_arguments() -> None:
    env = {"out": 64, "i": 0, "stride": 2}
    assert evaluate("$out * 4", env) == 256
    assert evaluate("$out // 3 + 1", env) == 22
    assert evaluate("2 if $i == 0 else 1", env) == 2
    assert evaluate("$i == 0 and $stride != 1", env) is True
    assert evaluate("max($out, 100) - min(3, $stride)", env) == 98
    with pytest.raises(ExpressionError, match="not allowed"):
        evaluate("$out.__class__", env)
    with pytest.raises(ExpressionError, match="unknown name 'width'"):
        evaluate("$width", env)


def test_repeat_names_and_chains_like_torchvision(analyse_text) -> None:
    result = analyse_text(
        """
name: rep
input: [4, 8, 8]
blocks:
  unit:
    args: {out: null, k: 3}
    layers:
      - {name: conv, op: conv2d, out: $out, kernel: $k, padding: $k // 2}
      - {name: act, op: relu}
layers:
  - {name: stage, block: unit, repeat: 3, out: "8 * ($i + 1)"}
  - {name: single, block: unit, out: 2, k: 1}
  - {name: convs, op: conv2d, repeat: 2, out: 2, kernel: 1}
"""
    )
    paths = [r.path for r in result.layers]
    assert paths == [
        "stage.0.conv", "stage.0.act", "stage.1.conv", "stage.1.act", "stage.2.conv", "stage.2.act",
        "single.conv", "single.act", "convs.0", "convs.1",
    ]
    layers = {r.path: r for r in result.layers}
    assert layers["stage.2.conv"].output_shape == (24, 8, 8)
    assert layers["stage.1.conv"].inputs == ("stage.0.act",)
    assert layers["convs.1"].inputs == ("convs.0",)
    # stage.1.conv: 16 * 8 * 9 + 16
    assert layers["stage.1.conv"].params.params == 16 * 8 * 9 + 16


def test_when_false_passes_the_input_through(analyse_text) -> None:
    result = analyse_text(
        """
name: when
input: [4, 8, 8]
blocks:
  res:
    args: {project: false}
    layers:
      - {name: body, op: conv2d, out: 4, kernel: 3, padding: 1}
      - {name: side, op: conv2d, out: 4, kernel: 1, from: input, when: $project}
      - {name: add, op: add, from: [body, side]}
layers:
  - {name: a, block: res}
  - {name: b, block: res, project: true}
  - {name: gone, op: relu, repeat: 0}
"""
    )
    layers = {r.path: r for r in result.layers}
    assert "a.side" not in layers
    assert layers["a.add"].inputs == ("a.body", "input")
    assert layers["b.add"].inputs == ("b.body", "b.side")
    assert result.network.output == "b.add"  # the skipped last entry passes b's output through


def test_block_output_and_forward_references(analyse_text) -> None:
    result = analyse_text(
        """
name: refs
input: [2, 4, 4]
blocks:
  two:
    output: mid
    layers:
      - {name: first, op: relu}
      - {name: mid, op: add, from: [first, input]}
layers:
  - {name: x, op: add, from: [late, input]}
  - {name: late, op: sigmoid, from: input}
  - {name: blk, block: two, from: x}
"""
    )
    layers = {r.path: r for r in result.layers}
    assert layers["x"].inputs == ("late", "input")
    assert [r.path for r in result.layers].index("late") < [r.path for r in result.layers].index("x")
    assert result.network.output == "blk.mid"


def test_argument_defaults_may_use_other_arguments(analyse_text) -> None:
    result = analyse_text(
        """
name: defaults
input: [4, 8, 8]
blocks:
  b:
    args: {width: null, out: $width * 2}
    layers:
      - {op: conv2d, out: $out, kernel: 1}
layers:
  - {name: blk, block: b, width: 3}
"""
    )
    assert result.layers[0].output_shape == (6, 8, 8)



def test_list_arguments_are_evaluated_where_the_block_is_called(analyse_text) -> None:
    # [1, $k, $k] takes the caller's k (3): a 1x3x3 kernel, as an op field's list would
    result = analyse_text(
        """
name: lists
input: [2, 4, 8, 8]
blocks:
  conv:
    args: [kernel]
    layers:
      - {op: conv3d, out: 5, kernel: $kernel, bias: false}
  separable:
    args: {k: 3}
    layers:
      - {block: conv, kernel: [1, $k, $k]}
layers:
  - {name: blk, block: separable}
"""
    )
    # 4 x (8 - 3 + 1) x (8 - 3 + 1); weight 5 x 2 x 1 x 3 x 3
    assert result.layers[0].output_shape == (5, 4, 6, 6)
    assert result.layers[0].params.params == 5 * 2 * 1 * 3 * 3

def test_json_spec_and_dtype(tmp_path: Path) -> None:
    spec = {
        "name": "mlp",
        "input": {"shape": [784], "dtype": "float16"},
        "layers": [{"op": "linear", "out": 128}, {"op": "tanh"}, {"op": "linear", "out": 10}],
    }
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(spec))
    network = load(str(path))
    assert network.dtype == "float16"
    # 784*128 + 128 + 128*10 + 10 = 101,770 (the FCNN-1-like MLP)
    assert analyze(network).totals.params == 101_770


def test_neon_activation_names_are_aliases(analyse_text) -> None:
    result = analyse_text("name: n\ninput: [5]\nlayers:\n  - {op: affine, out: 2}\n  - {op: logistic}\n")
    assert [r.op for r in result.layers] == ["linear", "sigmoid"]


def test_schema_lists_every_op() -> None:
    from archcalc.ops import REGISTRY
    from archcalc.spec.schema import spec_schema

    schema = spec_schema()
    titles = {e.get("title") for e in schema["$defs"]["entry"]["anyOf"]}
    assert set(REGISTRY) <= titles
    assert "block call" in titles
    json.dumps(schema)  # serialisable
