"""Terminal rendering of analysis results with rich; reads results, computes nothing new."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archcalc.analysis import Analysis, LayerResult
from archcalc.arith import Dim, Shape
from archcalc.figures.memory import attention_note, precision_note
from archcalc.figures.sharding import sharding_note
from archcalc.render.terminal import FigureTable
from archcalc.spec.blocks import Blocks


def shape_text(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def _axes(values: tuple[Any, ...]) -> str:
    """Per-axis values, written once when every axis agrees (square inputs)."""
    return str(values[0]) if len(set(values)) == 1 else "×".join(str(v) for v in values)


def count_text(value: Dim) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass(frozen=True)
class Row:
    """A table row: one layer, or a block folded to the requested depth (its layers summed)."""

    path: str
    op: str
    detail: str
    members: tuple[LayerResult, ...]

    @property
    def output_shape(self) -> Shape:
        return self.members[-1].output_shape

    @property
    def params(self) -> Dim:
        return self.total(lambda r: r.params.params)

    @property
    def frozen(self) -> bool:
        return all(r.params.frozen for r in self.members)

    def total(self, figure: Callable[[LayerResult], Dim]) -> Dim:
        """A figure summed over the row's layers (a block's parameters, FLOPs, bytes)."""
        return sum((figure(r) for r in self.members), 0)


def fold(analysis: Analysis, depth: int | None) -> list[Row]:
    """Rows with paths cut to `depth` components: a block's layers merge into one row."""
    rows: list[Row] = []
    for group in Blocks(analysis.network.blocks).fold(analysis.layers, depth):
        first = group.members[0]
        if group.folded:
            rows.append(Row(group.name, f"{group.kind} (block)", "", group.members))
        else:
            rows.append(Row(first.path, first.op, first.detail, group.members))
    return rows


def params_text(row: Row) -> str:
    """A row's parameters, `–` for none, marked when every one is frozen."""
    params = row.params
    if not params:
        return "–"
    return count_text(params) + (" (frozen)" if row.frozen else "")


def summary_table(analysis: Analysis, depth: int | None = None) -> Any:
    """A rich renderable: the per-layer table with totals below."""
    from rich.console import Group
    from rich.text import Text

    net = analysis.network
    table = FigureTable(
        title=f"{net.name}  (input {shape_text(net.input_shape)}, batch excluded)", title_justify="left",
        optional=("Settings", "Op"),
    )
    table.add_column("Layer", overflow="fold")
    table.add_column("Op", overflow="fold")
    table.add_column("Settings", style="dim", overflow="fold")
    table.add_column("Output shape", justify="right", no_wrap=True)
    table.add_column("Params", justify="right", no_wrap=True)
    for row in fold(analysis, depth):
        table.add_row(row.path, row.op, row.detail, shape_text(row.output_shape), params_text(row))
    return Group(table, Text("\n".join(total_lines(analysis))))


def total_lines(analysis: Analysis) -> list[str]:
    """The parameter totals under a layer table, and what the input must satisfy."""
    t = analysis.totals
    return [
        f"Output shape:      {shape_text(analysis.output_shape)}",
        f"Total params:      {count_text(t.params)}",
        f"Trainable params:  {count_text(t.trainable_params)}",
        f"Frozen params:     {count_text(t.frozen_params)}",
        f"Buffers:           {count_text(t.buffers)} (running statistics, not learned)",
        *constraint_lines(analysis.constraints),
    ]


def unknown_lines(analysis: Analysis) -> list[str]:
    """A warning under FLOPs and memory when some layers' costs are unknown (opaque imports)."""
    from archcalc.analysis import unknown_layers

    unknown = unknown_layers(analysis.network)
    if not unknown:
        return []
    shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    return [f"WARNING: FLOPs and memory are unknown for {len(unknown)} opaque layer(s) ({shown}); "
            "the totals leave them out, so they are lower bounds."]


