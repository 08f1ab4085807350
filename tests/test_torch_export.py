"""`archcalc export --to pytorch`: the generated module names its parameters and buffers as the
spec does, and its forward equals the NumPy executor's with the same weights (torch at test time;
skipped without torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import SPECS

from archcalc.analysis import analyze
from archcalc.bridges.torch_export import MODULE_ATTRIBUTES, ExportError, torch_module, torch_source
from archcalc.errors import ArchcalcError
from archcalc.executor import _random_input, execute, expected_arrays, random_weights
from archcalc.figures.shapes import output_shapes
from archcalc.spec.graph import Network, load, load_data

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # a shared machine: torch's own thread pool would fight xdist's workers

ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))
MACS = 5 * 10**7  # per example at the small input the forward check runs (about a second in NumPy)
PARAMS = 3 * 10**7  # drawn at random and copied into torch
SIDES = (16, 32, 64, 112)


def without_torch_form(network: Network) -> list[str]:
    """The op kinds of the network that have no torch_code (yet)."""
    shapes = output_shapes(network)
    kinds = set()
    for layer in network.layers:
        try:
            layer.op.torch_code([shapes[i] for i in layer.inputs])
        except NotImplementedError:
            kinds.add(layer.op.kind)
    return sorted(kinds)


def exportable(name: str) -> Network:
    network = load(str(SPECS / f"{name}.yaml"))
    missing = without_torch_form(network)
    if missing:
        pytest.skip(f"no PyTorch form for {', '.join(missing)}")
    return network


def small(network: Network) -> Network | None:
    """The network at the smallest of SIDES it takes (channels and leading axes kept), or at its
    own input; None past MACS or PARAMS."""
    candidates = [network]
    if len(network.input_shape) >= 3:
        candidates = [network.with_input((*network.input_shape[:-2], s, s)) for s in SIDES] + candidates
    for candidate in candidates:
        try:
            totals = analyze(candidate).totals
        except ArchcalcError:
            continue
        if totals.params <= PARAMS and totals.macs <= MACS:
            return candidate
    return None


def key(path: str, name: str) -> str:
    """torch's name of a layer's array: path.name, or the path for the one array named '' (a parameter, a buffer)."""
    return f"{path}.{name}" if name else path


def state_dict(network: Network, weights: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The executor's weights keyed as torch's state_dict keys them: path.name."""
    return {key(path, name): torch.from_numpy(np.array(a)) for path, arrays in weights.items() for name, a in arrays.items()}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_spec_exports_with_the_spec_arrays(name: str) -> None:
    network = exportable(name)
    with torch.device("meta"):
        model = torch_module(network)
    got = {k: tuple(v.shape) for k, v in [*model.named_parameters(), *model.named_buffers()]}
    want = {key(path, k): shape for path, arrays in expected_arrays(network).items() for k, (shape, _) in arrays.items()}
    assert got == want
    buffers = {k for k, _ in model.named_buffers()}
    assert buffers == {key(p, k) for p, arrays in expected_arrays(network).items() for k, (_, b) in arrays.items() if b}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_spec_exported_forward_equals_the_executor(name: str) -> None:
    network = small(exportable(name))
    if network is None:
        pytest.skip(f"more than {MACS:,} MACs or {PARAMS:,} parameters at every input it takes")
    assert_same_forward(network, batch=1)


def assert_same_forward(network: Network, batch: int = 2) -> float:
    """Run the exported module (eval, float64) and the executor on the same input and weights;
    the largest absolute difference, checked against the output's scale."""
    weights = random_weights(network, seed=3, dtype="float64")
    x = _random_input(network, (batch, *network.input_shape), 3, np.float64)
    run = execute(network, x, weights=weights, dtype="float64")
    with torch.device("meta"):  # no initialisation: the executor's weights are assigned
        model = torch_module(network).eval()
    model.load_state_dict(state_dict(network, weights), strict=True, assign=True)
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    returned = [layer.path for layer in network.layers if layer.returned]
    got = (out[0] if returned else out).numpy()
    assert got.shape == run.output.shape
    diff = float(np.max(np.abs(got - run.output))) if got.size else 0.0
    assert diff <= 1e-9 * max(1.0, float(np.max(np.abs(run.output)))), diff
    return diff


