"""Sweeps: ranges, the grid evaluated from one compiled formula, and agreement with the numeric
engine at every point checked (odd sizes where floors bite, sizes the network rejects, the
inference peak moving between layers); caps, files and plots from the command line."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sympy
from click.testing import CliRunner
from conftest import SPECS

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import ArchcalcError, OptionError
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.spec.source import parse_text
from archcalc.spec.spec import parse_spec
from archcalc.symbolic.sweep import MAX_POINTS, Range, axis_names, parse_range, parse_shape, sweep

LABELS = ("training_bytes", "inference_bytes", "flops")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def numeric(path: Path | str, b: int, shape: tuple[int, ...], options: MemoryOptions | None = None) -> dict[str, int] | None:
    """The three figures from the numeric engine, or None where it rejects the input."""
    try:
        result = analyze(load(str(path), input_shape=shape), replace(options or MemoryOptions(), batch=b))
    except ArchcalcError:
        return None
    m = result.memory
    return {"training_bytes": m.training_total, "inference_bytes": m.inference_total, "flops": result.totals.flops * b}


def sweeps(path: Path | str, batch: str, shape: str | None, **options: object) -> dict[str, object]:
    """The sweep of each figure over the same grid."""
    ranges = parse_shape(shape) if shape else None
    opts = MemoryOptions(**options)  # type: ignore[arg-type]
    return {
        "training_bytes": sweep(str(path), parse_range(batch, "b"), ranges, what="memory", train=True, options=opts),
        "inference_bytes": sweep(str(path), parse_range(batch, "b"), ranges, what="memory", train=False, options=opts),
        "flops": sweep(str(path), parse_range(batch, "b"), ranges, what="flops", options=opts),
    }


def assert_agrees(
    path: Path | str, results: dict, options: MemoryOptions | None = None, axes: tuple[str, ...] = ("C", "H", "W"),
) -> int:
    """Every figure at every grid point equals the numeric engine's; returns how many points the
    network accepts."""
    first = results["flops"]
    grids = {label: results[label].grid() for label in LABELS}
    accepted = 0
    for index in itertools.product(*map(range, first.shape)):
        point = {**first.fixed, **{n: int(v[i]) for n, v, i in zip(first.names, first.values, index)}}
        expected = numeric(path, point["B"], tuple(point[a] for a in axes), options)
        for label in LABELS:
            figure, valid = grids[label]
            assert bool(valid[index]) == (expected is not None), (label, point)
            if expected is not None:
                assert int(figure[index]) == expected[label], (label, point)
        accepted += expected is not None
    for label in LABELS:
        assert results[label].rejected == first.points - accepted
    return accepted


# --- ranges -----------------------------------------------------------------------------------


def test_a_plain_number_is_fixed_and_a_range_includes_both_ends() -> None:
    assert parse_range("64", "x") == Range(64, 64, 1, swept=False)
    assert list(parse_range("64..512", "x").values) == list(range(64, 513))
    assert list(parse_range("64..512:32", "x").values) == list(range(64, 513, 32))
    assert list(parse_range(" 1 .. 10 : 4 ", "x").values) == [1, 5, 9]  # the end need not be hit
    assert list(parse_range("7..7", "x").values) == [7] and parse_range("7..7", "x").swept


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("512..64", "empty"),
        ("1..8:0", "step"),
        ("1..8:-2", "step"),
        ("0..4", "at least 1"),
        ("-3", "at least 1"),
        ("a..b", "like 64..512"),
        ("1..", "like 64..512"),
        ("1..5:", "like 64..512"),
        ("3.5", "like 64..512"),
    ],
)
def test_bad_ranges_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(OptionError, match=says):
        parse_range(text, "--batch")


def test_input_ranges_one_per_axis() -> None:
    c, h, w = parse_shape("3,64..512:32,224")
    assert (c.swept, h.swept, w.swept) == (False, True, False)
    assert (len(h), w.start) == (15, 224)


def test_axes_are_named_by_the_spec_or_by_position() -> None:
    def spec(text: str):
        return parse_spec(parse_text(text, "net.yaml"), "net.yaml")

    layers = "layers: [{op: relu}]\n"
    assert axis_names(spec("name: n\ninput: [3, 224, 224]\n" + layers), 3) == ["C", "H", "W"]
    assert axis_names(spec("name: n\ninput: [3, 224, 224, 224]\n" + layers), 4) == ["C", "H", "W", "D"]
    own = "name: n\nsymbols: {height: 32, width: 32}\ninput: [3, height, width]\n" + layers
    assert axis_names(spec(own), 3) == ["C", "height", "width"]
    # a repeated name cannot be two axes; positional names then avoid the spec's own symbols
    square = "name: n\nsymbols: {S: 32, H: 8}\ninput: [3, S, S]\n" + layers
    assert axis_names(spec(square), 3) == ["C", "H_", "W"]


# --- agreement with the numeric engine --------------------------------------------------------

# Odd heights where the floors of stride-2 layers bite (97 -> 49 -> 25 -> 13 ...; 225 -> 113 ->
# 57 ...), and widths from 1 up, where AlexNet rejects the input and where ResNet-50's inference
# peak sits in another layer than at 224x224 (at 97x1 the symbolic engine's single peak formula,
# chosen at 224 and multiples, says 76,800 bytes per example; the numeric engine 98,304).
GRID = ("1..7:3", "3,97..225:32,1..81:16")


@pytest.mark.parametrize("name", ["resnet50", "alexnet", "squeezenet1_0", "googlenet", "mobilenet_v2"])
def test_every_point_agrees_with_the_numeric_engine(name: str) -> None:
    path = SPECS / f"{name}.yaml"
    results = sweeps(path, *GRID)
    assert results["flops"].shape == (3, 5, 6)
    assert assert_agrees(path, results) > 0


def test_other_options_agree_too() -> None:
    path = SPECS / "resnet18.yaml"
    options = {"dtype": "float16", "optimizer": "sgd", "weight_dtype": "float32"}
    results = sweeps(path, "2..30:14", "3,31..95:32,95", **options)
    assert assert_agrees(path, results, MemoryOptions(1, "float16", "float32", "sgd")) == 9


def test_the_inference_peak_is_taken_over_every_layer() -> None:
    # SqueezeNet 1.0 at 35x36 peaks in another layer than at 224 (5,098,912 bytes, where the
    # layer that peaks at 224 holds 5,094,048). The sweep takes the largest over all layers at
    # every point, as the numeric engine does, and so does the engine's symbolic peak (a Max).
    path = SPECS / "squeezenet1_0.yaml"
    result = sweep(str(path), parse_range("1", "b"), parse_shape("3,33..37,34..38"), train=False)
    figures, _ = result.grid()
    assert int(figures[2, 2]) == numeric(path, 1, (3, 35, 36))["inference_bytes"] == 5_098_912
    network = load(str(path), input_shape=(3, "H", "W"))
    single = analyze(network, MemoryOptions(1)).memory.inference_total
    assert single.subs({network.symbols["H"]: 35, network.symbols["W"]: 36}) == 5_098_912
    for index in itertools.product(range(5), range(5)):
        h, w = 33 + index[0], 34 + index[1]
        assert int(figures[index]) == numeric(path, 1, (3, h, w))["inference_bytes"]


def test_a_spec_with_named_sizes_sweeps_them(tmp_path: Path) -> None:
    path = tmp_path / "named.yaml"
    path.write_text(
        "name: named\nsymbols: {height: 32, width: 40}\ninput: [3, height, width]\nlayers:\n"
        "  - {op: conv2d, out: 8, kernel: 3, stride: 2}\n  - {op: relu}\n"
        "  - {op: max_pool2d, kernel: 3, stride: 3, ceil_mode: true}\n"
        "  - {op: flatten}\n  - {op: linear, out: 10}\n"
    )
    results = sweeps(path, "1..5:2", "3,7..31:3,5..29:4")
    assert results["flops"].names == ("B", "height", "width")
    assert assert_agrees(path, results, axes=("C", "height", "width")) > 0


def test_channels_can_be_swept() -> None:
    path = SPECS / "resnet18.yaml"
    result = sweep(str(path), parse_range("2", "b"), parse_shape("1..4,64,65"))
    assert result.names == ("C",)
    for i, c in enumerate(range(1, 5)):
        assert int(result.grid()[0][i]) == numeric(path, 2, (c, 64, 65))["training_bytes"]


def test_floor_stays_exact_where_float64_floors_go_wrong(tmp_path: Path) -> None:
    # Output height floor((H - 1)/3) + 1 and width floor((W - 1)/7) + 1. Evaluated in float64,
    # floor(H/3 - 1/3) is one too small for H = 3k + 1 whenever the rounding falls below k:
    # at about a sixth of the sizes up to a million. The sweep divides integers instead.
    path = tmp_path / "strided.yaml"
    path.write_text("name: strided\ninput: [1, 64, 64]\nlayers:\n  - {op: conv2d, out: 2, kernel: 1, stride: [3, 7], bias: false}\n")
    result = sweep(str(path), parse_range("1", "b"), parse_shape("1,1..1000000,6..8"), what="flops")
    h = np.arange(1, 1_000_001).reshape(-1, 1)
    w = np.arange(6, 9).reshape(1, -1)
    figures, _ = result.grid()
    assert np.array_equal(figures, 2 * 2 * ((h - 1) // 3 + 1) * ((w - 1) // 7 + 1))
    H = sympy.Symbol("H", integer=True, positive=True)
    naive = sympy.lambdify(H, sympy.floor((H - 1) / 3), modules="numpy")(h[:, 0]).astype(np.int64)
    assert (naive != (h[:, 0] - 1) // 3).sum() > 100_000  # why the floor is compiled as //
    for hh, ww in [(1, 6), (2, 8), (999_997, 7), (999_999, 8), (1_000_000, 8)]:
        assert int(figures[hh - 1, ww - 6]) == numeric(path, 1, (1, hh, ww))["flops"]


def test_past_int64_the_sweep_computes_with_python_ints() -> None:
    path = SPECS / "resnet50.yaml"
    result = sweep(str(path), parse_range("1..1000000000:999999999", "b"), parse_shape("3,4096,4096"), what="flops")
    figures, _ = result.grid()
    assert figures.dtype == object
    assert int(figures[-1]) == numeric(path, 1_000_000_000, (3, 4096, 4096))["flops"] > 2**63


def test_only_the_batch_swept_keeps_the_spec_input() -> None:
    path = SPECS / "resnet18.yaml"
    result = sweep(str(path), parse_range("1..100", "b"))
    assert result.names == ("B",) and result.fixed == {"C": 3, "H": 224, "W": 224}
    assert [int(result.grid()[0][b - 1]) for b in (1, 37, 100)] == [numeric(path, b, (3, 224, 224))["training_bytes"] for b in (1, 37, 100)]


def test_a_grid_the_network_rejects_entirely_is_an_error() -> None:
    with pytest.raises(OptionError, match="no point of the grid"):
        sweep(str(SPECS / "alexnet.yaml"), parse_range("1", "b"), parse_shape("3,1..30,1..30"))


# --- caps and the command line ----------------------------------------------------------------


def test_more_than_a_billion_points_is_refused_before_any_work() -> None:
    with pytest.raises(OptionError, match="1,000,000,000"):
        sweep("does-not-exist.yaml", parse_range("1..1001", "b"), parse_shape("3,1..1000,1..1000"))
    assert MAX_POINTS == 1_000_000_000
    code, _, err = run("sweep", str(SPECS / "resnet50.yaml"), "--batch", "1..5000", "--input", "3,64..512,64..512")
    assert code == 2 and "1,008,005,000 points" in err and "1,000,000,000" in err  # 5,000 x 449 x 449


def test_an_empty_range_exits_2() -> None:
    code, _, err = run("sweep", str(SPECS / "resnet18.yaml"), "--batch", "64..1")
    assert code == 2 and "empty" in err
    code, _, err = run("sweep", str(SPECS / "resnet18.yaml"), "--input", "3,64..128:0,64")
    assert code == 2 and "step" in err


def test_the_table_shows_an_even_sample_and_counts_the_points() -> None:
    code, out, _ = run("sweep", str(SPECS / "resnet18.yaml"), "--batch", "1..64", "--input", "3,32..224:32,224")
    assert code == 0
    assert "448 points evaluated, 20 shown" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 20  # 5 batches x 4 heights, the first and last of each included
    cells = [[c.strip() for c in row.split("│")[1:3]] for row in rows]
    assert cells[0] == ["1", "32"] and cells[-1] == ["64", "224"]
    assert sorted({b for b, _ in cells}, key=int) == ["1", "17", "33", "48", "64"]
    expected = numeric(SPECS / "resnet18.yaml", 64, (3, 224, 224))["training_bytes"]
    assert f"{expected:,}" in rows[-1]


def test_rejected_points_are_marked_in_the_table() -> None:
    code, out, _ = run("sweep", str(SPECS / "alexnet.yaml"), "--input", "3,1..300,224", "--what", "flops")
    assert code == 0 and "too small" in out and "62 too small for the network" in out


def test_csv_has_one_row_per_point(tmp_path: Path) -> None:
    target = tmp_path / "sweep.csv"
    spec = SPECS / "alexnet.yaml"
    code, _, err = run("sweep", str(spec), "--batch", "1..9:4", "--input", "3,56..70:7,63..64", "--infer", "-o", str(target))
    assert code == 0 and "wrote 18 rows" in err
    with target.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 * 3 * 2 and list(rows[0]) == ["B", "H", "W", "inference_bytes"]
    for row in rows:
        b, h, w = int(row["B"]), int(row["H"]), int(row["W"])
        expected = numeric(spec, b, (3, h, w))
        assert row["inference_bytes"] == ("" if expected is None else str(expected["inference_bytes"]))
    assert any(row["inference_bytes"] == "" for row in rows)  # 56 x 63 is too small for AlexNet


def test_json_has_the_settings_and_one_object_per_point(tmp_path: Path) -> None:
    target = tmp_path / "sweep.json"
    spec = SPECS / "alexnet.yaml"
    code, out, _ = run("sweep", str(spec), "--batch", "2", "--input", "3,60..64,224", "--what", "flops", "-o", str(target))
    assert code == 0 and out == ""
    data = json.loads(target.read_text())
    assert data["figure"] == "flops" and data["swept"] == ["H"] and data["fixed"] == {"B": 2, "C": 3, "W": 224}
    assert data["points"] == len(data["rows"]) == 5
    for row in data["rows"]:
        expected = numeric(spec, 2, (3, row["H"], 224))
        assert row["flops"] == (None if expected is None else expected["flops"])


def test_large_files_stream_in_chunks(tmp_path: Path) -> None:
    target = tmp_path / "big.csv"
    code, _, _ = run("sweep", str(SPECS / "resnet18.yaml"), "--batch", "1..250", "--input", "3,64..1063,224", "-o", str(target))
    assert code == 0
    lines = target.read_text().splitlines()
    assert len(lines) == 1 + 250_000 and lines[-1].startswith("250,1063,")


def test_unwritable_outputs_and_the_spec_itself_are_refused(tmp_path: Path) -> None:
    spec = tmp_path / "net.json"  # a spec may be JSON, so --output could name it
    spec.write_text(json.dumps({"name": "net", "input": [1, 8, 8], "layers": [{"op": "conv2d", "out": 2, "kernel": 3}]}))
    before = spec.read_text()
    code, _, err = run("sweep", str(spec), "--batch", "1..4", "-o", str(spec))
    assert code == 2 and "is the spec file" in err and spec.read_text() == before
    code, _, err = run("sweep", str(spec), "--batch", "1..4", "-o", str(tmp_path / "missing" / "out.csv"))
    assert code == 2 and "no such directory" in err
    (tmp_path / "folder.csv").mkdir()
    code, _, err = run("sweep", str(spec), "--batch", "1..4", "-o", str(tmp_path / "folder.csv"))
    assert code == 2 and "is a directory" in err
    code, _, err = run("sweep", str(spec), "--batch", "1..4", "-o", str(tmp_path / "out.txt"))
    assert code == 2 and ".csv or .json" in err


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "sweep.png"
    code, _, err = run("sweep", str(SPECS / "resnet18.yaml"), "--batch", "1..64", "--input", "3,32..224:32,224", "--plot", str(target))
    assert code == 0 and f"wrote {target}" in err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_of_three_variables_has_a_panel_per_value_of_the_third() -> None:
    # not one slice titled W=224: heatmaps over B and H, one for each of 4 of the 7 widths
    pytest.importorskip("matplotlib")
    from archcalc.render.sweep import sweep_figure

    path = SPECS / "resnet18.yaml"
    result = sweep(str(path), parse_range("1..10", "b"), parse_shape("3,32..64:16,32..224:32"))
    figure = sweep_figure(result)
    panels = [a for a in figure.axes if a.get_label() != "<colorbar>"]
    assert [a.get_title() for a in panels] == ["W=32", "W=96", "W=160", "W=224"]  # first and last among them
    assert "W (4 of 7 values)" in figure.get_suptitle() and "C=3" in figure.get_suptitle()
    assert panels[0].get_xlabel() == "B" and panels[0].get_ylabel() == "H"
    cells = panels[-1].collections[0].get_array()  # rows H, columns B
    assert cells.shape == (3, 10)
    expected = numeric(path, 10, (3, 64, 224))["training_bytes"]
    assert cells[2, 9] * 2**20 == pytest.approx(expected, rel=1e-12)  # in MiB (239 MiB)
    assert figure.axes[-1].get_ylabel() == "MiB"  # the colour bar


def test_a_plot_of_two_variables_is_a_heatmap_of_both() -> None:
    pytest.importorskip("matplotlib")
    from archcalc.render.sweep import sweep_figure

    result = sweep(str(SPECS / "alexnet.yaml"), parse_range("2", "b"), parse_shape("3,50..80,60..90"), what="flops")
    figure = sweep_figure(result)
    (panel,) = [a for a in figure.axes if a.get_label() != "<colorbar>"]
    cells = panel.collections[0].get_array()
    assert cells.shape == (31, 31) and cells.mask.sum() == result.rejected  # gray where rejected
    assert "too small for alexnet" in figure.axes[-1].get_ylabel()
    assert "B=2" in figure.get_suptitle() and (panel.get_xlabel(), panel.get_ylabel()) == ("H", "W")


def test_a_dollar_in_the_name_is_text_in_every_label_of_a_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from archcalc.render.sweep import sweep_figure

    path = tmp_path / "cost.yaml"
    path.write_text("name: $5 net\ninput: [1, 8, 8]\nlayers:\n  - {op: conv2d, out: 2, kernel: 5}\n")
    figure = sweep_figure(sweep(str(path), parse_range("1..10", "b"), parse_shape("1,1..12,8")))
    texts = [figure._suptitle, *(t for a in figure.axes for t in (a.title, a.xaxis.label, a.yaxis.label))]
    assert any("$5 net" in t.get_text() for t in texts)
    assert all(not t.get_parse_math() for t in texts if "$" in t.get_text())


def test_a_fifth_variable_is_held_at_its_largest_and_the_title_says_so(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from archcalc.render.sweep import sweep_figure

    path = tmp_path / "volume.yaml"
    path.write_text("name: volume\ninput: [1, 4, 4, 4]\nlayers:\n  - {op: conv3d, out: 2, kernel: 1}\n")
    result = sweep(str(path), parse_range("1..10", "b"), parse_shape("1..3,2..5,2..3,2..4"), what="flops")
    assert result.names == ("B", "C", "H", "W", "D")  # positional names of four input axes
    figure = sweep_figure(result)
    panels = [a for a in figure.axes if a.get_label() != "<colorbar>"]
    assert [a.get_title() for a in panels] == [f"H={h}, W={w}" for w in (2, 3) for h in (2, 3, 4, 5)]
    assert "D=4 (held at its largest)" in figure.get_suptitle()


def test_few_values_of_a_second_variable_are_lines() -> None:
    pytest.importorskip("matplotlib")
    from archcalc.render.sweep import sweep_figure

    result = sweep(str(SPECS / "resnet18.yaml"), parse_range("1..64", "b"), parse_shape("3,32..224:32,224"))
    (axes,) = sweep_figure(result).axes
    assert [line.get_label() for line in axes.get_lines()] == [f"H={h}" for h in range(32, 225, 32)]


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    code, _, err = run("sweep", str(SPECS / "resnet18.yaml"), "--batch", "1..4", "--plot", str(tmp_path / "p.png"))
    assert code == 2 and "pip install 'archcalc[plot]'" in err
    assert not (tmp_path / "p.png").exists()


def test_plot_needs_a_range() -> None:
    code, _, err = run("sweep", str(SPECS / "resnet18.yaml"), "--plot", "out.png")
    assert code == 2 and "needs a range" in err


def test_help_has_examples() -> None:
    code, out, _ = run("sweep", "-h")
    assert code == 0 and "Example" in out and "1,000,000,000" in out


# --- chunks: bounded memory, the same numbers and bytes ---------------------------------------


def python_csv(result, figures: np.ndarray, valid: np.ndarray) -> str:
    """The CSV written a row at a time with Python's str() from the whole grid in memory."""
    lines = [",".join([*result.names, result.label])]
    for index in itertools.product(*map(range, result.shape)):
        row = [str(int(v[i])) for v, i in zip(result.values, index)]
        lines.append(",".join([*row, str(int(figures[index])) if valid[index] else ""]))
    return "\n".join(lines) + "\n"


