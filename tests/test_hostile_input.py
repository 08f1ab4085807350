"""Hostile and careless input: every case is one line on stderr and exit 2, never a traceback,
a hang or a figure silently wrong (issue 11; limits in docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main


def run(*args: str) -> tuple[int, str]:
    """Exit status and stderr of the CLI run in-process."""
    result = CliRunner().invoke(main, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stderr


def refused(*args: str, words: tuple[str, ...] = ()) -> str:
    """Assert the command exits 2 with one error line (ours, or click's after its usage line)
    saying `words`; that line."""
    code, err = run(*args)
    lines = [row for row in err.splitlines() if row.startswith(("archcalc: error:", "Error:"))]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a spec (layers given as YAML lines) and return its path."""

    def make(layers: str, head: str = "name: t\ninput: [3, 8, 8]\n", name: str = "net.yaml") -> str:
        path = tmp_path / name
        path.write_text(head + "layers:\n" + layers)
        return str(path)

    return make


# --- accepted but wrong --------------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    "{op: conv2d, out: 4, kernel: true}",
    "{op: conv2d, out: 4, kernel: 1, stride: true}",
    "{op: max_pool2d, kernel: [2, false]}",
    "{op: conv2d, out: true, kernel: 1}",
    "{op: flatten, start_dim: true}",
])
def test_booleans_are_not_sizes(write, entry: str) -> None:
    refused("summary", write(f"  - {entry}\n"), words=("true" if "true" in entry else "false",))


def test_a_boolean_input_size_is_refused(write) -> None:
    refused("summary", write("  - {op: relu}\n", head="name: t\ninput: [true, 8, 8]\n"), words=("input",))


@pytest.mark.parametrize("width", ["$k / 3", "$k - $k", "$-$k", "$k * 0.5"])
def test_symbolic_widths_must_be_whole_and_positive(write, width: str) -> None:
    # k/3 and k*0.5 are fractions for most k; k - k is 0; -k is negative for every k
    path = write(f"  - {{op: conv2d, out: \"{width}\", kernel: 1}}\n", head="name: t\ninput: [3, 8, 8]\nsymbols: {k: 6}\n")
    refused("summary", path, "--symbolic", words=("whole number",))


def test_batch_symbol_cannot_merge_with_a_spec_symbol(write) -> None:
    path = write("  - {op: conv2d, out: 4, kernel: 1}\n", head="name: t\ninput: [3, B, B]\nsymbols: {B: 8}\n")
    for command in ("memory", "flops", "analyze"):
        refused(command, path, "--symbolic", "--batch", "B", words=("batch symbol 'B'",))
    assert run("memory", path, "--symbolic", "--batch", "M")[0] == 0


# --- option values --------------------------------------------------------------------------

BASE = "  - {op: conv2d, out: 4, kernel: 3}\n  - {op: relu}\n"


@pytest.mark.parametrize("args", [
    ("summary", "--input", "3,²,4"),
    ("memory", "--batch", "²"),
    ("memory", "--fit", "9" * 400),
    ("memory", "--fit", "12\u0663GiB"),  # an Arabic-Indic digit: int() reads it, people do not
    ("verify", "--seed", "-1"),
    ("verify", "--max-memory", "9" * 400),
    ("verify", "--batch", "1" + "0" * 400),
    ("report", "--batch", "²"),
    ("sweep", "--batch", "1..99999999999999999999"),
    ("sweep", "--input", "3,8..99999999999999999999,8"),
    ("summary", "--input", "3," + "9" * 400 + ",8"),
])
def test_option_values_are_refused_with_a_message(write, args: tuple[str, ...]) -> None:
    refused(args[0], write(BASE), *args[1:])


def test_a_20_digit_budget_is_exact(write) -> None:
    # (10**20 - weights and optimizer state) // bytes per example, in integers: no float on the way
    from archcalc.figures.memory import MemoryOptions, largest_batch
    from archcalc.figures.params import parameter_counts
    from archcalc.figures.shapes import output_shapes
    from archcalc.options import parse_bytes
    from archcalc.spec.graph import load

    assert parse_bytes("99999999999999999999") == 10**20 - 1
    assert parse_bytes("1.5GiB") == 3 * 2**29 and parse_bytes("0.001KB") == 1
    network = load(write(BASE))
    shapes = output_shapes(network)
    counts = parameter_counts(network, shapes)
    # conv 3->4, 3x3 with bias: 112 params; adam, float32: weights + grads + 2 states = 4 x 448
    # saved per example: input 3*8*8*4 = 768, conv output kept by relu 4*6*6*4 = 576 -> 1,344
    batch = largest_batch(network, shapes, counts, MemoryOptions(), 10**20, True)
    assert batch == (10**20 - 4 * 448) // 1344


