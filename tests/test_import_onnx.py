"""`archcalc import onnx`: ONNX graphs as specs, with the same figures as the hand-written zoo.

The zoo comparisons import the graphs tests/record_onnx.py recorded from torch.onnx.export of
torchvision models (tests/data/onnx, weights left out) and need the onnx package only; the
live-export tests need torch as well. The small graphs are built here with onnx.helper.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from record_onnx import MODELS

from archcalc import api
from archcalc.analysis import Analysis
from archcalc.bridges.imported import ImportedNetwork, Unmapped
from archcalc.cli import main
from archcalc.errors import BridgeError
from archcalc.ops.base import REGISTRY

RECORDED = Path(__file__).parent / "data" / "onnx"
needs_onnx = pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="needs the onnx package")

ERASED = {"dropout", "stochastic_depth", "identity"}
"""Ops a model in eval mode runs as the identity, which the exporter leaves out of the graph."""


def imported(path: Path | str, **options: Any) -> tuple[ImportedNetwork, Analysis]:
    """The import of an ONNX file, and the analysis of the spec written from it."""
    from archcalc.bridges.onnx_import import onnx_network
    from archcalc.bridges.spec_writer import write_spec

    network = onnx_network(str(path), **options)
    return network, api.analyze(api.loads(write_spec(network)))


def exported_shapes(analysis: Analysis) -> Counter[tuple[Any, ...]]:
    """The zoo's layer output shapes as an export has them: without the layers eval mode erases,
    and without a torch.cat read only by another torch.cat, which the exporter writes as one
    Concat (Inception's cat of the 1x3 and 3x1 branches inside the block's cat)."""
    readers: dict[str, list[str]] = {}
    for row in analysis.layers:
        for source in row.inputs:
            readers.setdefault(source, []).append(row.op)
    return Counter(
        tuple(row.output_shape) for row in analysis.layers
        if row.op not in ERASED and not (row.op == "concat" and readers.get(row.path) == ["concat"])
    )


@needs_onnx
@pytest.mark.parametrize("name", MODELS)
def test_torchvision_export_imports_with_the_zoo_figures(name: str) -> None:
    network, analysis = imported(RECORDED / f"{name}.onnx")
    zoo = api.analyze(api.load(name))
    assert network.input_shape == tuple(zoo.network.input_shape)
    assert analysis.totals.params == zoo.totals.params
    assert analysis.totals.flops == zoo.totals.flops
    assert analysis.output_shape == zoo.output_shape
    assert Counter(tuple(r.output_shape) for r in analysis.layers) == exported_shapes(zoo)


@needs_onnx
def test_layer_paths_are_the_module_paths() -> None:
    network, analysis = imported(RECORDED / "resnet18.onnx")
    zoo = api.analyze(api.load("resnet18"))
    paths = {layer.path: layer for layer in network.layers}
    # torchvision's module paths, as the zoo spec names its layers
    for path in ("conv1", "bn1", "layer1.0.conv1", "layer2.0.downsample.0", "layer2.0.downsample.1", "fc"):
        assert paths[path].op == zoo.layer(path).op
    # functions inside a module are named after the exporter's node: `add` in BasicBlock.forward
    assert paths["layer1.0.add"].op == "add"
    assert paths["layer1.0.add"].inputs == ("layer1.0.bn2", "maxpool")


@needs_onnx
def test_cli_writes_a_spec_that_loads(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["import", "onnx", str(RECORDED / "squeezenet1_0.onnx")])
    assert result.exit_code == 0, result.output
    # torchvision docs: SqueezeNet 1.0 has 1,248,424 parameters
    assert api.analyze(api.loads(result.stdout)).totals.params == 1_248_424
    result = CliRunner().invoke(main, ["import", "onnx", str(RECORDED / "squeezenet1_0.onnx"), "-o", str(tmp_path / "net.yaml")])
    assert result.exit_code == 0 and api.analyze(api.load(tmp_path / "net.yaml")).totals.params == 1_248_424
    # a fixed size --input contradicts is refused
    result = CliRunner().invoke(main, ["import", "onnx", str(RECORDED / "squeezenet1_0.onnx"), "--input", "3,128,128"])
    assert result.exit_code == 2 and "which the ONNX input fixes at 224" in result.stderr


def test_without_onnx_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    from archcalc.bridges.onnx_import import onnx_network

    with pytest.raises(BridgeError, match=r"pip install 'archcalc\[onnx\]'"):
        onnx_network(str(tmp_path / "model.onnx"))
    result = CliRunner().invoke(main, ["import", "onnx", str(tmp_path / "model.onnx")])
    assert result.exit_code == 2
    assert "pip install 'archcalc[onnx]'" in result.stderr


# Small graphs built with onnx.helper


def graph(nodes: list[Any], shape: list[int | str], output: list[int | str] | None, initializers: dict[str, Any] | None = None, opset: int = 20) -> Any:
    """A model of `nodes` reading `x` of `shape` (batch first) and writing `y`."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v, dtype=np.int64 if np.asarray(v).dtype.kind == "i" else np.float32), k) for k, v in (initializers or {}).items()]
    return helper.make_model(
        helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, output)], inits,
        ),
        opset_imports=[helper.make_opsetid("", opset)],
    )