def analyze_table(analysis: Analysis, depth: int | None = None) -> Any:
    """Every figure per layer (or per block, with `depth`): shape, parameters, FLOPs, receptive
    field, and the bytes of its output and of what it saves for backward at the batch, with the
    totals of each below."""
    from rich.console import Group
    from rich.text import Text

    from archcalc.units import human_bytes, human_count

    net, o, t, m = analysis.network, analysis.options, analysis.totals, analysis.memory
    table = FigureTable(
        title=f"{net.name}  (input {shape_text(net.input_shape)}; bytes at batch {o.batch}, {precision_note(o)}{attention_note(m)}{sharding_note(o)})",
        title_justify="left", optional=("Op", "Saved bytes", "RF", "Output bytes"),
    )
    table.add_column("Layer", overflow="fold")
    table.add_column("Op", overflow="fold")
    for column in ("Output shape", "Params", "FLOPs", "RF", "Output bytes", "Saved bytes"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in fold(analysis, depth):
        table.add_row(
            row.path, row.op, shape_text(row.output_shape), params_text(row),
            count_text(row.total(lambda r: r.flops.flops)), field_text(row.members[-1].receptive_field),
            count_text(o.batch * row.total(lambda r: r.memory.output)),
            count_text(o.batch * row.total(lambda r: r.memory.saved)),
        )
    lines = [
        *total_lines(analysis),
        f"FLOPs per example: {count_text(t.flops)}{_human(t.flops, human_count, 'FLOP')}",
        f"Inference peak:    {count_text(m.inference_peak)} bytes{_human(m.inference_peak, human_bytes)} at {m.peak_layer}",
        f"Training total:    {count_text(m.training_total)} bytes{_human(m.training_total, human_bytes)}, {o.optimizer} (archcalc memory)",
        "RF: receptive field size on the input (archcalc rf); Output bytes: the layer's output; "
        "Saved bytes: what autograd keeps for its backward.",
        *unknown_lines(analysis),
    ]
    return Group(table, Text("\n".join(lines)))


def _human(value: Dim, human: Callable[[Any], str], unit: str = "") -> str:
    """` (1.81 GFLOP)`: a number in human units beside the exact one; nothing beside a formula."""
    return f" ({human(value)}{unit})" if isinstance(value, int) else ""


def field_text(field: Any) -> str:
    """A receptive field's size in a table cell: `–` off the spatial path, `all` where a global
    op sees the whole input, `a–b *` where it depends on the unit (archcalc rf says more)."""
    from archcalc.figures.receptive_field import ReceptiveField

    if field is None:
        return "–"
    if not isinstance(field, ReceptiveField):
        return "all"
    if field.varies:
        return ("?" if field.smallest is None else "–".join(dict.fromkeys((_axes(field.smallest), _axes(field.size))))) + " *"
    return _axes(field.size)


def constraint_lines(constraints: Any) -> list[str]:
    """The sizes merges need equal, for some inputs only: what the input must satisfy."""
    if not constraints:
        return []
    return [
        "Valid only where (archcalc solve --valid-inputs gives the sizes):",
        *(f"  {c.layer}: {c.left} = {c.right}" for c in constraints),
    ]


NOT_COUNTED = (
    "Not counted: the CUDA context (hundreds of MiB per process), cuDNN/cuBLAS workspaces, the "
    "caching allocator's rounding and fragmentation, and the backward pass's transient gradients"
)


def memory_table(analysis: Analysis, train: bool, fit: tuple[str, int, int] | None = None, solved: str = "batch") -> Any:
    """Weights, activations and the training total, with human units and exact bytes, each row
    defined under the table; `fit`: the budget as given, the reserve taken off it, and what was
    solved for it: the largest batch, or (`solved` "devices") the fewest devices."""
    from rich.console import Group
    from rich.text import Text

    from archcalc.units import human_bytes

    m = analysis.memory
    o = m.options
    cache = ", generating with a KV cache" if o.kv_cache else ""
    table = FigureTable(
        optional=("Note", "Size"),
        title=f"{analysis.network.name}: memory at batch {o.batch}, {precision_note(o)}{attention_note(m)}{sharding_note(o)}{cache} "
        "(binary units: 1 MiB = 2^20 bytes)",
        title_justify="left",
    )
    table.add_column("What", overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Bytes", justify="right", style="dim", no_wrap=True)
    table.add_column("Note", style="dim", overflow="fold")
    legend: list[str] = []

    def row(what: str, value: Dim, meaning: str, note: str = "", style: str | None = None) -> None:
        table.add_row(what, human_bytes(value), count_text(value), note, style=style)
        legend.append(f"{what}: {meaning}.")

    row("Weights", m.weights, "parameters x their element size", "half" if o.autocast else "")
    row("Buffers", m.buffers, "norms' running statistics, not learned")
    row(
        "Activations (sum of outputs)", m.activations_sum,
        "every layer's output added up, as if all were alive at once; an upper bound on the "
        "inference peak (torchinfo's forward/backward pass size counts differently)",
    )
    g = m.generation
    if g is None:
        row(
            "Inference peak", m.inference_peak,
            "the most activation bytes alive at once running forward without autograd, each tensor "
            "freed after its last reader", f"at {m.peak_layer}",
        )
    else:
        row("KV cache", g.cache, f"the keys and values every kv_cache layer holds at context {g.context}, per example 2 x layers x kv_heads x head_dim x S elements", f"context {g.context}")
        row("Prefill peak", g.prefill, f"the most bytes alive at once in the forward over {g.context} tokens, its cache kept to the end, the head for the last position only (generate()'s logits_to_keep=1)", f"at {g.prefill_layer}")
        row("Decode step peak", g.decode, f"the most bytes alive at once in one step of 1 token per example attending over {g.context} positions: the cache, the replaced cache torch.cat reads, the step's tensors", f"at {g.decode_layer}")
        row("Inference peak", m.inference_peak, "generation's peak: the larger of prefill and the decoding step", f"{g.phase}, at {m.peak_layer}")
    row("Inference total", m.inference_total, "weights + buffers + inference peak", style=None if train else "bold")
    if train:
        row("Saved for backward", m.training_activations, "the tensors PyTorch's autograd keeps for the backward pass, each storage once")
        if m.checkpointed:
            row(
                "of which recomputation", m.recomputation,
                f"{len(m.checkpointed)} checkpointed block(s) keep only their inputs in the forward; backward runs "
                "each again, one at a time, and this is what the largest one's recomputed layers keep at once",
                f"{m.recomputed_block}",
            )
        half = "the half ones and fp32 ones" if o.fp32_gradients else "half" if o.autocast else ""
        row("Gradients", m.gradients, "one per trainable parameter", half)
        master = ", with the fp32 master copy of the weights (ZeRO's count)" if o.autocast else ""
        row("Optimizer state", m.optimizer_state, f"the state {o.optimizer} keeps per trainable parameter{master}",
            f"{o.optimizer} + fp32 master" if o.autocast else o.optimizer)
        row("Training total", m.training_total, "weights + buffers + saved for backward + gradients + optimizer state", style="bold")
    legend.append(NOT_COUNTED + ("; --fit --reserve SIZE sets them aside." if fit is None else "."))
    legend.extend(unknown_lines(analysis))
    if fit is not None:
        budget, reserve, batch = fit
        mode = "training" if train else "inference"
        kept = f"less {reserve:,} bytes reserved" if reserve else "nothing set aside by --reserve for what is not counted"
        at = f" at context {g.context}" if g is not None else ""
        largest = f"Largest batch that fits {budget}{at}" if solved == "batch" else f"Fewest devices that fit {budget} per device"
        legend.append(f"{largest} ({mode}; {kept}): {batch:,}")
    return Group(table, Text("\n".join(legend)))


def flops_table(analysis: Analysis, batch: int = 1, depth: int | None = None) -> Any:
    """Per-layer MACs and FLOPs (torch.utils.flop_counter's convention) and element-wise work;
    with `depth`, per block."""
    from rich.console import Group
    from rich.text import Text

    from archcalc.units import human_count

    t = analysis.totals
    table = FigureTable(
        title=f"{analysis.network.name}: FLOPs per example", title_justify="left",
        optional=("Element-wise", "Share", "Op", "MACs"),
    )
    table.add_column("Layer", overflow="fold")
    table.add_column("Op", overflow="fold")
    for column in ("MACs", "FLOPs", "Share"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("Element-wise", justify="right", style="dim", no_wrap=True)
    for row in fold(analysis, depth):
        macs, elementwise = row.total(lambda r: r.flops.macs), row.total(lambda r: r.flops.elementwise)
        if not macs and not elementwise:
            continue
        flops = row.total(lambda r: r.flops.flops)
        share = f"{flops / t.flops:.1%}" if isinstance(t.flops, int) and t.flops else ""
        table.add_row(row.path, row.op, count_text(macs), count_text(flops), share, count_text(elementwise))
    lines = [
        f"MACs per example:   {count_text(t.macs)} ({human_count(t.macs)}MAC)",
        f"FLOPs per example:  {count_text(t.flops)} ({human_count(t.flops)}FLOP)",
        f"Element-wise ops:   {count_text(t.elementwise_flops)} (norms, activations, pooling, adds, biases; not in FLOPs)",
    ]
    if batch != 1:
        lines.append(f"FLOPs at batch {batch}:  {count_text(batch * t.flops)}")
    lines.append(
        f"Training step:      {count_text(batch * analysis.total('training_flops'))} FLOPs at batch {batch} "
        "(forward, backward and recomputation; flops --train has them per layer)"
    )
    lines.append("Convention: FLOPs = 2 x multiply-accumulates of convolutions and linear layers, bias excluded (torch.utils.flop_counter).")
    lines.extend(unknown_lines(analysis))
    return Group(table, Text("\n".join(lines)))


def training_flops_table(analysis: Analysis, batch: Dim = 1, depth: int | None = None) -> Any:
    """Per-layer FLOPs of one training step (forward, backward, recomputation of checkpointed
    blocks; figures.training) and the totals at the batch, with the 6N check of a language model."""
    from rich.console import Group
    from rich.text import Text

    from archcalc.figures.training import training_json

    table = FigureTable(title=f"{analysis.network.name}: training FLOPs per example", title_justify="left", optional=("Op", "Recomputation"))
    table.add_column("Layer", overflow="fold")
    table.add_column("Op", overflow="fold")
    for column in ("Forward", "Backward", "Recomputation", "Step"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in fold(analysis, depth):
        step = row.total(lambda r: r.values["training_flops"].total)
        if step == 0:
            continue
        parts = [row.total(lambda r, k=k: getattr(r.values["training_flops"], k)) for k in ("forward", "backward", "recomputation")]
        table.add_row(row.path, row.op, *map(count_text, parts), count_text(step))
    j = training_json(analysis)
    lines = [
        f"Forward at batch {batch}:        {count_text(j['forward_flops_at_batch'])}",
        f"Backward at batch {batch}:       {count_text(j['backward_flops_at_batch'])} (input gradients where needed, weight gradients where trained)",
        f"Recomputation at batch {batch}:  {count_text(j['recomputation_flops_at_batch'])}"
        + (f" ({len(j['checkpointed_blocks'])} checkpointed block(s))" if j["checkpointed_blocks"] else " (no block checkpointed: --checkpoint)"),
        f"Step at batch {batch}:           {count_text(j['step_flops_at_batch'])}",
    ]
    if "tokens_per_step" in j:
        lines.append(
            f"Tokens per step: {count_text(j['tokens_per_step'])}; 6N per token (Kaplan et al. 2020, N = "
            f"{count_text(j['non_embedding_params'])} non-embedding parameters): {count_text(j['six_n_flops_at_batch'])}, "
            "leaving out attention's products and the output head (docs/flops.md)")
    lines.append("Convention: 2 FLOPs per multiply-accumulate of convolutions, linear layers and matrix products (torch.utils.flop_counter); element-wise work is not counted.")
    return Group(table, Text("\n".join(lines)))


def rf_table(analysis: Analysis) -> Any:
    """Per-layer receptive field size, effective stride and padding, and centre of unit 0; where
    the field depends on the unit's position, the smallest-largest size over units and why."""
    from rich.console import Group
    from rich.text import Text

    from archcalc.figures.receptive_field import ReceptiveField

    net = analysis.network
    table = FigureTable(
        optional=("Covers", "Centre", "Padding"),
        title=f"{net.name}: receptive fields on the {shape_text(net.input_shape[1:])} input "
        "(Araujo et al., Distill 2019)",
        title_justify="left",
    )
    table.caption = "one value where every spatial axis agrees; Covers: the field spans the input"
    table.add_column("Layer", overflow="fold")
    for column in ("Size", "Stride", "Padding", "Centre", "Covers"):
        table.add_column(column, justify="right", no_wrap=True)
    reasons: list[str] = []
    for r in analysis.layers:
        f = r.receptive_field
        if f is None:
            continue
        if not isinstance(f, ReceptiveField):
            table.add_row(r.path, "whole input", "", "", "", "yes", style="dim")
            continue
        covers = "yes" if f.covers(net.input_shape) else "no"
        if f.varies:
            if f.varies not in reasons:
                reasons.append(f.varies)
            size = "?" if f.smallest is None else "–".join(dict.fromkeys((_axes(f.smallest), _axes(f.size))))
            table.add_row(r.path, f"{size} *{reasons.index(f.varies) + 1}", "varies", "–", "–", covers)
            continue
        centre = tuple(f"{c:g}" if isinstance(c, float) else str(c) for c in f.center)
        note = " misaligned" if f.misaligned else ""
        table.add_row(
            r.path, _axes(f.size) + note, _axes(f.stride), _axes(f.padding), _axes(centre), covers,
        )
    if not reasons:
        return table
    notes = [
        "*: no closed form; the field depends on the unit's position. Size: the smallest–largest "
        "field over all units, on the input. Any unit's exact interval: "
        "archcalc rf SPEC --at LAYER --unit i,j"
    ]
    notes += [f"*{i}: from {reason}" for i, reason in enumerate(reasons, start=1)]
    return Group(table, Text("\n".join(notes)))


def unit_field_text(network: Any, path: str, unit: tuple[int, ...], interval: tuple[Any, ...]) -> str:
    """One unit's exact field: the input interval and its size per spatial axis."""
    names = {1: ["positions"], 2: ["rows", "columns"], 3: ["slices", "rows", "columns"]}.get(
        len(interval), [f"axis {a + 1}" for a in range(len(interval))]
    )
    where = f"{path} unit ({', '.join(map(str, unit))})"
    if interval[0] is None:
        return f"{where} reads padding only: no input element reaches it"
    parts = [f"{name} {a}..{b} ({b - a + 1})" for name, (a, b) in zip(names, interval)]
    whole = all(a == 0 and b == n - 1 for (a, b), n in zip(interval, network.input_shape[1:]))
    return f"{where} sees input " + ", ".join(parts) + (" (the whole input)" if whole else "")


def mismatch_table(verification: Any) -> Any:
    """The figures where the analysis and the executor disagree."""
    table = FigureTable(title="analysis and executor disagree", title_justify="left", title_style="bold red")
    for column in ("Layer", "Figure", "Analysed", "Measured"):
        table.add_column(column, no_wrap=column in ("Analysed", "Measured"), overflow="fold")
    for m in verification.mismatches:
        table.add_row(m.layer, m.figure, m.analysed, m.measured)
    return table


def solve_table(network_name: str, solutions: list[Any], constraints: Any = ()) -> Any:
    """Valid input sizes per axis, and the sizes for which no strided layer drops pixels."""
    from rich.console import Group
    from rich.text import Text

    table = FigureTable(title=f"{network_name}: valid input sizes", title_justify="left")
    for column in ("Axis", "Smallest valid", "Valid", "No pixel dropped for", "At the spec's size", "Nearest size that drops none"):
        table.add_column(column)
    notes = []
    for s in solutions:
        def classes(rs: tuple[int, ...]) -> str:
            return " or ".join(f"{s.name} = {s.modulus}k + {r}" if r else f"{s.name} = {s.modulus}k" for r in rs) or "no size"

        valid = "every size" if len(s.valid) == s.modulus else classes(s.valid)
        if s.largest is not None:
            valid = f"{s.smallest} to {s.largest}"
        if s.at_size is None:
            at = "–"
        elif s.dropping:
            at = f"{s.at_size}: {len(s.dropping)} layer(s) drop pixels"
            notes += [f"{d.path} drops {d.lost} input row(s)/column(s) on axis {s.name} at {s.at_size}" for d in s.dropping]
        else:
            at = f"{s.at_size}: none dropped"
        table.add_row(s.name, str(s.smallest) if s.smallest else "none up to 2^20", valid, classes(s.residues), at, str(s.nearest) if s.nearest else "–")
    notes += constraint_lines(constraints)
    return Group(table, Text("\n".join(notes))) if notes else table


def fit_table(name: str, found: Any, train: bool, reserve: int = 0) -> Any:
    """What a memory budget (less `reserve` bytes) allows, solved from the formula."""
    from rich.console import Group
    from rich.text import Text

    from archcalc.units import human_bytes

    less = f" less {human_bytes(reserve)} reserved" if reserve else ""
    title = f"{name}: what fits {human_bytes(found.budget + reserve)}{less} ({'training' if train else 'inference'})"
    table = FigureTable(title=title, title_justify="left", show_header=False)
    table.add_column("What", overflow="fold")
    table.add_column("Value", overflow="fold")
    table.add_row("Fixed (weights, buffers" + (", gradients, optimizer)" if train else ")"), f"{count_text(found.fixed)} bytes")
    table.add_row("Per example", f"{found.per_example} bytes")
    table.add_row("Largest batch", str(found.batch))
    if found.batch_at_defaults is not None:
        table.add_row("  at the spec's sizes", f"{found.batch_at_defaults:,}")
    if found.given_batch is not None:
        what = f"{found.sizes[0]}" if len(found.sizes) == 1 else "square input"
        value = f"{found.square_input:,}" if found.square_input else "none fits"
        if found.limit is not None:
            value += " (the longest the network takes; memory allows more)"
        table.add_row(f"Largest {what} at batch {found.given_batch}", value)
    if found.curve:
        table.add_row(f"Largest batch per {found.sizes[0]}", "")
        for n, b in found.curve:
            table.add_row(f"  {found.sizes[0]} = {n:,}", f"{b:,}")
    return Group(table, Text(NOT_COUNTED + (f"; {reserve:,} bytes reserved for them." if reserve else "; --reserve SIZE sets them aside.")))


def comparison_table(comparison: Any) -> Any:
    """Networks side by side: the best value of each ranked row in bold green, ratios to the first."""
    from rich.text import Text

    from archcalc.units import human_bytes, human_count

    def value_text(kind: str, value: Any) -> str:
        if value is None:
            return "–"
        if kind == "shape":
            return shape_text(value)
        if kind == "field":
            return _axes(value)
        if kind == "bytes":
            return human_bytes(value)
        if kind == "flops":
            return human_count(value)
        return count_text(value)

    o = comparison.options
    table = FigureTable(
        title=f"Comparison (memory at batch {o.batch}, {precision_note(o)}, {o.optimizer}"
        f"{f', attention {comparison.attention}' if comparison.attention else ''}{sharding_note(o)}"
        f"{', generating with a KV cache' if o.kv_cache else ''}; binary units)",
        title_justify="left",
        caption=f"bold green: the lowest cost in the row; ×: ratio to {comparison.names[0]}",
        caption_justify="left",
    )
    table.add_column("", overflow="fold")
    for name in comparison.names:
        table.add_column(name, justify="right", no_wrap=True)
    for metric in comparison.metrics:
        cells = []
        for i, value in enumerate(metric.values):
            cell = Text(value_text(metric.kind, value), style="bold green" if i in metric.best else "")
            ratio = metric.ratio(i) if i else None
            if ratio is not None:
                cell.append(f" ×{ratio:.2f}", style="dim")
            cells.append(cell)
        table.add_row(metric.label, *cells)
    return table


def zoo_table(analyses: dict[str, Analysis]) -> Any:
    """The built-in specs by name: input, parameters, FLOPs and output shape of each."""
    from archcalc.units import human_count

    table = FigureTable(title="archcalc's built-in specs", title_justify="left", optional=("Output", "Input"))
    table.add_column("Name", overflow="fold")
    for column in ("Input", "Params", "FLOPs", "Output"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, result in analyses.items():
        table.add_row(
            name, shape_text(result.network.input_shape), count_text(result.totals.params),
            human_count(result.totals.flops), shape_text(result.output_shape),
        )
    return table
