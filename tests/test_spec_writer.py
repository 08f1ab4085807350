"""The spec writer: an imported network (built here by hand or from a zoo network, no torch
needed) written as YAML loads back to the same layer paths, wiring, shapes and figures, with
blocks and `repeat` where the network repeats itself."""

from __future__ import annotations

import pytest
import yaml

from archcalc import api
from archcalc.bridges.imported import ImportedLayer, ImportedNetwork, Unmapped
from archcalc.bridges.spec_writer import spec_data, write_spec
from archcalc.errors import BridgeError
from archcalc.spec.graph import Network

FIGURES = ("params", "trainable_params", "buffers", "macs", "elementwise_flops", "inference_peak", "training_memory")


def imported(network: Network) -> ImportedNetwork:
    """A loaded network as an importer would hand it over: paths, op names, all field values."""
    layers = [ImportedLayer(l.path, type(l.op).kind, l.op.model_dump(), l.inputs, l.path) for l in network.layers]
    return ImportedNetwork(network.name, tuple(network.input_shape), network.dtype, layers)


def figures(network: Network) -> dict[str, object]:
    analysis = api.analyze(network)
    return {name: getattr(analysis.totals, name) for name in FIGURES}


@pytest.mark.parametrize("name", [
    "resnet18", "resnet50", "densenet121", "vgg11_bn", "mobilenet_v3_small", "efficientnet_b0", "googlenet",
    "inception_v3", "regnet_x_400mf", "shufflenet_v2_x0_5", "squeezenet1_1", "lraspp_mobilenet_v3_large",
    "r3d_18", "vit_b_32", "llama_decoder", "unet",
])
def test_zoo_network_written_and_loaded_back_is_the_same(name: str) -> None:
    network = api.load(name)
    back = api.loads(write_spec(imported(network)))
    assert [l.path for l in back.layers] == [l.path for l in network.layers]
    assert {l.path: l.inputs for l in back.layers} == {l.path: l.inputs for l in network.layers}
    assert {l.path: l.op for l in back.layers} == {l.path: l.op for l in network.layers}
    assert figures(back) == figures(network)


def test_resnet50_reads_like_the_zoo_spec() -> None:
    """One bottleneck block, a projection block called `when` the copy needs it, and each
    stage one `repeat` entry: not 175 flat lines."""
    data = spec_data(imported(api.load("resnet50")), {"layer1.0": "torchvision.models.resnet.Bottleneck"} | {
        f"layer{s}.{i}": "torchvision.models.resnet.Bottleneck" for s, n in ((1, 3), (2, 4), (3, 6), (4, 3)) for i in range(n)})
    stages = [e for e in data["layers"] if e.get("block") == "bottleneck"]
    assert [(e["name"], e["repeat"]) for e in stages] == [("layer1", 3), ("layer2", 4), ("layer3", 6), ("layer4", 3)]
    assert stages[1]["stride"] == "2 if $i == 0 else 1"
    # the projection's width is the third convolution's wherever a copy has a projection
    assert data["blocks"]["bottleneck"]["args"] == {"out": None, "stride": None, "conv3_out": None, "has_downsample": None}
    downsample = next(e for e in data["blocks"]["bottleneck"]["layers"] if e["name"] == "downsample")
    assert downsample == {"name": "downsample", "block": "downsample_block", "out": "$conv3_out", "stride": "$stride",
                          "when": "$has_downsample", "from": "input"}
    assert stages[0]["has_downsample"] == "$i == 0"
    assert len(write_spec(imported(api.load("resnet50"))).splitlines()) < 45


def hand_made(path: str = "stem", kind: str = "conv2d") -> ImportedNetwork:
    return ImportedNetwork("tiny", (3, 8, 8), "float32", [
        ImportedLayer(path, kind, {"out": 4, "kernel": 3, "padding": 1}, ("input",), "conv2d"),
        ImportedLayer("head.pool", "adaptive_avg_pool2d", {"output": 1}, (path,), "adaptive_avg_pool2d"),
        ImportedLayer("head.flat", "flatten", {}, ("head.pool",), "flatten"),
    ])


def test_a_hand_built_network_is_written_as_flow_mappings() -> None:
    text = write_spec(hand_made())
    assert "  - {name: stem, op: conv2d, out: 4, kernel: 3, padding: 1}\n" in text
    network = api.loads(text)
    assert [l.path for l in network.layers] == ["stem", "head.pool", "head.flat"]
    assert api.analyze(network).output_shape == (4,)


def test_hostile_names_are_quoted_and_refused_when_they_break_paths() -> None:
    """A module name is untrusted text: YAML syntax in it stays a string."""
    text = write_spec(hand_made("a: {b: [1]} #c"))
    assert yaml.safe_load(text)["layers"][0]["name"] == "a: {b: [1]} #c"
    with pytest.raises(BridgeError, match="input"):
        write_spec(hand_made("input"))
    with pytest.raises(BridgeError, match="both a layer and"):
        write_spec(hand_made("head"))


def test_unmapped_operations_are_not_written() -> None:
    network = hand_made()
    broken = ImportedNetwork(network.name, network.input_shape, network.input_dtype, network.layers, [Unmapped("aten.foo", "stem")])
    with pytest.raises(BridgeError, match="no archcalc op"):
        write_spec(broken)
