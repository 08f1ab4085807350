"""All ops, registered by spec name: importing this package fills `REGISTRY`."""

from archcalc.ops import (  # noqa: F401
    activation,
    attention,
    cache,
    channels,
    conv,
    dropout,
    embedding,
    linear,
    matmul,
    merge,
    multiscale,
    norm,
    opaque,
    pad,
    pool,
    positions,
    reduce,
    resample,
    reshape,
    roll,
    rotary,
    shifted_windows,
)
from archcalc.ops.base import REGISTRY, Op

__all__ = ["REGISTRY", "Op"]
