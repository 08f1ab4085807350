"""All ops, registered by spec name: importing this package fills `REGISTRY`."""

from . import (  # noqa: F401
    activation,
    channels,
    conv,
    dropout,
    linear,
    merge,
    norm,
    pool,
    resample,
    reshape,
)
from .base import REGISTRY, Op

__all__ = ["REGISTRY", "Op"]
