"""An imported network written as a spec: layers named by their module paths, each module that
holds layers a block, modules of one structure one block with arguments for what differs, and a
container of identical chained blocks (torchvision's `layer1`) one entry with `repeat`.

The layer paths become the spec's names: `layer1.0.conv1` is the layer `conv1` of copy `0` of
the entry `layer1`, so the written spec loads back to the same paths, wiring, shapes and
parameters. Values from the foreign model are untrusted text: every scalar is written by
yaml.safe_dump.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from archcalc.bridges.imported import ImportedLayer, ImportedNetwork
from archcalc.errors import BridgeError
from archcalc.names import unique
from archcalc.ops import REGISTRY

INPUT = "input"


class _Any:
    """An argument's value where it does not matter: the copy lacks the entry that reads it."""

    def __repr__(self) -> str:
        return "any"


ANY: Any = _Any()
_MAX_EXPRESSION = 300  # a longer per-copy expression is written as one call per copy instead


@dataclass(eq=False)
class _Scope:
    """A module that holds layers: its path, children by name in order of first use."""

    path: str
    children: dict[str, _Scope | ImportedLayer] = field(default_factory=dict)
    kind: str = ""  # the module's class, when the importer knows it

    def prefix(self) -> str:
        return f"{self.path}." if self.path else ""


@dataclass
class _Entry:
    """One entry of a scope as written: an op, a block call, or a repeated block call.

    `values` holds its fields (an op) or arguments (a call); for a repeat, each argument's
    per-copy values are a tuple already turned into one expression over `$i`."""

    name: str
    kind: str  # "op", "block" or "repeat"
    target: str | int  # op name or template index
    values: dict[str, Any]
    refs: tuple[str, ...]
    child: str = ""  # a call's scope path


@dataclass
class _Instance:
    """One scope as entries: what its block call must pass."""

    scope: _Scope
    entries: dict[str, _Entry]
    inputs: int  # inputs besides `input`
    output: str


