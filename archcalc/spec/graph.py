"""Expanding a spec into a networkx DiGraph of concrete layers (blocks and repeats unrolled).

Names resolve within their block instance; `from` may name any entry of the same scope (or
`input`, the scope's input), so a wrong reference can form a cycle, which is reported. An entry
skipped by `when: false` or `repeat: 0` passes its input through under its own name. Layer
paths are torchvision's kind: an unnamed entry takes its container's running number, and
`names`, `flat` and `inline` name a repeat's copies (docs/spec-format.md, "Naming layers").
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from archcalc.arith import Shape
from archcalc.errors import Location, SpecError, quote
from archcalc.model import validation_error
from archcalc.ops import REGISTRY, Op
from archcalc.spec.expr import ExpressionError, evaluate, is_expression, substitute
from archcalc.spec.source import LineDict, limit, read_file
from archcalc.spec.spec import ENTRY_KEYS, BlockDef, Spec, describe_validation_error, parse_spec

if TYPE_CHECKING:
    import networkx as nx

INPUT = "input"
MAX_LAYERS = 20_000  # entries expanded (blocks and skipped ones too); 10,000 layers take about 1 s a command
MAX_LAYERS_VARIABLE = "ARCHCALC_MAX_LAYERS"  # overrides MAX_LAYERS
MAX_NESTING = 32
MAX_PATTERN_CHARS = 200  # a `names` pattern and the names it gives; torchvision's longest child name has 20
MAX_PATTERN_EXPRESSIONS = 8  # {expressions} in one pattern (DenseNet's has one)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Layer:
    """One concrete layer: its hierarchical path, op, input paths, frozen flag and source line."""

    path: str
    op: Op
    inputs: tuple[str, ...]
    frozen: bool
    location: Location
    tied_to: str | None = None  # the layer whose parameters this one uses (tied weights)
    returned: bool = False  # returned beside the network's output (BertModel's pooler_output)


@dataclass(frozen=True)
class Network:
    """An expanded, validated network: its layers by path, the order they run in, and who reads
    each one (networkx's graph is built on demand, so commands that need no graph algorithm start
    without importing it)."""

    name: str
    input_shape: Shape
    dtype: str
    nodes: dict[str, Layer]  # path -> layer, in the order the spec lists them
    readers: dict[str, tuple[str, ...]]  # path (or input) -> the layers reading it, in spec order
    order: tuple[str, ...]
    output: str
    file: str | None = None
    blocks: dict[str, str] = field(default_factory=dict)  # instance path -> block name
    symbols: dict[str, Any] = field(default_factory=dict)  # name -> sympy Symbol, when symbolic
    defaults: dict[str, int] = field(default_factory=dict)  # the spec's numeric values of symbols
    ignore: tuple[str, ...] = ()  # review rules the spec silences
    checkpointed: tuple[str, ...] = ()  # block instances a call marks `checkpoint: true`
    repeated: tuple[str, ...] = ()  # block instances that are copies of a `repeat`

    @property
    def symbolic(self) -> bool:
        return bool(self.symbols)

    @property
    def layers(self) -> list[Layer]:
        """The layers in execution order (the input node excluded)."""
        return list(self._layers)

    @cached_property
    def _layers(self) -> tuple[Layer, ...]:
        """Every pass walks the layers: looked up once (`replace` makes a new network, uncached)."""
        return tuple(self.nodes[p] for p in self.order)

    def layer(self, path: str) -> Layer:
        return self.nodes[path]

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The layer graph as a networkx DiGraph: node `input`, nodes with a `layer`, edges with a `slot`."""
        return _digraph(self.nodes)

    def with_input(self, shape: Shape) -> Network:
        """The same network fed a different input shape (batch excluded)."""
        return replace(self, input_shape=tuple(shape))


@dataclass
class _Numbering:
    """The running index that names a container's unnamed layers, as `nn.Sequential` numbers its
    children: one per entry present (a skipped one takes none), one per copy of a `flat` entry,
    and those an `inline` call's layers take."""

    next: int = 0

    def take(self) -> str:
        self.next += 1
        return str(self.next - 1)


