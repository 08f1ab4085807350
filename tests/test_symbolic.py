"""Symbolic mode: the same rules as the numeric engine, checked against it at many points."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import SPECS
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import SpecError
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.symbolic.formula import gather, render
from archcalc.symbolic.symbols import simplify_dim, symbol

MODELS = ("resnet18", "alexnet", "neon_cnn1", "googlenet", "mobilenet_v3_small", "densenet121")
_SYMBOLIC = {}


def symbolic(model: str):
    """The symbolic analysis of a zoo model in B, H, W (computed once per model)."""
    if model not in _SYMBOLIC:
        network = load(str(SPECS / f"{model}.yaml"), input_shape=(3, "H", "W"))
        _SYMBOLIC[model] = analyze(network, MemoryOptions(batch=symbol("B"), optimizer="adamw"))
    return _SYMBOLIC[model]


def numeric(model: str, h: int, w: int, b: int):
    return analyze(load(str(SPECS / f"{model}.yaml"), input_shape=(3, h, w)), MemoryOptions(batch=b, optimizer="adamw"))


def test_nested_floors_collapse() -> None:
    # two stride-2 layers: floor((floor((H-1)/2) + 1 - 1)/2) + 1 = floor((H-1)/4) + 1
    H = symbol("H")
    twice = simplify_dim((((H - 1) // 2 + 1) - 1) // 2 + 1)
    assert twice == (H - 1) // 4 + 1
    for h in range(1, 200):
        assert twice.subs(H, h) == (((h - 1) // 2 + 1) - 1) // 2 + 1


@settings(max_examples=25, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    h=st.integers(75, 400), w=st.integers(63, 400), b=st.integers(1, 64),
)
def test_symbolic_agrees_with_numeric_everywhere(model: str, h: int, w: int, b: int) -> None:
    sym, num = symbolic(model), numeric(model, h, w, b)
    point = {symbol("H"): h, symbol("W"): w, symbol("B"): b}

    def at(value):
        return int(value.subs(point)) if hasattr(value, "subs") else value

    for s, n in zip(sym.layers, num.layers):
        assert tuple(at(d) for d in s.output_shape) == n.output_shape, s.path
    assert at(sym.totals.params) == num.totals.params
    assert at(sym.totals.flops) == num.totals.flops
    for figure in ("weights", "activations_sum", "inference_peak", "training_activations", "training_total"):
        assert at(getattr(sym.memory, figure)) == getattr(num.memory, figure), figure


@pytest.mark.parametrize("model", ["resnet18", "googlenet", "mobilenet_v3_small"])
@pytest.mark.parametrize("what", ["shapes", "flops", "memory", "params"])
def test_exported_python_gives_the_engines_numbers(model: str, what: str) -> None:
    source = render(gather(symbolic(model), what), "python")
    assert not any(line.startswith(("import", "from")) for line in source.splitlines())  # standalone
    namespace: dict = {}
    exec(compile(source, f"{model}_{what}.py", "exec"), namespace)
    for h, w, b in [(224, 224, 1), (225, 97, 3), (299, 300, 2), (128, 333, 7), (96, 96, 64)]:
        num = numeric(model, h, w, b)
        kwargs = {name: value for name, value in (("B", b), ("H", h), ("W", w)) if name in source.split("\n")[3]}
        totals = namespace["totals"](**kwargs)
        layers = namespace["layers"](**kwargs)
        if what == "shapes":
            for r in num.layers:
                assert tuple(layers[r.path].values()) == r.output_shape
        elif what == "flops":
            assert totals["flops"] == num.totals.flops and totals["flops_per_batch"] == b * num.totals.flops
        elif what == "params":
            assert totals["params"] == num.totals.params
        else:
            assert totals["training_total"] == num.memory.training_total
            assert totals["inference_peak"] == num.memory.inference_peak


def test_divisible_form_of_resnet18_memory() -> None:
    # For H, W multiples of 32 the floors vanish. At 224 the per-image saved bytes are PyTorch's
    # 22,179,840 (tests/test_memory.py): 2*(221*224*224 + 1024) = 22,179,840.
    text = render(gather(symbolic("resnet18"), "memory"), "text", 32)
    assert "for H, W divisible by 32:" in text
    assert "training_activations = 2*B*(221*H*W + 1024)" in text
    assert 2 * (221 * 224 * 224 + 1024) == 22_179_840


def test_latex_and_json_exports() -> None:
    formulas = gather(symbolic("neon_cnn1"), "shapes")
    latex = render(formulas, "latex")
    assert r"\begin{longtable}" in latex and r"\left\lfloor" in latex
    import json

    data = json.loads(render(formulas, "json"))
    assert data["symbols"] == ["H", "W"] and "srepr" in data["layers"][0]["dim1"]


def test_spec_symbols_with_defaults(analyse_text) -> None:
    text = """
name: widths
input: [3, H, W]
symbols: {H: 32, W: 32, k: 16}
layers:
  - {op: conv2d, out: $k, kernel: 3, padding: 1}        # k*3*9 + k
  - {op: conv2d, out: $k * 2, kernel: 3, stride: 2}     # 2k*k*9 + 2k