def network(layers: list[dict[str, Any]], shape: list[int], name: str = "ops") -> Network:
    return load_data({"name": name, "input": shape, "layers": layers})


# Per op family: a few variants each, at small shapes; each case is (input, layers).
OP_CASES: dict[str, tuple[list[int], list[dict[str, Any]]]] = {
    "conv2d groups dilation stride": ([4, 9, 9], [{"name": "c", "op": "conv2d", "out": 6, "kernel": 3, "stride": 2, "padding": 1, "dilation": 2, "groups": 2}]),
    "conv2d same even kernel": ([3, 7, 8], [{"name": "c", "op": "conv2d", "out": 4, "kernel": [4, 2], "padding": "same", "bias": False}]),
    "conv2d same stride 2": ([3, 9, 8], [{"name": "c", "op": "conv2d", "out": 4, "kernel": 3, "stride": 2, "padding": "same"}]),
    "conv2d per-side reflect": ([2, 6, 7], [{"name": "c", "op": "conv2d", "out": 3, "kernel": 3, "padding": [[1, 2], [0, 1]], "padding_mode": "reflect"}]),
    "conv2d circular": ([2, 5, 5], [{"name": "c", "op": "conv2d", "out": 3, "kernel": 3, "padding": 2, "padding_mode": "circular"}]),
    "conv2d same replicate": ([2, 6, 6], [{"name": "c", "op": "conv2d", "out": 3, "kernel": 4, "padding": "same", "padding_mode": "replicate"}]),
    "conv1d and conv3d": ([2, 4, 5, 6], [
        {"name": "c3", "op": "conv3d", "out": 3, "kernel": [2, 3, 3], "padding": [0, 1, 1]},
        {"name": "r", "op": "reshape", "shape": [9, -1]},
        {"name": "c1", "op": "conv1d", "out": 2, "kernel": 5, "stride": 3, "padding": "valid"},
    ]),
    "conv_transpose2d": ([4, 5, 6], [{"name": "t", "op": "conv_transpose2d", "out": 6, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 2}]),
    "conv_transpose1d per-side": ([3, 7], [{"name": "t", "op": "conv_transpose1d", "out": 2, "kernel": 4, "stride": 2, "padding": [[1, 2]], "bias": False}]),
    "conv_transpose3d": ([2, 3, 3, 3], [{"name": "t", "op": "conv_transpose3d", "out": 2, "kernel": 2, "stride": 2}]),
    "linear": ([5, 8], [
        {"name": "a", "op": "linear", "out": 6},
        {"name": "b", "op": "linear", "out": 4, "transposed": True},
        {"name": "c", "op": "linear", "out": 3, "bias": False, "transposed": True},
        {"name": "d", "op": "linear", "out": 2, "bias": False},
    ]),
    "batchnorm": ([3, 4, 5], [
        {"name": "b2", "op": "batchnorm2d", "eps": 0.001, "momentum": 0.01},
        {"name": "f", "op": "flatten", "start_dim": 2},
        {"name": "b1", "op": "batchnorm1d", "affine": False},
        {"name": "r", "op": "reshape", "shape": [3, 2, 2, 5]},
        {"name": "b3", "op": "batchnorm3d", "track_running_stats": False},
    ]),
    "batchnorm1d on features": ([6], [{"name": "b", "op": "batchnorm1d"}]),
    "layer, rms and group norm": ([4, 3, 5], [
        {"name": "ln", "op": "layernorm", "normalized_shape": [3, 5], "eps": 1e-6},
        {"name": "lnb", "op": "layernorm", "bias": False},
        {"name": "lna", "op": "layernorm", "elementwise_affine": False},
        {"name": "rms", "op": "rmsnorm"},
        {"name": "rmshf", "op": "rmsnorm", "eps": 1e-6, "implementation": "hf", "normalized_shape": [3, 5]},
        {"name": "rmsn", "op": "rmsnorm", "elementwise_affine": False},
        {"name": "gn", "op": "groupnorm", "groups": 2},
        {"name": "gna", "op": "groupnorm", "groups": 4, "affine": False, "eps": 0.1},
        {"name": "nz", "op": "normalize", "dim": 2},
    ]),
    "max and avg pool 2d": ([2, 9, 10], [
        {"name": "m", "op": "max_pool2d", "kernel": 3, "stride": 2, "padding": 1, "dilation": [1, 2], "ceil_mode": True},
        {"name": "a", "op": "avg_pool2d", "kernel": 2, "stride": 1, "padding": 1, "count_include_pad": False, "ceil_mode": True},
        {"name": "d", "op": "avg_pool2d", "kernel": 3, "padding": 1, "divisor_override": 2},
    ]),
    "pools with same padding": ([2, 7, 8], [
        {"name": "m", "op": "max_pool2d", "kernel": 2, "stride": 1, "padding": "same"},
        {"name": "a", "op": "avg_pool2d", "kernel": [4, 3], "stride": 1, "padding": "same"},
    ]),
    "pools 1d and 3d": ([2, 6, 7, 8], [
        {"name": "m3", "op": "max_pool3d", "kernel": 2, "ceil_mode": True},
        {"name": "a3", "op": "avg_pool3d", "kernel": [1, 2, 2], "padding": [0, 1, 1]},
        {"name": "l3", "op": "lp_pool3d", "norm_type": 2, "kernel": 2},
        {"name": "f", "op": "flatten", "start_dim": 2},
        {"name": "m1", "op": "max_pool1d", "kernel": 3, "stride": 2, "padding": 1},
        {"name": "a1", "op": "avg_pool1d", "kernel": 2, "ceil_mode": True},
        {"name": "l1", "op": "lp_pool1d", "norm_type": 3, "kernel": 2, "ceil_mode": True},
    ]),
    "lp pool 2d": ([2, 7, 7], [{"name": "l", "op": "lp_pool2d", "norm_type": 2, "kernel": 3, "stride": 2, "ceil_mode": True}]),
    "adaptive and global pools": ([2, 7, 9], [
        {"name": "a", "op": "adaptive_avg_pool2d", "output": [3, None]},
        {"name": "m", "op": "adaptive_max_pool2d", "output": [2, 4]},
        {"name": "u", "op": "unsqueeze", "dim": 2},
        {"name": "a3", "op": "adaptive_avg_pool3d", "output": [1, 2, 3]},
        {"name": "m3", "op": "adaptive_max_pool3d", "output": 1},
        {"name": "g", "op": "global_max_pool", "keepdims": True, "returned": True},
        {"name": "gm", "op": "global_avg_pool", "from": "u"},
    ]),
    "adaptive pools 1d": ([3, 10], [
        {"name": "a", "op": "adaptive_avg_pool1d", "output": 4},
        {"name": "m", "op": "adaptive_max_pool1d", "output": 3},
    ]),
    "merges": ([4, 3, 3], [
        {"name": "p", "op": "global_avg_pool", "keepdims": True},
        {"name": "mul", "op": "mul", "from": ["input", "p"]},
        {"name": "add", "op": "add", "from": ["input", "mul", "input"]},
        {"name": "cat", "op": "concat", "from": ["add", "input"]},
        {"name": "cat2", "op": "concat", "dim": -1, "from": ["cat", "cat"]},
    ]),
    "reshapes": ([2, 3, 4], [
        {"name": "f", "op": "flatten", "start_dim": 2},
        {"name": "r", "op": "reshape", "shape": [-1, 2, 2]},
        {"name": "u", "op": "unsqueeze", "dim": 1},
        {"name": "s", "op": "squeeze"},
        {"name": "s1", "op": "squeeze", "dim": 2},
        {"name": "p", "op": "permute", "dims": [0, 2, 3, 1]},
        {"name": "t", "op": "transpose", "dim0": 1, "dim1": -1},
        {"name": "c", "op": "contiguous"},
        {"name": "i", "op": "identity"},
    ]),
    "dropouts": ([3, 4], [
        {"name": "d", "op": "dropout", "p": 0.3},
        {"name": "di", "op": "dropout", "inplace": True},
        {"name": "s", "op": "stochastic_depth", "p": 0.2},
        {"name": "sb", "op": "stochastic_depth", "p": 0.5, "mode": "batch"},
    ]),
    "channels": ([6, 4, 5], [
        {"name": "sh", "op": "channel_shuffle", "groups": 3},
        {"name": "a", "op": "slice", "end": 3},
        {"name": "b", "op": "slice", "start": 3, "end": 6, "from": "sh"},
        {"name": "w", "op": "slice", "dim": -1, "start": 1, "end": 4, "from": "sh", "returned": True},
        {"name": "cat", "op": "concat", "from": ["b", "a"]},
    ]),
    "pads": ([2, 5, 6], [
        {"name": "c", "op": "pad", "padding": [[1, 0], [2, 3]], "value": 1.5},
        {"name": "r", "op": "pad", "padding": [[2, 1], [1, 2]], "mode": "reflect"},
        {"name": "e", "op": "pad", "padding": [[0, 1], [3, 1]], "mode": "replicate"},
        {"name": "w", "op": "pad", "padding": [[1, 2], [-1, 2]], "mode": "circular"},
        {"name": "k", "op": "pad", "padding": [[1, 1], [-2, -1], [0, 1]]},
    ]),
}