@dataclass
class _Scope:
    """One block instance (or the top level) while it is being expanded."""

    prefix: str
    env: dict[str, Any]
    input_ref: _Ref | None  # None at the top level: the network input
    frozen: bool
    numbering: _Numbering = field(default_factory=_Numbering)  # shared by `inline` calls
    outputs: dict[str, str | _Ref] = field(default_factory=dict)
    lines: dict[str, int | None] = field(default_factory=dict)  # where each name was given


@dataclass(frozen=True)
class _Ref:
    """A name as written in a scope, resolved to a layer path once the whole spec is expanded."""

    scope: _Scope
    name: str
    location: Location
    user: str  # the path of the layer (or entry) that refers to it, for messages


@dataclass
class _Pending:
    path: str
    op: Op
    inputs: list[_Ref | str]
    frozen: bool
    location: Location
    tied_to: str | None = None
    returned: bool = False


class _Expander:
    def __init__(self, spec: Spec, data: Any, file: str | None) -> None:
        self.spec = spec
        self.data = data
        self.file = file
        self.pending: list[_Pending] = []
        self.paths: set[str] = {INPUT}
        self.blocks: dict[str, str] = {}
        self.checkpointed: list[str] = []
        self.repeated: list[str] = []
        self.expanded = 0  # entries expanded so far: layers, block instances and skipped entries
        self.most = limit(MAX_LAYERS_VARIABLE, MAX_LAYERS)
        self.ops: dict[tuple[Any, ...], Op] = {}  # (op class, values) -> the op: repeats share one
        # A block's entries are expanded once per instance: an entry's locations, and its op when
        # no value is an expression, are the same every time (by id: the spec outlives expansion).
        self.locations: dict[tuple[int, str | None], Location] = {}
        self.entry_ops: dict[int, Op] = {}

    def spend(self, entries: int, entry: dict[str, Any], path: str) -> None:
        """Count entries about to be expanded, refusing before the work once past the limit."""
        self.expanded += entries
        if self.expanded > self.most:
            raise SpecError(
                f"the network expands to more than {self.most:,} layers (block instances and "
                f"skipped entries count too); is a 'repeat' too large? ({MAX_LAYERS_VARIABLE}=N raises the limit)",
                location=self.where(entry, "repeat" if "repeat" in entry else None),
                layer=path,
            )

    def where(self, entry: Any, key: str | None = None) -> Location:
        found = self.locations.get((id(entry), key))
        if found is None:
            line = getattr(entry, "line", None)
            if key is not None and isinstance(entry, LineDict):
                line = entry.key_lines.get(key, line)
            found = self.locations[id(entry), key] = Location(self.file, line)
        return found

    def value(self, entry: dict[str, Any], key: str, env: dict[str, Any], path: str) -> Any:
        """An entry value with its expressions evaluated; errors name the key's line."""
        try:
            return substitute(entry[key], env)
        except ExpressionError as exc:
            raise SpecError(str(exc), location=self.where(entry, key), layer=path) from None

    def expand_scope(self, entries: list[Any], scope: _Scope, depth: int) -> str:
        """Expand a list of entries into `scope`; returns the local name of the last entry."""
        previous: str = INPUT
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise SpecError(
                    f"a layer entry must be a mapping like {{op: conv2d, ...}}, found {quote(entry)}",
                    location=Location(self.file, getattr(entries, "item_lines", [None] * (index + 1))[index]),
                    layer=scope.prefix.rstrip(".") or None,
                )
            previous = self.expand_entry(entry, index, previous, scope, depth)
        return previous

    def expand_entry(self, entry: dict[str, Any], index: int, previous: str, scope: _Scope, depth: int) -> str:
        name = entry.get("name", str(index))
        leaf = str(name) if "name" in entry else str(scope.numbering.next)  # in the layer path
        path = scope.prefix + leaf
        if not isinstance(name, (str, int)) or not str(name) or "." in str(name) or str(name) == INPUT:
            raise SpecError(
                f"layer name {quote(name)} must be a non-empty string without dots, and not 'input'",
                location=self.where(entry, "name"),
            )
        name = str(name)
        if name in scope.outputs:
            block = "in this block" if scope.prefix else "at the top level"
            first = f" (first on line {scope.lines[name]})" if scope.lines.get(name) else ""
            raise SpecError(f"the name '{name}' is used twice {block}{first}; names must be unique", location=self.where(entry, "name"), layer=path)
        scope.lines[name] = self.where(entry, "name").line
        has_op, has_block = "op" in entry, "block" in entry
        if has_op == has_block:
            raise SpecError(
                "each entry needs exactly one of 'op' (a layer kind) or 'block' (a block name)",
                location=self.where(entry),
                layer=path,
            )
        for key, what in (("tied_to", "ties one layer's parameters to another's"), ("returned", "marks one layer's output as returned too")):
            if has_block and key in entry:
                raise SpecError(f"'{key}' {what}; put it on the op entry, not a block call", location=self.where(entry, key), layer=path)
        if has_op and "checkpoint" in entry:
            raise SpecError("'checkpoint' recomputes a block call in backward; put it on a block call, not an op entry", location=self.where(entry, "checkpoint"), layer=path)
        env = scope.env
        sources = self.sources(entry, previous, scope, path)
        when = self.value(entry, "when", env, path) if "when" in entry else True
        repeat = self.value(entry, "repeat", env, path) if "repeat" in entry else None
        frozen = self.value(entry, "frozen", env, path) if "frozen" in entry else False
        flat = self.value(entry, "flat", env, path) if "flat" in entry else False
        inline = self.value(entry, "inline", env, path) if "inline" in entry else False
        if not isinstance(when, bool):
            raise SpecError(f"'when' must be true or false, got {quote(when)}", location=self.where(entry, "when"), layer=path)
        if repeat is not None and (isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0):
            raise SpecError(f"'repeat' must be a whole number >= 0, got {quote(repeat)}", location=self.where(entry, "repeat"), layer=path)
        if not isinstance(frozen, bool):
            raise SpecError(f"'frozen' must be true or false, got {quote(frozen)}", location=self.where(entry, "frozen"), layer=path)
        checkpoint = self.value(entry, "checkpoint", env, path) if "checkpoint" in entry else False
        for key, given in (("flat", flat), ("inline", inline), ("checkpoint", checkpoint)):
            if not isinstance(given, bool):
                raise SpecError(f"'{key}' must be true or false, got {quote(given)}", location=self.where(entry, key), layer=path)
        if inline and checkpoint:
            raise SpecError("'checkpoint' needs the block's own path (its inputs are what it keeps); drop 'inline'", location=self.where(entry, "checkpoint"), layer=path)
        if inline and (has_op or flat or "names" in entry):
            why = "an op" if has_op else "'flat' or 'names' (the copies add no level to number or name)"
            raise SpecError(f"'inline' writes a block's layers in place of the call; it does not apply to {why}", location=self.where(entry, "inline"), layer=path)
        frozen = frozen or scope.frozen
        count = 1 if repeat is None else repeat
        self.spend(count if when and count else 1, entry, path)  # a skipped entry costs one
        if not when or count == 0:
            if len(sources) != 1:
                raise SpecError("a skipped entry passes its input through, so it needs exactly one input", location=self.where(entry), layer=path)
            scope.outputs[name] = sources[0]
            return name
        copies = self.copy_names(entry, path, repeat is not None, count, flat, scope)
        if not (flat or inline):
            scope.numbering.next += 1
        if has_op:
            scope.outputs[name] = self.expand_op(entry, path, copies, sources, scope, frozen)
        else:
            scope.outputs[name] = self.expand_block(entry, path, copies, inline, sources, scope, frozen, depth, checkpoint)
        return name

    def copy_names(self, entry: dict[str, Any], path: str, indexed: bool, count: int, flat: bool, scope: _Scope) -> list[tuple[str, dict[str, Any]]]:
        """Each copy's path and expression names: `path`, or for a `repeat` `path.0`, `path.1`
        ... or `path.` + the `names` pattern; a `flat` entry's copies take the container's
        next numbers (an `inline` call's are only messages' paths: its layers name themselves)."""
        if "names" in entry and (not indexed or flat):
            why = "'flat' numbers the copies in the container" if flat else "the entry has no 'repeat'"
            raise SpecError(f"'names' names the copies of a 'repeat', but {why}", location=self.where(entry, "names"), layer=path)
        if not indexed and not flat:  # one copy, named by the entry (most entries)
            return [(path, scope.env)]
        copies = []
        seen: dict[str, int] = {}
        for i in range(count):
            env = {**scope.env, "i": i} if indexed else scope.env
            if "names" in entry:
                try:
                    leaf = _copy_name(entry["names"], env)
                except ExpressionError as exc:
                    raise SpecError(str(exc), location=self.where(entry, "names"), layer=path) from None
                if leaf in seen:
                    raise SpecError(
                        f"'names' gives copies {seen[leaf]} and {i} the same name '{leaf}'; use $i in it",
                        location=self.where(entry, "names"), layer=path)
                seen[leaf] = i
                here = f"{path}.{leaf}"
            elif flat:
                here = scope.prefix + scope.numbering.take()
            else:
                here = f"{path}.{i}" if indexed else path
            copies.append((here, env))
        return copies

    def sources(self, entry: dict[str, Any], previous: str, scope: _Scope, path: str) -> list[_Ref]:
        """The entry's inputs as unresolved references: `from`, or else the previous entry."""
        where = self.where(entry, "from")
        names = entry.get("from", previous)
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
            raise SpecError("'from' must be a layer name or a list of layer names", location=where, layer=path)
        return [_Ref(scope, str(n), where, path) for n in names]

    def expand_op(
        self, entry: dict[str, Any], path: str, copies: list[tuple[str, dict[str, Any]]],
        sources: list[_Ref | str], scope: _Scope, frozen: bool,
    ) -> str:
        kind = entry["op"]
        cls = REGISTRY.get(kind) if isinstance(kind, str) else None
        if cls is None:
            near = _nearest(str(kind), REGISTRY)
            raise SpecError(
                f"unknown op {quote(kind)}" + (f"; did you mean {near}?" if near else "")
                + " (`archcalc schema` lists them all)",
                location=self.where(entry, "op"),
                layer=path,
            )
        fields = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        inputs = sources
        tied = entry.get("tied_to")
        if tied is not None and (not isinstance(tied, str) or not tied or len(copies) > 1):
            why = "one layer's path, as `transformer.wte`" if len(copies) == 1 else "one layer, not a repeat's copies"
            raise SpecError(f"'tied_to' names {why}; got {quote(tied)}", location=self.where(entry, "tied_to"), layer=path)
        returned = entry.get("returned", False)
        if not isinstance(returned, bool) or (returned and len(copies) > 1):
            raise SpecError(
                f"'returned' is true or false, on one layer (not a repeat's copies); got {quote(returned)}",
                location=self.where(entry, "returned"), layer=path,
            )
        if cls.max_inputs == 0:  # a learned tensor reads nothing: not the previous entry
            if "from" in entry:
                raise SpecError(f"{kind} reads no input, so it takes no 'from'", location=self.where(entry, "from"), layer=path)
            inputs = []
        fixed = self.entry_ops.get(id(entry))
        for here, env in copies:
            if fixed is not None:
                self.add(_Pending(here, fixed, list(inputs), frozen, self.where(entry, "op"), tied, returned))
                inputs = [here]
                continue
            values = {k: self.value(entry, k, env, here) for k in fields}
            key = _op_key(cls, values)
            op = self.ops.get(key) if key else None
            if op is None:
                try:
                    op = cls.model_validate(values)
                except validation_error() as exc:
                    allowed = [*cls.model_fields, *ENTRY_KEYS]
                    error = describe_validation_error(exc, entry, self.file, fields=allowed)
                    raise error.located(layer=here) from None
                if key:
                    self.ops[key] = op
            if key and not any(map(_has_expression, fields.values())):
                fixed = self.entry_ops[id(entry)] = op
            self.add(_Pending(here, op, list(inputs), frozen, self.where(entry, "op"), tied, returned))
            inputs = [here]
        return inputs[0]  # type: ignore[return-value]

    def expand_block(
        self, entry: dict[str, Any], path: str, copies: list[tuple[str, dict[str, Any]]], inline: bool,
        sources: list[_Ref], scope: _Scope, frozen: bool, depth: int, checkpoint: bool = False,
    ) -> _Ref:
        block_name = entry["block"]
        block = self.spec.blocks.get(block_name) if isinstance(block_name, str) else None
        if block is None:
            known = ", ".join(sorted(self.spec.blocks)) or "none defined"
            raise SpecError(f"unknown block {quote(block_name)} (blocks: {known})", location=self.where(entry, "block"), layer=path)
        if depth >= MAX_NESTING:
            raise SpecError(f"blocks nest deeper than {MAX_NESTING} levels; does block '{block_name}' call itself?", location=self.where(entry, "block"), layer=path)
        if len(sources) != 1 + len(block.inputs):
            names = ", ".join(["input", *block.inputs])
            raise SpecError(f"block '{block_name}' takes {1 + len(block.inputs)} input(s) ({names}), got {len(sources)} in 'from'", location=self.where(entry, "from"), layer=path)
        given = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        unknown = sorted(set(given) - set(block.args))
        if unknown:
            known = ", ".join(block.args) or "none"
            raise SpecError(f"block '{block_name}' has no argument {quote(unknown[0])} (its arguments: {known})", location=self.where(entry, unknown[0]), layer=path)
        source = sources[0]
        for here, env in copies:
            args = self.block_args(block, block_name, given, env, entry, here)
            if inline:  # no path of its own: its layers are named as if written in its place
                inner = _Scope(scope.prefix, args, source, frozen, scope.numbering)
            else:
                inner = _Scope(here + ".", args, source, frozen)
                self.blocks[here] = block_name
                if checkpoint:
                    self.checkpointed.append(here)
                if "repeat" in entry or entry.get("flat") is True:
                    self.repeated.append(here)
            inner.outputs.update(zip(block.inputs, sources[1:]))  # the same for every copy
            last = self.expand_scope(block.layers, inner, depth + 1)
            out_name = block.output or last
            source = _Ref(inner, out_name, self.where(entry, "block"), here)
        return source

    def block_args(self, block: BlockDef, block_name: str, given: dict[str, Any], env: dict[str, Any], entry: dict[str, Any], path: str) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for arg, default in block.args.items():
            if arg in given:
                args[arg] = self.value(entry, arg, env, path) if _has_expression(given[arg]) else given[arg]
            elif default is None:
                raise SpecError(f"block '{block_name}' needs argument '{arg}'", location=self.where(entry, "block"), layer=path)
            else:
                args[arg] = default
        for arg, value in list(args.items()):  # defaults may refer to other arguments
            if is_expression(value):
                try:
                    args[arg] = evaluate(value, args)
                except ExpressionError as exc:
                    raise SpecError(f"default of argument '{arg}' of block '{block_name}': {exc}", location=self.where(entry, "block"), layer=path) from None
        return args

    def add(self, pending: _Pending) -> None:
        if pending.path in self.paths:
            raise SpecError(f"two layers would both be named '{pending.path}'; rename one", location=pending.location, layer=pending.path)
        self.paths.add(pending.path)
        self.pending.append(pending)