def test_chunks_cross_axes_and_give_the_whole_grids_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    # 7 points a chunk over a 3 x 4 x 5 grid: chunks of one B and one H at a time, W split in
    # 5 = 5 (k = 2: 5 <= 7); with 23, one B and 4 H's of 5 W's... every shape of block occurs
    path = SPECS / "alexnet.yaml"
    result = sweep(str(path), parse_range("1..9:4", "b"), parse_shape("3,60..69:3,62..66"), train=False)
    figures, valid = result.grid()
    for chunk in (1, 3, 7, 23, 60):
        monkeypatch.setattr("archcalc.symbolic.sweep.CHUNK", chunk)
        seen = list(result.chunks())
        assert all(len(v) <= chunk for _, _, v in seen)
        positions = [np.concatenate(p) for p in zip(*(c for c, _, _ in seen))]
        flat = np.ravel_multi_index(positions, result.shape)
        assert np.array_equal(flat, np.arange(result.points))  # every point once, in row-major order
        assert np.array_equal(np.concatenate([f for _, f, _ in seen])[valid.ravel()], figures[valid])
        assert np.array_equal(np.concatenate([v for _, _, v in seen]), valid.ravel())
    for index in [(0, 0, 0), (1, 2, 3), (2, 3, 4)]:
        b, h, w = (int(v[i]) for v, i in zip(result.values, index))
        expected = numeric(path, b, (3, h, w))
        assert bool(valid[index]) == (expected is not None)
        if expected is not None:
            assert int(figures[index]) == expected["inference_bytes"]


