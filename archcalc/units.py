"""Byte sizes for people: parsing budgets like `16GiB` and printing binary units (KiB, MiB, GiB)."""

from __future__ import annotations

import re

from .arith import Dim
from .errors import OptionError, quote

_FACTORS = {
    "": 1, "b": 1,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}


def parse_bytes(text: str) -> int:
    """`16GiB` -> 17179869184; binary (KiB, MiB, GiB) and decimal (KB, MB, GB) units, or bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _FACTORS:
        raise OptionError(f"cannot read {quote(text)} as a size; write e.g. 16GiB, 512MiB, 8GB or 1000000")
    return int(float(match.group(1)) * _FACTORS[unit])


def human_bytes(value: Dim) -> str:
    """Bytes in binary units with two decimals: 1.50 GiB; symbolic values as they are."""
    if not isinstance(value, int):
        return str(value)
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{value} B"


def human_count(value: Dim) -> str:
    """Large counts with an SI suffix: 4.09 G, 11.69 M."""
    if not isinstance(value, int):
        return str(value)
    for unit, factor in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}"
    return str(value)
