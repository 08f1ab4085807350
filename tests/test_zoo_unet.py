"""The U-Net of specs/unet.yaml (Ronneberger et al. 2015, padding 1): by hand, against the NumPy
executor, and against the same network written in PyTorch (tests/torch_unet.py) when torch is
installed; tests/test_torch_measurements.py checks torch's recorded figures at the spec's input.
"""

from __future__ import annotations

import pytest
from conftest import SPECS, zoo
from torch_reference import assert_layers_match, measure_module
from torch_unet import unet_module

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load
from archcalc.verify import verify


def double_conv(cin: int, cout: int) -> int:
    """Two 3x3 convolutions with bias: 9*cin*cout + cout, then 9*cout*cout + cout."""
    return 9 * cin * cout + cout + 9 * cout * cout + cout


def up_conv(cin: int) -> int:
    """A 2x2 transposed convolution halving the channels, with bias: 4*cin*(cin/2) + cin/2."""
    return 4 * cin * (cin // 2) + cin // 2


def test_parameter_count_by_hand() -> None:
    # contracting path: 1 -> 64 -> 128 -> 256 -> 512 -> 1024
    encoder = (double_conv(1, 64)            # 576 + 64 + 36,864 + 64 = 37,568
               + double_conv(64, 128)        # 73,728 + 128 + 147,456 + 128 = 221,440
               + double_conv(128, 256)       # 294,912 + 256 + 589,824 + 256 = 885,248
               + double_conv(256, 512)       # 1,179,648 + 512 + 2,359,296 + 512 = 3,539,968
               + double_conv(512, 1024))     # 4,718,592 + 1,024 + 9,437,184 + 1,024 = 14,157,824
    assert encoder == 18_842_048
    # expanding path: up-conv halves the channels, the skip doubles them back for the convs
    decoder = sum(up_conv(c) + double_conv(c, c // 2) for c in (1024, 512, 256, 128))
    #   1024: 2,097,664 + 7,078,912; 512: 524,544 + 1,769,984;
    #   256: 131,200 + 442,624; 128: 32,832 + 110,720
    assert decoder == 12_188_480
    head = 64 * 2 + 2  # 1x1 convolution to the two classes
    result = zoo("unet")
    assert result.totals.params == encoder + decoder + head == 31_030_658
    assert result.totals.buffers == 0


def test_sizes_halve_down_and_double_up() -> None:
    layers = {r.path: r.output_shape for r in zoo("unet").layers}
    assert [layers[p] for p in ("inc.3", "down1.conv.3", "down2.conv.3", "down3.conv.3",
                                "down4.conv.3")] == [
        (64, 256, 256), (128, 128, 128), (256, 64, 64), (512, 32, 32), (1024, 16, 16)]
    # each up-conv: (n - 1) * 2 + (2 - 1) + 1 = 2n, half the channels; the skip doubles them
    assert [layers[f"up{i}"] for i in range(1, 5)] == [
        (512, 32, 32), (256, 64, 64), (128, 128, 128), (64, 256, 256)]
    assert [layers[f"cat{i}"] for i in range(1, 5)] == [
        (1024, 32, 32), (512, 64, 64), (256, 128, 128), (128, 256, 256)]
    assert layers["outc"] == (2, 256, 256)


def test_a_size_not_divisible_by_16_is_refused() -> None:
    from archcalc.errors import ArchcalcError

    # the paper's 572 tile: 572 -> 286 -> 143 -> 71 -> 35, up to 70 against the 71 skip
    with pytest.raises(ArchcalcError, match="cat1"):
        analyze(load(str(SPECS / "unet.yaml"), input_shape=(1, 572, 572)))


def test_executor_agrees() -> None:
    # at 1x64x64 (the figures checked do not depend on the size beyond divisibility by 16)
    result = verify(load(str(SPECS / "unet.yaml"), input_shape=(1, 64, 64)), batch=2)
    assert result.mismatches == ()


def test_matches_torch_layer_by_layer() -> None:
    torch = pytest.importorskip("torch")
    shape = (1, 64, 64)
    torch.manual_seed(0)
    measured = measure_module(torch, unet_module(torch), shape)
    analysis = analyze(load(str(SPECS / "unet.yaml"), input_shape=shape), MemoryOptions(batch=1))
    assert analysis.totals.params == measured["params"]
    assert list(analysis.output_shape) == measured["output_shape"]
    assert analysis.totals.flops == measured["flops"]
    # in-place ReLUs save their output, which the next convolution saves as its input
    assert analysis.memory.training_activations == measured["saved_bytes_per_example"]
    assert_layers_match(analysis, measured["layers"])