def save(model: Any, tmp_path: Path, name: str = "model.onnx") -> Path:
    import onnx

    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def zeros(*shape: int) -> Any:
    import numpy as np

    return np.zeros(shape, np.float32)


@needs_onnx
def test_a_small_graph_maps_each_node_with_its_fields(tmp_path: Path) -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/features/conv/Conv", kernel_shape=[3, 3], pads=[0, 0, 1, 1], strides=[2, 2]),
        helper.make_node("Clip", ["c", "zero", "six"], ["r"], name="/features/act/Clip"),
        helper.make_node("MaxPool", ["r"], ["p"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("AveragePool", ["p"], ["a"], name="/avg/AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0),
        # the shape arithmetic of x.reshape(x.shape[0], -1): folded, never a layer
        helper.make_node("Shape", ["a"], ["s"], name="/Shape"),
        helper.make_node("Gather", ["s", "i0"], ["n"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["a", "target"], ["f"], name="/Reshape"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="/fc/Gemm", transB=0),
    ]
    inits = {"w": zeros(4, 3, 3, 3), "b": zeros(4), "zero": 0.0, "six": 6.0, "i0": 0, "ax0": [0], "minus1": [-1], "fc_w": zeros(144, 10), "fc_b": zeros(10)}
    network, analysis = imported(save(graph(nodes, [1, 3, 24, 24], [1, 10], inits), tmp_path))
    assert [(layer.path, layer.op, layer.fields) for layer in network.layers] == [
        ("features.conv", "conv2d", {"out": 4, "kernel": 3, "stride": 2, "padding": [[0, 1], [0, 1]]}),
        ("features.act", "relu6", {}),
        ("pool", "max_pool2d", {"kernel": 2, "stride": 2, "ceil_mode": True}),
        ("avg", "avg_pool2d", {"kernel": 3, "stride": 1, "padding": 1, "count_include_pad": False}),
        ("reshape", "reshape", {"shape": [-1]}),
        ("fc", "linear", {"out": 10}),
    ]
    # conv: (24 + 0 + 1 - 3) // 2 + 1 = 12; max pool with ceil: ceil((12 - 2) / 2) + 1 = 6; the
    # average pool (3, stride 1, padding 1) keeps 6; flattened 4 * 6 * 6 = 144
    assert [tuple(r.output_shape) for r in analysis.layers] == [(4, 12, 12), (4, 12, 12), (4, 6, 6), (4, 6, 6), (144,), (10,)]
    # conv 4 * 3 * 3 * 3 + 4 = 112; linear 144 * 10 + 10 = 1,450 (Gemm's [in, out] weight, transB 0)
    assert analysis.totals.params == 112 + 1_450


@needs_onnx
def test_unmapped_nodes_are_listed_and_the_import_stops(tmp_path: Path) -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        helper.make_node("Erf", ["c"], ["e"], name="/block/Erf"),
        helper.make_node("Relu", ["e"], ["r"], name="/block/relu/Relu"),
        helper.make_node("Cos", ["r"], ["y"], name="/head/Cos"),
    ]
    path = save(graph(nodes, [1, 3, 8, 8], [1, 4, 8, 8], {"w": zeros(4, 3, 1, 1)}), tmp_path)
    from archcalc.bridges.onnx_import import onnx_network

    assert onnx_network(str(path)).unmapped == [Unmapped("Erf", "/block/Erf"), Unmapped("Cos", "/head/Cos")]
    result = CliRunner().invoke(main, ["import", "onnx", str(path)])
    assert result.exit_code == 2
    assert "2 ONNX node(s) have no archcalc op" in result.stderr
    assert "Erf at node '/block/Erf'" in result.stderr and "Cos at node '/head/Cos'" in result.stderr


@needs_onnx
def test_opaque_keeps_an_unmapped_node_with_its_traced_shape_and_parameters(tmp_path: Path) -> None:
    if "opaque" not in REGISTRY:
        pytest.skip("the opaque op is not in this build")
    from onnx import helper

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3]),
        helper.make_node("InstanceNormalization", ["c", "scale", "shift"], ["n"], name="/norm/InstanceNormalization"),
        helper.make_node("Relu", ["n"], ["y"], name="/relu/Relu"),
    ]
    path = save(graph(nodes, [1, 3, 8, 8], [1, 4, 6, 6], {"w": zeros(4, 3, 3, 3), "scale": zeros(4), "shift": zeros(4)}), tmp_path)
    network, analysis = imported(path, opaque=True)
    norm = next(layer for layer in network.layers if layer.op == "opaque")
    # scale and shift: 4 + 4 parameters
    assert (norm.path, norm.fields) == ("norm", {"shape": [4, 6, 6], "params": 8, "traced": "ONNX InstanceNormalization"})
    assert analysis.totals.params == 4 * 3 * 3 * 3 + 8
    result = CliRunner().invoke(main, ["import", "onnx", str(path), "--opaque"])
    assert result.exit_code == 0
    assert "FLOPs and saved tensors are unknown" in result.stderr


