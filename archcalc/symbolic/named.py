"""A spec's network twice: at numeric sizes, and with its input sizes named, for the commands
that write formulas in those names (formula, solve --valid-inputs)."""

from __future__ import annotations

from typing import Any

from archcalc.spec.graph import Network, load_data

SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def named_input(data: Any, file: str | None, shape: tuple[int | str, ...] | None) -> tuple[Network, Network]:
    """The numeric network of parsed spec `data` (the spec's sizes, or numeric `shape`), and a
    symbolic one: the sizes named in `shape`, or the spec's own names, or L; H, W; D, H, W for the
    spatial axes."""
    named = shape is not None and any(isinstance(d, str) for d in shape)
    numeric = load_data(data, file, input_shape=None if named else shape)
    if named:
        return numeric, load_data(data, file, input_shape=shape, symbolic=True)
    symbolic = load_data(data, file, input_shape=shape, symbolic=True)
    if symbolic.symbolic:  # the spec names its own sizes
        return numeric, symbolic
    names = SPATIAL_NAMES.get(len(numeric.input_shape) - 1, ())
    return numeric, load_data(data, file, input_shape=(numeric.input_shape[0], *names), symbolic=True)


def sizes_at(numeric: Network, named: Network) -> dict[str, int]:
    """Each named input axis' size in the numeric network (the spec's, or --input's)."""
    return {
        s.name: n for s, n in zip(named.input_shape[1:], numeric.input_shape[1:])
        if hasattr(s, "name") and isinstance(n, int)
    }
