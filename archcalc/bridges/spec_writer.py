"""An ImportedNetwork as spec text: one flow-mapping line per layer (name, op, from, fields)."""

from __future__ import annotations

from typing import Any

import yaml

from archcalc.bridges.imported import ImportedNetwork


def write_spec(network: ImportedNetwork) -> str:
    """The spec of `network` as YAML, layers flat in execution order. A layer's name is its path
    with `_` for `.` (a spec name has no dots), made unique; values are quoted by yaml.safe_dump."""
    from archcalc.ops import REGISTRY

    names: dict[str, str] = {"input": "input"}
    for layer in network.layers:
        name = base = layer.path.replace(".", "_")
        n = 0
        while name in names.values():
            n += 1
            name = f"{base}_{n}"
        names[layer.path] = name
    shape: list[Any] = list(network.input_shape)
    head: dict[str, Any] = {"name": network.name, "input": {"shape": shape, "dtype": network.input_dtype}}
    if network.symbols:
        head["symbols"] = dict(network.symbols)
    lines = [_flow({key: value})[1:-1] for key, value in head.items()]  # a one-key mapping, unbraced
    lines.append("layers:")
    for layer in network.layers:
        entry: dict[str, Any] = {"name": names[layer.path], "op": layer.op}
        cls = REGISTRY.get(layer.op)
        if cls is None or cls.max_inputs != 0:
            sources = [names[p] for p in layer.inputs]
            entry["from"] = sources[0] if len(sources) == 1 else sources
        entry.update(layer.fields)
        lines.append(f"  - {_flow(entry)}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    """One line of YAML in flow style, every string quoted as safe_dump decides."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30).strip()
