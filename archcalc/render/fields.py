"""Receptive fields as JSON (`rf --json`): every layer's field, or one unit's input interval."""

from __future__ import annotations

from typing import Any

from archcalc.analysis import Analysis
from archcalc.figures.receptive_field import field_json, sees_whole_input


def fields_json(analysis: Analysis) -> dict[str, Any]:
    """The network's name and, per layer, its field (receptive_field.field_json) and whether it sees
    the whole input."""
    shape = analysis.network.input_shape
    layers = [
        {"name": r.path, "receptive_field": field_json(r.receptive_field), "sees_whole_input": sees_whole_input(r.receptive_field, shape)}
        for r in analysis.layers
    ]
    return {"name": analysis.network.name, "layers": layers}


def unit_json(path: str, unit: tuple[int, ...], interval: tuple[tuple[int, int] | None, ...]) -> dict[str, Any]:
    """One unit's input interval per spatial axis (first and last index, both included) and its
    size; null on every axis where the unit reads padding only."""
    return {
        "layer": path,
        "unit": list(unit),
        "interval": [None if i is None else list(i) for i in interval],
        "size": [None if i is None else i[1] - i[0] + 1 for i in interval],
    }
