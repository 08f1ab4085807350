"""Per-device memory: ZeRO's closed forms (Rajbhandari et al. 2020), Korthikanti et al. 2022's
activation memory per transformer layer with tensor and sequence parallelism, and the options'
errors. Every expectation is derived by hand here, from the papers' formulas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy
from click.testing import CliRunner

from archcalc.analysis import analyze
from archcalc.cli import main
from archcalc.errors import OptionError
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.symbolic.symbols import symbol

BLOCK = Path(__file__).parent / "data" / "korthikanti_block.yaml"
s, h, b, t, N, d = (symbol(n) for n in "shbtNd")

# The block's parameters by hand: two layer norms 2h each, QKV 3h^2 + 3h, proj h^2 + h, fc1 4h^2 + 4h,
# fc2 4h^2 + h.
PSI = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (4 * h * h + 4 * h) + (4 * h * h + h)


def block(**options: object) -> object:
    """The block's memory, symbolic in s and h, under `options`."""
    return analyze(load(str(BLOCK), symbolic=True), MemoryOptions(**options)).memory  # type: ignore[arg-type]


def state(m: object) -> object:
    return m.weights + m.gradients + m.optimizer_state  # type: ignore[attr-defined]


def same(a: object, b: object) -> bool:
    return sympy.simplify(sympy.expand(a - b)) == 0  # type: ignore[operator]


@pytest.mark.parametrize(("stage", "whole", "split"), [
    # fp32 Adam: weights 4, gradients 4, optimizer state 8 bytes per parameter (the paper's K = 8
    # of fp32 state, with 4 + 4 in place of its 2 + 2): stage 1 splits the 8, stage 2 the 4 + 8,
    # stage 3 all 16 (Rajbhandari et al. 2020, Fig. 1 with these byte counts).
    (0, 16, 0), (1, 8, 8), (2, 4, 12), (3, 0, 16),
])
def test_zero_stages_fp32_adam(stage: int, whole: int, split: int) -> None:
    m = block(optimizer="adam", zero=stage, devices=N)
    # one device holds ceil(Psi / N) of each split component: the flat buffer padded to N shards
    assert same(state(m), whole * PSI + split * sympy.ceiling(PSI / N))
    if stage:  # where N divides Psi, the paper's closed form
        assert same(state(m).subs(N, 8).subs(h, 64), whole * PSI.subs(h, 64) + split * PSI.subs(h, 64) / 8)


@pytest.mark.parametrize(("stage", "closed_form"), [
    # Rajbhandari et al. 2020, Fig. 1 and §5: mixed-precision Adam keeps 2 + 2 + 12 bytes per
    # parameter; per device 16 Psi (baseline), 4 Psi + 12 Psi/N, 2 Psi + 14 Psi/N, 16 Psi/N.
    (0, lambda psi, n: 16 * psi), (1, lambda psi, n: 4 * psi + 12 * psi / n),
    (2, lambda psi, n: 2 * psi + 14 * psi / n), (3, lambda psi, n: 16 * psi / n),
])
def test_zero_stages_mixed_precision_adam(stage: int, closed_form: object) -> None:
    m = block(optimizer="adam", precision="bf16-mixed", zero=stage, devices=N)
    at = {N: 8, h: 64}  # Psi = 49,984, a multiple of 8: no padding
    assert same(state(m).subs(at), closed_form(PSI.subs(at), 8))  # type: ignore[operator]


def test_zero_without_data_parallel_devices_splits_nothing() -> None:
    assert same(state(block(zero=3)), 16 * PSI)


def korthikanti(**options: object) -> object:
    """Saved bytes under Korthikanti et al.'s assumptions: 16-bit activations, 1-byte dropout
    masks, attention's softmax, mask and dropped matrix kept (the math kernel)."""
    m = block(batch=b, dtype="bfloat16", attention="math", dropout_mask="bool", **options)
    return m.training_activations.subs(h, 4 * d)  # type: ignore[attr-defined]