def _copy_name(pattern: Any, env: dict[str, Any]) -> str:
    """A repeated entry's copy name from its `names` pattern: the text with each `{expression}`
    replaced by its whole-number value (`denselayer{$i + 1}` -> denselayer1, denselayer2, ...)."""
    if not isinstance(pattern, str) or not 0 < len(pattern) <= MAX_PATTERN_CHARS:
        raise ExpressionError(
            f"'names' must be a text of at most {MAX_PATTERN_CHARS} characters such as "
            f"'denselayer{{$i + 1}}', got {quote(pattern)}")
    parts = _PLACEHOLDER.split(pattern)  # text, expression, text, ..., text
    if any(c in text for text in parts[::2] for c in "{}"):
        raise ExpressionError(f"'names' {quote(pattern)} has an unmatched brace; write expressions as {{$i + 1}}")
    if len(parts) // 2 > MAX_PATTERN_EXPRESSIONS:
        raise ExpressionError(f"'names' {quote(pattern)} has more than {MAX_PATTERN_EXPRESSIONS} {{expressions}}")
    for k in range(1, len(parts), 2):
        value = evaluate(parts[k], env)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ExpressionError(f"in 'names' {quote(pattern)}: {{{parts[k]}}} must be a whole number, got {quote(value)}")
        parts[k] = str(value)
    name = "".join(parts)
    if "." in name or name == INPUT or len(name) > MAX_PATTERN_CHARS:
        raise ExpressionError(
            f"'names' {quote(pattern)} gives {quote(name)}; a name has no dots, is not 'input' and has at "
            f"most {MAX_PATTERN_CHARS} characters")
    return name