def test_the_survey_counts_rejected_points_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # AlexNet rejects heights and widths below 63 (its first features have 1 element at 63)
    whole = sweep(str(SPECS / "alexnet.yaml"), parse_range("1..3", "b"), parse_shape("3,55..70,60..64"), what="flops")
    monkeypatch.setattr("archcalc.symbolic.sweep.CHUNK", 4)
    chunked = sweep(str(SPECS / "alexnet.yaml"), parse_range("1..3", "b"), parse_shape("3,55..70,60..64"), what="flops")
    _, valid = whole.grid()
    assert chunked.rejected == whole.rejected == int((~valid).sum()) > 0
    for k in range(3):
        assert np.array_equal(chunked.accepted[k], valid.any(axis=tuple(i for i in range(3) if i != k)))


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_files_written_in_small_chunks_are_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    spec = str(SPECS / "alexnet.yaml")
    args = ("sweep", spec, "--batch", "1..9:4", "--input", "3,56..70:7,63..64", "--infer")
    code, _, _ = run(*args, "-o", str(tmp_path / f"whole{suffix}"))
    assert code == 0
    monkeypatch.setattr("archcalc.symbolic.sweep.CHUNK", 5)
    code, _, _ = run(*args, "-o", str(tmp_path / f"chunked{suffix}"))
    assert code == 0
    whole = (tmp_path / f"whole{suffix}").read_bytes()
    assert (tmp_path / f"chunked{suffix}").read_bytes() == whole
    if suffix == ".csv":
        result = sweep(spec, parse_range("1..9:4", "b"), parse_shape("3,56..70:7,63..64"), train=False)
        assert whole.decode() == python_csv(result, *result.grid())
    else:
        assert len(json.loads(whole)["rows"]) == 18


