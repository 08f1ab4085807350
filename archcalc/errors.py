"""One error family for everything the user can get wrong; the CLI prints these and exits 2."""

from __future__ import annotations

from dataclasses import dataclass


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
            where = f"{where} layer '{self.layer}'".strip()
        return f"{where}: {self.message}" if where else self.message


class SpecError(ArchcalcError):
    """The spec file is malformed, or names something that does not exist."""


class ShapeError(ArchcalcError):
    """A layer cannot accept the shape that reaches it."""


class OptionError(ArchcalcError):
    """A command-line option has a value archcalc cannot use."""