@pytest.mark.parametrize("case", OP_CASES)
def test_op_exports_with_the_executor_forward(case: str) -> None:
    shape, layers = OP_CASES[case]
    net = network(layers, shape)
    model = torch_module(net)
    got = {k: tuple(v.shape) for k, v in [*model.named_parameters(), *model.named_buffers()]}
    assert got == {key(p, k): s for p, arrays in expected_arrays(net).items() for k, (s, _) in arrays.items()}
    assert_same_forward(net)


def test_avg_pool_uneven_padding_left_out_of_the_count_has_no_torch_form() -> None:
    net = network([{"name": "a", "op": "avg_pool2d", "kernel": 2, "stride": 1, "padding": "same", "count_include_pad": False}], [1, 4, 4])
    with pytest.raises(ExportError, match=r"(?s)1 layer has no PyTorch form.*  a: avg_pool2d with uneven padding"):
        torch_source(net)


def test_hostile_names_are_string_literals_and_the_file_runs(tmp_path: Any) -> None:
    """Layer and network names reach the file only as repr'd strings or checked identifiers:
    a name that would close a string and run code, or that is markup, changes nothing."""
    hostile = 'x"); import os; #'
    net = load_data({
        "name": "'''\"\"\"; import os",
        "input": [3, 8, 8],
        "blocks": {'b"""lock': {"layers": [{"name": "[/x]<script>", "op": "conv2d", "out": 3, "kernel": 3, "padding": 1}, {"name": "class", "op": "batchnorm2d"}]}},
        "layers": [
            {"name": hostile, "op": "conv2d", "out": 3, "kernel": 1},
            {"name": "stage", "block": 'b"""lock', "repeat": 2},
            {"name": "0", "op": "add", "from": [hostile, "stage"]},
            {"name": "x", "op": "identity"},
        ],
    })
    namespace: dict[str, Any] = {}
    exec(compile(torch_source(net), "net.py", "exec"), namespace)
    assert "os" not in namespace and namespace["NAME"] == net.name  # the names stayed strings
    model = torch_module(net)
    names = {k for k, _ in model.named_parameters()}
    assert f"{hostile}.weight" in names and "stage.1.[/x]<script>.weight" in names and "stage.0.class.weight" in names
    assert_same_forward(net)


