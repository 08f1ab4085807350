"""All ops, registered by spec name: importing this package fills `REGISTRY`."""

from . import activation, channels, conv, dropout, linear, merge, norm, pool, reshape  # noqa: F401
from .base import REGISTRY, Op

__all__ = ["REGISTRY", "Op"]