"""
    numeric_result = analyse_text(text)
    assert numeric_result.totals.params == 16 * 27 + 16 + 32 * 16 * 9 + 32
    network = load(str(numeric_result.network.file), symbolic=True)
    k = symbol("k")
    sym = analyze(network)
    assert sym.totals.params.expand() == (k * 27 + k + 2 * k * k * 9 + 2 * k).expand()
    assert sym.layers[-1].output_shape[1] == (symbol("H") - 3) // 2 + 1


def test_symbol_names_that_clash_are_refused(analyse_text) -> None:
    for name in ("beta", "pi", "lambda", "i"):
        with pytest.raises(SpecError, match="symbol name"):
            load_text = f"name: x\ninput: [3, {name}, 8]\nlayers:\n  - {{op: relu}}\n"
            analyse_text(load_text)


def test_a_shape_non_positive_for_every_value_is_an_error(analyse_text) -> None:
    from archcalc.errors import ShapeError

    # the fixed axis of size 2 cannot hold a 3-wide window, whatever H is
    with pytest.raises(ShapeError, match="smaller than the window"):
        analyse_text("name: x\ninput: [3, H, 2]\nlayers:\n  - {op: conv2d, out: 4, kernel: 3}\n")


def test_solver_against_brute_force() -> None:
    from archcalc.figures.shapes import output_shapes
    from archcalc.symbolic.solve import valid_inputs

    for model, modulus in (("resnet18", 32), ("alexnet", 32), ("neon_cnn1", 4)):
        network = load(str(SPECS / f"{model}.yaml"), input_shape=(3, "H", "W"))
        solution = valid_inputs(network, {"H": 224, "W": 224})[0]
        assert solution.modulus == modulus
        # brute force: the numeric engine at every size up to 200 (W large)
        valid = []
        for h in range(1, 200):
            try:
                output_shapes(load(str(SPECS / f"{model}.yaml"), input_shape=(3, h, 512)))
                valid.append(h)
            except Exception:
                pass
        assert solution.smallest == valid[0]
        # brute force drops: a layer loses input rows when its last window stops short
        for h in range(solution.smallest + 2 * modulus, solution.smallest + 4 * modulus):
            drops = _drops(model, h)
            assert (not drops) == (h % modulus in solution.residues), (model, h, drops)


def _drops(model: str, h: int) -> list[str]:
    """Layers whose windows leave input rows unread at height h, from the numeric engine's shapes."""
    network = load(str(SPECS / f"{model}.yaml"), input_shape=(3, h, 512))
    from archcalc.figures.shapes import output_shapes
    from archcalc.ops.base import Window

    shapes = output_shapes(network)
    found = []
    for layer in network.layers:
        step = layer.op.receptive_step([shapes[i] for i in layer.inputs])
        if isinstance(step, Window) and step.rounds_down:
            n = shapes[layer.inputs[0]][1]
            out = shapes[layer.path][1]
            last_read = (out - 1) * step.strides[0] + step.spans[0] - 1 - step.before[0]  # in input coordinates
            if last_read < n - 1:
                found.append(layer.path)
    return found


def test_resnet50_valid_inputs_cli() -> None:
    result = CliRunner().invoke(main, ["solve", str(SPECS / "resnet50.yaml"), "--valid-inputs"])
    assert result.exit_code == 0
    assert "H = 32k + 1" in result.stdout and "225" in result.stdout
    assert "layer2.0.downsample.0" in result.stdout


def test_symbolic_fit_cli() -> None:
    result = CliRunner().invoke(main, ["memory", str(SPECS / "resnet18.yaml"), "--fit", "16GiB", "--input", "3,H,W", "--batch", "64", "--optimizer", "sgd"])
    assert result.exit_code == 0, result.output
    assert "Largest batch" in result.stdout and "Largest square input at batch 64" in result.stdout
    # check the square input against the numeric engine: it fits, one more pixel does not
    import re

    side = int(re.search(r"Largest square input at batch 64\s*│\s*([\d,]+)", result.stdout).group(1).replace(",", ""))
    budget = 16 * 2**30
    assert numeric_total("resnet18", side, 64) <= budget < numeric_total("resnet18", side + 1, 64)


def numeric_total(model: str, side: int, batch: int) -> int:
    network = load(str(SPECS / f"{model}.yaml"), input_shape=(3, side, side))
    return analyze(network, MemoryOptions(batch=batch, optimizer="sgd")).memory.training_total


def test_fit_budget_below_the_weights_exits_2() -> None:
    result = CliRunner().invoke(main, ["memory", str(SPECS / "vgg16.yaml"), "--fit", "100MiB", "--input", "3,H,W"])
    assert result.exit_code == 2 and "budget" in result.stderr


def test_symbolic_json_contract() -> None:
    import json

    result = CliRunner().invoke(main, ["analyze", str(SPECS / "resnet18.yaml"), "--json", "--input", "3,H,W", "--batch", "B"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["input"] == [3, "H", "W"]
    assert data["layers"][0]["output_shape"] == [64, "floor(H/2 - 1/2) + 1", "floor(W/2 - 1/2) + 1"]
