"""archcalc: exact shapes, parameters, FLOPs, receptive fields and memory of a network spec.

    import archcalc
    net = archcalc.load("resnet50")           # a zoo name, a path, or a dict (loads: YAML text)
    a = archcalc.analyze(net, batch=128)      # frozen results: a.totals.params, a.layers[...]

Importing the package costs nothing measurable (the command line imports it first): everything
but the error classes loads on first use, through the module-level __getattr__ (PEP 562).
See docs/api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archcalc.errors import ArchcalcError, OptionError, ShapeError, SpecError

if TYPE_CHECKING:
    from archcalc.analysis import Analysis, LayerResult, Totals
    from archcalc.api import analyze, load, loads
    from archcalc.figures.memory import Memory, MemoryOptions
    from archcalc.spec.graph import Layer, Network

# public name -> the module that defines it, imported when the name is first read
_LAZY = {
    "load": "archcalc.api",
    "loads": "archcalc.api",
    "analyze": "archcalc.api",
    "Analysis": "archcalc.analysis",
    "LayerResult": "archcalc.analysis",
    "Totals": "archcalc.analysis",
    "Memory": "archcalc.figures.memory",
    "MemoryOptions": "archcalc.figures.memory",
    "Network": "archcalc.spec.graph",
    "Layer": "archcalc.spec.graph",
}

__all__ = [
    "Analysis",
    "ArchcalcError",
    "Layer",
    "LayerResult",
    "Memory",
    "MemoryOptions",
    "Network",
    "OptionError",
    "ShapeError",
    "SpecError",
    "Totals",
    "__version__",
    "analyze",
    "load",
    "loads",
]


def __getattr__(name: str) -> Any:
    """The API's functions and result types, and __version__, loaded when first read."""
    if name == "__version__":
        from archcalc.version import version

        value: Any = version()[0]
    elif name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'archcalc' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
