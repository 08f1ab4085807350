"""Sizes for people: bytes in binary units (KiB, MiB, GiB), counts with SI suffixes, exactly."""

from __future__ import annotations

from archcalc.arith import Dim


def _hundredths(value: int, factor: int) -> str:
    """value / factor with two decimals, rounded half to even in exact integer arithmetic
    (a float would overflow past 2**1024 and round inexactly past 2**53)."""
    q, r = divmod(abs(value) * 100, factor)
    if 2 * r > factor or (2 * r == factor and q % 2):
        q += 1
    return f"{'-' if value < 0 else ''}{q // 100}.{q % 100:02d}"


def human_bytes(value: Dim) -> str:
    """Bytes in binary units with two decimals: 1.50 GiB; symbolic values as they are."""
    if not isinstance(value, int):
        return str(value)
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= factor:
            return f"{_hundredths(value, factor)} {unit}"
    return f"{value} B"


def human_count(value: Dim) -> str:
    """Large counts with an SI suffix: 4.09 G, 11.69 M."""
    if not isinstance(value, int):
        return str(value)
    for unit, factor in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(value) >= factor:
            return f"{_hundredths(value, factor)} {unit}"
    return str(value)