@needs_onnx
def test_an_initializer_that_disagrees_with_the_op_is_an_error_naming_the_node(tmp_path: Path) -> None:
    from onnx import helper

    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="/stem/Conv", kernel_shape=[3, 3])]
    path = save(graph(nodes, [1, 3, 8, 8], None, {"w": zeros(4, 3, 3, 3), "b": zeros(5)}), tmp_path)
    from archcalc.bridges.onnx_import import onnx_network

    with pytest.raises(BridgeError, match=r"'/stem/Conv'.*initializer 'b' has shape \[5\].*bias \[4\]"):
        onnx_network(str(path))


@needs_onnx
def test_names_from_the_file_are_sanitised(tmp_path: Path) -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/\x1b[2J evil/../input/Relu"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="a: {b}\n- c"),
    ]
    network, analysis = imported(save(graph(nodes, [1, 4], [1, 4]), tmp_path, "we ird.onnx"))
    for layer in network.layers:
        assert all(part and part != "input" and set(part) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") for part in layer.path.lower().split("."))
    assert [r.op for r in analysis.layers] == ["relu", "sigmoid"]


def symbolic_graph(reshape_by_height: bool, shape: list[int | str] = ["N", 3, "H", "W"]) -> Any:
    """x [N, 3, H, W] -> Relu -> Reshape to [N, -1] (a constant) or to [N, 3*H*W] (computed)."""
    from onnx import helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="/relu/Relu")]
    if reshape_by_height:
        nodes += [
            helper.make_node("Shape", ["r"], ["s"], name="/Shape"),
            helper.make_node("Slice", ["s", "one", "four"], ["chw"], name="/Slice"),
            helper.make_node("ReduceProd", ["chw"], ["size"], name="/ReduceProd", keepdims=1),
            helper.make_node("Concat", ["zero", "size"], ["target"], name="/Concat", axis=0),
        ]
    nodes.append(helper.make_node("Reshape", ["r", "target"], ["y"], name="/flat/Reshape"))
    inits = {"one": [1], "four": [4], "zero": [0]} if reshape_by_height else {"target": [0, -1]}
    return graph(nodes, shape, [shape[0], None], inits, opset=17)