def test_numbers_of_every_length_are_written_as_python_writes_them(tmp_path: Path) -> None:
    # FLOPs of a 1x1 convolution to 1 channel without bias: 2 x B x H x W, so the figures run
    # from 1 digit to 14, zeros inside them included (200000000000 = 2 x 100000000000 x 1 x 1)
    import io

    from archcalc.symbolic.sweep import write_csv, write_json

    path = tmp_path / "one.yaml"
    path.write_text("name: one\ninput: [1, 8, 8]\nlayers:\n  - {op: conv2d, out: 1, kernel: 1, bias: false}\n")
    batches = "1..1000000000000:99999999999"  # 1, 100000000000, 199999999999, ...
    result = sweep(str(path), parse_range(batches, "b"), parse_shape("1,1..5,1..2"), what="flops")
    figures, valid = result.grid()
    out = io.StringIO()
    write_csv(result, out)
    assert out.getvalue() == python_csv(result, figures, valid)
    out = io.StringIO()
    write_json(result, out)
    rows = json.loads(out.getvalue())["rows"]
    assert [r["flops"] for r in rows] == [2 * r["B"] * r["H"] * r["W"] for r in rows]
    assert {len(str(r["flops"])) for r in rows} >= {1, 2, 12, 13, 14}


def test_python_ints_past_int64_are_written_in_chunks_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from archcalc.symbolic.sweep import write_csv

    path = SPECS / "resnet18.yaml"
    result = sweep(str(path), parse_range("1..1000000000:333333333", "b"), parse_shape("3,4096,4095..4096"), what="flops")
    figures, valid = result.grid()
    assert figures.dtype == object
    monkeypatch.setattr("archcalc.symbolic.sweep.CHUNK", 3)
    out = io.StringIO()
    write_csv(result, out)
    assert out.getvalue() == python_csv(result, figures, valid)
    last = out.getvalue().splitlines()[-1].split(",")
    assert int(last[-1]) == numeric(path, 1_000_000_000, (3, 4096, 4096))["flops"] > 2**63