# --- huge sizes -----------------------------------------------------------------------------

HUGE = str(2**600)  # 181 digits: exact integer arithmetic, no float on the way


@pytest.mark.parametrize("command", ["memory", "flops", "report", "analyze", "rf"])
def test_huge_sizes_are_exact_or_refused(write, command: str) -> None:
    code, err = run(command, write(BASE), "--input", f"3,{HUGE},{HUGE}")
    assert code == 0, err


def test_huge_sizes_in_units_are_exact() -> None:
    from archcalc.units import human_bytes, human_count

    assert human_bytes(2**1200) == f"{2**1200 * 100 // 2**40 // 100}.{2**1200 * 100 // 2**40 % 100:02d} TiB"
    assert human_bytes(3 * 2**29) == "1.50 GiB" and human_count(1_125_000_000) == "1.12 G"  # half to even


def test_compare_refuses_ratios_beyond_a_float(write, tmp_path: Path) -> None:
    big = write(BASE, head=f"name: big\ninput: [3, {HUGE}, {HUGE}]\n", name="big.yaml")
    small = write(BASE, head="name: small\ninput: [3, 8, 8]\n", name="small.yaml")
    refused("compare", small, big, words=("beyond",))
    assert run("compare", big, small)[0] == 0  # small / big is a tiny float: fine


def test_sizes_beyond_2_1024_are_refused(write) -> None:
    refused("summary", write(f"  - {{op: conv2d, out: 4, kernel: 1, stride: {2**1100}}}\n"), words=("beyond",))
    grow = f"  - {{op: conv_transpose2d, out: 4, kernel: 1, stride: {2**1000}}}\n"
    refused("summary", write(grow * 2), words=("beyond",))


# --- hangs ----------------------------------------------------------------------------------

def test_a_huge_stride_does_not_hang_report_or_solve(write) -> None:
    path = write("  - {op: conv2d, out: 4, kernel: 1, stride: 1000000000}\n")
    assert run("report", path)[0] == 0
    refused("solve", path, "--valid-inputs", "--input", "3,H,W", words=("effective stride",))


# --- files that are not specs ---------------------------------------------------------------

@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_before_reading(device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"no {device} here")
    refused("summary", device, words=("not a regular file",))


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    refused("summary", str(fifo), words=("not a regular file",))


def test_a_nul_byte_is_refused_at_its_line(write) -> None:
    path = write("  - {op: relu}\n  - {op: relu, name: \"a\x00b\"}\n")
    line = refused("summary", path, words=("NUL",))
    assert f"{path}:5:" in line


def test_files_over_the_size_limit_are_refused_and_the_limit_can_be_raised(write, monkeypatch) -> None:
    import time

    from archcalc.spec.source import MAX_BYTES

    path = write(BASE + "# " + "x" * MAX_BYTES + "\n")
    started = time.perf_counter()
    refused("summary", path, words=("ARCHCALC_MAX_SPEC_BYTES",))
    assert time.perf_counter() - started < 2  # refused before parsing: YAML would take ~0.5 s/MiB
    monkeypatch.setenv("ARCHCALC_MAX_SPEC_BYTES", str(2 * MAX_BYTES))
    assert run("summary", path)[0] == 0
    monkeypatch.setenv("ARCHCALC_MAX_SPEC_BYTES", "lots")
    refused("summary", path, words=("ARCHCALC_MAX_SPEC_BYTES",))


# --- block-argument expressions -------------------------------------------------------------

BLOCK = "name: t\ninput: [3, 8, 8]\nblocks:\n  b: {args: [o], layers: [{op: conv2d, out: \"$o\", kernel: 1}]}\n"


@pytest.mark.parametrize("value, words", [
    ("$" + "+".join(["1"] * 20_000), ("characters",)),  # a RecursionError in ast.parse before
    ("$" + "not " * 5_000 + "1", ("characters",)),
    ("$" + "+".join(["1"] * 300), ("parts",)),  # short enough to read, too many nodes
    ("$'x' * 10**9", ("not allowed",)),
    ("$[1] * 10**9", ("not allowed",)),
    ("$2j", ("not allowed",)),
    ("$(-1) ** 0.5", ("whole numbers",)),  # a complex number
    ("$(10**300) * (10**300) * (10**300) * (10**300)", ("too large",)),
    ("$1e308 * 10", ("finite",)),
])
def test_expressions_are_bounded_numbers(write, value: str, words: tuple[str, ...]) -> None:
    refused("summary", write(f"  - {{block: b, o: \"{value}\"}}\n", head=BLOCK), words=words)