# What the paper leaves out and PyTorch keeps: each layer norm's mean and 1/std per row, in the
# parameters' type (bfloat16 in a model cast to it): 2 x 2 bytes per token, two norms
# (docs/memory.md, "Sharding").
NORM_STATISTICS = 2 * 4 * s * b


def test_korthikanti_activations_without_parallelism() -> None:
    a, width = 4, 4 * d
    # Korthikanti et al. 2022, §4.1 eq. (1): sbh(34 + 5as/h) bytes per transformer layer
    assert same(korthikanti(), s * b * width * (34 + 5 * a * s / width) + NORM_STATISTICS)


def test_korthikanti_activations_with_tensor_parallelism() -> None:
    a, width = 4, 4 * d
    # Table 2, tensor parallel: sbh(10 + 24/t + 5as/(ht)); the norms and their statistics whole
    assert same(korthikanti(tp=t), s * b * width * (10 + 24 / t + 5 * a * s / (width * t)) + NORM_STATISTICS)


def test_korthikanti_activations_with_sequence_parallelism() -> None:
    a, width = 4, 4 * d
    # Table 2, tensor + sequence parallel: (sbh/t)(34 + 5as/h); every activation split t ways
    assert same(korthikanti(tp=t, sequence_parallel=True), s * b * width / t * (34 + 5 * a * s / width) + NORM_STATISTICS / t)


def test_tensor_parallel_parameters_by_hand() -> None:
    m = block(tp=t, optimizer="sgd")
    # whole on every device: two norms (4h) and the row-parallel biases (proj, fc2: 2h);
    # split t ways: QKV (3h^2 + 3h) and fc1 (4h^2 + 4h) whole, proj and fc2's weights (h^2 + 4h^2)
    split = 3 * h * h + 3 * h + 4 * h * h + 4 * h + h * h + 4 * h * h
    assert same(m.weights, 4 * (6 * h + split / t))
    assert same(m.weights, m.gradients)