@needs_onnx
def test_symbolic_sizes_stay_symbols(tmp_path: Path) -> None:
    network, analysis = imported(save(symbolic_graph(False), tmp_path))
    assert network.input_shape == (3, "H", "W") and network.symbols == {"H": 224, "W": 224}
    assert analysis.output_shape == (3 * 224 * 224,)
    network, _ = imported(save(symbolic_graph(False), tmp_path), input_shape=(3, 32, 64))
    assert network.symbols == {"H": 32, "W": 64}
    network, _ = imported(save(symbolic_graph(False), tmp_path), input_shape=(3, "height", 64))
    assert network.input_shape == (3, "height", "W") and network.symbols == {"height": 224, "W": 64}


@needs_onnx
def test_a_size_computed_from_a_symbolic_size_is_refused(tmp_path: Path) -> None:
    from archcalc.bridges.onnx_import import onnx_network

    with pytest.raises(BridgeError, match=r"'/flat/Reshape'.*depends on the symbolic input sizes \['H', 'W'\]"):
        onnx_network(str(save(symbolic_graph(True), tmp_path)))
    # with fixed sizes the same graph folds its shape arithmetic: no Shape, Slice or Concat layer
    network, _ = imported(save(symbolic_graph(True, [1, 3, 4, 5]), tmp_path))
    assert [(layer.op, layer.fields) for layer in network.layers][-1] == ("reshape", {"shape": [60]})


@pytest.fixture(scope="module")
def resnet18_any_size(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's ResNet-18 exported with a dynamic batch, height and width."""
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    import warnings

    path = tmp_path_factory.mktemp("onnx") / "resnet18_any_size.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            torchvision.models.resnet18(weights=None).eval(), (torch.zeros(1, 3, 64, 64),), str(path),
            dynamo=False, opset_version=20, training=torch.onnx.TrainingMode.PRESERVE, input_names=["x"],
            dynamic_axes={"x": {0: "batch_size", 2: "H", 3: "W"}},
        )
    return path


def test_a_dynamic_height_and_width_import_as_symbols(resnet18_any_size: Path) -> None:
    network, analysis = imported(resnet18_any_size, input_shape=(3, 96, 128))
    assert network.input_shape == (3, "H", "W") and network.symbols == {"H": 96, "W": 128}
    zoo = api.analyze(api.load("resnet18", input_shape=(3, 96, 128)))
    assert (analysis.totals.params, analysis.totals.flops) == (zoo.totals.params, zoo.totals.flops)
    # the symbolic FLOPs, at another size, equal the zoo's there
    from archcalc.bridges.spec_writer import write_spec
    from archcalc.symbolic.symbols import symbol

    symbolic = api.analyze(api.loads(write_spec(network), symbolic=True))
    at = api.analyze(api.load("resnet18", input_shape=(3, 160, 64)))
    assert symbolic.totals.flops.subs({symbol("H"): 160, symbol("W"): 64}) == at.totals.flops