def test_module_attribute_names_are_torchs() -> None:
    """MODULE_ATTRIBUTES holds what add_module refuses among public names, as this torch has them."""
    public = {n for c in (torch.nn.Module(), torch.nn.ModuleDict(), torch.nn.Sequential()) for n in dir(c) if not n.startswith("_")}
    assert MODULE_ATTRIBUTES == public


def test_reserved_layer_name_is_refused() -> None:
    net = network([{"name": "forward", "op": "conv2d", "out": 2, "kernel": 1}], [1, 2, 2])
    with pytest.raises(ExportError, match="'forward' cannot name a PyTorch module"):
        torch_source(net)


def test_returned_layers_and_frozen_layers() -> None:
    net = network([
        {"name": "a", "op": "linear", "out": 4, "frozen": True},
        {"name": "b", "op": "linear", "out": 3, "returned": True},
        {"name": "c", "op": "linear", "out": 2},
    ], [5])
    model = torch_module(net)
    assert [k for k, p in model.named_parameters() if not p.requires_grad] == ["a.weight", "a.bias"]
    out = model(torch.zeros(2, 5))
    assert isinstance(out, tuple) and [tuple(t.shape) for t in out] == [(2, 2), (2, 3)]
    assert_same_forward(net)


def test_tied_linear_uses_its_source_weight() -> None:
    net = network([
        {"name": "enc", "op": "linear", "out": 6, "bias": False},
        {"name": "dec", "op": "linear", "out": 6, "bias": False, "tied_to": "enc"},
    ], [6])
    model = torch_module(net)
    assert [k for k, _ in model.named_parameters()] == ["enc.weight"]
    assert "F.linear(x_enc, self.enc.weight)" in torch_source(net)
    assert_same_forward(net)


