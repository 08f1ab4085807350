"""Block folding: layers grouped by path prefix, each group named the same way in the summary,
the graph export and the report's block tree."""

from __future__ import annotations

from archcalc.render.graph_export import collapse
from archcalc.render.tables import fold as summary_rows
from archcalc.review.report import _tree
from archcalc.spec.blocks import Blocks

# Every kind of group a spec makes: a repeated op, a block repeated once and twice, a block
# called without repeat, an op repeated once, and a plain layer.
SPEC = """
name: kinds
input: [3, 8, 8]
blocks:
  b:
    layers:
      - {name: c, op: conv2d, out: 3, kernel: 1}
      - {name: r, op: relu, repeat: 2}
layers:
  - {name: reps, op: relu, repeat: 3}
  - {name: one, block: b, repeat: 1}
  - {name: two, block: b, repeat: 2}
  - {name: single, block: b}
  - {name: lone, op: relu, repeat: 1}
  - {name: last, op: relu}
"""

CONV = 3 * 3 * 1 * 1 + 3  # the block's 1x1 convolution, 3 -> 3 channels, with bias

KINDS = {
    "reps": "relu ×3",  # reps.0, reps.1, reps.2
    "one": "b",  # one.0: a single copy is just the block
    "two": "b ×2",  # two.0, two.1
    "single": "b",  # the instance itself
    "lone": "relu ×1",  # lone.0: folded, as its path has a component more than the depth
    "last": "relu",  # a layer, not folded
}


def test_depth_one_groups_and_names_every_kind(analyse_text) -> None:
    analysis = analyse_text(SPEC)
    groups = Blocks(analysis.network.blocks).fold(analysis.layers, 1)
    assert {g.name: g.kind for g in groups} == KINDS
    assert [g.name for g in groups if not g.folded] == ["last"]
    two = next(g for g in groups if g.name == "two")
    assert [m.path for m in two.members] == ["two.0.c", "two.0.r.0", "two.0.r.1", "two.1.c", "two.1.r.0", "two.1.r.1"]


def test_deeper_groups_name_instances_and_inner_repeats(analyse_text) -> None:
    analysis = analyse_text(SPEC)
    kinds = {g.name: g.kind for g in Blocks(analysis.network.blocks).fold(analysis.layers, 2)}
    assert kinds["two.1"] == "b" and kinds["single.r"] == "relu ×2" and kinds["single.c"] == "conv2d"
    assert len(Blocks(analysis.network.blocks).fold(analysis.layers, None)) == len(analysis.layers)


def test_summary_graph_and_tree_agree(analyse_text) -> None:
    analysis = analyse_text(SPEC)
    rows = {r.path: (r.op, r.params) for r in summary_rows(analysis, 1)}
    nodes = {n.id: (n.op, n.params) for n in collapse(analysis, 1).nodes if n.id != "input"}
    tree = {t.name: (t.kind, t.params) for t in _tree(analysis)}
    params = {"reps": 0, "one": CONV, "two": 2 * CONV, "single": CONV, "lone": 0, "last": 0}
    assert nodes == tree == {name: (kind, params[name]) for name, kind in KINDS.items()}
    assert rows == {name: (f"{kind} (block)" if name != "last" else kind, params[name]) for name, kind in KINDS.items()}