def _has_expression(value: Any) -> bool:
    """Whether a spec value holds an expression (also within lists)."""
    return is_expression(value) or (isinstance(value, list) and any(map(_has_expression, value)))


def _op_key(cls: type[Op], values: dict[str, Any]) -> tuple[Any, ...] | None:
    """What decides a validated op: its class and its values with their types (1, 1.0 and True
    differ), or None when a value is not plain data (then the op is validated afresh)."""

    def plain(value: Any) -> Any:
        if type(value) in (int, float, str, bool) or value is None:
            return (type(value), value)
        if isinstance(value, list):
            return (list, *map(plain, value))
        raise TypeError

    try:
        return (cls, *[(k, plain(v)) for k, v in values.items()])
    except TypeError:
        return None


def _resolve(ref: _Ref | str, seen: frozenset[int] = frozenset()) -> str:
    """The concrete layer path a reference ends at, following skipped entries and block outputs."""
    while isinstance(ref, _Ref):
        scope = ref.scope
        if ref.name == INPUT and INPUT not in scope.outputs:
            if scope.input_ref is None:
                return INPUT
            ref = scope.input_ref
            continue
        if ref.name not in scope.outputs:
            known = ", ".join(n for n in scope.outputs if n != INPUT) or "none"
            near = _nearest(ref.name, scope.outputs)
            hint = f"did you mean {near}? " if near else ""
            raise SpecError(f"'from' names '{ref.name}', which is not a layer here ({hint}known: {known}, input)", location=ref.location, layer=ref.user)
        if id(ref) in seen:
            raise SpecError(f"'{ref.name}' refers back to itself through skipped entries", location=ref.location, layer=ref.user)
        seen = seen | {id(ref)}
        ref = scope.outputs[ref.name]
    return ref


