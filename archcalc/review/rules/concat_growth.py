"""concat-growth (info): chains of at least 3 concatenations, each feeding the next."""

from __future__ import annotations

from archcalc.analysis import Analysis
from archcalc.errors import ArchcalcError
from archcalc.review.rules.base import (
    Chains,
    Finding,
    byte_count,
    common_prefix,
    finding,
    integers,
    output_shapes,
    positions,
    rule,
    size,
)
from archcalc.units import human_bytes

MIN_CONCAT_CHAIN = 3  # concatenations in a row before growth is reported


@rule(
    "concat-growth",
    "Chains of concatenations (dense connectivity): activation memory quadratic in depth",
    "Huang, Liu, van der Maaten & Weinberger, Densely Connected Convolutional Networks, CVPR 2017 "
    "(arXiv:1608.06993); Pleiss et al., Memory-Efficient Implementation of DenseNets, 2017 "
    "(arXiv:1707.06990)",
    severities=("info",),
)
def concat_growth(analysis: Analysis) -> list[Finding]:
    """Concats linked when one's output reaches the next directly (or through element-wise layers
    that keep its shape); groups of at least 3, with the growth and the bytes of their outputs."""
    network = analysis.network
    shapes = output_shapes(analysis)
    rows = {r.path: r for r in analysis.layers}
    concats = {r.path for r in analysis.layers if network.layer(r.path).op.joins_along is not None}
    if len(concats) < MIN_CONCAT_CHAIN:
        return []

    def carried(path: str) -> str:
        """Follow shape-keeping element-wise layers back to the map they pass on."""
        while path in rows and path not in concats:
            layer = network.layer(path)
            if len(layer.inputs) != 1 or shapes[layer.inputs[0]] != shapes[path]:
                break
            try:
                if layer.op.receptive_step([shapes[layer.inputs[0]]]) is not None:
                    break
            except ArchcalcError:
                break
            path = layer.inputs[0]
        return path

    groups = Chains()
    fed_by: dict[str, str] = {}
    depth: dict[str, int] = {}  # the longest chain of concats ending at each
    order = positions(network)
    for c in sorted(concats, key=order.__getitem__):
        groups.find(c)
        depth[c] = 1
        for i in network.layer(c).inputs:
            source = carried(i)
            if source in concats:
                groups.link(source, c)
                fed_by[c] = i
                depth[c] = max(depth[c], depth[source] + 1)
    batch = analysis.memory.options.batch
    found = []
    for members in groups.groups(order):
        if max(depth[c] for c in members) < MIN_CONCAT_CHAIN:
            continue  # concats that feed one more (Inception's nested ones) grow nothing
        joined = network.layer(members[0]).op.joins_along
        assert joined is not None
        out_first = rows[members[0]].output_shape
        axis = joined % (len(out_first) + 1) - 1
        growth = []
        for c in members:
            inputs = network.layer(c).inputs
            chained = fed_by.get(c) or max(inputs, key=lambda i: shapes[i][axis])
            growth.append(rows[c].output_shape[axis] - shapes[chained][axis])
        start = rows[members[0]].output_shape[axis] - growth[0]
        end = rows[members[-1]].output_shape[axis]
        outputs = [rows[c].memory.output for c in members]
        if not integers(*growth, start, end, *outputs, batch):
            continue
        total, final = batch * sum(outputs), batch * outputs[-1]
        each = f"{growth[0]:,}" if len(set(growth)) == 1 else f"{min(growth):,} to {max(growth):,}"
        block = common_prefix(members) or "the network"
        at_batch = "per example" if batch == 1 else f"at batch {batch}"
        found.append(
            finding(
                "concat-growth",
                "info",
                members,
                f"in {block}, {len(members)} chained concatenations each add {each} channels "
                f"({start:,} -> {end:,} at {size(out_first[1:])}): the concatenated maps take "
                f"{byte_count(total)} {at_batch}, growing quadratically with the chain's length, and "
                "training keeps each one for the layer that reads it; sharing one buffer of the final "
                f"map (Pleiss et al.'s memory-efficient implementation) needs {byte_count(final)}",
                f"+{each} channels x {len(members)}; {human_bytes(total)}",
            )
        )
    return found
