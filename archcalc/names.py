"""Fresh names: a base name made unique among those already taken, by a number after it."""

from __future__ import annotations


def unique(base: str, taken: set[str], separator: str = "_", first: int = 2) -> str:
    """`base` if not in `taken`, else base + separator + the first number from `first` that is
    free; the name returned is added to `taken`."""
    name, n = base, first
    while name in taken:
        name, n = f"{base}{separator}{n}", n + 1
    taken.add(name)
    return name
