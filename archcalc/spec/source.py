"""Reading spec files: YAML or JSON into plain data that remembers the line of every key.

Only plain data is accepted (tags that build Python objects are refused), duplicate keys are an
error, and nesting depth and alias expansion are bounded so a hostile file fails fast. Only
regular files of at most MAX_BYTES are read (a FIFO would block, /dev/zero never ends).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from archcalc.errors import Location, SpecError, quote

MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_BYTES = 1 << 20  # 1 MiB; the largest zoo spec is 8 KB, and YAML parses at about 2.5 MB/s
MAX_BYTES_VARIABLE = "ARCHCALC_MAX_SPEC_BYTES"  # overrides MAX_BYTES


class LineDict(dict[str, Any]):
    """A mapping from the file that knows its own line and the line of each key."""

    line: int | None = None
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence from the file that knows its own line and the line of each item."""

    line: int | None = None
    item_lines: list[int]


class _Lines:
    """Construction into line-aware containers, refusing non-string and duplicate keys."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, OverflowError) as exc:  # e.g. a 5,000-digit integer, month 13
            raise SpecError(
                f"cannot read the value {quote(node.value)}: {exc}",
                location=Location(None, node.start_mark.line + 1),
            ) from None

    def construct_mapping(self, node: Any, deep: bool = False) -> LineDict:
        self.flatten_mapping(node)  # type: ignore[attr-defined]
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise SpecError(
                    f"keys must be strings, found {quote(key)}",
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

    def construct_sequence(self, node: Any, deep: bool = False) -> LineList:
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


class _Loader(_Lines, yaml.SafeLoader):
    """SafeLoader with line-aware containers, a depth limit and a bound on alias expansion."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def _too_deep(self, line: int) -> SpecError:
        return SpecError(
            f"nesting deeper than {MAX_DEPTH} levels; a spec never needs that much",
            location=Location(None, line + 1),
        )

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # PyYAML's signature
        # Refused while scanning: past this point the scanner looks ahead ~1 KiB per bracket.
        if self.flow_level >= MAX_DEPTH:
            raise self._too_deep(self.line)
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._too_deep(self.peek_event().start_mark.line)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _CLoader(_Lines, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same construction over libyaml's parser, which composes the nodes in C (10x faster)."""


for _loader in (_Loader, _CLoader):
    _loader.add_constructor("tag:yaml.org,2002:map", _loader.construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:seq", _loader.construct_sequence)

_NOT_PLAIN = re.compile(r"[^\n\x20-\x7e]|^ {256}", re.MULTILINE)  # beyond printable ASCII, deep indents
_BRACKETS = re.compile(r"[\[\]{}]")


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


def _depth(node: Any, memo: dict[int, int]) -> int:
    """How deeply the document's nodes nest (an alias counted as its anchor's node)."""
    key = id(node)
    if key not in memo:
        memo[key] = MAX_DEPTH + 1  # a node inside itself is refused
        children: list[Any] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        memo[key] = 1 + max((_depth(c, memo) for c in children), default=0)
    return memo[key]


def _parse_plain(text: str) -> Any:
    """The data of plain text (printable ASCII, brackets and indents nested within the limits)
    parsed by libyaml, or None: then the pure-Python loader parses it and words any error."""
    if not yaml.__with_libyaml__ or _NOT_PLAIN.search(text):
        return None
    depth = deepest = 0
    for bracket in _BRACKETS.findall(text):  # brackets in strings only make this larger
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest >= MAX_DEPTH:
        return None
    loader = _CLoader(text)
    try:
        node = loader.get_single_node()
        if node is None or _depth(node, {}) > MAX_DEPTH or _expanded_size(node, {}) > MAX_NODES:
            return None
        return loader.construct_document(node)
    except Exception:  # noqa: BLE001 - any problem is described by the pure-Python loader
        return None
    finally:
        loader.dispose()


def _check_json(text: str, file: str | None) -> str:
    """`text` if it is valid JSON, made ready for the YAML loader (which knows lines), or an error.

    A .json file is held to JSON's grammar (YAML would accept a trailing comma). JSON allows tabs
    where YAML wants spaces, and valid JSON has no raw tab inside a string: they become spaces.
    """
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        found, before = exc.doc[exc.pos : exc.pos + 1], exc.doc[: exc.pos].rstrip()[-1:]
        trailing = found in ("]", "}") and before == ","
        hint = f" (a trailing comma before '{found}'?)" if trailing else ""
        raise SpecError(
            f"not valid JSON: {exc.msg} at column {exc.colno}{hint}",
            location=Location(file, exc.lineno),
        ) from None
    except RecursionError:
        raise SpecError(
            f"nesting deeper than {MAX_DEPTH} levels; a spec never needs that much",
            location=Location(file),
        ) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise SpecError(f"not valid JSON: {exc}", location=Location(file)) from None
    return text.replace("\t", " ")


def parse_text(text: str, file: str | None = None) -> Any:
    """Plain data (LineDict/LineList/scalars) from YAML or JSON text, or a SpecError.

    A file named *.json must be valid JSON; any other name is read as YAML (JSON is YAML too),
    except that text with tabs which is valid JSON (standard input has no suffix to say so) is
    read as JSON, whose indentation may be tabs where YAML's may not.
    """
    if file is not None and file.lower().endswith(".json") and text.strip():
        text = _check_json(text, file)
    elif "\t" in text and text.lstrip()[:1] in ("{", "["):
        try:
            text = _check_json(text, file)
        except SpecError:
            pass  # not JSON: YAML's own message follows
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise SpecError("the file holds a NUL byte: a spec is text", location=Location(file, line))
    data = _parse_plain(text)
    if data is not None:
        return data
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters as it starts
        raise SpecError(f"not valid YAML/JSON: {str(exc).splitlines()[0]}", location=Location(file)) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError("the file is empty; a spec needs 'name', 'input' and 'layers'")
        if _expanded_size(node, {}) > MAX_NODES:
            raise SpecError(
                f"the document expands to more than {MAX_NODES:,} values "
                "(aliases referring to aliases?); refusing to load it",
                location=Location(file, node.start_mark.line + 1),
            )
        return loader.construct_document(node)
    except SpecError as exc:
        line = exc.location.line if exc.location else None
        raise SpecError(exc.message, location=Location(file, line)) from None
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        why = " (specs hold plain data; tags that build objects are refused)"
        raise SpecError(
            f"{exc.problem}{why if 'tag' in str(exc.problem) else ''}",
            location=Location(file, line),
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = ": ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(f"not valid YAML/JSON: {what}", location=Location(file, line)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML/JSON: {exc}", location=Location(file)) from None
    finally:
        loader.dispose()


def limit(variable: str, default: int) -> int:
    """A limit on untrusted input: `default`, or the whole number in the environment variable."""
    given = os.environ.get(variable, "").strip()
    if not given:
        return default
    if not given.isascii() or not given.isdigit() or len(given) > 20:
        raise SpecError(f"${variable} must be a whole number, got {given[:40]!r}")
    return int(given)


def read_text(path: Path) -> str:
    """The text of a regular file of at most max_bytes(), checked before a byte is parsed."""
    most = limit(MAX_BYTES_VARIABLE, MAX_BYTES)
    try:  # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SpecError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise SpecError(f"{path} is a directory, not a spec file") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise SpecError(f"{path} is a directory, not a spec file")
        if not stat.S_ISREG(mode):
            raise SpecError(f"{path} is not a regular file (a device, FIFO or socket); a spec is a file")
        data = file.read(most + 1)
    return _decoded(data, str(path), most)


def _decoded(data: bytes, name: str, most: int) -> str:
    """`data` as UTF-8 text, or a SpecError when it passes `most` bytes or is not UTF-8."""
    if len(data) > most:
        raise SpecError(
            f"{name} is larger than {most:,} bytes, the limit for a spec; "
            f"raise it with {MAX_BYTES_VARIABLE}=BYTES if the {'text' if name.startswith('<') else 'file'} is meant to be this large"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"cannot read {name}: not UTF-8 text (byte {exc.start:,})") from None


def read_stream(stream: BinaryIO, name: str = "<stdin>") -> str:
    """The text of a stream (standard input), read only up to the limit for a file plus a byte."""
    most = limit(MAX_BYTES_VARIABLE, MAX_BYTES)
    return _decoded(stream.read(most + 1), name, most)


def check_text(text: str, name: str) -> str:
    """Spec text given as a string, held to the size limit of a file (its UTF-8 bytes)."""
    most = limit(MAX_BYTES_VARIABLE, MAX_BYTES)
    if len(text) > most or len(text.encode("utf-8", "surrogatepass")) > most:
        raise SpecError(
            f"{name} is larger than {most:,} bytes, the limit for a spec; "
            f"raise it with {MAX_BYTES_VARIABLE}=BYTES if the text is meant to be this large"
        )
    return text


def read_file(path: str | Path) -> Any:
    """Parse a spec file; missing, unreadable, special or oversized files are a SpecError."""
    path = Path(path)
    return parse_text(read_text(path), str(path))


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
