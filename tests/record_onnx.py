"""Record the ONNX graphs PyTorch exports for torchvision models, for tests without torch.

    /tmp/torchenv/bin/python tests/record_onnx.py              # every model in MODELS
    /tmp/torchenv/bin/python tests/record_onnx.py resnet18     # only these

Writes tests/data/onnx/NAME.onnx: torch.onnx.export (the TorchScript exporter, dynamo=False,
opset 20, eval mode with training=PRESERVE so batch norms stay layers rather than being folded
into the convolutions) of torchvision.models.NAME(weights=None) on the zoo spec's input. The
weights are saved as ONNX external data and the data file is deleted: the graph keeps every
initializer's name, type and shape (all an import reads of a weight) in a few hundred kB.
tests/test_import_onnx.py imports these graphs and compares them with the zoo specs.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "onnx"

MODELS = [
    "resnet18", "resnet50", "vgg11", "alexnet", "mobilenet_v2", "mobilenet_v3_small",
    "efficientnet_b0", "densenet121", "squeezenet1_0", "shufflenet_v2_x1_0", "regnet_y_400mf",
    "googlenet", "convnext_tiny", "mnasnet0_5", "resnext50_32x4d", "inception_v3",
]
"""torchvision builders whose export is recorded; each has a spec of the same name in specs/."""

INPUT = {"inception_v3": (3, 299, 299)}
"""Inputs other than (3, 224, 224), as the zoo spec's."""


def record(name: str) -> Path:
    """Export torchvision.models.NAME and save its graph, weights left out."""
    import onnx
    import torch
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()
    path = DATA / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.zeros(1, *INPUT.get(name, (3, 224, 224))),), str(path), dynamo=False,
            opset_version=20, training=torch.onnx.TrainingMode.PRESERVE, input_names=["x"],
        )
    graph = onnx.load(str(path))
    onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{name}.onnx.data", size_threshold=64)
    (DATA / f"{name}.onnx.data").unlink()
    return path


if __name__ == "__main__":
    DATA.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[1:] or MODELS:
        print(name, record(name).stat().st_size, flush=True)