def test_tensor_and_zero_split_over_data_parallel_replicas() -> None:
    numeric = analyze(load(str(BLOCK)), MemoryOptions(tp=4, devices=16, zero=3)).memory
    width = 64
    per_tp_device = 6 * width + (12 * width * width + 7 * width) // 4
    # 16 devices = 4 data-parallel replicas of 4 tensor-parallel ones; ZeRO 3 splits each device's share 4 ways
    assert numeric.weights == 4 * -(-per_tp_device // 4)


def test_bool_masks_change_only_the_masks() -> None:
    network = load(str(BLOCK))
    one = analyze(network, MemoryOptions(attention="math")).memory.training_activations
    masks = analyze(network, MemoryOptions(attention="math", dropout_mask="bool")).memory.training_activations
    # float32 masks: attention's [4, 128, 128] and two [128, 64]; bool keeps 1 byte of each 4
    assert one - masks == 3 * (4 * 128 * 128 + 2 * 128 * 64)


@pytest.mark.parametrize(("args", "message"), [
    (["--sequence-parallel"], "give --tp T > 1"),
    (["--tp", "4", "--devices", "6"], "multiple of --tp 4"),
    (["--tp", "3"], "does not split evenly"),
    (["--tp", "0"], "at least 1"),
    (["--devices", "N"], "only symbolic mode"),
])
def test_bad_combinations_are_option_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["memory", str(BLOCK), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_tp_needs_marked_layers_and_row_after_column(tmp_path: Path) -> None:
    plain = BLOCK.read_text().replace(", parallel: column", "").replace(", parallel: row", "")
    (tmp_path / "plain.yaml").write_text(plain)
    with pytest.raises(OptionError, match="marks none"):
        analyze(load(str(tmp_path / "plain.yaml")), MemoryOptions(tp=2))
    (tmp_path / "row.yaml").write_text(BLOCK.read_text().replace(", parallel: column", ""))
    with pytest.raises(OptionError, match="row-parallel but reads"):
        analyze(load(str(tmp_path / "row.yaml")), MemoryOptions(tp=2))


def test_json_and_table_say_per_device() -> None:
    out = CliRunner().invoke(main, ["memory", str(BLOCK), "--zero", "2", "--devices", "8", "--json"]).output
    memory = json.loads(out)["memory"]
    assert memory["per_device"] is True and memory["devices"] == 8 and memory["data_parallel"] == 8 and memory["zero"] == 2
    table = CliRunner().invoke(main, ["memory", str(BLOCK), "--zero", "2", "--devices", "8"]).output
    assert "per device of 8" in table
    single = json.loads(CliRunner().invoke(main, ["memory", str(BLOCK), "--json"]).output)["memory"]
    assert "per_device" not in single  # one device: the JSON is as before


@pytest.mark.parametrize(("zero", "tp", "train"), [(3, 1, True), (1, 1, True), (2, 4, True), (3, 2, False)])
def test_fewest_devices_equals_the_first_that_fits(zero: int, tp: int, train: bool) -> None:
    from archcalc.figures.memory import fewest_devices
    from archcalc.figures.params import parameter_counts
    from archcalc.figures.shapes import output_shapes

    network = load(str(BLOCK))
    options = MemoryOptions(batch=2, zero=zero, tp=tp)

    def total(devices: int) -> int:
        m = analyze(network, MemoryOptions(batch=2, zero=zero, tp=tp, devices=devices)).memory
        return m.training_total if train else m.inference_total

    shapes = output_shapes(network)
    counts = parameter_counts(network, shapes)
    for target in (3, 5, 12):  # budgets just fitting tp * target devices, found by brute force
        budget = total(tp * target)
        first = next(n for n in range(tp, tp * 13, tp) if total(n) <= budget)
        assert fewest_devices(network, shapes, counts, options, budget, train) == first


def test_fit_devices_from_the_cli() -> None:
    out = CliRunner().invoke(main, ["memory", str(BLOCK), "--fit", "1.5MiB", "--zero", "3", "--devices", "N", "--json"]).output
    found = json.loads(out)
    assert found["fit"]["devices"] == found["memory"]["devices"]
    assert found["memory"]["training_total"] <= 3 * 2**19
    fewer = json.loads(CliRunner().invoke(main, ["memory", str(BLOCK), "--zero", "3", "--devices", str(found["fit"]["devices"] - 1), "--json"]).output)
    assert fewer["memory"]["training_total"] > 3 * 2**19
    refused = CliRunner().invoke(main, ["memory", str(BLOCK), "--fit", "1MiB", "--devices", "N"])
    assert refused.exit_code == 2 and "ZeRO stage 0 splits nothing" in refused.output


@pytest.mark.parametrize(("command", "args"), [
    ("memory", ["memory", str(BLOCK), "--tp", "2", "--devices", "8", "--zero", "3", "--dropout-mask", "bool", "--json"]),
    ("memory", ["memory", str(BLOCK), "--fit", "1.5MiB", "--zero", "3", "--devices", "N", "--json"]),
    ("analyze", ["analyze", str(BLOCK), "--tp", "2", "--sequence-parallel", "--json"]),
    ("compare", ["compare", str(BLOCK), "gpt2", "--zero", "1", "--devices", "4", "--json"]),
])
def test_per_device_json_is_valid_against_its_schema(command: str, args: list[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from archcalc.schemas import output_schema

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    jsonschema.validate(json.loads(result.stdout), output_schema(command))


def test_gpt2_tensor_parallel_weights_by_hand() -> None:
    from conftest import SPECS

    m = analyze(load(str(SPECS / "gpt2.yaml")), MemoryOptions(tp=4, optimizer="sgd")).memory
    # per layer: c_attn (768 x 2304 + 2304) and c_fc (768 x 3072 + 3072) split whole, the two
    # c_proj weights (768 x 768, 3072 x 768) split, their biases and the two norms (4 x 768) whole
    split = 768 * 2304 + 2304 + 768 * 3072 + 3072 + 768 * 768 + 3072 * 768
    whole = 2 * 768 + 4 * 768
    embeddings = 50257 * 768 + 1024 * 768 + 2 * 768  # wte (the head tied to it), wpe, ln_f: whole
    assert m.weights == 4 * (embeddings + 12 * (whole + split // 4))  # 242,761,728 bytes
