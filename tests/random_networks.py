"""Random small networks written twice: as an archcalc spec (a dict) and as a PyTorch module.

Imported as `from random_networks import ...` by tests/test_torch_random_networks.py and
tests/record_torch.py. A network is drawn from a `random.Random`, so a seed names it (the
recorded set) and hypothesis can drive it (`st.randoms()`). torch is passed in, never imported
here: CI, without torch, only reads the specs back from tests/data/torch_measurements.json.

The torch module is built from the spec's entries with torch's own classes and functions and
measured by torch; archcalc analyses the same entries. Nothing archcalc computes is used here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

DIMS = {1: "1d", 2: "2d", 3: "3d"}

KINDS = ["conv", "conv", "conv_transpose", "max_pool", "avg_pool", "lp_pool", "adaptive",
         "norm", "linear", "interpolate", "add", "concat", "gate"]


@dataclass
class _Draw:
    """What the next entry is drawn against: the rng, the spatial rank, the channels so far."""

    rng: random.Random
    dims: int
    channels: int


def _conv(d: _Draw, name: str) -> dict[str, Any]:
    r = d.rng
    groups = r.choice([g for g in (1, 2, 3) if d.channels % g == 0])
    kernel, dilation = r.randint(1, 3), r.randint(1, 2)
    stride = r.randint(1, 2)
    form = r.choice(["int", "int", "axis", "same", "valid"])
    if form == "same":
        stride = 1  # torch refuses 'same' with a stride
    padding: Any = {
        "int": r.randint(0, 2), "axis": [r.randint(0, 2) for _ in range(d.dims)],
        "same": "same", "valid": "valid",
    }[form]
    modes = ["zeros", "zeros", "reflect", "replicate", "circular"]
    return {
        "name": name, "op": f"conv{DIMS[d.dims]}", "out": groups * r.randint(1, 3),
        "kernel": kernel, "stride": stride, "dilation": dilation, "groups": groups,
        "padding": padding, "bias": r.random() < 0.5, "padding_mode": r.choice(modes),
    }


def _conv_transpose(d: _Draw, name: str) -> dict[str, Any]:
    r = d.rng
    groups = r.choice([g for g in (1, 2) if d.channels % g == 0])
    stride, dilation = r.randint(1, 3), r.randint(1, 2)
    return {
        "name": name, "op": f"conv_transpose{DIMS[d.dims]}", "out": groups * r.randint(1, 3),
        "kernel": r.randint(1, 3), "stride": stride, "dilation": dilation, "groups": groups,
        "padding": r.randint(0, 1), "output_padding": r.randint(0, max(stride, dilation) - 1),
        "bias": r.random() < 0.5,
    }


def _pool(d: _Draw, name: str, kind: str) -> dict[str, Any]:
    r = d.rng
    kernel = r.randint(1, 3)
    entry: dict[str, Any] = {
        "name": name, "op": f"{kind}{DIMS[d.dims]}", "kernel": kernel,
        "stride": r.randint(1, 3), "ceil_mode": r.random() < 0.6,
    }
    if kind == "lp_pool":
        entry["norm_type"] = r.choice([1, 2, 3])
        return entry
    entry["padding"] = r.randint(0, kernel // 2)
    if kind == "max_pool":
        entry["dilation"] = r.randint(1, 2)
    else:
        entry["count_include_pad"] = r.random() < 0.5
    return entry


def _interpolate(d: _Draw, name: str) -> dict[str, Any]:
    """F.interpolate by a size or a factor, in every mode its rank allows."""
    r = d.rng
    linear = {1: ["linear"], 2: ["bilinear", "bicubic"], 3: ["trilinear"]}[d.dims]
    mode = r.choice(["nearest", "nearest-exact", "area", *linear])
    entry: dict[str, Any] = {"name": name, "op": "interpolate", "mode": mode}
    if r.random() < 0.5:
        entry["size"] = [r.randint(1, 12) for _ in range(d.dims)]
    else:
        entry["scale_factor"] = r.choice([0.5, 0.7, 1.5, 2, 3])
    if mode in linear:
        entry["align_corners"] = r.random() < 0.5
    return entry


def _entries(d: _Draw, name: str, source: str) -> list[dict[str, Any]]:
    """One random step: a layer, or a branch from `source` joined back to it."""
    r = d.rng
    kind = r.choice(KINDS)
    if kind == "conv":
        entries = [_conv(d, name)]
    elif kind == "conv_transpose":
        entries = [_conv_transpose(d, name)]
    elif kind in ("max_pool", "avg_pool", "lp_pool"):
        entries = [_pool(d, name, kind)]
    elif kind == "adaptive":
        entries = [{"name": name, "op": f"adaptive_{r.choice(['avg', 'max'])}_pool{DIMS[d.dims]}",
                    "output": [r.randint(1, 5) for _ in range(d.dims)]}]
    elif kind == "interpolate":
        entries = [_interpolate(d, name)]
    elif kind == "linear":  # over the last axis, as nn.Linear
        entries = [{"name": name, "op": "linear", "out": r.randint(1, 6), "bias": r.random() < 0.5}]
    elif kind == "norm":
        entries = [{"name": name, "op": f"batchnorm{DIMS[d.dims]}"},
                   {"name": f"{name}_relu", "op": "relu"}]
    else:
        # a branch keeping the size (odd kernel, padding dilation * (k - 1) / 2), joined to its
        # source by add (same width), concat (any width) or mul (a sigmoid gate of the same shape)
        k, dilation = r.choice([1, 3]), r.randint(1, 2)
        out = r.randint(1, 4) if kind == "concat" else d.channels
        branch = {"name": f"{name}_branch", "op": f"conv{DIMS[d.dims]}", "out": out, "kernel": k,
                  "dilation": dilation, "padding": dilation * (k - 1) // 2, "from": source}
        join = {"add": "add", "concat": "concat", "gate": "mul"}[kind]
        entries = [branch]
        if kind == "gate":
            entries.append({"name": f"{name}_sigmoid", "op": "sigmoid"})
        entries.append({"name": name, "op": join, "from": [source, entries[-1]["name"]]})
    for entry in entries:
        if _has_params(entry) and r.random() < 0.25:
            entry["frozen"] = True
    d.channels = _channels(entries[-1], d.channels + (
        entries[0]["out"] if kind == "concat" else 0))
    return entries


def _has_params(entry: dict[str, Any]) -> bool:
    return entry["op"].startswith(("conv", "batchnorm", "linear"))


def _channels(entry: dict[str, Any], channels: int) -> int:
    return entry["out"] if "out" in entry and entry["op"].startswith("conv") else channels


def random_network(rng: random.Random, name: str = "random") -> dict[str, Any]:
    """A spec of 2 to 5 random steps on a small 1-D, 2-D or 3-D input."""
    dims = rng.randint(1, 3)
    high = {1: 17, 2: 11, 3: 7}[dims]
    channels = rng.randint(1, 4)
    d = _Draw(rng, dims, channels)
    layers: list[dict[str, Any]] = []
    source = "input"
    for step in range(rng.randint(2, 5)):
        layers += _entries(d, f"l{step}", source)
        source = layers[-1]["name"]
    return {"name": name, "input": [channels, *(rng.randint(4, high) for _ in range(dims))],
            "layers": layers}


# --- the same network in PyTorch ------------------------------------------------------------

def _torch_layer(torch: Any, entry: dict[str, Any], shape: tuple[int, ...]) -> Any:
    """The torch.nn module of a spec entry reading a tensor of `shape` (None: a function)."""
    nn = torch.nn
    op: str = entry["op"]
    channels = shape[1]
    if op == "linear":
        return nn.Linear(shape[-1], entry["out"], bias=entry["bias"])
    if op == "interpolate":
        size = entry.get("size")
        return nn.Upsample(size=tuple(size) if size else None,
                           scale_factor=entry.get("scale_factor"), mode=entry["mode"],
                           align_corners=entry.get("align_corners"))
    dims = op[-2:]  # 1d, 2d, 3d: torch.nn spells them Conv1d, MaxPool2d, ...
    if op.startswith("conv_transpose"):
        return getattr(nn, f"ConvTranspose{dims}")(
            channels, entry["out"], entry["kernel"], stride=entry["stride"],
            padding=entry["padding"], output_padding=entry["output_padding"],
            groups=entry["groups"], bias=entry["bias"], dilation=entry["dilation"])
    if op.startswith("conv"):
        padding = entry.get("padding", 0)
        return getattr(nn, f"Conv{dims}")(
            channels, entry["out"], entry["kernel"], stride=entry.get("stride", 1),
            padding=tuple(padding) if isinstance(padding, list) else padding,
            dilation=entry.get("dilation", 1), groups=entry.get("groups", 1),
            bias=entry.get("bias", True), padding_mode=entry.get("padding_mode", "zeros"))
    if op.startswith("max_pool"):
        return getattr(nn, f"MaxPool{dims}")(
            entry["kernel"], entry["stride"], entry["padding"], entry["dilation"],
            ceil_mode=entry["ceil_mode"])
    if op.startswith("avg_pool"):
        return getattr(nn, f"AvgPool{dims}")(
            entry["kernel"], entry["stride"], entry["padding"], ceil_mode=entry["ceil_mode"],
            count_include_pad=entry["count_include_pad"])
    if op.startswith("lp_pool"):
        return getattr(nn, f"LPPool{dims}")(
            entry["norm_type"], entry["kernel"], entry["stride"], ceil_mode=entry["ceil_mode"])
    if op.startswith("adaptive_avg_pool"):
        return getattr(nn, f"AdaptiveAvgPool{dims}")(tuple(entry["output"]))
    if op.startswith("adaptive_max_pool"):
        return getattr(nn, f"AdaptiveMaxPool{dims}")(tuple(entry["output"]))
    if op.startswith("batchnorm"):
        return getattr(nn, f"BatchNorm{dims}")(channels)
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[op]() if op in ("relu", "sigmoid") else None


def torch_module(torch: Any, spec: dict[str, Any]) -> Any:
    """The spec as a torch.nn.Module whose submodules are named as the spec's layers."""
    nn = torch.nn
    functions = {
        "add": lambda xs: xs[0] + xs[1],
        "mul": lambda xs: xs[0] * xs[1],
        "concat": lambda xs: torch.cat(xs, dim=1),
    }

    class RandomNetwork(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            # each layer is built for what reaches it: run on zeros while building
            values = {"input": torch.zeros(2, *spec["input"])}
            self.steps: list[tuple[str, list[str]]] = []
            self.kinds = {e["name"]: e["op"] for e in spec["layers"]}
            previous = "input"
            for entry in spec["layers"]:
                sources = entry.get("from", previous)
                sources = sources if isinstance(sources, list) else [sources]
                name = entry["name"]
                inputs = [values[s] for s in sources]
                layer = _torch_layer(torch, entry, tuple(inputs[0].shape))
                if layer is not None:
                    self.add_module(name, layer)
                    for p in layer.parameters():
                        p.requires_grad_(not entry.get("frozen", False))
                with torch.no_grad():
                    values[name] = (layer.eval()(inputs[0]) if layer is not None
                                    else functions[entry["op"]](inputs))
                self.steps.append((name, sources))
                previous = name
            self.train()

        def forward(self, x: Any) -> Any:
            values = {"input": x}
            for name, sources in self.steps:
                inputs = [values[s] for s in sources]
                module = getattr(self, name, None)
                values[name] = (module(inputs[0]) if module is not None
                                else functions[self.kinds[name]](inputs))
            return values[self.steps[-1][0]]

    return RandomNetwork()
