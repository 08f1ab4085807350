"""spec -> `archcalc export --to pytorch` -> `archcalc import torch` gives the spec's figures back:
parameters (all and trainable), FLOPs, bytes saved for backward, the inference peak and every
layer's output shape (torch at test time; skipped without torch). Every zoo spec with a PyTorch
form, at its own input: the module is built and traced on the meta device (no weights, no
arithmetic), so size costs nothing; tracing a large graph does not (up to 20 s a spec on a loaded
machine), so the default run takes one spec of each family (its cheapest) and
ARCHCALC_ROUND_TRIP_ALL=1 runs all of them (every one round-trips or is listed in KNOWN)."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from test_torch_export import ZOO, exportable

from archcalc import api
from archcalc.analysis import analyze
from archcalc.spec.graph import Network

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # a shared machine: torch's own thread pool would fight xdist's workers

from archcalc.bridges.spec_writer import write_spec
from archcalc.bridges.torch_export import torch_module
from archcalc.bridges.torch_import import capture, modules, to_network

_IDENTITY = (
    "stochastic depth of p=0 (the first block) runs no operator in torch, as in torchvision, so the "
    "import has no layer for it: equal figures, one identity output shape fewer"
)
_TOKENS = "a token model: the importer lacks aten.embedding, aten.arange and a tensor times a number"
_WINDOWS = "the importer lacks aten.arange, aten.index (relative position tables) and a tensor times a number"
KNOWN: dict[str, str] = {
    **dict.fromkeys(["convnext_base", "convnext_large", "convnext_small", "convnext_tiny"], _IDENTITY),
    **dict.fromkeys(["efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s"], _IDENTITY),
    **dict.fromkeys(["bert_base", "gpt2", "llama_decoder"], _TOKENS),
    **dict.fromkeys(["maxvit_t", "swin3d_b", "swin3d_s", "swin3d_t", "swin_b", "swin_s", "swin_t"], _WINDOWS),
    **dict.fromkeys(["swin_v2_b", "swin_v2_s", "swin_v2_t"], _WINDOWS + ", clamp and div (Swin V2's log-spaced table)"),
    **dict.fromkeys(["mvit_v1_b", "mvit_v2_s"], "the importer lacks aten.unflatten, aten.arange, aten.index and a tensor times a number"),
}
"""Zoo specs that do not round-trip yet, and why (strict xfail: the list shrinks when fixed)."""


FAMILIES = frozenset({
    "alexnet", "bert_base", "convnext_tiny", "deeplabv3_mobilenet_v3_large", "densenet121",
    "efficientnet_b0", "efficientnet_v2_s", "fcn_resnet50", "googlenet", "gpt2", "inception_v3",
    "lenet5", "lraspp_mobilenet_v3_large", "mc3_18", "mnasnet0_5", "mobilenet_v2",
    "mobilenet_v3_small", "neon_cnn2", "neon_fcnn1", "neon_resnet18", "r2plus1d_18",
    "regnet_x_400mf", "regnet_y_400mf", "resnet18", "resnext50_32x4d", "s3d", "shufflenet_v2_x0_5",
    "squeezenet1_1", "swin_t", "unet", "vgg11_bn", "vit_b_32", "wide_resnet50_2",
})
"""One zoo spec per family, the cheapest to trace (the slowest families, MaxViT and MViT, are in
KNOWN and run with ARCHCALC_ROUND_TRIP_ALL=1 only)."""
SELECTED = ZOO if os.environ.get("ARCHCALC_ROUND_TRIP_ALL") else [n for n in ZOO if n in FAMILIES]


def figures(network: Network) -> dict[str, Any]:
    """What a round trip keeps: counts, FLOPs, memory and the multiset of output shapes."""
    analysis = analyze(network)
    totals, memory = analysis.totals, analysis.memory
    return {
        "params": totals.params,
        "trainable": totals.trainable_params,
        "flops": totals.flops,
        "saved for backward": memory.training_activations,
        "inference peak": memory.inference_peak,
        "shapes": Counter(row.output_shape for row in analysis.layers),
    }


def round_trip(network: Network) -> Network:
    """The network exported as a module (in training mode, as archcalc measures), captured by
    torch.export and written back as a spec."""
    with torch.device("meta"):
        model = torch_module(network).train()
        captured = capture(model, tuple(network.input_shape), network.name, network.dtype)
    mapped = to_network(captured)
    assert not mapped.network.unmapped, sorted({u.what for u in mapped.network.unmapped})
    return api.loads(write_spec(mapped.network, modules(captured)), name=f"<round trip of {network.name}>")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN[n])) if n in KNOWN else n for n in SELECTED])
def test_zoo_spec_round_trips_through_export_and_import(name: str) -> None:
    network = exportable(name)
    assert figures(round_trip(network)) == figures(network)