def test_string_and_list_arguments_take_no_part_in_arithmetic(write) -> None:
    head = BLOCK.replace('"$o"', '"$o * 1000000000"')
    for value in ("xxxx", "[1, 2]", "{a: 1}"):
        refused("summary", write(f"  - {{block: b, o: {value}}}\n", head=head), words=("numbers only",))


def test_the_expression_guard_is_cheap() -> None:
    import timeit

    from archcalc.spec.expr import evaluate

    env = {"exp": 240, "kernel": 5, "i": 0, "out": 64}
    # the zoo's longest expressions (mobilenet_v3_large.yaml); before the guard ~11 us each here
    exprs = ["$out + 8 if $out < 0.9 * ($exp // 4) else $out", "max(8, ($exp // 4 + 4) // 8 * 8)", "($kernel - 1) // 2"]
    seconds = min(timeit.repeat(lambda: [evaluate(e, env) for e in exprs], number=200, repeat=3)) / 600
    assert seconds < 500e-6


# --- symbolic mode --------------------------------------------------------------------------

SYMBOLIC = "name: t\ninput: [3, H, H]\nsymbols: {H: 32}\n"


@pytest.mark.parametrize("entry, words", [
    ("{op: conv2d, out: 4, kernel: 1, stride: \"$2 if $H > 100 else 1\"}", ("depends on the value of H", "give it a value")),
    ("{op: conv2d, out: 4, kernel: 1, when: \"$H > 100\"}", ("depends on the value of H",)),
    ("{op: conv2d, out: 4, kernel: 1, when: \"$not $H\"}", ("depends on the value of H",)),
    ("{op: conv2d, out: \"$64 // ($H - 31)\", kernel: 1}", ("0 for some value of H",)),
])
def test_symbolic_conditions_and_divisions_say_what_to_do(write, entry: str, words: tuple[str, ...]) -> None:
    path = write(f"  - {entry}\n  - {{op: relu}}\n", head=SYMBOLIC)
    refused("summary", path, "--symbolic", words=words)
    assert run("summary", path)[0] == 0  # with H = 32 the spec is fine


def test_a_network_whose_every_entry_is_skipped_is_refused(write) -> None:
    refused("summary", write("  - {op: relu, when: false}\n"), words=("no layers",))


# --- expansion limits -----------------------------------------------------------------------

SKIPPING = "name: t\ninput: [3, 8, 8]\nblocks:\n  b: {layers: [{op: relu, when: false}]}\n  c: {layers: [{block: b, repeat: 100000}]}\n"


@pytest.mark.parametrize("layers, code", [
    ("  - {op: relu, repeat: 1000000000, when: false}\n  - {op: relu}\n", 0),  # skipped: costs one entry
    ("  - {block: b, repeat: 1000000000, when: false}\n  - {op: relu}\n", 0),
    ("  - {block: c, repeat: 10000}\n  - {op: relu}\n", 2),  # 10**9 skipped entries: refused up front
    ("  - {op: relu, repeat: 100000}\n", 2),
])
def test_expansion_is_bounded_before_the_work(write, layers: str, code: int) -> None:
    import time

    started = time.perf_counter()
    if code:
        refused("summary", write(layers, head=SKIPPING), words=("ARCHCALC_MAX_LAYERS",))
    else:
        assert run("summary", write(layers, head=SKIPPING))[0] == 0
    assert time.perf_counter() - started < 5


def test_the_layer_limit_can_be_raised(write, monkeypatch) -> None:
    from archcalc.spec.graph import MAX_LAYERS, load

    path = write(f"  - {{op: relu, repeat: {MAX_LAYERS + 1}}}\n")
    refused("summary", path, words=(f"{MAX_LAYERS:,} layers",))
    monkeypatch.setenv("ARCHCALC_MAX_LAYERS", str(MAX_LAYERS + 1))
    assert len(load(path).order) == MAX_LAYERS + 1


# --- empty, constant and valueless ----------------------------------------------------------