@dataclass
class _Template:
    """A block: the union of its instances' entries (an entry some lack is called `when`)."""

    index: int
    kind: str
    order: list[str]
    instances: list[_Instance]
    args: dict[str, str] = field(default_factory=dict)  # (entry, key) joined by '\0' -> arg name
    arg_values: list[dict[str, Any]] = field(default_factory=list)  # per instance
    name: str = ""


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same type (True is not 1); ANY matches anything."""
    if a is ANY or b is ANY:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _number(value: Any) -> bool:
    if value is ANY:
        return True
    return isinstance(value, (int, float)) and (not isinstance(value, float) or math.isfinite(value))


def _identifier(text: str) -> str:
    """`text` as an argument name: letters, digits, underscores, not starting with a digit."""
    name = re.sub(r"\W", "_", text)
    return name if name and not name[0].isdigit() else f"n{name}"


def _snake(kind: str) -> str:
    """Bottleneck -> bottleneck, Conv2dNormActivation -> conv2d_norm_activation."""
    leaf = kind.rpartition(".")[2]
    return _identifier(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", leaf).lower())


class _Writer:
    """The network as a tree of scopes (module paths), each scope an instance of a template."""

    def __init__(self, network: ImportedNetwork, kinds: dict[str, str]) -> None:
        self.network = network
        self.root = _Scope("")
        self.owner: dict[str, _Scope] = {}  # layer path -> the scope it is a child of
        self.layers = {layer.path: layer for layer in network.layers}
        self.templates: list[_Template] = []
        self.instance: dict[str, tuple[_Template, int]] = {}  # scope path -> (template, instance)
        self.readers: dict[str, list[str]] = {}
        for layer in network.layers:
            self.place(layer, kinds)
            for source in layer.inputs:
                self.readers.setdefault(source, []).append(layer.path)
        self.output = network.layers[-1].path

    def place(self, layer: ImportedLayer, kinds: dict[str, str]) -> None:
        """Put the layer in the scope its path names, making the scopes on the way."""
        parts = layer.path.split(".")
        if not all(parts) or INPUT in parts or layer.path in self.owner:
            raise BridgeError(f"layer path {layer.path!r} must be unique, without empty parts or 'input'", layer=layer.path)
        scope = self.root
        for depth, part in enumerate(parts[:-1]):
            child = scope.children.get(part)
            if isinstance(child, ImportedLayer):
                raise BridgeError(f"'{child.path}' is both a layer and the module of '{layer.path}'", layer=layer.path)
            if child is None:
                path = ".".join(parts[: depth + 1])
                child = scope.children[part] = _Scope(path, kind=kinds.get(path, ""))
            scope = child
        if parts[-1] in scope.children:
            raise BridgeError(f"'{layer.path}' is both a layer and a module holding layers", layer=layer.path)
        scope.children[parts[-1]] = layer
        self.owner[layer.path] = scope

    def inside(self, path: str, scope: _Scope) -> bool:
        """Whether a layer path lies in the scope (everything lies in the root)."""
        return not scope.path or path.startswith(scope.prefix())

    @functools.cache  # noqa: B019 (one writer per network, dropped with it)
    def layer_paths(self, scope: _Scope) -> list[str]:
        """The scope's layers, depth first, in order of first use."""
        paths: list[str] = []
        for child in scope.children.values():
            paths.extend(self.layer_paths(child) if isinstance(child, _Scope) else [child.path])
        return paths

    @functools.cache  # noqa: B019
    def scope_output(self, scope: _Scope) -> str:
        """The one layer of the scope read from outside it (or the network's output in it)."""
        paths = self.layer_paths(scope)
        read = [p for p in paths if p == self.output or any(not self.inside(r, scope) for r in self.readers.get(p, []))]
        if len(read) > 1:
            raise BridgeError(
                f"module '{scope.path}' hands {len(read)} tensors to the rest of the network ({', '.join(read[:4])}); "
                "a spec block has one output", layer=scope.path)
        return read[0] if read else paths[-1]

    @functools.cache  # noqa: B019
    def external(self, scope: _Scope) -> list[str]:
        """The tensors the scope reads from outside, in order of first read."""
        found: dict[str, None] = {}
        for path in self.layer_paths(scope):
            for source in self.layers[path].inputs:
                if source == INPUT or not self.inside(source, scope):
                    found.setdefault(source, None)
        return list(found)

    def local(self, scope: _Scope, path: str, outside: list[str], user: str) -> str:
        """How the scope names a tensor: `input`, an extra input, or the child holding it."""
        if path != INPUT and self.inside(path, scope):
            name = path[len(scope.prefix()):].split(".")[0]
            child = scope.children[name]
            if isinstance(child, _Scope) and self.scope_output(child) != path:
                raise BridgeError(f"reads '{path}', which is not the output of module '{child.path}'", layer=user)
            return name
        index = outside.index(path)
        return INPUT if index == 0 else f"input{index + 1}"

    def instance_of(self, scope: _Scope) -> _Instance:
        """The scope as entries: its layers as ops, its child scopes as calls (arguments later)."""
        outside = self.external(scope) if scope.path else [INPUT]
        entries: dict[str, _Entry] = {}
        for name, child in scope.children.items():
            if isinstance(child, ImportedLayer):
                refs = tuple(self.local(scope, s, outside, child.path) for s in child.inputs)
                entries[name] = _Entry(name, "op", child.op, dict(child.fields), refs)
                continue
            refs = tuple(self.local(scope, s, outside, child.path) for s in self.external(child))
            entries[name] = _Entry(name, "block", self.instance[child.path][0].index, {}, refs, child.path)
        output = self.scope_output(scope)[len(scope.prefix()):].split(".")[0]
        return _Instance(scope, entries, len(outside) - 1, output)

    def call(self, entry: _Entry) -> _Entry:
        """A block entry with its arguments (its block settled), folded to a repeat if it can be."""
        template, number = self.instance[entry.child]
        folded = self.repeat(template.instances[number])
        if folded is not None:
            return _Entry(entry.name, "repeat", folded[0], folded[1], entry.refs, entry.child)
        return _Entry(entry.name, "block", template.index, dict(template.arg_values[number]), entry.refs, entry.child)

    def calls(self, instances: list[_Instance]) -> None:
        """Fill in the block entries of instances of one block: a repeat only where every
        instance's copies fold the same way (else a call of the container's block)."""
        names = {n for i in instances for n, e in i.entries.items() if e.kind == "block"}
        for name in names:
            having = [i for i in instances if name in i.entries]
            done = [self.call(i.entries[name]) for i in having]
            first = done[0]
            fits = all(d.kind == "repeat" and d.target == first.target for d in done) and all(
                _same(d.values[k], first.values[k]) or (_number(d.values[k]) and _number(first.values[k]) and type(d.values[k]) is type(first.values[k]))
                for d in done for k in first.values)
            for instance, entry in zip(having, done):
                if not fits and entry.kind == "repeat":
                    template, number = self.instance[entry.child]
                    entry = _Entry(name, "block", template.index, dict(template.arg_values[number]), entry.refs, entry.child)
                instance.entries[name] = entry

    def repeat(self, instance: _Instance) -> tuple[int, dict[str, Any]] | None:
        """A container of n chained copies of one block named 0..n-1, as (block, arguments with
        `repeat` and per-copy expressions), or None."""
        entries = list(instance.entries.values())
        if instance.inputs or len(entries) < 2 or any(e.kind != "block" for e in entries):
            return None
        if len({e.target for e in entries}) > 1 or instance.output != entries[-1].name:
            return None
        numbered = [re.fullmatch(r"(\D*?)(\d+)", e.name) for e in entries]
        if not all(numbered) or len({m.group(1) for m in numbered if m}) > 1 or re.search(r"[{}$]", entries[0].name):
            return None
        prefix, first = numbered[0].group(1), int(numbered[0].group(2))  # type: ignore[union-attr]
        for i, entry in enumerate(entries):
            if entry.name != f"{prefix}{first + i}" or entry.refs != ((INPUT,) if i == 0 else (entries[i - 1].name,)):
                return None
        values: dict[str, Any] = {"repeat": len(entries)}
        if prefix or first:  # torchvision's `denselayer1`..., `encoder_layer_0`...
            values["names"] = prefix + ("{$i}" if not first else f"{{$i + {first}}}")
        for arg in entries[0].values:
            written = _per_copy([e.values[arg] for e in entries])
            if written is None:
                return None
            values[arg] = written
        return int(entries[0].target), values

    def build(self) -> None:
        """Every scope below the root as an instance of a block, children first; then each
        block's arguments, in the order the blocks were made (a block's callees come first)."""

        def visit(scope: _Scope) -> None:
            for child in scope.children.values():
                if isinstance(child, _Scope):
                    visit(child)
            if not scope.path:
                return
            instance = self.instance_of(scope)
            template = next((t for t in self.templates if self.join(t, instance)), None)
            if template is None:
                template = _Template(len(self.templates), scope.kind, list(instance.entries), [instance])
                self.templates.append(template)
            self.instance[scope.path] = (template, len(template.instances) - 1)

        visit(self.root)
        settled: set[int] = set()

        def settle(template: _Template) -> None:
            if template.index in settled:
                return
            settled.add(template.index)
            for instance in template.instances:
                for entry in instance.entries.values():
                    if entry.child:
                        settle(self.instance[entry.child][0])
            self.calls(template.instances)
            self.settle(template)

        for template in self.templates:
            settle(template)

    def join(self, template: _Template, instance: _Instance) -> bool:
        """Add `instance` to `template` if they differ only in numbers and in entries one lacks."""
        first = template.instances[0]
        if template.kind != instance.scope.kind or instance.inputs != first.inputs:
            return False
        if first.output != instance.output:
            return False
        order = _merge(template.order, list(instance.entries))
        if order is None:
            return False
        for name in order:
            ours = [i.entries[name] for i in template.instances if name in i.entries]
            theirs = instance.entries.get(name)
            if theirs is None:
                if len(ours[0].refs) != 1 or name == instance.output:
                    return False
                continue
            if not ours:
                if len(theirs.refs) != 1 or name == first.output:
                    return False
                ours = [theirs]
            mine = ours[0]
            if (mine.kind, mine.target, set(mine.values)) != (theirs.kind, theirs.target, set(theirs.values)):
                return False
            for key, value in theirs.values.items():
                if not _same(value, mine.values[key]) and not (_number(value) and _number(mine.values[key]) and type(value) is type(mine.values[key])):
                    return False
            for other in template.instances:
                if name in other.entries and not _compatible(other.entries[name].refs, other, theirs.refs, instance):
                    return False
        template.order = order
        template.instances.append(instance)
        return True

    def settle(self, template: _Template) -> None:
        """The template's arguments: each value that differs between instances, and each entry
        some instances lack; arguments with the same values in every instance merged."""
        vectors: dict[tuple[Any, ...], str] = {}
        used: set[str] = set()
        template.arg_values = [{} for _ in template.instances]
        keys: list[tuple[str, str]] = []
        for name in template.order:
            having = [i.entries[name] for i in template.instances if name in i.entries]
            if len(having) < len(template.instances):
                keys.append((name, ""))
            for key in having[0].values:
                if _varies([e.values[key] for e in having]):
                    keys.append((name, key))
        for name, key in keys:
            if key:  # an instance lacking the entry has no use for the value
                vector = tuple(
                    (type(v), v) for v in (i.entries[name].values[key] if name in i.entries else ANY for i in template.instances))
            else:
                vector = tuple((bool, name in i.entries) for i in template.instances)
            arg = next((a for v, a in vectors.items() if _covers(v, vector)), None)
            if arg is None:
                arg = _identifier(key if key and key not in used else f"{name}_{key}" if key else f"has_{name}")
                while arg in used:
                    arg += "_"
                used.add(arg)
                vectors[vector] = arg
                for values, (_, value) in zip(template.arg_values, vector):
                    values[arg] = value
            template.args[f"{name}\0{key}"] = arg

    def name_templates(self) -> None:
        """Each block named by its module class (bottleneck), or else by its first path's leaf."""
        taken: set[str] = set()
        for template in self.templates:
            base = _snake(template.kind) if template.kind else _identifier(template.instances[0].scope.path.rpartition(".")[2]) + "_block"
            template.name = unique(base, taken, separator="")

    def entries(self, instance: _Instance, template: _Template | None) -> list[dict[str, Any]]:
        """The scope's entries as spec data; in a block, differing values as `$arg`."""
        order = template.order if template else list(instance.entries)
        optional = template is not None and any(f"{n}\0" in template.args for n in order)
        written: list[dict[str, Any]] = []
        previous = INPUT
        for index, name in enumerate(order):
            entry = instance.entries.get(name) or next(i.entries[name] for i in template.instances if name in i.entries)  # type: ignore[union-attr]
            data: dict[str, Any] = {}
            if optional or name != str(index):
                data["name"] = name
            if entry.kind == "op":
                data["op"] = entry.target
            else:
                data["block"] = self.templates[int(entry.target)].name
            for key, value in entry.values.items():
                arg = template.args.get(f"{name}\0{key}") if template else None
                if value is ANY:
                    value = self.resolve(template, name, key, entry)
                if arg is not None:
                    data[key] = f"${arg}"
                elif entry.kind != "op" or not _default(str(entry.target), key, value):
                    data[key] = value
            if template is not None and f"{name}\0" in template.args:
                data["when"] = f"${template.args[name + chr(0)]}"
            refs = _refs(template, name) if template else entry.refs
            if refs and refs != (previous,):
                data["from"] = refs[0] if len(refs) == 1 else list(refs)
            written.append(_ordered(data))
            previous = name
        return written

    def spec(self) -> dict[str, Any]:
        """The spec data: name, input, the blocks the layers call, the layers."""
        self.build()
        self.name_templates()
        blocks: dict[str, Any] = {}
        last = self.instance_of(self.root)
        self.calls([last])
        used = self.used(last)
        for template in self.templates:
            if template.index not in used:
                continue
            first = template.instances[0]
            block: dict[str, Any] = {}
            if template.arg_values[0]:
                block["args"] = {arg: None for arg in template.arg_values[0]}
            if first.inputs:
                block["inputs"] = [f"input{n + 2}" for n in range(first.inputs)]
            block["layers"] = self.entries(first, template)
            if first.output != template.order[-1]:
                block["output"] = first.output
            blocks[template.name] = block
        name = self.network.name
        data: dict[str, Any] = {"name": name, "input": _input(self.network)}
        if self.network.symbols:
            data["symbols"] = dict(self.network.symbols)
        if blocks:
            data["blocks"] = blocks
        data["layers"] = self.entries(last, None)
        if last.output != list(last.entries)[-1]:
            data["output"] = last.output
        return data

    def resolve(self, template: _Template | None, name: str, key: str, entry: _Entry) -> Any:
        """A value no instance here needs (ANY): one an instance has, else one the called
        block was ever given."""
        for instance in template.instances if template else []:
            value = instance.entries[name].values[key] if name in instance.entries else ANY
            if value is not ANY:
                return value
        called = self.templates[int(entry.target)]
        return next(v[key] for v in called.arg_values if v.get(key, ANY) is not ANY)

    def used(self, root: _Instance) -> set[int]:
        """The blocks the written spec calls, from the top level down."""
        found: set[int] = set()
        todo = [root]
        while todo:
            for entry in todo.pop().entries.values():
                if entry.kind != "op" and int(entry.target) not in found:
                    found.add(int(entry.target))
                    todo.extend(self.templates[int(entry.target)].instances)
        return found


