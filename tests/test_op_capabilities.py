"""What ops declare about themselves (ops.base: window, connectivity, normalizes_channels,
joins_along, init), and the rule that makes it the only way in: no code outside archcalc/ops/
names a concrete op class."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import zoo

from archcalc.executor import random_weights
from archcalc.ops import REGISTRY
from archcalc.ops.base import Init, SlidingWindow
from archcalc.spec.graph import load

PACKAGE = Path(__file__).resolve().parent.parent / "archcalc"


def op(kind: str, **fields: Any) -> Any:
    return REGISTRY[kind](**fields)


# --- no consumer knows a concrete op --------------------------------------------------------------


def test_nothing_outside_ops_imports_a_concrete_op() -> None:
    """Only the contract (archcalc.ops.base) and the registry (REGISTRY, Op) may be imported."""
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "ops" and path.parent.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("archcalc.ops"):
                names = {a.name for a in node.names}
                if node.module == "archcalc.ops.base" or (
                    node.module == "archcalc.ops" and names <= {"REGISTRY", "Op"}
                ):
                    continue
                offending.append(
                    f"{path.relative_to(PACKAGE)}:{node.lineno} from {node.module} import {', '.join(sorted(names))}"
                )
            if isinstance(node, ast.Import):
                offending += [
                    f"{path.relative_to(PACKAGE)}:{node.lineno} import {a.name}"
                    for a in node.names
                    if a.name.startswith("archcalc.ops.") and a.name != "archcalc.ops.base"
                ]
    assert offending == []


def test_nothing_outside_ops_switches_on_an_op_kind() -> None:
    """No `op.kind == "concat"` and no `REGISTRY["concat"]`: the spec loader looks kinds up by the
    name the spec gives, and everything else asks the op."""
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "ops" and path.parent.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            sides = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            kinds = [
                s
                for s in sides
                if isinstance(s, ast.Attribute)
                and s.attr == "kind"
                and (
                    (isinstance(s.value, ast.Attribute) and s.value.attr == "op")
                    or (isinstance(s.value, ast.Name) and s.value.id == "op")
                )
            ]
            constants = [
                s for s in sides if isinstance(s, (ast.Constant, ast.Tuple, ast.List, ast.Set))
            ]
            looked_up = (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id == "REGISTRY"
                and isinstance(node.slice, ast.Constant)
            )
            if (kinds and constants) or looked_up:
                offending.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offending == []


# --- window ---------------------------------------------------------------------------------------


def test_a_convolution_and_a_pool_declare_the_window_they_slide() -> None:
    assert op("conv2d", out=8, kernel=[5, 3], stride=2, dilation=[1, 2]).window == SlidingWindow(
        (5, 3), (2, 2), (1, 2)
    )
    assert op("conv1d", out=8, kernel=7).window == SlidingWindow((7,), (1,), (1,))
    # torch.nn.MaxPool2d: stride defaults to kernel_size
    assert op("max_pool2d", kernel=3).window == SlidingWindow((3, 3), (3, 3), (1, 1))
    assert op("avg_pool3d", kernel=2, stride=1).window == SlidingWindow(
        (2, 2, 2), (1, 1, 1), (1, 1, 1)
    )


@pytest.mark.parametrize(
    "kind, fields",
    [
        (
            "conv_transpose2d",
            {"out": 4, "kernel": 3, "stride": 2},
        ),  # scatters each input over a window
        ("linear", {"out": 4}),
        ("adaptive_avg_pool2d", {"output": 1}),  # its windows vary in size
        ("relu", {}),
        ("add", {}),
    ],
)
def test_ops_that_slide_no_fixed_window_declare_none(kind: str, fields: dict[str, Any]) -> None:
    assert op(kind, **fields).window is None


# --- connectivity, channel normalisation, joins ------------------------------------------------------


def test_weights_that_multiply_the_input_declare_how_they_connect() -> None:
    assert op("conv2d", out=4, kernel=3).connectivity == "convolution"
    assert op("conv_transpose1d", out=4, kernel=3).connectivity == "convolution"
    assert op("linear", out=4).connectivity == "dense"
    assert op("dense", out=4).connectivity == "dense"  # an alias is the same op
    # a norm's scale multiplies too, but per element, not as a matrix product or a kernel
    assert op("batchnorm2d").connectivity is None and op("layernorm").connectivity is None


def test_only_batch_norm_removes_a_per_channel_constant() -> None:
    """Batch norm subtracts each channel's own mean (Ioffe & Szegedy 2015, §3.2); layer norm
    subtracts one mean over the normalised axes, group norm one per group of channels, so a
    constant that differs between channels survives them."""
    assert all(op(k).normalizes_channels for k in ("batchnorm1d", "batchnorm2d", "batchnorm3d"))
    assert not op("layernorm").normalizes_channels
    assert not op("groupnorm", groups=2).normalizes_channels


def test_a_concatenation_declares_the_axis_it_joins_along_as_torch_cat_counts_it() -> None:
    assert op("concat").joins_along == 1  # channels: torch.cat(..., dim=1) on [N, C, H, W]
    assert op("concat", dim=-1).joins_along == -1
    assert op("add").joins_along is None and op("mul").joins_along is None


# --- init -------------------------------------------------------------------------------------------


def test_every_declared_init_names_an_array_the_op_has() -> None:
    schemes = set(Init.__args__)  # type: ignore[attr-defined]
    samples = {
        "conv2d": (op("conv2d", out=4, kernel=3), [(2, 5, 5)]),
        "conv_transpose2d": (op("conv_transpose2d", out=4, kernel=3), [(2, 5, 5)]),
        "linear": (op("linear", out=4), [(6,)]),
        "batchnorm2d": (op("batchnorm2d"), [(2, 5, 5)]),
        "layernorm": (op("layernorm"), [(2, 5)]),
        "groupnorm": (op("groupnorm", groups=2), [(4, 5)]),
        "acon_c": (op("acon_c"), [(3, 4, 4)]),
        "meta_acon": (op("meta_acon"), [(3, 4, 4)]),
        "multihead_attention": (op("multihead_attention", heads=2), [(5, 4)]),
        "buffer": (op("buffer", shape=[16], dtype="int64", batch_axis=False), []),
    }
    declaring = {
        next(c for c in cls.__mro__ if "init" in c.__dict__)
        for cls in REGISTRY.values()
        if cls.init
    }
    assert declaring <= {
        c for o, _ in samples.values() for c in type(o).__mro__
    }  # each declaration sampled
    for kind, (o, inputs) in samples.items():
        arrays = {**o.parameters(inputs), **o.buffers(inputs)}
        assert set(o.init) <= set(arrays), kind
        assert set(o.init.values()) <= schemes, kind


NETWORK = """
name: starts
input: [3, 6, 6]
layers:
  - {name: conv, op: conv2d, out: 4, kernel: 3}
  - {name: bn, op: batchnorm2d}
  - {name: ln, op: layernorm, normalized_shape: [4, 4, 4]}
  - {op: flatten}
  - {name: fc, op: linear, out: 5}