def _nearest(word: str, choices: Any) -> str:
    import difflib

    near = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return " or ".join(f"'{n}'" for n in near)


def _dimensions(
    spec: Spec, file: str | None, input_shape: tuple[int | str, ...] | None, symbolic: bool
) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
    """The input shape and the top-level names, each a number or (symbolic) a sympy symbol.

    A name is symbolic under `symbolic`, or when it has no numeric value at all (named only in
    an `--input` override); otherwise it takes its default from `symbols`.
    """
    shape = tuple(spec.input.shape if input_shape is None else input_shape)
    defaults = {n: v for n, v in spec.symbols.items() if v is not None}
    names = [*spec.symbols, *(d for d in shape if isinstance(d, str) and d not in spec.symbols)]
    wanted = {n for n in names if symbolic or n not in defaults}
    wanted |= {d for d in shape if isinstance(d, str) and input_shape is not None}
    symbols: dict[str, Any] = {}
    if wanted:
        from archcalc.symbolic.symbols import symbol

        try:
            symbols = {n: symbol(n) for n in names if n in wanted}
        except SpecError as exc:
            raise exc.located(Location(file, None)) from None
    env = {**defaults, **symbols}
    for d in shape:
        if isinstance(d, str) and d not in env:
            raise SpecError(
                f"input dimension '{d}' has no value: give it one under `symbols`, pass --input, "
                "or analyse symbolically (--symbolic)",
                location=Location(file, None),
            )
    return tuple(env[d] if isinstance(d, str) else d for d in shape), env, symbols