@pytest.mark.parametrize("entry", [
    "{op: max_pool2d, kernel: 2, dilation: []}",
    "{op: max_pool2d, kernel: 2, dilation: [1, 1, 1]}",
    "{op: conv2d, out: 4, kernel: 1, dilation: []}",
    "{op: conv_transpose2d, out: 4, kernel: 2, output_padding: []}",
])
def test_per_axis_fields_need_one_value_per_axis(write, entry: str) -> None:
    refused("summary", write(f"  - {entry}\n"), words=("needs 1 or 2",))


@pytest.mark.parametrize("layers, extra", [
    ("  - {op: conv2d, out: 4, kernel: 1, frozen: true}\n", ()),  # nothing trains: no saved tensor
    ("  - {op: relu}\n", ()),
    ("  - {op: relu}\n", ("--symbolic", "--input", "3,H,W")),
])
def test_fit_with_nothing_per_example_says_so(write, layers: str, extra: tuple[str, ...]) -> None:
    refused("memory", write(layers), "--fit", "1GiB", *extra, words=("nothing in this network is kept per example",))


def test_a_sweep_of_a_constant_figure(write) -> None:
    # global average pooling of 3..5 channels has no MACs: FLOPs are 0 at every point
    code, err = run("sweep", write("  - {op: global_avg_pool}\n"), "--what", "flops", "--input", "3..5,8,8")
    assert code == 0, err


@pytest.mark.parametrize("command", [("verify",), ("sweep",), ("sweep", "--batch", "1..4")])
def test_commands_that_need_numbers_name_the_sizes_without_value(write, command: tuple[str, ...]) -> None:
    path = write("  - {op: relu}\n", head="name: t\ninput: [3, H, W]\n")
    refused(command[0], path, *command[1:], words=("H, W", "no value"))


# --- the executor's own memory --------------------------------------------------------------

def test_verify_max_memory_covers_the_executors_temporaries(write) -> None:
    # analysis: 16 KiB input + 127*127*4 output + 4,097 weights: ~100 KB. The executor's im2col
    # columns hold 64*64 values per output position: 4,096 * 16,129 * 4 bytes = 252 MiB.
    path = write("  - {op: conv2d, out: 1, kernel: 64, padding: 63}\n", head="name: t\ninput: [1, 64, 64]\n")
    refused("verify", path, "--max-memory", "10MiB", words=("temporaries", "--max-memory"))


def test_the_working_memory_estimate_bounds_what_numpy_allocates(write) -> None:
    import tracemalloc

    from archcalc.executor import execute, working_memory
    from archcalc.spec.graph import load

    cases = [
        "  - {op: conv2d, out: 1, kernel: 16, padding: 15}\n",
        "  - {op: conv2d, out: 8, kernel: 3, padding: 1}\n  - {op: max_pool2d, kernel: 3, stride: 2, padding: 1, ceil_mode: true}\n"
        "  - {op: relu}\n  - {op: conv_transpose2d, out: 4, kernel: 3, stride: 2}\n  - {op: avg_pool2d, kernel: 2}\n",
        "  - {name: a, op: conv2d, out: 4, kernel: 1}\n  - {name: b, op: conv2d, out: 4, kernel: 3, padding: 1, from: input}\n"
        "  - {op: concat, from: [a, b]}\n  - {op: flatten}\n  - {op: linear, out: 10}\n",
    ]
    for layers in cases:
        network = load(write(layers, head="name: t\ninput: [3, 16, 16]\n"))
        estimate, _ = working_memory(network, 2)
        execute(network, batch=2)  # a first run imports what NumPy loads lazily: not traced
        tracemalloc.start()
        try:
            execute(network, batch=2)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak <= estimate + 64 * 1024, (layers, peak, estimate)  # tracemalloc counts Python objects too


def test_the_executor_refuses_before_allocating(write) -> None:
    from archcalc.errors import ArchcalcError
    from archcalc.executor import execute
    from archcalc.spec.graph import load

    network = load(write("  - {op: conv2d, out: 1, kernel: 64, padding: 63}\n", head="name: t\ninput: [1, 64, 64]\n"))
    with pytest.raises(ArchcalcError, match="temporaries of '0'"):
        execute(network, max_memory=2**20)


def test_a_stride_beyond_numpys_integers_is_a_message_in_verify(write) -> None:
    # 10**30 is a legal stride (one output position) but no NumPy stride holds it in bytes
    path = write("  - {op: conv2d, out: 4, kernel: 1, stride: 1000000000000000000000000000000}\n")
    assert run("summary", path)[0] == 0
    refused("verify", path, words=("NumPy",))
    refused("summary", write("  - {op: conv2d, out: 4, kernel: 1, stride: 1.0e+30}\n"), words=("stride",))
