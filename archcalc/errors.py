"""One error family for everything the user can get wrong; the CLI prints these and exits 2."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass

QUOTE_LIMIT = 60  # characters of a quoted value a message shows
MESSAGE_LIMIT = 2000  # characters of a whole message: a spec's own text in it is cut in the middle

_quoting = reprlib.Repr()
_quoting.maxstring = _quoting.maxother = _quoting.maxlong = QUOTE_LIMIT
_quoting.maxlist = _quoting.maxtuple = _quoting.maxdict = _quoting.maxset = 6


def quote(value: object) -> str:
    """A value as a message quotes it: its repr, cut to about QUOTE_LIMIT characters (reprlib, so
    even building it costs no more), with the full length stated when a string was cut."""
    if isinstance(value, int) and value.bit_length() > 4 * QUOTE_LIMIT:  # repr of a huge int is slow or refused
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    shown = _quoting.repr(value)
    if isinstance(value, str) and len(value) > QUOTE_LIMIT:
        shown += f" ({len(value):,} characters)"
    return shown


def _bounded(text: str) -> str:
    """At most MESSAGE_LIMIT characters: the start and the end of a longer message."""
    if len(text) <= MESSAGE_LIMIT:
        return text
    head, tail = text[: MESSAGE_LIMIT * 3 // 4], text[-MESSAGE_LIMIT // 4 :]
    return f"{head} ... ({len(text) - len(head) - len(tail):,} characters left out) ... {tail}"


@dataclass(frozen=True)
class Location:
    """Where in the user's files something stands: file, 1-based line (when the loader knows it)."""

    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file is None:
            return f"line {self.line}" if self.line else ""
        return f"{self.file}:{self.line}" if self.line else self.file


class ArchcalcError(Exception):
    """A problem with the user's input, reported as `file:line layer 'path': what is wrong`."""

    def __init__(
        self, message: str, *, location: Location | None = None, layer: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.layer = layer

    def located(self, location: Location | None = None, layer: str | None = None) -> ArchcalcError:
        """The same error with a location or layer filled in where it had none."""
        return type(self)(
            self.message, location=self.location or location, layer=self.layer or layer
        )

    def __str__(self) -> str:
        where = str(self.location) if self.location else ""
        if self.layer:
            where = f"{where} layer '{_bounded(self.layer)}'".strip()
        return _bounded(f"{where}: {self.message}" if where else self.message)


class SpecError(ArchcalcError):
    """The spec file is malformed, or names something that does not exist."""


class ShapeError(ArchcalcError):
    """A layer cannot accept the shape that reaches it."""


class OptionError(ArchcalcError):
    """A command-line option has a value archcalc cannot use."""


class BridgeError(ArchcalcError):
    """A foreign model (PyTorch, ONNX) cannot be imported, or a spec cannot be written for it."""