def expand(
    spec: Spec, data: Any = None, file: str | None = None, *,
    input_shape: tuple[int | str, ...] | None = None, symbolic: bool = False,
) -> Network:
    """The validated layer graph of a spec: names resolved, arity checked, no cycles or dead ends.

    `input_shape` overrides the spec's input; names in it, and with `symbolic` every name the
    spec declares, become sympy symbols.
    """
    shape, env, symbols = _dimensions(spec, file, input_shape, symbolic)
    expander = _Expander(spec, data, file)
    top = _Scope("", env, None, False)
    last = expander.expand_scope(spec.layers, top, 0)
    output = _resolve(_Ref(top, spec.output or last, Location(file, getattr(data, "line", None)), "output"))
    if not expander.pending:
        raise SpecError("the network has no layers: every entry is skipped (when: false or repeat: 0)", location=Location(file, getattr(data, "line", None)))
    nodes: dict[str, Layer] = {}
    readers: dict[str, list[str]] = {INPUT: []}
    rank = {INPUT: -1}
    for position, p in enumerate(expander.pending):
        inputs = tuple(map(_resolve, p.inputs))
        op = p.op
        if len(inputs) < op.min_inputs or (op.max_inputs is not None and len(inputs) > op.max_inputs):
            if op.max_inputs is None:
                wanted = f"at least {op.min_inputs}"
            elif op.max_inputs == op.min_inputs:
                wanted = str(op.max_inputs)
            else:  # attention: q, k, v and an optional bias
                wanted = f"{op.min_inputs} to {op.max_inputs}"
            raise SpecError(f"{op.kind} takes {wanted} input(s), got {len(inputs)}: {list(inputs)}", location=p.location, layer=p.path)
        nodes[p.path] = Layer(p.path, op, inputs, p.frozen, p.location, p.tied_to, p.returned)
        readers.setdefault(p.path, [])
        rank[p.path] = position
        for source in dict.fromkeys(inputs):
            readers.setdefault(source, []).append(p.path)
    for layer in nodes.values():
        if layer.tied_to is not None and (layer.tied_to not in nodes or layer.tied_to == layer.path or nodes[layer.tied_to].tied_to):
            near = _nearest(layer.tied_to, nodes)
            hint = f"; did you mean {near}?" if near else " (give the full path, as `transformer.wte`)"
            if layer.tied_to in nodes and layer.tied_to != layer.path:
                hint = f" whose parameters are themselves tied; name '{nodes[layer.tied_to].tied_to}' instead"
            raise SpecError(f"'tied_to' names {quote(layer.tied_to)}, which is not another layer{hint}", location=layer.location, layer=layer.path)
    order = _topological_order(readers, rank)
    if len(order) < len(rank):  # Kahn's algorithm stops short exactly when there is a cycle
        import networkx as nx

        graph = _digraph(nodes)
        cycle = nx.find_cycle(graph)
        loop = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        first = graph.nodes[cycle[0][0]].get("layer")
        raise SpecError(f"the connections form a cycle: {loop}", location=first.location if first else None, layer=cycle[0][0])
    for node, users in readers.items():
        layer = nodes.get(node)
        if node != output and not users and not (layer and layer.returned):
            raise SpecError(
                f"the output of '{node}' is never used; only the network's output ('{output}') "
                "and layers marked `returned: true` may be left unconnected (use it in a 'from', or remove it)",
                location=layer.location if layer else None,
                layer=node,
            )
    defaults = {n: v for n, v in spec.symbols.items() if v is not None}
    return Network(
        spec.name, shape, spec.input.dtype, nodes, {k: tuple(v) for k, v in readers.items()}, order[1:], output, file, expander.blocks,
        symbols, defaults, tuple(spec.ignore), tuple(expander.checkpointed), tuple(expander.repeated),
    )


