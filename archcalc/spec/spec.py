"""The spec file's top-level structure (pydantic v2 declarations, archcalc.model). Layer entries are
checked when expanded.

    name: resnet18
    input: [3, 224, 224]            # or {shape: [...], dtype: float32}; batch excluded
    blocks: {NAME: {args: {...}, layers: [...], output: NAME}}
    layers: [ {op: conv2d, out: 64, kernel: 7, ...}, {block: NAME, repeat: 2, ARG: ...}, ... ]
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from archcalc.dtypes import DType
from archcalc.errors import Location, SpecError, quote
from archcalc.model import Field, Model, field_validator, validation_error
from archcalc.ops.base import PositiveInt
from archcalc.spec.source import line_of

if TYPE_CHECKING:
    from pydantic import ValidationError, ValidatorFunctionWrapHandler

ENTRY_KEYS = ("op", "block", "name", "from", "frozen", "repeat", "when", "names", "flat", "inline", "tied_to", "returned", "checkpoint")


def _keep_file_lists(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate layer entries but keep the loader's own containers, which know their lines."""
    handler(value)
    return value


class InputSpec(Model):
    """The network's input: its shape without the batch axis, and its element type."""

    shape: list[PositiveInt | str] = Field(min_length=1)  # a name is a symbol (see `symbols`)
    dtype: DType = "float32"


class BlockDef(Model):
    """A reusable sub-network. `args` maps each argument to its default (null: required);
    `inputs` names the inputs it takes besides `input` (a rotary table every layer reads)."""

    args: dict[str, Any] = {}
    inputs: list[str] = []  # names of the inputs after `input` (a call's `from` lists all of them)
    layers: list[dict[str, Any]] = Field(min_length=1)
    output: str | None = None

    @field_validator("args", mode="before")
    @classmethod
    def _list_means_required(cls, value: Any) -> Any:
        names = isinstance(value, list) and all(isinstance(n, str) for n in value)
        return {name: None for name in value} if names else value

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or "." in name or name == "input" or value.count(name) > 1:
                raise ValueError(f"input name {name!r} must be non-empty, without dots, not 'input', and given once")
        return value

    _layers_keep_lines = field_validator("layers", mode="wrap")(_keep_file_lists)


class Spec(Model):
    """A whole network description."""

    name: str = Field(min_length=1)
    input: InputSpec
    symbols: dict[str, PositiveInt | None] = {}  # named dimensions and widths, with numeric defaults
    ignore: list[str] = []  # design-review rules silenced for this network (`archcalc report`)
    blocks: dict[str, BlockDef] = {}
    layers: list[dict[str, Any]] = Field(min_length=1)
    output: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _bare_shape(cls, value: Any) -> Any:
        return {"shape": value} if isinstance(value, list) else value

    _layers_keep_lines = field_validator("layers", mode="wrap")(_keep_file_lists)


_Located = tuple[tuple[Any, ...], Any]  # (path into the file, one pydantic error)


def _file_path(loc: tuple[Any, ...], data: Any) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """`loc` as keys and indices into the file and, inside a union, (the union's path, branch).

    A union's errors carry the branch's type (`constrained-int`, `list[...]`) in their location;
    such a label is the one part of `loc` that does not index into the data.
    """
    path: list[Any] = []
    branch = None
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(part, int):  # an index, also into a list an expression produced
            in_list = isinstance(data, list) and 0 <= part < len(data)
            data = data[part] if in_list else None
        else:
            branch = branch or (tuple(path), part)
            continue
        path.append(part)
    return tuple(path), branch


def _wrong_type(err: Any) -> bool:
    return bool(err["type"].endswith(("_type", "_parsing")) or err["type"] == "literal_error")


def _best_branch(branches: list[list[_Located]]) -> list[_Located]:
    """The errors of the union branch that got deepest into the value (a list's bad item beats
    "not an integer"); if none got past the type, one merged "should be A or B" error."""
    depth = max(len(path) for found in branches for path, _ in found)
    deepest = [found for found in branches if any(len(path) == depth for path, _ in found)]
    telling = [found for found in deepest if not all(_wrong_type(e) for _, e in found)]
    if telling or len(deepest) == 1:
        return (telling or deepest)[0]
    errors = [e for found in deepest for _, e in found]
    # "Input should be a valid integer, unable to parse..." -> "a valid integer"
    wanted = dict.fromkeys(e["msg"].removeprefix("Input should be ").split(", ")[0] for e in errors)
    path, first = deepest[0][0]
    return [(path, {**first, "msg": "should be " + " or ".join(wanted)})]


def _union_choice(errors: list[Any], data: Any) -> list[_Located]:
    """Pydantic's errors, located in the file, with each failed union reduced to one branch."""
    located = [(*_file_path(tuple(err["loc"]), data), err) for err in errors]
    unions: dict[tuple[Any, ...], dict[Any, list[_Located]]] = {}
    for path, branch, err in located:
        if branch is not None:
            unions.setdefault(branch[0], {}).setdefault(branch[1], []).append((path, err))
    chosen: list[_Located] = []
    for path, branch, err in located:
        if branch is None:
            chosen.append((path, err))
        elif branch[0] in unions:  # the first error of a union reports for all of it
            chosen.extend(_best_branch(list(unions.pop(branch[0]).values())))
    return chosen


def describe_validation_error(
    exc: ValidationError,
    data: Any,
    file: str | None,
    prefix: tuple[Any, ...] = (),
    fields: Collection[str] = (),
) -> SpecError:
    """One SpecError listing every problem pydantic found, at the line of the first one.

    `fields` (the names the model accepts) lets an unknown field suggest the one meant.
    """
    problems = []
    first_line = None
    chosen = _union_choice(exc.errors(), data)
    for path, err in chosen:
        line = line_of(data, prefix + path)
        first_line = first_line or line
        where = ".".join(str(p) for p in path) or "value"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
            near = difflib.get_close_matches(str(path[-1]), list(fields), n=3, cutoff=0.6)
            if near and len(path) == 1:
                message += "; did you mean " + " or ".join(f"'{n}'" for n in near) + "?"
            elif fields and len(path) == 1:
                message += f" (allowed: {', '.join(fields)})"
        elif err["type"] == "missing":
            message = "required field is missing"
        given = err.get("input")
        quiet = err["type"] in ("missing", "extra_forbidden") or isinstance(given, dict)
        shown = "" if quiet else f" (got {quote(given)})"
        at = f" (line {line})" if line and len(chosen) > 1 else ""
        problems.append(f"{where}: {message}{shown}{at}")
    return SpecError("; ".join(problems), location=Location(file, first_line))


def parse_spec(data: Any, file: str | None = None) -> Spec:
    """Validate top-level data as a Spec, turning pydantic's errors into one located SpecError."""
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the single value {quote(data)}"
        raise SpecError(
            f"a spec must be a mapping with 'name', 'input' and 'layers', found {kind}",
            location=Location(file, getattr(data, "line", None)),
        )
    try:
        return Spec.model_validate(data)  # type: ignore[no-any-return]
    except validation_error() as exc:
        raise describe_validation_error(exc, data, file, fields=Spec.model_fields) from None