def _compatible(a: tuple[str, ...], x: _Instance, b: tuple[str, ...], y: _Instance) -> bool:
    """Whether entries of two instances read the same, seeing through an entry one lacks: the
    other's reads exactly what the lacking instance reads instead (a skipped entry passes its
    input through)."""
    if len(a) != len(b):
        return False
    for p, q in zip(a, b):
        through_x = p not in y.entries and x.entries.get(p) is not None and x.entries[p].refs == (q,)
        through_y = q not in x.entries and y.entries.get(q) is not None and y.entries[q].refs == (p,)
        if p != q and not through_x and not through_y:
            return False
    return True


def _refs(template: _Template, name: str) -> tuple[str, ...]:
    """What a block's entry reads: per position, the entry some instances lack (it passes
    through where absent), else what every instance reads."""
    having = [i.entries[name].refs for i in template.instances if name in i.entries]
    optional = {n for n in template.order if not all(n in i.entries for i in template.instances)}
    return tuple(next((r for r in column if r in optional), column[0]) for column in zip(*having))


def _merge(a: list[str], b: list[str]) -> list[str] | None:
    """The names of two entry lists in one order that keeps both orders, or None."""
    common = [n for n in a if n in b]
    if common != [n for n in b if n in a]:
        return None
    merged: list[str] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if i < len(a) and a[i] not in b:
            merged.append(a[i])
            i += 1
        elif j < len(b) and b[j] not in a:
            merged.append(b[j])
            j += 1
        else:
            merged.append(a[i])
            i, j = i + 1, j + 1
    return merged


