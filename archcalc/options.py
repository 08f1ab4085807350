"""Command-line option values, parsed in one place: whole numbers, sizes, shapes, byte budgets.

Digits are ASCII only: `²` passes str.isdigit() but not int(), and `٣` is a digit to int() but
not to most readers. Every number is exact (no float in between) and below arith.MAX_SIZE.
"""

from __future__ import annotations

import re
from typing import Any

import click

from archcalc.arith import MAX_SIZE
from archcalc.errors import OptionError, quote

_WHOLE = re.compile(r"[0-9]+")
_BYTES = re.compile(r"([0-9]+)(?:\.([0-9]+))?\s*([a-zA-Z]*)")
_FACTORS = {
    "": 1, "b": 1,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}
_DIGITS = len(str(MAX_SIZE))  # longer numbers are refused before int() reads them


def whole_number(text: str, what: str, minimum: int = 0) -> int:
    """`text` as an int >= minimum and below MAX_SIZE, or an OptionError naming the option."""
    digits = text.strip()
    if not _WHOLE.fullmatch(digits):
        raise OptionError(f"{what} must be a whole number written with the digits 0-9, got {quote(text)}")
    if len(digits.lstrip("0")) > _DIGITS or int(digits) >= MAX_SIZE:
        raise OptionError(f"{what}: {quote(text)} is beyond what any machine can hold (the limit is 2**1024)")
    value = int(digits)
    if value < minimum:
        raise OptionError(f"{what} must be at least {minimum}, got {value}")
    return value


def size(part: str, what: str, text: str) -> int | str:
    """One size of an option: a whole number >= 1, or a symbol's name (symbolic mode)."""
    part = part.strip()
    if part.isidentifier():
        return part
    if _WHOLE.fullmatch(part) and whole_number(part, what) >= 1:
        return int(part)
    raise OptionError(f"{what} must be positive sizes or symbol names separated by commas, like 3,224,224 or 3,H,W; got {quote(text)}")


def parse_input(text: str | None) -> tuple[int | str, ...] | None:
    """`--input 3,224,224` (or `3,H,W`, naming symbols) as a shape tuple (batch excluded)."""
    if text is None:
        return None
    parts = text.replace("x", ",").split(",") if not any(c.isalpha() and c != "x" for c in text) else text.split(",")
    return tuple(size(part, "--input", text) for part in parts)


def parse_batch(text: str, option: str = "--batch") -> int | str:
    """`--batch 128`, or `--batch B` for a symbolic batch (and so --devices and --tp)."""
    if _WHOLE.fullmatch(text.strip()):
        return whole_number(text, option, 1)
    if text.strip().isidentifier():
        return text.strip()
    what = "the batch" if option == "--batch" else option
    raise OptionError(f"{what} must be a whole number of at least 1 or a symbol name like B, got {quote(text)}")


def usable_budget(budget: int, reserve: int) -> int:
    """The bytes a --fit budget leaves for the model once --reserve is set aside for what archcalc
    does not count (CUDA context, cuDNN workspace, allocator rounding)."""
    if reserve >= budget:
        raise OptionError(f"--reserve {reserve:,} bytes leaves nothing of the --fit budget of {budget:,} bytes: reserve less than the budget")
    return budget - reserve


def parse_bytes(text: str) -> int:
    """`16GiB` -> 17179869184, exactly; binary (KiB, MiB, GiB) and decimal (KB, MB, GB) units, or bytes."""
    match = _BYTES.fullmatch(text.strip())
    unit = match.group(3).lower() if match else ""
    if not match or unit not in _FACTORS:
        raise OptionError(f"cannot read {quote(text)} as a size; write e.g. 16GiB, 512MiB, 8GB or 1000000")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(whole.lstrip("0")) + len(fraction) > _DIGITS:
        raise OptionError(f"{quote(text)} is beyond what any machine can hold (the limit is 2**1024 bytes)")
    factor = _FACTORS[unit]
    value = int(whole) * factor + int(fraction or "0") * factor // 10 ** len(fraction)
    if value >= MAX_SIZE:
        raise OptionError(f"{quote(text)} is beyond what any machine can hold (the limit is 2**1024 bytes)")
    return value


class WholeNumber(click.ParamType):
    """A click option type for whole numbers >= minimum, read by `whole_number`."""

    name = "integer"

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if not isinstance(value, int):
            try:
                value = whole_number(str(value), "the value")
            except OptionError as exc:
                self.fail(exc.message, param, ctx)
        if value < self.minimum:
            self.fail(f"{value} is not in the range x>={self.minimum}", param, ctx)
        return value


class FigureChoice(click.Choice):  # type: ignore[type-arg]
    """The figures that can be written as formulas (`formula`) or swept (`sweep`), read from the
    figure registry when the option is used, so a registered figure is a choice without editing
    the CLI (and the registry is not imported to start the CLI)."""

    def __init__(self, use: str) -> None:
        self.use = use
        self.case_sensitive = True

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        from archcalc.figures.figure import formula_names, sweep_names

        return formula_names() if self.use == "formula" else sweep_names()


def parse_unit(text: str) -> tuple[int, ...]:
    """`--unit 3,7`: one whole-number index per spatial axis."""
    parts = [p.strip() for p in text.split(",")]
    if not all(_WHOLE.fullmatch(p) for p in parts):
        raise OptionError(f"--unit must be whole numbers >= 0 separated by commas, one per spatial axis, like 3,7; got {text!r}")
    return tuple(whole_number(p, "--unit") for p in parts)
