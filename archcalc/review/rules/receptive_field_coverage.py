"""receptive-field-coverage: a warning when the last spatial layer's field (global pooling aside)
is smaller than the input on some axis; info when it is more than 4x the input on some axis."""

from __future__ import annotations

from archcalc.analysis import Analysis
from archcalc.errors import ArchcalcError
from archcalc.figures.receptive_field import ReceptiveField
from archcalc.ops.base import GLOBAL
from archcalc.review.rules.base import Finding, finding, integers, output_shapes, rule, size

COVERAGE_EXCESS = 4  # a field more than this many times the input is reported


@rule(
    "receptive-field-coverage",
    "The last spatial layer's receptive field against the input",
    "course deck 003: the last convolutional layers should see a field comparable to the whole "
    "image; Araujo, Norris & Sim 2019, Computing Receptive Fields of CNNs (Distill)",
    severities=("warning", "info"),
)
def receptive_field_coverage(analysis: Analysis) -> list[Finding]:
    """Warning when the field is below the input size on an axis; info above 4x the input.

    The last spatial layer is the last whose output keeps the input's axes, global pooling
    (the head) aside; a field that is the whole input already (squeeze-and-excitation's global
    pooling feeds it) covers it. A field that depends on the unit's position (after a transposed
    convolution, say) is judged by its largest unit."""
    network = analysis.network
    shapes = output_shapes(analysis)
    rank = len(network.input_shape)
    last = None
    for r in reversed(analysis.layers):
        if len(r.output_shape) != rank:
            continue
        try:
            step = network.layer(r.path).op.receptive_step([shapes[i] for i in r.inputs])
        except ArchcalcError:
            return []
        if step != GLOBAL:
            last = r
            break
    if rank < 2 or last is None or not isinstance(last.receptive_field, ReceptiveField):
        return []
    field = last.receptive_field
    sizes, inputs = field.size, analysis.network.input_shape[1:]
    if not integers(*sizes, *inputs):
        return []
    if field.varies:
        where = f"the last spatial layer, {last.path} (whose field depends on the unit's position; its largest unit),"
    else:
        where = f"the last spatial layer, {last.path} (effective stride {size(field.stride)}),"
    if any(r < n for r, n in zip(sizes, inputs)):
        return [
            finding(
                "receptive-field-coverage",
                "warning",
                [last.path],
                f"{where} sees a field of {size(sizes)} on a {size(inputs)} input: no unit before the "
                "head combines the whole image; add depth or downsampling before the head (or feed a "
                "smaller input) so the field covers the input",
                f"field {size(sizes)} < input {size(inputs)}",
            )
        ]
    ratio = max(r / n for r, n in zip(sizes, inputs))
    if ratio <= COVERAGE_EXCESS:
        return []
    return [
        finding(
            "receptive-field-coverage",
            "info",
            [last.path],
            f"{where} sees a field of {size(sizes)} on a {size(inputs)} input ({ratio:.2f}x): its "
            "units' fields reach far past the image into the padding, so the last stages add depth "
            "without adding context; fewer blocks in the last stages, or a larger input, would put "
            "the field to use",
            f"field {ratio:.2f}x the input",
        )
    ]
