"""The course's memory formula (deck 001) for neon CNN-1, evaluated symbolically and by hand."""

from __future__ import annotations

import sympy
from conftest import SPECS

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.symbolic.symbols import symbol


def test_course_formula_for_neon_cnn1() -> None:
    H, W = symbol("H"), symbol("W")
    shapes = {r.path: r.output_shape for r in analyze(load(str(SPECS / "neon_cnn1.yaml"), input_shape=(3, "H", "W"))).layers}

    def elements(path: str):
        return sympy.Mul(*shapes[path])

    # (w*h + sum_i (2 k_i w_i h_i + k_i p_i q_i)) * sizeof(float32), with a 3-channel input
    course = 4 * (3 * H * W + 2 * elements("conv1") + elements("pool1") + 2 * elements("conv2") + elements("pool2"))
    # by hand at 64x64: conv1 keeps 64 (3x3 dilation 2 spans 5, padding 2); pools halve: 32, 16.
    # 3*4096 + 2*32*4096 + 32*32*32 + 2*64*32*32 + 64*16*16 = 454,656 elements
    assert 3 * 4096 + 2 * 32 * 4096 + 32 * 1024 + 2 * 64 * 1024 + 64 * 256 == 454_656
    assert course.subs({H: 64, W: 64}) == 4 * 454_656 == 1_818_624
    # odd sizes too: at 65x63, p1 = 33x32, p2 = 17x16
    hand = 4 * (3 * 65 * 63 + 2 * 32 * 65 * 63 + 32 * 33 * 32 + 2 * 64 * 33 * 32 + 64 * 17 * 16)
    assert course.subs({H: 65, W: 63}) == hand


def test_archcalc_figures_beside_the_course_formula() -> None:
    m = analyze(load(str(SPECS / "neon_cnn1.yaml")), MemoryOptions(batch=1)).memory
    # every layer's output: the course's figure less the input, plus flatten, fc and logistic
    assert m.activations_sum == 1_818_624 - 4 * 3 * 4096 + 4 * (64 * 16 * 16 + 2 + 2) == 1_835_024
    # conv1's output and relu1's (not in place) are alive together: 2 * 32*64*64*4
    assert m.inference_peak == 2 * 32 * 64 * 64 * 4 == 1_048_576
