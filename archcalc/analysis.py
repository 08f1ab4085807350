"""The whole analysis of a network as frozen data, and its JSON form (the machine contract)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archcalc.arith import Dim, Shape
from archcalc.figures.flops import LayerFlops, flop_counts
from archcalc.figures.memory import LayerMemory, Memory, MemoryOptions, memory
from archcalc.figures.params import ParamCount, parameter_counts
from archcalc.figures.receptive_field import Field, ReceptiveField, receptive_fields
from archcalc.figures.shapes import Constraint, merge_constraints, output_shapes
from archcalc.spec.graph import INPUT, Network


@dataclass(frozen=True)
class LayerResult:
    """What the analysis found for one layer."""

    path: str
    op: str
    inputs: tuple[str, ...]
    output_shape: Shape
    params: ParamCount
    detail: str
    flops: LayerFlops
    receptive_field: Field
    memory: LayerMemory


@dataclass(frozen=True)
class Totals:
    params: Dim
    trainable_params: Dim
    frozen_params: Dim
    buffers: Dim
    macs: Dim
    flops: Dim
    elementwise_flops: Dim


@dataclass(frozen=True)
class Analysis:
    network: Network
    layers: tuple[LayerResult, ...]
    totals: Totals
    memory: Memory
    constraints: tuple[Constraint, ...] = ()  # symbolic: sizes merges need equal, for some inputs only

    @property
    def output_shape(self) -> Shape:
        return next(r.output_shape for r in self.layers if r.path == self.network.output)

    def layer(self, path: str) -> LayerResult:
        """The result of the layer at `path` (e.g. 'layer1.0.conv1'); KeyError if there is none."""
        found = next((r for r in self.layers if r.path == path), None)
        if found is None:
            raise KeyError(path)
        return found


def analyze(network: Network, options: MemoryOptions | None = None) -> Analysis:
    """Shapes, parameters, FLOPs, receptive fields and memory of every layer, with totals."""
    shapes = output_shapes(network)
    counts = parameter_counts(network, shapes)
    flops = flop_counts(network, shapes)
    fields = receptive_fields(network, shapes)
    mem = memory(network, shapes, counts, options or MemoryOptions())
    rows = tuple(
        LayerResult(
            layer.path, layer.op.kind, layer.inputs, shapes[layer.path], counts[layer.path],
            layer.op.describe(), flops[layer.path], fields[layer.path], mem.layers[layer.path],
        )
        for layer in network.layers
    )
    total = sum((c.params for c in counts.values()), 0)
    trainable = sum((c.trainable for c in counts.values()), 0)
    buffers = sum((c.buffers for c in counts.values()), 0)
    macs = sum((f.macs for f in flops.values()), 0)
    elementwise = sum((f.elementwise for f in flops.values()), 0)
    totals = Totals(total, trainable, total - trainable, buffers, macs, 2 * macs, elementwise)
    return Analysis(network, rows, totals, mem, merge_constraints(network, shapes))


def _plain(value: Any) -> Any:
    """JSON-ready numbers: ints stay ints, symbolic expressions become strings."""
    if isinstance(value, (int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return str(value)


def field_json(field: Field) -> dict[str, Any] | None:
    """Araujo's size, jump and effective padding per spatial axis; null where all is seen.

    Where the field depends on the unit's position, `size` is the largest over all units,
    `smallest_size` the smallest, `stride` and `padding` null, and `reason` says why."""
    if not isinstance(field, ReceptiveField):
        return None
    return {
        "size": _plain(field.size),
        "stride": _plain(field.stride),
        "padding": _plain(field.padding),
        "misaligned": field.misaligned,
        "position_dependent": field.position_dependent,
        "smallest_size": _plain(field.smallest),
        "reason": field.varies or None,
    }


def sees_whole_input(field: Field, input_shape: Shape) -> bool:
    """The layer sees all of the input, or its (largest) field covers it on every axis."""
    return field == "global" or (isinstance(field, ReceptiveField) and field.covers(input_shape))


def options_json(o: MemoryOptions) -> dict[str, Any]:
    """The batch, dtype, optimizer and mixed precision that memory figures were priced with."""
    return {"batch": _plain(o.batch), "dtype": o.dtype, "optimizer": o.optimizer, "mixed_precision": o.mixed_precision}


def memory_json(m: Memory) -> dict[str, Any]:
    """Exact byte counts for the batch, dtype and optimizer the analysis was run with."""
    return {
        **options_json(m.options),
        "weights": _plain(m.weights),
        "buffers": _plain(m.buffers),
        "activations_sum": _plain(m.activations_sum),
        "inference_peak": _plain(m.inference_peak),
        "inference_peak_layer": m.peak_layer,
        "training_activations": _plain(m.training_activations),
        "gradients": _plain(m.gradients),
        "optimizer_state": _plain(m.optimizer_state),
        "training_total": _plain(m.training_total),
    }


def to_json(analysis: Analysis) -> dict[str, Any]:
    """The documented JSON object of `archcalc analyze --json` (docs/json.md)."""
    t = analysis.totals
    return {
        "name": analysis.network.name,
        "input": _plain(analysis.network.input_shape),
        "output": _plain(analysis.output_shape),
        "constraints": [
            {"layer": c.layer, "left": _plain(c.left), "right": _plain(c.right)} for c in analysis.constraints
        ],
        "totals": {
            "params": _plain(t.params),
            "trainable_params": _plain(t.trainable_params),
            "frozen_params": _plain(t.frozen_params),
            "buffers": _plain(t.buffers),
            "macs": _plain(t.macs),
            "flops": _plain(t.flops),
            "elementwise_flops": _plain(t.elementwise_flops),
            "memory": memory_json(analysis.memory),
        },
        "layers": [
            {
                "name": r.path,
                "op": r.op,
                "inputs": list(r.inputs),
                "output_shape": _plain(r.output_shape),
                "params": _plain(r.params.params),
                "trainable": not r.params.frozen,
                "buffers": _plain(r.params.buffers),
                "macs": _plain(r.flops.macs),
                "flops": _plain(r.flops.flops),
                "elementwise_flops": _plain(r.flops.elementwise),
                "receptive_field": field_json(r.receptive_field),
                "sees_whole_input": sees_whole_input(r.receptive_field, analysis.network.input_shape),
                "output_bytes": _plain(r.memory.output),
                "saved_for_backward_bytes": _plain(r.memory.saved),
            }
            for r in analysis.layers
        ],
    }


def weighted_layers(analysis: Analysis) -> int:
    """Convolutions and linear layers: the layers that multiply by weights (their MACs are not 0)."""
    return sum(1 for r in analysis.layers if r.flops.macs != 0)


def depth(analysis: Analysis) -> int:
    """Convolutions and linear layers on the longest path from input to output (ResNet-50: 50).

    Projection shortcuts run beside the main path, so they add to `weighted_layers` but not here,
    which is how the papers count depth.
    """
    on_path = {INPUT: 0}
    for r in analysis.layers:
        on_path[r.path] = max(on_path[i] for i in r.inputs) + (1 if r.flops.macs != 0 else 0)
    return on_path[analysis.network.output]


def last_spatial_field(analysis: Analysis) -> tuple[Dim, ...] | None:
    """Receptive-field size of the last layer that still has spatial axes (before global pooling)."""
    spatial = [
        r for r in analysis.layers
        if r.receptive_field is not None and any(not (isinstance(d, int) and d == 1) for d in r.output_shape[1:])
    ]
    field = spatial[-1].receptive_field if spatial else None
    return field.size if isinstance(field, ReceptiveField) else None  # None: the whole input