"""


def test_random_weights_start_each_array_as_its_op_declares(tmp_path: Path) -> None:
    path = tmp_path / "starts.yaml"
    path.write_text(NETWORK)
    w = random_weights(load(str(path)), seed=0, dtype="float64")
    # conv weight (4, 3, 3, 3): fan_in = 3*3*3 = 27, uniform in +-1/sqrt(27) ~ +-0.19245
    assert np.abs(w["conv"]["weight"]).max() <= 1 / np.sqrt(27)
    assert np.abs(w["conv"]["bias"]).max() <= 0.1  # a shift, near 0
    # fc weight (5, 64): fan_in = 64, bound 1/8
    assert np.abs(w["fc"]["weight"]).max() <= 1 / 8
    assert np.all((w["bn"]["weight"] >= 0.9) & (w["bn"]["weight"] <= 1.1))
    assert np.all((w["bn"]["running_var"] >= 0.5) & (w["bn"]["running_var"] <= 1.5))
    assert np.abs(w["bn"]["running_mean"]).max() <= 0.1
    assert w["bn"]["num_batches_tracked"].dtype == np.int64 and w["bn"]["num_batches_tracked"] == 0
    # a layer norm's weight over [4, 4, 4] is a scale (torch: ones), however many axes it has
    assert w["ln"]["weight"].shape == (4, 4, 4)
    assert np.all((w["ln"]["weight"] >= 0.9) & (w["ln"]["weight"] <= 1.1))
    assert np.abs(w["ln"]["bias"]).max() <= 0.1


# --- what ops declare agrees with what the passes compute ------------------------------------------

ZOO = ("googlenet", "unet", "lenet5", "densenet121")  # kernels, transposed kernels, matrices, joins


@pytest.mark.parametrize("name", ZOO)
def test_declarations_agree_with_the_passes(name: str) -> None:
    """Weights that multiply the input are exactly the layers with MACs (the FLOPs pass); a
    sliding window is the receptive-field step's, span d*(k-1)+1 and the same stride; a join
    along an axis makes that axis the sum of its inputs' (the shape pass)."""
    analysis = zoo(name)
    network = analysis.network
    shapes = {"input": network.input_shape, **{r.path: r.output_shape for r in analysis.layers}}
    for r in analysis.layers:
        op, inputs = network.layer(r.path).op, [shapes[i] for i in r.inputs]
        assert (op.connectivity is not None) == (r.flops.macs > 0), r.path
        if op.window is not None:
            step = op.receptive_step(inputs)
            w = op.window
            assert step.spans == tuple(
                d * (k - 1) + 1 for k, d in zip(w.kernel_size, w.dilations)
            ), r.path
            assert step.strides == w.strides, r.path
        if op.joins_along is not None:
            axis = op.joins_along % (len(r.output_shape) + 1) - 1
            assert r.output_shape[axis] == sum(s[axis] for s in inputs), r.path
