"""memory-hotspot (info): the tensors alive at the inference peak; the top 3 layers by bytes kept
for backward, with their share of the training total."""

from __future__ import annotations

from archcalc.analysis import Analysis
from archcalc.figures.memory import element_bytes, live_storages
from archcalc.review.rules.base import (
    Finding,
    byte_count,
    finding,
    integers,
    listing,
    output_shapes,
    positions,
    rule,
    share,
)
from archcalc.spec.graph import INPUT
from archcalc.units import human_bytes

HOTSPOTS = 3  # layers named as the largest keepers of tensors for backward


def live_at_peak(analysis: Analysis) -> dict[str, int]:
    """Per-example bytes of each storage alive while the inference-peak layer runs, by the layer
    that made it (memory.live_storages: the liveness rule the memory pass uses)."""
    network = analysis.network
    at = network.order.index(analysis.memory.peak_layer)
    sizes = element_bytes(network, analysis.memory.options)
    storages = live_storages(network, output_shapes(analysis), sizes)
    return {t: s.nbytes for t, s in storages.items() if s.born <= at <= s.last_use}


@rule(
    "memory-hotspot",
    "Where the activation memory goes: the inference peak and the largest keepers for training",
    "docs/memory.md#what-each-op-keeps-for-backward (the tensors PyTorch saves per op); "
    "PyTorch documentation, Autograd mechanics, section Saved tensors",
    severities=("info",),
)
def memory_hotspot(analysis: Analysis) -> list[Finding]:
    """The storages that make up the inference peak; the top 3 layers by saved bytes."""
    m = analysis.memory
    batch = m.options.batch
    if not integers(m.inference_peak, m.training_total, m.training_activations, batch):
        return []
    at_batch = "per example" if batch == 1 else f"at batch {batch}"
    order = positions(analysis.network)
    found = []
    live = live_at_peak(analysis)
    if batch * sum(live.values()) == m.inference_peak:
        held = sorted(live.items(), key=lambda t: -t[1])
        items = [f"{'the input' if t == INPUT else t} {human_bytes(batch * b)}" for t, b in held]
        found.append(
            finding(
                "memory-hotspot",
                "info",
                sorted({m.peak_layer, *(t for t in live if t != INPUT)}, key=order.__getitem__),
                f"inference peaks at {byte_count(m.inference_peak)} {at_batch} while {m.peak_layer} runs, "
                f"holding {listing(items)}; it grows with the batch and the input area",
                human_bytes(m.inference_peak),
            )
        )
    kept = sorted(
        (r for r in analysis.layers if integers(r.memory.saved) and r.memory.saved),
        key=lambda r: -r.memory.saved,
    )[:HOTSPOTS]
    if kept and m.training_total:
        items = [
            f"{r.path} {human_bytes(batch * r.memory.saved)} ({share(batch * r.memory.saved, m.training_total)})"
            for r in kept
        ]
        found.append(
            finding(
                "memory-hotspot",
                "info",
                sorted((r.path for r in kept), key=order.__getitem__),
                f"training keeps {byte_count(m.training_activations)} {at_batch} for backward, "
                f"{share(m.training_activations, m.training_total)} of the {human_bytes(m.training_total)} "
                f"training total ({m.options.optimizer}); the largest keepers, with their share of that "
                f"total: {', '.join(items)} (a storage two layers keep counts for each)",
                f"{share(batch * kept[0].memory.saved, m.training_total)} at {kept[0].path}",
            )
        )
    return found