@needs_onnx
def test_gelu_written_with_erf_is_one_gelu_layer(tmp_path: Path) -> None:
    from onnx import helper

    # torch's GELU as the exporter writes it before opset 20: x * 0.5 * (1 + erf(x / sqrt(2))),
    # with the 0.5 applied last
    nodes = [
        helper.make_node("Div", ["x", "sqrt2"], ["d"], name="/act/Div"),
        helper.make_node("Erf", ["d"], ["e"], name="/act/Erf"),
        helper.make_node("Add", ["e", "one"], ["a"], name="/act/Add"),
        helper.make_node("Mul", ["x", "a"], ["m"], name="/act/Mul"),
        helper.make_node("Mul", ["m", "half"], ["y"], name="/act/Mul_1"),
    ]
    network, _ = imported(save(graph(nodes, [1, 8], [1, 8], {"sqrt2": 2**0.5, "one": 1.0, "half": 0.5}, opset=17), tmp_path))
    assert [(layer.path, layer.op, layer.fields) for layer in network.layers] == [("act", "gelu", {})]


@needs_onnx
def test_the_dynamo_exporter_s_name_scopes_name_the_layers(tmp_path: Path) -> None:
    from onnx import helper

    def node(op: str, inputs: list[str], output: str, scopes: list[str], **attrs: Any) -> Any:
        made = helper.make_node(op, inputs, [output], name=f"node_{op}_{output}", **attrs)
        helper.set_metadata_props(made, {"pkg.torch.onnx.name_scopes": repr(scopes)})
        return made

    # as torch.onnx.export(dynamo=True) writes BasicBlock-like code: full module paths per level
    nodes = [
        node("Conv", ["x", "w"], "c", ["", "layer1", "layer1.0", "layer1.0.conv1", "conv2d_4"], kernel_shape=[1, 1]),
        node("Relu", ["c"], "r", ["", "layer1", "layer1.0", "layer1.0.relu", "relu_2"]),
        node("Add", ["r", "x"], "y", ["", "layer1", "layer1.0", "add_1"]),
    ]
    network, _ = imported(save(graph(nodes, [1, 3, 4, 4], [1, 3, 4, 4], {"w": zeros(3, 3, 1, 1)}), tmp_path))
    assert [layer.path for layer in network.layers] == ["layer1.0.conv1", "layer1.0.relu", "layer1.0.add"]


@needs_onnx
def test_shape_arithmetic_that_would_fill_memory_is_refused(tmp_path: Path) -> None:
    import numpy as np
    from onnx import helper

    # two constants of 2**16 elements whose product broadcasts to 2**32: refused before computing
    nodes = [
        helper.make_node("Mul", ["column", "row"], ["huge"], name="/Mul"),
        helper.make_node("Add", ["x", "huge"], ["y"], name="/Add"),
    ]
    model = graph(nodes, [1, 4], [1, 4], {"column": np.zeros((1 << 16, 1)), "row": np.zeros((1, 1 << 16))})
    from archcalc.bridges.onnx_import import onnx_network

    with pytest.raises(BridgeError, match=r"'/Mul'.*beyond the 1,048,576 elements"):
        onnx_network(str(save(model, tmp_path)))


@needs_onnx
def test_token_ids_through_an_embedding_table(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Gather", ["table", "x"], ["e"], name="/embed/Gather"),
        helper.make_node("LayerNormalization", ["e", "scale", "shift"], ["y"], name="/norm/LayerNormalization", epsilon=1e-6),
    ]
    arrays = {"table": np.zeros((100, 16), np.float32), "scale": np.zeros(16, np.float32), "shift": np.zeros(16, np.float32)}
    model = helper.make_model(
        helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", "S"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(v, k) for k, v in arrays.items()],
        ),
        opset_imports=[helper.make_opsetid("", 20)],
    )
    onnx.save(model, str(tmp_path / "tokens.onnx"))
    network, analysis = imported(tmp_path / "tokens.onnx", input_shape=(12,))
    assert (network.input_shape, network.input_dtype, network.symbols) == (("S",), "int64", {"S": 12})
    assert [(layer.op, layer.fields) for layer in network.layers] == [
        ("embedding", {"vocab": 100, "dim": 16}), ("layernorm", {"normalized_shape": 16, "eps": 1e-6}),
    ]
    assert analysis.totals.params == 100 * 16 + 16 + 16  # the table, the norm's scale and shift
    assert analysis.output_shape == (12, 16)
