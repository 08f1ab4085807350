"""The spec file's top-level structure (pydantic v2). Layer entries are checked when expanded.

    name: resnet18
    input: [3, 224, 224]            # or {shape: [...], dtype: float32}; batch excluded
    blocks: {NAME: {args: {...}, layers: [...], output: NAME}}
    layers: [ {op: conv2d, out: 64, kernel: 7, ...}, {block: NAME, repeat: 2, ARG: ...}, ... ]
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from .dtypes import DType
from .errors import Location, SpecError
from .source import line_of

ENTRY_KEYS = ("op", "block", "name", "from", "frozen", "repeat", "when")


class InputSpec(BaseModel):
    """The network's input: its shape without the batch axis, and its element type."""

    model_config = ConfigDict(extra="forbid")

    shape: list[PositiveInt] = Field(min_length=1)
    dtype: DType = "float32"


class BlockDef(BaseModel):
    """A reusable sub-network. `args` maps each argument to its default (null: required)."""

    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = {}
    layers: list[dict[str, Any]] = Field(min_length=1)
    output: str | None = None

    @field_validator("args", mode="before")
    @classmethod
    def _list_means_required(cls, value: Any) -> Any:
        return {name: None for name in value} if isinstance(value, list) else value


class Spec(BaseModel):
    """A whole network description."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    input: InputSpec
    blocks: dict[str, BlockDef] = {}
    layers: list[dict[str, Any]] = Field(min_length=1)
    output: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _bare_shape(cls, value: Any) -> Any:
        return {"shape": value} if isinstance(value, list) else value


def describe_validation_error(exc: ValidationError, data: Any, file: str | None, prefix: tuple[Any, ...] = ()) -> SpecError:
    """One SpecError listing every problem pydantic found, at the line of the first one."""
    problems = []
    first_line = None
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = line_of(data, prefix + loc)
        first_line = first_line or line
        where = ".".join(str(p) for p in loc) or "value"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        given = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(given, dict) else f" (got {given!r})"
        at = f" (line {line})" if line and len(exc.errors()) > 1 else ""
        problems.append(f"{where}: {message}{shown}{at}")
    return SpecError("; ".join(problems), location=Location(file, first_line))


def parse_spec(data: Any, file: str | None = None) -> Spec:
    """Validate top-level data as a Spec, turning pydantic's errors into one located SpecError."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise SpecError(
            f"a spec must be a mapping with 'name', 'input' and 'layers', found {kind}",
            location=Location(file, getattr(data, "line", None)),
        )
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, data, file) from None
