"""Several analysed networks side by side: one row per figure, the best value and ratios to the first.

Costs (parameters, FLOPs, memory) are better when lower; the receptive field, the layer counts and
the shapes describe a network without ranking it. Ratios are to the first network given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from archcalc.analysis import Analysis, _plain
from archcalc.errors import OptionError, SpecError
from archcalc.figures.figure import Total, Unit, compared
from archcalc.figures.memory import MemoryOptions, options_json
from archcalc.ops.base import AttentionKernel
from archcalc.spec.graph import Network


@dataclass(frozen=True)
class Metric:
    """One figure for every network; `kind` (its unit) says how to show it, `better` how to rank it."""

    key: str
    label: str
    kind: Unit
    better: Literal["lower", "higher"] | None
    values: tuple[Any, ...]

    @property
    def best(self) -> tuple[int, ...]:
        """Indices of the networks with the best value (ties share it); none when unranked."""
        numbers = [_scalar(v) for v in self.values]
        if self.better is None or any(n is None for n in numbers) or len(set(numbers)) == 1:
            return ()
        target = min(numbers) if self.better == "lower" else max(numbers)  # type: ignore[type-var]
        return tuple(i for i, n in enumerate(numbers) if n == target)

    def ratio(self, index: int) -> float | None:
        """This network's value over the first network's, where both are plain numbers."""
        first, value = _scalar(self.values[0]), _scalar(self.values[index])
        if self.kind == "shape" or first is None or value is None or first == 0:
            return None
        try:
            return value / first
        except OverflowError:  # the one float in a comparison: refused where it cannot exist
            raise OptionError(
                f"{self.label}: the ratio of {len(str(value))}-digit to {len(str(first))}-digit figures is beyond a float (and what any "
                "machine can hold); compare networks of sizes a machine can hold"
            ) from None


@dataclass(frozen=True)
class Comparison:
    names: tuple[str, ...]
    files: tuple[str | None, ...]
    options: MemoryOptions
    metrics: tuple[Metric, ...]
    attention: AttentionKernel | None = None
    """The attention kernel the saved bytes assume, when some network attends (Memory.attention)."""


def _scalar(value: Any) -> int | None:
    """A number to rank by: an int, or a field's size when every axis agrees; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, tuple) and value and len(set(value)) == 1 and isinstance(value[0], int):
        return value[0]
    return None


def _better(total: Total) -> Literal["lower", "higher"] | None:
    if total.lower_is_better is None:
        return None
    return "lower" if total.lower_is_better else "higher"


def check_names(networks: Sequence[Network]) -> None:
    """SpecError when two networks share a name: names label the columns."""
    seen: dict[str, str | None] = {}
    for network in networks:
        name, file = network.name, network.file
        if name in seen:
            where = f"'{file}' is given twice" if file == seen[name] else f"{seen[name]} and {file} both say name: {name}"
            raise SpecError(f"two specs are named '{name}' ({where}); compare needs a distinct `name` in each spec")
        seen[name] = file


def compare(analyses: Sequence[Analysis]) -> Comparison:
    """The comparison rows of networks analysed with the same memory options (batch, dtype, ...)."""
    if len(analyses) < 2:
        raise OptionError(f"compare needs at least two specs, got {len(analyses)}")
    check_names([a.network for a in analyses])
    batch = analyses[0].memory.options.batch
    metrics = tuple(
        Metric(t.key, t.label.format(batch=batch), t.unit, _better(t), tuple(x.total(t.key) for x in analyses))
        for t in compared()
    )
    attention = next((x.memory.attention for x in analyses if x.memory.attention), None)
    return Comparison(
        tuple(x.network.name for x in analyses), tuple(x.network.file for x in analyses), analyses[0].memory.options, metrics,
        attention,
    )


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """Every network's figures and ratios to the first, the memory options, and the best per figure."""
    return {
        **options_json(comparison.options),
        **({"attention": comparison.attention} if comparison.attention else {}),  # only where a network attends
        "reference": comparison.names[0],
        "networks": [
            {
                "name": name,
                "file": file,
                "values": {m.key: _plain(m.values[i]) for m in comparison.metrics},
                "ratios": {m.key: m.ratio(i) for m in comparison.metrics if m.kind != "shape"},
            }
            for i, (name, file) in enumerate(zip(comparison.names, comparison.files))
        ],
        "best": {
            m.key: [comparison.names[i] for i in m.best] for m in comparison.metrics if m.better is not None
        },
    }