def test_memory_stays_bounded_whatever_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    # every evaluation covers at most CHUNK points: the table needs 20 of 200 million, the
    # survey of rejected sizes the 1,001 heights only (no output size depends on the batch)
    from archcalc.symbolic import sweep as sweeping

    sizes: list[int] = []
    evaluate = sweeping._evaluate

    def counted(f, axes, outer):  # type: ignore[no-untyped-def]
        figures, valid = evaluate(f, axes, outer)
        sizes.append(valid.size)
        return figures, valid

    monkeypatch.setattr(sweeping, "_evaluate", counted)
    monkeypatch.setattr(sweeping, "CHUNK", 1000)
    result = sweep(str(SPECS / "resnet18.yaml"), parse_range("1..200000", "b"), parse_shape("3,64..1064,224"))
    assert result.points == 200_200_000 and max(sizes) <= 1000 and sum(sizes) < 2_000
    code, out, _ = run("sweep", str(SPECS / "resnet18.yaml"), "--batch", "1..200000", "--input", "3,64..1064,224")
    assert code == 0 and "200,200,000 points evaluated, 20 shown" in out and max(sizes) <= 1000


def test_progress_is_reported_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from archcalc.symbolic.sweep import write_json

    monkeypatch.setattr("archcalc.symbolic.sweep.CHUNK", 10)
    calls: list[tuple[int, int, str]] = []
    result = sweep(str(SPECS / "alexnet.yaml"), parse_range("1..3", "b"), parse_shape("3,60..64,62..65"), progress=lambda *a: calls.append(a))
    assert calls[-1] == (20, 20, "checking input sizes")  # 5 x 4 sizes; the batch never changes them
    calls.clear()
    write_json(result, io.StringIO(), lambda *a: calls.append(a))
    # blocks of whole rows of 4 widths within one batch: 2 heights (8 points), 2, then 1
    assert [c[0] for c in calls] == [8, 16, 20, 28, 36, 40, 48, 56, 60]
    assert {c[1:] for c in calls} == {(60, "writing rows")}


