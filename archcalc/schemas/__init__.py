"""The JSON Schemas (draft 2020-12) of the commands' --json output, shipped as data files here
(COMMAND.json) and documented in docs/json.md."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def output_schemas() -> dict[str, Traversable]:
    """Each shipped schema's file, by the command whose output it describes."""
    found = [p for p in (files("archcalc") / "schemas").iterdir() if p.name.endswith(".json")]
    return {p.name.removesuffix(".json"): p for p in sorted(found, key=lambda p: p.name)}


def output_schema(command: str) -> dict[str, Any]:
    """The JSON Schema of `archcalc COMMAND --json`'s output."""
    return json.loads(output_schemas()[command].read_text(encoding="utf-8"))  # type: ignore[no-any-return]