def _topological_order(readers: dict[str, list[str]], rank: dict[str, int]) -> tuple[str, ...]:
    """Kahn's algorithm taking the ready layer listed first in the spec (as networkx's
    lexicographical_topological_sort with that key); shorter than `rank` if there is a cycle."""
    waiting = dict.fromkeys(rank, 0)
    for users in readers.values():
        for user in users:
            waiting[user] += 1
    ready = [(rank[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for user in readers.get(node, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (rank[user], user))
    return tuple(order)


def _digraph(nodes: dict[str, Layer]) -> nx.DiGraph:
    """The networkx DiGraph of the layers: node `input`, nodes with a `layer`, edges with a `slot`."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_node(INPUT)
    for path, layer in nodes.items():
        graph.add_node(path, layer=layer)
        for slot, source in enumerate(layer.inputs):
            graph.add_edge(source, path, slot=slot)
    return graph


def load(path: str, *, input_shape: tuple[int | str, ...] | None = None, symbolic: bool = False) -> Network:
    """Read, validate and expand a spec file (see `expand` for the options)."""
    return load_data(read_file(path), path, input_shape=input_shape, symbolic=symbolic)


def load_data(
    data: Any, file: str | None = None, *, input_shape: tuple[int | str, ...] | None = None, symbolic: bool = False
) -> Network:
    """Validate and expand spec data already parsed: a file's or stdin's (`file` names it in
    messages), or a dict built in Python (no file, no lines)."""
    return expand(parse_spec(data, file), data, file, input_shape=input_shape, symbolic=symbolic)
