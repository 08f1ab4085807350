"""The review's rules, one module each: importing this package fills `RULES` (rules.base), as
importing archcalc.ops fills the op registry. Rules register as they are imported, so the order
below is the order reports list them in."""

# isort: off
from archcalc.review.rules import (  # noqa: F401
    representational_bottleneck,
    large_kernel,
    receptive_field_coverage,
    dropped_pixels,
    dilation_gridding,
    dense_heavy,
    bias_before_batchnorm,
    concat_growth,
    memory_hotspot,
)

# isort: on
from archcalc.review.rules.base import RULES, Finding, Rule, Severity

__all__ = ["RULES", "Finding", "Rule", "Severity"]