def test_symbolic_sizes_ask_for_numbers() -> None:
    net = load_data({"name": "s", "input": [3, "H", "W"], "layers": [{"name": "c", "op": "conv2d", "out": 2, "kernel": 3}]}, symbolic=True)
    with pytest.raises(ExportError, match="give numbers with --input"):
        torch_source(net)


def test_onnx_export_checks_and_keeps_every_initializer() -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from archcalc.bridges.onnx_export import onnx_bytes

    net = network([
        {"name": "conv", "op": "conv2d", "out": 4, "kernel": 3, "padding": 1, "bias": False},
        {"name": "pool", "op": "max_pool2d", "kernel": 2},
        {"name": "flatten", "op": "flatten"},
        {"name": "fc", "op": "linear", "out": 5},
    ], [2, 8, 8])
    model = onnx.load_from_string(onnx_bytes(net))
    onnx.checker.check_model(model)
    # the spec's three arrays, and shape constants of the flatten (int64)
    arrays = {t.name: tuple(t.dims) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    assert arrays == {"conv.weight": (4, 2, 3, 3), "fc.weight": (5, 64), "fc.bias": (5,)}


def test_blocks_get_a_forward_of_their_own_and_hold_their_parameters() -> None:
    """A block read through one output is called by its parent (a `when:` that drops a layer
    makes a second class); a `parameter` inside a block is registered on the block's module."""
    spec = {
        "name": "blocks", "input": [2, 5, 5],
        "blocks": {
            "unit": {"args": {"side": False}, "layers": [
                {"name": "conv", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
                {"name": "scale", "op": "parameter", "shape": [2, 1, 1], "batch_axis": False},
                {"name": "mul", "op": "mul", "from": ["scale", "conv"]},
                {"name": "side", "op": "conv2d", "out": 2, "kernel": 1, "from": "input", "when": "$side"},
                {"name": "add", "op": "add", "from": ["mul", "side"]},
            ]},
        },
        "layers": [
            {"name": "a", "block": "unit"},
            {"name": "b", "block": "unit", "side": True},
            {"name": "c", "block": "unit"},
        ],
    }
    net = load_data(spec)
    source = torch_source(net)
    assert "class Unit(nn.ModuleDict)" in source and "class Unit2(nn.ModuleDict)" in source
    assert "x_a_add = self.a(x)" in source and "x_b_add = self.b(x_a_add)" in source
    assert "x_c_add = self.c(x_b_add)" in source
    assert "self.a.register_parameter('scale'," in source
    assert_same_forward(net)