def test_the_readme_example_has_a_table_and_a_file(tmp_path: Path) -> None:
    # README: archcalc sweep resnet50 --batch 1..512 --input 3,64..512,64..512 -o grid.csv
    # (103,219,712 rows, 2.4 GB, tens of seconds); the table of that grid here, and the file of
    # a grid of the same shape of options, every 64th size
    code, out, _ = run("sweep", "resnet50", "--batch", "1..512", "--input", "3,64..512,64..512")
    assert code == 0 and "103,219,712 points evaluated, 18 shown" in out  # 3 x 3 x 2 sizes
    rows = [line for line in out.splitlines() if line.startswith("│")]
    expected = numeric(SPECS / "resnet50.yaml", 512, (3, 512, 512))["training_bytes"]
    assert rows[-1].split("│")[1:4] == [" 512 ", " 512 ", " 512 "] and f"{expected:,}" in rows[-1]
    target = tmp_path / "grid.csv"
    code, _, err = run("sweep", "resnet50", "--batch", "1..512:64", "--input", "3,64..512:64,64..512:64", "-o", str(target))
    assert code == 0 and "wrote 512 rows" in err
    with target.open() as file:
        picked = list(csv.DictReader(file))[::97]
    for row in picked:
        b, h, w = int(row["B"]), int(row["H"]), int(row["W"])
        assert int(row["training_bytes"]) == numeric(SPECS / "resnet50.yaml", b, (3, h, w))["training_bytes"]
