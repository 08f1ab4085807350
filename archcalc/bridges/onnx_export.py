"""A spec as ONNX: the exported PyTorch module (bridges.torch_export) traced by torch.onnx.export
at the spec's input, batch 1. Needs the optional extra `archcalc[onnx]` (torch, onnx, onnxscript)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from archcalc.errors import OptionError
from archcalc.spec.graph import Network

EXTRA = "pip install 'archcalc[onnx]'"


def onnx_bytes(network: Network) -> bytes:
    """The ONNX model of the network (weights as torch initialises them), as file contents."""
    try:
        import onnx  # noqa: F401  # torch.onnx.export needs it; say so before tracing
        import onnxscript  # noqa: F401
        import torch
    except ImportError as exc:
        raise OptionError(f"--to onnx needs torch, onnx and onnxscript ({exc.name} is missing): {EXTRA}") from None
    from archcalc.bridges.torch_export import torch_module
    from archcalc.dtypes import INTEGER

    model = torch_module(network).eval()  # type: ignore[attr-defined]
    shape = (1, *network.input_shape)
    example = torch.zeros(shape, dtype=getattr(torch, network.dtype)) if network.dtype in INTEGER else torch.randn(shape)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        with contextlib.redirect_stdout(sys.stderr):  # stdout stays the command's own
            torch.onnx.export(model, (example,), path, input_names=["input"], dynamo=True, external_data=False, verbose=False)
        with open(path, "rb") as file:
            return file.read()