def _covers(have: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
    """Whether an argument's per-instance values (type, value) serve as another's: equal
    wherever the other's matters (not ANY). A ResNet block's `downsample` width is its `out`."""
    return all(w[1] is ANY or (h[1] is not ANY and h == w) for h, w in zip(have, want))


def _varies(values: list[Any]) -> bool:
    """Whether the values that matter (not ANY) differ."""
    defined = [v for v in values if v is not ANY]
    return any(not _same(v, defined[0]) for v in defined)


def _per_copy(values: list[Any]) -> Any:
    """Per-copy values as one value or expression over `$i`, or None when none fits; a copy
    that has no use for its value (ANY) takes its neighbour's, to keep the expression short."""
    defined = [(i, v) for i, v in enumerate(values) if v is not ANY]
    if not defined:
        return ANY
    values = [v if v is not ANY else min(defined, key=lambda d: (abs(d[0] - i), -d[0]))[1] for i, v in enumerate(values)]
    first = values[0]
    if all(_same(v, first) for v in values):
        return first
    if not all(_number(v) for v in values) or len({type(v) for v in values}) > 1:
        return None
    if isinstance(first, bool):
        true = [i for i, v in enumerate(values) if v]
        if true == [0]:
            return "$i == 0"
        if true == list(range(1, len(values))):
            return "$i != 0"
    if all(_same(v, values[1]) for v in values[1:]):
        return f"{first!r} if $i == 0 else {values[1]!r}"
    step = values[1] - first
    if isinstance(first, int) and all(v == first + step * i for i, v in enumerate(values)):
        return f"{first} + {step} * $i"
    text = repr(values[-1])
    for i in range(len(values) - 2, -1, -1):
        text = f"{values[i]!r} if $i == {i} else {text}"
    return text if len(text) <= _MAX_EXPRESSION else None


def _default(op: str, key: str, value: Any) -> bool:
    """Whether `value` is the op's own default for `key` (left out for readability)."""
    info = REGISTRY[op].model_fields.get(key)
    default = getattr(info, "default", None) if info is not None else None
    return info is not None and default is not None and _same(default, value)


_FIRST = ("name", "op", "block", "repeat", "names")


def _ordered(data: dict[str, Any]) -> dict[str, Any]:
    """name, op/block and repeat first, as the zoo specs read."""
    return {**{k: data[k] for k in _FIRST if k in data}, **{k: v for k, v in data.items() if k not in _FIRST}}


def _input(network: ImportedNetwork) -> Any:
    shape = list(network.input_shape)
    return shape if network.input_dtype == "float32" else {"shape": shape, "dtype": network.input_dtype}


def spec_data(network: ImportedNetwork, kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """The spec of an imported network as data (what `write_spec` writes). `kinds` (module path
    -> class name, when the importer knows it) names blocks and keeps modules of different
    classes in different blocks."""
    if network.unmapped:
        raise BridgeError(f"{len(network.unmapped)} operation(s) have no archcalc op; a spec cannot be written")
    if not network.layers:
        raise BridgeError("the imported network has no layers")
    return _Writer(network, kinds or {}).spec()


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30, allow_unicode=False).strip()


def _scalar(value: Any) -> str:
    return _flow([value])[1:-1]


def write_spec(network: ImportedNetwork, kinds: dict[str, str] | None = None) -> str:
    """The spec YAML of an imported network: one flow mapping per layer, as the zoo specs read."""
    data = spec_data(network, kinds)
    lines = [f"name: {_scalar(data['name'])}", f"input: {_flow(data['input'])}"]
    if "symbols" in data:
        lines.append(f"symbols: {_flow(data['symbols'])}")
    if "blocks" in data:
        lines += ["", "blocks:"]
        for name, block in data["blocks"].items():
            lines.append(f"  {_scalar(name)}:")
            for key in ("args", "inputs"):
                if key in block:
                    lines.append(f"    {key}: {_flow(block[key])}")
            lines.append("    layers:")
            lines += [f"      - {_flow(entry)}" for entry in block["layers"]]
            if "output" in block:
                lines.append(f"    output: {_scalar(block['output'])}")
    lines += ["", "layers:"]
    lines += [f"  - {_flow(entry)}" for entry in data["layers"]]
    if "output" in data:
        lines.append(f"output: {_scalar(data['output'])}")
    return "\n".join(lines) + "\n"
