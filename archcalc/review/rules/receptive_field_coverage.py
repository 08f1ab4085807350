"""receptive-field-coverage: a warning when the last spatial layer's field (global pooling aside)
is under half the input on some axis; information when it is under the input but at least half
of it (VGG, AlexNet, SqueezeNet, U-Net), or more than 4x the input on some axis."""

from __future__ import annotations

from fractions import Fraction

from archcalc.analysis import Analysis
from archcalc.errors import ArchcalcError
from archcalc.figures.receptive_field import ReceptiveField
from archcalc.ops.base import GLOBAL
from archcalc.review.rules.base import Finding, finding, integers, output_shapes, rule, size

COVERAGE_EXCESS = 4  # a field more than this many times the input is reported
COVERAGE_FLOOR = Fraction(1, 2)  # a field under this share of the input is a warning


@rule(
    "receptive-field-coverage",
    "The last spatial layer's receptive field against the input",
    "Araujo, Norris & Sim, Computing Receptive Fields of Convolutional Neural Networks, Distill "
    "2019 (doi:10.23915/distill.00021); Luo, Li, Urtasun & Zemel, Understanding the Effective "
    "Receptive Field in Deep Convolutional Neural Networks, NIPS 2016 (arXiv:1701.04128); "
    "docs/receptive-fields.md",
    severities=("warning", "info"),
)
def receptive_field_coverage(analysis: Analysis) -> list[Finding]:
    """Warning when the field is under half the input on an axis; info when it is under the input
    but at least half of it, or above 4x the input.

    The last spatial layer is the last whose output keeps the input's axes, global pooling
    (the head) aside; a field that is the whole input already (squeeze-and-excitation's global
    pooling feeds it) covers it, and so do tokens attending to each other after it (ViT's patch
    embedding is its last spatial layer). A field that depends on the unit's position (after a
    transposed convolution, say) is judged by its largest unit."""
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
    if any(network.layer(r.path).op.attends for r in analysis.layers[analysis.layers.index(last) + 1 :]):
        return []  # tokens that attend to every other (ViT after its patch embedding) cover it
    field = last.receptive_field
    sizes, inputs = field.size, analysis.network.input_shape[1:]
    if not integers(*sizes, *inputs):
        return []
    if field.varies:
        where = f"the last spatial layer, {last.path} (whose field depends on the unit's position; its largest unit),"
    else:
        where = f"the last spatial layer, {last.path} (effective stride {size(field.stride)}),"
    if any(r < COVERAGE_FLOOR * n for r, n in zip(sizes, inputs)):
        return [
            finding(
                "receptive-field-coverage",
                "warning",
                [last.path],
                f"{where} sees a field of {size(sizes)} on a {size(inputs)} input, under half of it: "
                "no unit before the head combines the two halves of the image, and an object larger "
                "than half the image is only ever seen in parts (the effective field, Luo et al. "
                "2016, is smaller still); add depth or downsampling before the head (or feed a "
                "smaller input) so the field covers the input",
                f"field {size(sizes)} < half the input {size(inputs)}",
            )
        ]
    if any(r < n for r, n in zip(sizes, inputs)):
        return [
            finding(
                "receptive-field-coverage",
                "info",
                [last.path],
                f"{where} sees a field of {size(sizes)} on a {size(inputs)} input: at least half of "
                "it, not all. A classifier's head (global pooling or fully connected layers) then "
                "combines the whole map; a per-pixel output sees only the field. Usual in VGG-era "
                "classifiers (torchvision's VGG-11 sees 150 of 224, AlexNet 195) and in U-Net; check "
                "the field covers the largest object the task needs seen whole",
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
