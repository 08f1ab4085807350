"""Reading spec files: YAML or JSON into plain data that remembers the line of every key.

Only plain data is accepted (tags that build Python objects are refused), duplicate keys are an
error, and nesting depth and alias expansion are bounded so a hostile file fails fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import Location, SpecError

MAX_DEPTH = 64
MAX_NODES = 200_000


class LineDict(dict[str, Any]):
    """A mapping from the file that knows its own line and the line of each key."""

    line: int | None = None
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence from the file that knows its own line and the line of each item."""

    line: int | None = None
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader with line-aware containers, a depth limit and a bound on alias expansion."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise SpecError(
                f"nesting deeper than {MAX_DEPTH} levels; a spec never needs that much",
                location=Location(None, mark.line + 1),
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> LineDict:  # type: ignore[override]
        self.flatten_mapping(node)
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise SpecError(
                    f"keys must be strings, found {key!r}",
                    location=Location(None, key_node.start_mark.line + 1),
                )
            if key in result:
                raise SpecError(
                    f"duplicate key '{key}' (first on line {result.key_lines[key]})",
                    location=Location(None, key_node.start_mark.line + 1),
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_sequence(self, node: Any, deep: bool = False) -> LineList:  # type: ignore[override]
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many nodes the document has once every alias is expanded (computed without expanding)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # guards against recursive aliases
        children: list[Any] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        memo[key] = 1 + sum(_expanded_size(c, memo) for c in children)
    return memo[key]


def parse_text(text: str, file: str | None = None) -> Any:
    """Plain data (LineDict/LineList/scalars) from YAML or JSON text, or a SpecError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError("the file is empty; a spec needs at least 'input' and 'layers'")
        if _expanded_size(node, {}) > MAX_NODES:
            raise SpecError(
                f"the document expands to more than {MAX_NODES:,} values "
                "(aliases referring to aliases?); refusing to load it",
                location=Location(file, node.start_mark.line + 1),
            )
        return loader.construct_document(node)
    except SpecError as exc:
        raise SpecError(exc.message, location=Location(file, exc.location.line if exc.location else None)) from None
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise SpecError(
            f"{exc.problem} (specs hold plain data; tags that build objects are refused)",
            location=Location(file, line),
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(f"not valid YAML/JSON: {what}", location=Location(file, line)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML/JSON: {exc}", location=Location(file)) from None
    finally:
        loader.dispose()


def read_file(path: str | Path) -> Any:
    """Parse a spec file; missing or unreadable files are a SpecError naming the path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise SpecError(f"{path} is a directory, not a spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None
    return parse_text(text, str(path))


def line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest element along `loc` (keys and indices) that the file recorded."""
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, LineDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
        line = getattr(node, "line", None) or line
    return line
