"""The `archcalc` command line: parse options, call the library, render. Nothing else."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import click

from archcalc.errors import ArchcalcError, OptionError, ShapeError, quote
from archcalc.options import FigureChoice, WholeNumber, parse_batch, parse_input, parse_unit

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

EXIT_BAD_INPUT = 2


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Remember --quiet for the whole invocation (click shares ctx.meta with every subcontext)."""
    if value:
        ctx.meta["archcalc.quiet"] = True


# `--quiet`/`-q`: no notes on stderr (which built-in spec was used, which file was written)
QUIET_DECLS = ("--quiet", "-q")
QUIET_ATTRS: dict[str, Any] = {"is_flag": True, "expose_value": False, "callback": _quiet, "help": "Print no notes on stderr (errors and warnings still show)."}


class _Group(click.Group):
    """Turns every ArchcalcError into one message on stderr and exit status 2 (no traceback), and
    gives every command --quiet, as the group has it."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.append(click.Option(QUIET_DECLS, **QUIET_ATTRS))
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchcalcError as exc:
            say(f"archcalc: error: {exc}")
            ctx.exit(EXIT_BAD_INPUT)


def say(message: str, err: bool = True) -> None:
    """A line from archcalc itself (an error, a note), with the user text in it shown as text."""
    from archcalc.render.escape import terminal

    click.echo(terminal(message), err=err)


def note(message: str) -> None:
    """A note on stderr (which built-in spec was used, which file was written), unless --quiet."""
    if not click.get_current_context().meta.get("archcalc.quiet"):
        say(message)


STDIN = "-"  # the SPEC argument that reads the spec from standard input
STDIN_NAME = "<stdin>"  # how messages name it: `<stdin>:3: ...`


def _spec_path(spec: str) -> str:
    """The file a spec argument names (a zoo name says which built-in file it used, on stderr)."""
    from archcalc.spec.zoo import resolve

    path, builtin = resolve(spec)
    if builtin:
        note(f"using the built-in spec {path}")
    return str(path)


def _spec_data(spec: str) -> tuple[Any, str]:
    """The parsed spec and the name messages give it: a file, a zoo name, or `-` for standard
    input (read once per command, bounded like a file, then parsed as often as needed)."""
    from archcalc.spec.source import parse_text, read_file, read_stream

    if spec != STDIN:
        path = _spec_path(spec)
        return read_file(path), path
    meta = click.get_current_context().meta
    if "archcalc.stdin" not in meta:
        stream = sys.stdin.buffer  # bytes: read_stream decodes and bounds them as a file's
        if stream.isatty():
            note("reading the spec from standard input (end it with Ctrl-D)")
        meta["archcalc.stdin"] = read_stream(stream, STDIN_NAME)
    return parse_text(meta["archcalc.stdin"], STDIN_NAME), STDIN_NAME


def _network(spec: str, input_shape: str | None, symbolic: bool = False) -> Any:
    from archcalc.spec.graph import load_data

    data, file = _spec_data(spec)
    return load_data(data, file, input_shape=parse_input(input_shape), symbolic=symbolic)


def _analysis(spec: str, input_shape: str | None, symbolic: bool = False, options: Any = None) -> Any:
    from archcalc.analysis import analyze

    return analyze(_network(spec, input_shape, symbolic), options)


def _symbolic_asked(ctx: click.Context) -> bool:
    """Symbolic mode was asked for: --symbolic, or a size named in --input (3,H,W)."""
    named = any(isinstance(d, str) for d in parse_input(ctx.params.get("input_shape")) or ())
    return bool(ctx.params.get("symbolic")) or named


def _batch_value(batch: str, symbolic: bool | None = None, option: str = "--batch") -> Any:
    """The batch (or another count: `option`, --devices, --tp) as an int, or as a positive-integer
    symbol when symbolic mode was asked for (`symbolic` None: as the command's --symbolic and
    --input say), so a mistyped --batch is an error rather than a formula."""
    value = parse_batch(batch, option)
    if isinstance(value, str):
        ctx = click.get_current_context()
        if not (_symbolic_asked(ctx) if symbolic is None else symbolic):
            named = "name the input's sizes, as in --input 3,H,W"
            ways = f"add --symbolic, or {named}" if any(p.name == "symbolic" for p in ctx.command.params) else named
            raise OptionError(
                f"{option} {quote(value)} is a symbol, which only symbolic mode takes: {ways}; "
                f"for a number give digits, like {option} 32"
            )
        from archcalc.symbolic.symbols import symbol

        return symbol(value)
    return value


def _memory_options(batch: str | int, symbolic: bool | None = None, optimizer: str = "adam", **policy: Any) -> Any:
    """The MemoryOptions of every command, checked: `batch` as given (--batch text, or a whole
    number), `policy` as `policy_options` collects it (the options' names are MemoryOptions' fields)."""
    from archcalc.figures.memory import MemoryOptions, check_options

    value = _batch_value(batch, symbolic) if isinstance(batch, str) else batch
    for name in ("devices", "tp"):  # counts that may be symbols, as the batch
        if isinstance(policy.get(name), str):
            policy[name] = _batch_value(policy[name], symbolic, "--" + name)
    options = MemoryOptions(batch=value, optimizer=optimizer.lower(), **policy)
    check_options(options)
    return options


def _print(renderable: Any) -> None:
    """Print through archcalc.render.terminal's console: user text is never markup or an escape sequence."""
    from archcalc.render.terminal import Console, print_full_width

    console = Console()
    if console.is_terminal:
        console.print(renderable, crop=False)  # a figure too wide for the terminal wraps, never cut
    else:
        print_full_width(console, renderable)


def _complete_spec(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Shell completion of SPEC: files (the shell lists them), then the zoo's names that start
    with what was typed (bash shows files only when no name matches; zsh and fish show both)."""
    from click.shell_completion import CompletionItem

    from archcalc.spec.zoo import zoo_specs

    names = [CompletionItem(name, help="built-in spec") for name in zoo_specs() if name.startswith(incomplete)]
    return [CompletionItem(incomplete, type="file"), *names]


SPEC = click.argument("spec", shell_complete=_complete_spec)
INPUT = click.option("--input", "input_shape", metavar="C,H,W", help="Override the spec's input shape (batch excluded).")
BATCH = click.option("--batch", default="1", show_default=True, help="Examples per batch, or a symbol (B).")
SYMBOLIC = click.option("--symbolic", is_flag=True, help="Keep the spec's named sizes as symbols: every figure becomes a formula.")
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/json.md) and nothing else.")
ATTENTION = click.option(
    "--attention", type=click.Choice(["fused", "math"]), default="fused", show_default=True,
    help="What attention keeps for backward: fused (PyTorch's default SDPA kernel on the CPU: a log-sum-exp) or math (SDPBackend.MATH: the attention matrix).",
)


def _echo_json(document: Any) -> None:
    """Print one JSON document on stdout and nothing else (archcalc.render.json_out.dumps)."""
    from archcalc.render.json_out import dumps

    click.echo(dumps(document), nl=False)


def _format_or_json(fmt: str | None, as_json: bool) -> str | None:
    """--json is --format json: the format, once the two do not disagree."""
    if as_json and fmt not in (None, "json"):
        raise OptionError(f"--json is --format json; drop one of --json and --format {fmt}")
    return "json" if as_json else fmt


def _block_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    """--checkpoint layer3,layer4 as its names (the network checks them: figures.checkpointing)."""
    names = tuple(n.strip() for n in (value or "").split(","))
    if value is not None and not all(names):
        raise click.BadParameter(f"give block names separated by commas, e.g. layer3,layer4, or every-block; got {quote(value)}")
    return names if value is not None else ()


POLICY_OPTIONS = {
    "dtype": click.option("--dtype", default="float32", show_default=True, help="Every tensor's type under --precision fp32: float32, float64, int8 (float16, bfloat16: --precision fp16, bf16)."),
    "weight_dtype": click.option("--weight-dtype", default=None, help="Weight type when it differs from --dtype."),
    "optimizer": click.option("--optimizer", default="adam", show_default=True, help="sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, adamw, nadam, amsgrad."),
    "precision": click.option(
        "--precision", type=click.Choice(["fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed"]), default=None,
        help="fp32 (default); bf16, fp16: the model cast to half; bf16-mixed, fp16-mixed: torch.autocast's activations, "
        "half weights and gradients, an fp32 master copy with the optimizer (2+2+12 bytes per parameter for Adam).",
    ),
    "fp32_gradients": click.option("--fp32-gradients", is_flag=True, help="With a mixed --precision: fp32 gradients besides the half ones (+4 bytes per trainable parameter)."),
    "attention": ATTENTION,
    "dropout_mask": click.option(
        "--dropout-mask", type=click.Choice(["activation", "bool"]), default="activation", show_default=True,
        help="A dropout mask's element: the activation dtype (PyTorch on the CPU keeps the scaled mask) or bool (1 byte: CUDA's fused kernel).",
    ),
    "devices": click.option("--devices", metavar="N", default=None, help="Devices in all, tensor-parallel ones included (data-parallel replicas: N / --tp); figures become one device's. A symbol (N) with --symbolic, or with --fit to find the fewest devices."),
    "zero": click.option("--zero", type=click.IntRange(0, 3), default=0, show_default=True, help="ZeRO stage (FSDP) across the data-parallel devices: 1 splits the optimizer state, 2 also gradients, 3 also parameters."),
    "tp": click.option("--tp", metavar="T", default="1", show_default=True, help="Tensor-parallel degree: splits the layers marked `parallel: column|row` (Megatron-LM) and their activations."),
    "sequence_parallel": click.option("--sequence-parallel", is_flag=True, help="With --tp: Megatron's sequence parallelism, every activation split across the T devices."),
    "kv_cache": click.option(
        "--kv-cache", "kv_cache", is_flag=True,
        help="Inference is generation with a key/value cache (a decoder's kv_cache layers): the input's sequence is the context S; the inference peak is the larger of prefill over S tokens and one decoding step with the cache at S (docs/memory.md).",
    ),
    "checkpoint": click.option(
        "--checkpoint", metavar="BLOCKS|every-block", default=None, callback=_block_list,
        help="Activation checkpointing (torch.utils.checkpoint, non-reentrant) of these blocks: instance paths (layer3.1) or calls (layer3: each copy), comma-separated, or every-block (each copy of a repeated block).",
    ),
}
"""How the network is trained or run, by parameter name: each is a field of figures.memory.MemoryOptions."""


def policy_options(command: Any) -> Any:
    """Add POLICY_OPTIONS to a command, handed to it together as one `policy` dict (the keyword
    arguments of `_memory_options`), so an option added there reaches every command unedited."""

    @functools.wraps(command)
    def run(**kwargs: Any) -> Any:
        policy = {name: kwargs.pop(name) for name in POLICY_OPTIONS}
        return command(policy=policy, **kwargs)

    for option in reversed(POLICY_OPTIONS.values()):
        run = option(run)
    return run


def memory_options(command: Any) -> Any:
    """The options every memory figure depends on: --batch and the policy (`policy_options`)."""
    return BATCH(policy_options(command))


def _generation_mode(options: Any, train: bool) -> bool:
    """Generation with a key/value cache is inference: --kv-cache implies --infer, and refuses an explicit --train."""
    if not options.kv_cache:
        return train
    from click.core import ParameterSource

    if train and click.get_current_context().get_parameter_source("train") is not ParameterSource.DEFAULT:
        raise OptionError("--kv-cache sizes generation, which is inference: drop --train (or --kv-cache to size training)")
    return False


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Print the installed version (run from a checkout: pyproject.toml's) and exit."""
    if not value:
        return
    from archcalc.version import version

    found, installed = version()
    click.echo(f"archcalc, version {found}" + ("" if installed else " (not installed)"))
    ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version, help="Show the version and exit.")
@click.option(*QUIET_DECLS, **QUIET_ATTRS)
def main() -> None:
    """Exact shapes, parameters (and more) of a network described in a YAML/JSON spec.

    SPEC is a file, a built-in spec's name (`archcalc zoo` lists them), or - to read the spec
    from standard input.

    \b
    Examples:
      archcalc summary specs/resnet18.yaml
      archcalc analyze specs/resnet50.yaml --json
      cat specs/vgg16.yaml | archcalc summary -
    """


@main.command()
@SPEC
@INPUT
@SYMBOLIC
@click.option("--depth", type=WholeNumber(1), default=None, help="Fold blocks deeper than this many path components.")
@JSON
def summary(spec: str, input_shape: str | None, symbolic: bool, depth: int | None, as_json: bool) -> None:
    """Per-layer table of output shapes and parameters, with totals.

    \b
    Examples:
      archcalc summary specs/resnet18.yaml
      archcalc summary specs/resnet50.yaml --depth 1
      archcalc summary specs/alexnet.yaml --input 3,256,256
      archcalc summary specs/resnet18.yaml --input 3,H,W
    """
    if as_json:
        from archcalc.render.json_out import summary_json

        _echo_json(summary_json(_analysis(spec, input_shape, symbolic), depth))
        return
    from archcalc.render.tables import summary_table

    _print(summary_table(_analysis(spec, input_shape, symbolic), depth))


@main.command()
@SPEC
@INPUT
@SYMBOLIC
@memory_options
@click.option("--json", "as_json", is_flag=True, help="Print the JSON contract (docs/json.md) and nothing else.")
@click.option("--depth", type=WholeNumber(1), default=None, help="Fold blocks deeper than this many path components (the table; JSON lists every layer).")
def analyze(spec: str, input_shape: str | None, symbolic: bool, batch: str, policy: dict[str, Any], as_json: bool, depth: int | None) -> None:
    """Analyse a spec: shapes, parameters, FLOPs, receptive fields and memory, as a table or JSON.

    The table has a row per layer (per block with --depth): output shape, parameters, FLOPs
    per example, receptive field size, and the bytes of its output and of what it saves for
    backward at --batch; the totals follow.

    \b
    Examples:
      archcalc analyze specs/resnet50.yaml --depth 2 --batch 32
      archcalc analyze specs/resnet50.yaml --json
      archcalc analyze specs/vgg16.yaml --json --batch 32 --input 3,320,320 > vgg16.json
      archcalc analyze specs/resnet50.yaml --json --input 3,H,W --batch B
    """
    from archcalc.analysis import to_json

    options = _memory_options(batch, **policy)
    result = _analysis(spec, input_shape, symbolic, options)
    if as_json:
        click.echo(json.dumps(to_json(result), indent=2))
        return
    from archcalc.render.tables import analyze_table  # rich: only for the table

    _print(analyze_table(result, depth))


@main.command()
@SPEC
@INPUT
@SYMBOLIC
@memory_options
@click.option("--train/--infer", default=True, show_default=True, help="Training (saved activations, gradients, optimizer state) or inference only.")
@click.option("--fit", metavar="BUDGET", default=None, help="Find the largest batch that fits this budget, e.g. 16GiB.")
@click.option("--reserve", metavar="SIZE", default=None, help="With --fit: bytes to set aside for what archcalc does not count (CUDA context, cuDNN workspace, allocator rounding), e.g. 1GiB.")
@JSON
def memory(spec: str, input_shape: str | None, symbolic: bool, batch: str, policy: dict[str, Any], train: bool, fit: str | None, reserve: str | None, as_json: bool) -> None:
    """Memory of weights, activations (sum and inference peak) and a training step.

    Training keeps what PyTorch's autograd saves for backward (deduplicated by storage), plus
    gradients and optimizer state (SGD 0, momentum/Nesterov/Adagrad/RMSprop 1, Adadelta/Adam/
    AdamW/Nadam 2, AMSGrad 3 copies of the trainable parameters). Frozen layers have neither.

    \b
    Examples:
      archcalc memory specs/resnet18.yaml --batch 128
      archcalc memory specs/resnet50.yaml --optimizer sgd --precision bf16-mixed
      archcalc memory specs/vgg16.yaml --fit 16GiB --reserve 1GiB
      archcalc memory specs/resnet50.yaml --infer --dtype float16 --batch 64
      archcalc memory specs/resnet50.yaml --input 3,H,W --batch B
      archcalc memory specs/resnet50.yaml --fit 16GiB --symbolic --batch 32
      archcalc memory gpt2 --fit 1GiB --zero 3 --devices N --batch 8
      archcalc memory gpt2 --kv-cache --batch 8 --input 1024
      archcalc memory gpt2 --kv-cache --fit 24GiB --batch B --input S

    With --devices (or --zero, --tp) every figure is one device's (docs/memory.md, "Sharding");
    --fit BUDGET --devices N finds the fewest devices that fit instead of the largest batch.
    """
    from archcalc.figures.memory import largest_batch
    from archcalc.figures.params import parameter_counts
    from archcalc.figures.shapes import output_shapes
    from archcalc.options import parse_bytes, usable_budget

    devices = policy["devices"]
    solve_devices = fit is not None and devices is not None and not devices.strip().isdigit()
    options = _memory_options(batch, **{**policy, "devices": None} if solve_devices else policy)
    network = _network(spec, input_shape, symbolic)
    train = _generation_mode(options, train)
    if reserve is not None and fit is None:
        raise OptionError("--reserve sets bytes aside from the --fit budget: give --fit too, e.g. --fit 16GiB --reserve 1GiB")
    kept = parse_bytes(reserve) if reserve is not None else 0
    if solve_devices:
        _fit_devices(network, options, fit, kept, train, as_json)  # type: ignore[arg-type]
        return
    if as_json:
        from archcalc.analysis import analyze as run_json
        from archcalc.render.json_out import fit_document, memory_document

        found_json = None if fit is None else fit_document(network, options, parse_bytes(fit), train, kept)
        _echo_json(memory_document(run_json(network, options), train, found_json))
        return
    found = None
    if fit is not None:
        budget = usable_budget(parse_bytes(fit), kept)
        shapes = output_shapes(network)
        counts = parameter_counts(network, shapes)
        if network.symbolic:
            from archcalc.render.tables import fit_table
            from archcalc.symbolic.solve import fit as solve_fit

            _print(fit_table(network.name, solve_fit(network, shapes, counts, options, budget, train), train, kept))
            return
        found = (fit, kept, largest_batch(network, shapes, counts, options, budget, train))
    from archcalc.analysis import analyze as run
    from archcalc.render.tables import memory_table

    _print(memory_table(run(network, options), train, found))


def _fit_devices(network: Any, options: Any, fit: str, reserve: int, train: bool, as_json: bool) -> None:
    """memory --fit BUDGET --devices N: the fewest devices whose per-device total fits, and the
    figures at that count (figures.memory.fewest_devices)."""
    from dataclasses import replace

    from archcalc.analysis import analyze as run
    from archcalc.figures.memory import fewest_devices
    from archcalc.figures.params import parameter_counts
    from archcalc.figures.shapes import output_shapes
    from archcalc.options import parse_bytes, usable_budget

    if network.symbolic:
        raise OptionError("--fit with --devices N finds the fewest devices at the spec's sizes and the batch given: drop --symbolic (and name no sizes in --input)")
    budget = parse_bytes(fit)
    shapes = output_shapes(network)
    found = fewest_devices(network, shapes, parameter_counts(network, shapes), options, usable_budget(budget, reserve), train)
    analysis = run(network, replace(options, devices=found))
    if as_json:
        from archcalc.render.json_out import memory_document

        mode = "training" if train else "inference"
        _echo_json(memory_document(analysis, train, {"budget": budget, "reserve": reserve, "mode": mode, "devices": found}))
        return
    from archcalc.render.tables import memory_table

    _print(memory_table(analysis, train, (fit, reserve, found), solved="devices"))


@main.command()
@SPEC
@INPUT
@SYMBOLIC
@BATCH
@click.option("--depth", type=WholeNumber(1), default=None, help="Fold blocks deeper than this many path components, their figures summed.")
@click.option("--train", is_flag=True, help="Per layer, a training step's forward, backward and recomputation FLOPs.")
@POLICY_OPTIONS["checkpoint"]
@JSON
def flops(spec: str, input_shape: str | None, symbolic: bool, batch: str, depth: int | None, train: bool, checkpoint: tuple[str, ...], as_json: bool) -> None:
    """Multiply-accumulates and FLOPs per layer and in total, or per training step (--train).

    FLOPs follow torch.utils.flop_counter: 2 per multiply-add of convolutions and linear layers,
    bias not counted. Element-wise work (norms, activations, pooling, adds) is a separate column.
    A training step adds the backward (each input and weight gradient torch computes) and, with
    --checkpoint, the checkpointed blocks' forward run again; a language model's tokens per step
    and Kaplan et al.'s 6N per token are shown beside it (docs/flops.md).

    \b
    Examples:
      archcalc flops specs/resnet50.yaml
      archcalc flops specs/resnet50.yaml --depth 1
      archcalc flops specs/vgg16.yaml --input 3,320,320 --batch 8
      archcalc flops gpt2 --train --checkpoint every-block --batch 8
    """
    from archcalc.render.tables import flops_table, training_flops_table

    options = _memory_options(batch, checkpoint=checkpoint)
    if as_json:
        from archcalc.render.json_out import flops_json

        _echo_json(flops_json(_analysis(spec, input_shape, symbolic, options)))
        return
    table = training_flops_table if train else flops_table
    _print(table(_analysis(spec, input_shape, symbolic, options), options.batch, depth))


@main.command()
@SPEC
@INPUT
@SYMBOLIC
@click.option("--at", "at", metavar="LAYER", default=None, help="With --unit: the layer whose unit to trace.")
@click.option("--unit", "unit", metavar="I,J", default=None, help="With --at: the unit's position, one index per spatial axis.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rf(spec: str, input_shape: str | None, symbolic: bool, at: str | None, unit: str | None, as_json: bool) -> None:
    """Receptive field of every spatial layer: size, effective stride and padding, centre.

    Closed forms of Araujo, Norris & Sim (Distill, 2019): a dilated kernel spans d*(k-1)+1,
    pooling counts like a convolution, element-wise ops change nothing; over several paths the
    field is their union, and paths whose centre differs are flagged as misaligned. Where the
    field depends on the unit's position (transposed convolutions, uneven adaptive pooling,
    circular or reflect padding, paths with different strides) the table says so and gives the
    smallest and largest field over all units; --at LAYER --unit I,J gives the exact input
    interval of one unit, propagated backward through every path.

    \b
    Examples:
      archcalc rf specs/vgg16.yaml
      archcalc rf specs/resnet50.yaml --input 3,512,512
      archcalc rf specs/resnet50.yaml --at layer2.0.conv2 --unit 5,9 --json
    """
    if (at is None) != (unit is None):
        raise OptionError("--at LAYER and --unit I,J go together: give both, or neither")
    analysis = _analysis(spec, input_shape, symbolic)
    if at is None:
        if as_json:
            from archcalc.render.fields import fields_json

            click.echo(json.dumps(fields_json(analysis), indent=2))
            return
        from archcalc.render.tables import rf_table

        _print(rf_table(analysis))
        return
    from archcalc.figures.receptive_field import unit_field
    from archcalc.figures.shapes import output_shapes
    from archcalc.render.tables import unit_field_text

    network = analysis.network
    if network.symbolic:
        raise OptionError("--at needs numeric input sizes: drop --symbolic and give --input as numbers")
    indices = parse_unit(unit)  # type: ignore[arg-type]
    interval = unit_field(network, output_shapes(network), at, indices)
    if as_json:
        from archcalc.render.fields import unit_json

        click.echo(json.dumps(unit_json(at, indices, interval), indent=2))  # type: ignore[arg-type]
        return
    click.echo(unit_field_text(network, at, indices, interval))


@main.command()
@SPEC
@INPUT
@click.option("--batch", type=WholeNumber(1), default=1, show_default=True, help="Examples per batch for the memory figures: 1 (per example), as memory, analyze and flops; give your training batch to size training memory.")
@click.option("--optimizer", default="adam", show_default=True, help="Optimizer whose state counts in the training total.")
@ATTENTION
@click.option("--format", "fmt", type=click.Choice(["markdown", "html", "json"]), default=None, help="Write the report in this format instead of the terminal view.")
@click.option("--output", "-o", default=None, help="File for --format (default: stdout).")
@click.option("--ignore", multiple=True, metavar="RULE", help="Silence a finding rule (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def report(spec: str, input_shape: str | None, batch: int, optimizer: str, attention: str, fmt: str | None, output: str | None, ignore: tuple[str, ...], as_json: bool) -> None:
    """The design review: the network at a glance, its blocks, its stages, and findings.

    Findings come with a severity, the layers concerned, the figure that triggered them and the
    rule's source. Silence a rule with --ignore RULE or `ignore: [RULE]` in the spec. Memory is
    per example (batch 1) as in memory, analyze and flops, and the report says at which batch;
    pass --batch with your training batch to review training memory.

    \b
    Examples:
      archcalc report resnet50
      archcalc report specs/vgg16.yaml --batch 64 --ignore dense-heavy
      archcalc report densenet121 --format markdown -o review.md
    """
    fmt = _format_or_json(fmt, as_json)
    from archcalc.render.report_format import FORMATS, terminal
    from archcalc.review.report import build_report

    options = _memory_options(batch, optimizer=optimizer, attention=attention)
    result = build_report(_network(spec, input_shape), options, ignore)
    if fmt is None:
        if output is not None:
            raise OptionError("--output needs --format (markdown, html or json)")
        _print(terminal(result))
        return
    _write(FORMATS[fmt](result), output, spec)


def _named_input(spec: str, input_shape: str | None) -> tuple[Any, Any]:
    """The numeric network and one with its input sizes named (archcalc.symbolic.named)."""
    from archcalc.symbolic.named import named_input

    data, file = _spec_data(spec)
    return named_input(data, file, parse_input(input_shape))


@main.command()
@SPEC
@INPUT
@click.option("--what", type=FigureChoice("formula"), default="memory", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "latex", "python", "json"]), default=None, help="text (the default), latex, python or json.")
@memory_options
@click.option("--output", "-o", default=None, help="Write to this file instead of stdout.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def formula(spec: str, input_shape: str | None, what: str, fmt: str | None, batch: str, policy: dict[str, Any], output: str | None, as_json: bool) -> None:
    """Every figure as an exact formula in the input's sizes (and the batch B).

    Spatial sizes are the spec's own names, or H, W (L; D, H, W) by default; `--batch B` keeps
    the batch symbolic. The Python format is a module of plain functions in integer arithmetic
    that runs without archcalc or sympy.

    \b
    Examples:
      archcalc formula resnet50 --what memory --batch B
      archcalc formula resnet18 --what shapes --format latex -o shapes.tex
      archcalc formula vgg16 --what flops --format python -o vgg16_flops.py
    """
    fmt = _format_or_json(fmt, as_json) or "text"
    from archcalc.analysis import analyze as run
    from archcalc.symbolic.formula import gather, modulus, render

    numeric, network = _named_input(spec, input_shape)
    options = _memory_options(batch, symbolic=True, **policy)
    try:
        analysis = run(network, options)
    except ShapeError as exc:
        if network.symbols.keys() & set(map(str, parse_input(input_shape) or ())) or numeric.symbolic:
            raise  # sizes the user or the spec named: their error
        # a network that takes one input size only (ViT's position embedding): formulas in the batch
        note(f"{numeric.name} takes its input at {'x'.join(map(str, numeric.input_shape))} only (layer '{exc.layer}': {exc.message}); the formulas are in the batch")
        network, analysis = numeric, run(numeric, options)
    text = render(gather(analysis, what), fmt, modulus(network))
    _write(text, output, spec)


def _write(text: str, output: str | None, spec: str) -> None:
    """Print, or write a file that is not the spec."""
    if output is None:
        click.echo(text, nl=False)
        return
    from archcalc.spec.zoo import resolve

    _write_file(output, [] if spec == STDIN else [str(resolve(spec)[0])], lambda file: file.write(text))


def _write_file(
    target: str, inputs: list[str], fill: Callable[[IO[Any]], None], option: str = "--output",
    suffixes: tuple[str, ...] = (), binary: bool = False, what: str = "",
) -> None:
    """Every file a command writes: checked against its inputs and written atomically by
    archcalc.render.files, then named on stderr (`what`: what was written, e.g. `4 rows to `)."""
    from archcalc.render.files import write

    write(target, inputs, fill, option, suffixes, binary)
    note(f"wrote {what}{target}")


@main.command()
@SPEC
@INPUT
@click.option("--valid-inputs", is_flag=True, required=True, help="Solve for the input sizes every layer accepts.")
@JSON
def solve(spec: str, input_shape: str | None, valid_inputs: bool, as_json: bool) -> None:
    """Solve the shape formulas: the smallest valid input, and the sizes that lose no pixels.

    A strided layer whose last window stops short of the input's end drops rows or columns
    (the floor in the output size). The solver finds the residue classes of sizes, such as
    H = 32k + 1, for which no layer does, and names the layers that drop pixels at the spec's size.

    \b
    Examples:
      archcalc solve resnet50 --valid-inputs
      archcalc solve specs/vgg16.yaml --valid-inputs --input 3,H,W
      archcalc solve resnet50 --valid-inputs --json
    """
    from archcalc.figures.shapes import merge_constraints, output_shapes
    from archcalc.render.tables import solve_table
    from archcalc.symbolic.named import sizes_at
    from archcalc.symbolic.solve import valid_inputs as solve_inputs

    numeric, network = _named_input(spec, input_shape)
    if as_json:
        from archcalc.render.json_out import solve_json

        _echo_json(solve_json(network.name, solve_inputs(network, sizes_at(numeric, network)), merge_constraints(network, output_shapes(network))))
        return
    _print(solve_table(network.name, solve_inputs(network, sizes_at(numeric, network)), merge_constraints(network, output_shapes(network))))


@main.command()
@SPEC
@INPUT
@click.option("--batch", type=WholeNumber(1), default=2, show_default=True, help="Examples per batch (at least 2 catches shapes that hold only at batch 1).")
@click.option("--seed", type=WholeNumber(0), default=0, show_default=True, help="Seed of the random weights and input.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--max-memory", metavar="SIZE", default=None, help="Refuse to run when weights, activations and temporaries would pass this (default: half the available memory), e.g. 4GiB.")
@click.option("--json", "as_json", is_flag=True, help="Print the checked figures and mismatches as JSON (docs/json.md); the exit status is the same.")
def verify(spec: str, input_shape: str | None, batch: int, seed: int, dtype: str, max_memory: str | None, as_json: bool) -> None:
    """Run the spec forward with NumPy and check the analysis against what happened.

    Every layer's output shape and parameter count, and the peak bytes of live activations,
    must equal the analysis. Exit 0 when all agree, 1 with a table of mismatches otherwise.

    \b
    Examples:
      archcalc verify specs/resnet18.yaml
      archcalc verify specs/vgg16.yaml --batch 2 --input 3,64,64 --seed 7
      archcalc verify resnet18 --json > checked.json
    """
    from archcalc.options import parse_bytes
    from archcalc.render.tables import mismatch_table
    from archcalc.render.terminal import progress
    from archcalc.verify import verify as run_verify

    cap = parse_bytes(max_memory) if max_memory else None
    network = _network(spec, input_shape)
    with progress(len(network.order), "running") as update:
        result = run_verify(network, batch=batch, dtype=dtype, seed=seed, max_memory=cap, progress=update)
    if as_json:
        from archcalc.render.json_out import verify_json

        _echo_json(verify_json(result, seed))
        sys.exit(1 if result.mismatches else 0)
    if result.mismatches:
        _print(mismatch_table(result))
        sys.exit(1)
    say(
        f"verified {len(network.order)} layers of {network.name}: shapes, parameters and the "
        f"inference peak ({result.peak_bytes:,} bytes at batch {batch}) agree",
        err=False,
    )


@main.command()
@JSON
def zoo(as_json: bool) -> None:
    """List the built-in specs with their parameters and FLOPs.

    A built-in spec can be named without its path from any directory:
    `archcalc memory resnet18` uses it when no file of that name exists here.

    \b
    Examples:
      archcalc zoo
      archcalc zoo --json
    """
    from archcalc.analysis import analyze
    from archcalc.render.tables import zoo_table
    from archcalc.spec.graph import load
    from archcalc.spec.zoo import zoo_specs

    analyses = {name: analyze(load(str(path))) for name, path in zoo_specs().items()}
    if as_json:
        from archcalc.render.json_out import zoo_json

        _echo_json(zoo_json(analyses))
        return
    _print(zoo_table(analyses))


@main.command("graph")
@SPEC
@INPUT
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "graphml", "json"]), default=None, help="Graphviz DOT (the default), a Mermaid flowchart, GraphML, or JSON nodes and edges.")
@click.option("--depth", type=WholeNumber(1), default=None, help="Fold blocks deeper than this many path components into one node each.")
@click.option("--output", "-o", default=None, help="Write to this file instead of stdout.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def graph_command(spec: str, input_shape: str | None, fmt: str | None, depth: int | None, output: str | None, as_json: bool) -> None:
    """Export the layer graph: nodes with op, output shape and parameters; edges between them.

    Skip connections (an input that is not the node just before) are dashed, inputs of a
    concatenation blue. With --depth, every block below that depth becomes one node labelled
    with its block name, its parameters summed.

    \b
    Examples:
      archcalc graph resnet18 --format mermaid --depth 1
      archcalc graph specs/resnet50.yaml --depth 2 -o resnet50.dot   # then: dot -Tsvg resnet50.dot
      archcalc graph densenet121 --format graphml -o densenet121.graphml
    """
    fmt = _format_or_json(fmt, as_json) or "dot"
    from archcalc.render.graph_export import FORMATS, collapse

    layer_graph = collapse(_analysis(spec, input_shape), depth)
    if fmt == "mermaid" and len(layer_graph.edges) > 500:
        click.echo(f"archcalc: warning: {len(layer_graph.edges)} edges; Mermaid draws at most 500 unless maxEdges is raised (try --depth)", err=True)
    _write(FORMATS[fmt](layer_graph), output, spec)


@main.command("compare")
@click.argument("specs", nargs=-1, required=True, shell_complete=_complete_spec)
@INPUT
@memory_options
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON and nothing else.")
def compare_command(specs: tuple[str, ...], input_shape: str | None, batch: str, policy: dict[str, Any], as_json: bool) -> None:
    """Networks side by side: parameters, FLOPs, memory, receptive field, depth and output.

    Costs are ranked (the lowest in bold green) and each figure is also given as a ratio to the
    first network. Depth counts the convolutions and linear layers on the longest path from input
    to output (ResNet-50: 50); "Conv/linear layers" counts all of them.

    \b
    Examples:
      archcalc compare resnet18 resnet50
      archcalc compare resnet50 mobilenet_v2 specs/mine.yaml --batch 64
      archcalc compare vgg16 resnet50 --json
    """
    from archcalc.analysis import analyze as run
    from archcalc.compare import check_names, compare, comparison_json
    from archcalc.render.tables import comparison_table

    options = _memory_options(batch, **policy)
    networks = [_network(s, input_shape) for s in specs]
    check_names(networks)
    result = compare([run(n, options) for n in networks])
    if as_json:
        click.echo(json.dumps(comparison_json(result), indent=2))
    else:
        _print(comparison_table(result))


_GRID_SUFFIXES = (".csv", ".json")


def _sweep_progress() -> Any:
    """A progress bar on stderr for a pass over a sweep's grid, when stderr is a terminal."""
    from contextlib import nullcontext

    from archcalc.render.terminal import progress

    return progress(1, "sweep") if sys.stderr.isatty() else nullcontext()


@main.command("sweep")
@SPEC
@click.option("--batch", default="1", show_default=True, metavar="N|A..B[:S]", help="Batch size, or a range: A..B (both ends included), A..B:S (every S-th).")
@click.option("--input", "input_shape", metavar="C,H,W", default=None, help="Input shape (batch excluded); any size may be a range, e.g. 3,64..512:32,224.")
@click.option("--what", type=FigureChoice("sweep"), default="memory", show_default=True, help="Memory in bytes (the training or inference total), or FLOPs per batch.")
@click.option("--train/--infer", default=True, show_default=True, help="Training total, or inference total (weights and the inference peak).")
@policy_options
@click.option("--output", "-o", metavar="FILE.csv|FILE.json", default=None, help="Write every grid point, one row each, instead of the table.")
@click.option("--plot", metavar="FILE.png", default=None, help="Draw the figure against the first swept variable (needs matplotlib: pip install 'archcalc[plot]').")
def sweep_command(spec: str, batch: str, input_shape: str | None, what: str, train: bool, policy: dict[str, Any], output: str | None, plot: str | None) -> None:
    """Memory or FLOPs over a grid of batch sizes and input shapes, exactly.

    Every range becomes a symbol (B for the batch; for the input the spec's own names, else
    C, H, W, D); the figure is derived once as a formula and evaluated over the grid with
    NumPy in integer arithmetic, a million points at a time. A grid has at most 1,000,000,000
    points; the table shows 20 of them, -o writes them all (about 24 bytes and 0.4 µs a row).

    \b
    Examples:
      archcalc sweep resnet50 --batch 1..512 --input 3,64..512:32,64..512:32
      archcalc sweep resnet50 --batch 1..256 --infer --dtype float16 -o resnet50.csv
      archcalc sweep specs/vgg16.yaml --what flops --input 3,32..512,224 --plot vgg16.png
    """
    from archcalc.render.files import check_target
    from archcalc.render.sweep import PLOT_SUFFIXES
    from archcalc.spec.zoo import resolve
    from archcalc.symbolic.sweep import parse_range, parse_shape
    from archcalc.symbolic.sweep import sweep as run_sweep

    if spec == STDIN:
        raise OptionError("sweep reads its spec from a file or the zoo, not standard input: save the spec and give its path")
    path, builtin = resolve(spec)
    inputs = [str(path)]
    batches = parse_range(batch, "--batch")
    shape = parse_shape(input_shape) if input_shape is not None else None
    # the targets are checked before the sweep (which can take a while), and again as written
    fmt = check_target(output, inputs, "--output", _GRID_SUFFIXES) if output is not None else None
    if plot is not None:
        check_target(plot, inputs, "--plot", PLOT_SUFFIXES)
        if not (batches.swept or any(r.swept for r in shape or ())):
            raise OptionError("--plot needs a range to draw along, e.g. --batch 1..256 or --input 3,64..512,224")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise OptionError("--plot needs matplotlib, an optional extra: pip install 'archcalc[plot]'") from None
    if policy["kv_cache"]:
        raise OptionError(
            "sweep does not take --kv-cache: for generation's largest batch per context use "
            "`memory --kv-cache --fit BUDGET --batch B --input S`, for its formulas `formula --kv-cache`"
        )
    if builtin:
        note(f"using the built-in spec {path}")
    options = _memory_options(1, **policy)
    with _sweep_progress() as update:
        result = run_sweep(str(path), batches, shape, what=what, train=train, options=options, progress=update)
    if output is None:
        from archcalc.render.sweep import sweep_table

        _print(sweep_table(result))
    else:
        from archcalc.symbolic.sweep import write_csv, write_json

        writer = write_json if fmt == ".json" else write_csv
        rows = f"{result.points:,} row{'s' if result.points != 1 else ''} to "
        from archcalc.render.files import write

        with _sweep_progress() as update:  # the note after it: the bar would erase it
            write(output, inputs, lambda file: writer(result, file, update), "--output", _GRID_SUFFIXES)
        note(f"wrote {rows}{output}")
    if plot is not None:
        from pathlib import Path

        from archcalc.render.sweep import draw

        drawing = Path(plot).suffix[1:].lower()
        _write_file(plot, inputs, lambda file: draw(result, file, drawing), "--plot", PLOT_SUFFIXES, binary=True)


class _OutputSchemas(click.Choice):
    """The commands whose --json output has a shipped schema, listed when --help is asked for."""

    def __init__(self) -> None:
        from archcalc.schemas import output_schemas

        super().__init__(list(output_schemas()))


@main.command("export")
@SPEC
@INPUT
@click.option("--to", "target", type=click.Choice(["pytorch", "onnx"]), required=True, help="pytorch: Python source of an nn.Module; onnx: that module through torch.onnx.export.")
@click.option("--output", "-o", required=True, help="The file to write (.py for pytorch, .onnx for onnx).")
def export_command(spec: str, input_shape: str | None, target: str, output: str) -> None:
    """Write the spec as a PyTorch module, or as ONNX through that module.

    The module's named_parameters() and named_buffers() name each array as the spec does (layer
    path, then the op's array name: layer1.0.conv1.weight); its forward takes the batch first and
    computes what `archcalc verify` runs. Sizes must be numbers (give --input for a symbolic spec).

    \b
    Examples:
      archcalc export resnet18 --to pytorch -o resnet18.py
      archcalc export specs/unet.yaml --input 3,64,64 --to onnx -o unet.onnx
    """
    from archcalc.spec.zoo import resolve

    inputs = [] if spec == STDIN else [str(resolve(spec)[0])]
    network = _network(spec, input_shape)
    if target == "pytorch":
        from archcalc.bridges.torch_export import torch_source

        text = torch_source(network)
        _write_file(output, inputs, lambda file: file.write(text), "--output", (".py",))
        return
    from archcalc.bridges.onnx_export import onnx_bytes
    from archcalc.render.files import check_target

    check_target(output, inputs, "--output", (".onnx",))  # before the trace, which takes a while
    model = onnx_bytes(network)
    _write_file(output, inputs, lambda file: file.write(model), "--output", (".onnx",), binary=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Accepted for uniformity: the schema is JSON already.")
@click.option("--output-of", "command", type=_OutputSchemas(), default=None, help="Instead: the JSON Schema of this command's --json output (docs/json.md).")
def schema(as_json: bool, command: str | None) -> None:
    """Print the JSON Schema of the spec format (for editor completion and validation).

    \b
    Examples:
      archcalc schema > archcalc.spec.schema.json
      archcalc schema --output-of summary > summary.schema.json
    """
    if command is not None:
        from archcalc.schemas import output_schema

        _echo_json(output_schema(command))
        return
    from archcalc.spec.schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2))


@main.group("import", cls=_Group)
def import_() -> None:
    """Import a model from another framework as a spec (docs/import-export.md).

    \b
    Examples:
      archcalc import torch torchvision.models:resnet50 --input 3,224,224 -o resnet50.yaml
      archcalc import torch model.pt2 -o net.yaml
      archcalc import onnx resnet18.onnx -o resnet18.yaml
    """


def _torch_input(text: str | None) -> tuple[int, ...] | None:
    """--input for tracing: sizes >= 1, batch excluded (`3,224,224`)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() and 0 < int(p) < 1 << 20 for p in parts):
        raise OptionError(f"--input must be sizes >= 1 without the batch, like 3,224,224; got {quote(text)}")
    return tuple(int(p) for p in parts)


@import_.command("torch")
@click.argument("source", metavar="PACKAGE.MODULE:CALLABLE|FILE.pt2")
@click.option("--args", "args_json", default=None, metavar="JSON", help="Keyword arguments of the callable, as a JSON object, e.g. '{\"num_classes\": 10}'.")
@click.option("--input", "input_shape", default=None, metavar="C,H,W", help="The input shape to trace with, batch excluded (not for a .pt2 file, which has its own).")
@click.option("-o", "--output", required=True, metavar="FILE.yaml", help="The spec file to write.")
@click.option("--opaque", is_flag=True, help="Keep an operation archcalc has no op for as an `opaque` layer (traced shape, parameter count; FLOPs and memory unknown) instead of stopping.")
def import_torch(source: str, args_json: str | None, input_shape: str | None, output: str, opaque: bool) -> None:
    """Import a PyTorch model as a spec: a module a callable builds, or a torch.export `.pt2` file.

    The model is captured with torch.export; each operator becomes an archcalc op named by its
    module path, repeated modules become blocks with `repeat`. An operator archcalc has no op
    for stops the import with the list of them (or, with --opaque, becomes an `opaque` layer).
    The callable is the user's own code and runs. Needs `pip install 'archcalc[torch]'`.

    \b
    Examples:
      archcalc import torch torchvision.models:resnet50 --input 3,224,224 -o resnet50.yaml
      archcalc import torch mypkg.nets:UNet --args '{"depth": 4}' --input 1,256,256 -o unet.yaml
      archcalc import torch model.pt2 -o net.yaml
    """
    from archcalc.bridges.torch_import import import_model

    kwargs: Any = {}
    if args_json is not None:
        try:
            kwargs = json.loads(args_json)
        except ValueError as exc:
            raise OptionError(f"--args must be a JSON object: {exc}") from None
        if not isinstance(kwargs, dict):
            raise OptionError(f"--args must be a JSON object of keyword arguments, got {quote(args_json)}")
    shape = _torch_input(input_shape)
    text, warnings = import_model(source, kwargs, shape, opaque)
    for warning in warnings:
        say(f"archcalc: warning: {warning}")
    _write_file(output, [source] if source.endswith(".pt2") else [], lambda file: file.write(text), option="--output")


@import_.command("onnx")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input", "input_shape", default=None, metavar="SHAPE", help="The input without the batch: a default for each symbolic size (3,224,224) or a new name for it (3,H,W).")
@click.option("--opaque", is_flag=True, help="Keep each ONNX node archcalc has no op for as an opaque layer (traced shape, parameter count; FLOPs and saved tensors unknown) instead of stopping.")
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the spec to FILE instead of standard output.")
def import_onnx(model: str, input_shape: str | None, opaque: bool, output: str | None) -> None:
    """Write the spec of an ONNX model: nodes become layers, initializers their parameters.

    \b
    Examples:
      archcalc import onnx resnet18.onnx -o resnet18.yaml
      archcalc import onnx model.onnx --input 3,224,224 --opaque
    """
    from archcalc.bridges.onnx_import import onnx_network
    from archcalc.bridges.spec_writer import write_spec
    from archcalc.errors import BridgeError

    network = onnx_network(model, input_shape=parse_input(input_shape), opaque=opaque)
    if network.unmapped and not opaque:
        listed = "\n".join(f"  {u.what} at node '{u.where}'" for u in network.unmapped)
        raise BridgeError(
            f"{len(network.unmapped)} ONNX node(s) have no archcalc op (--opaque keeps each as an opaque layer):\n{listed}"
        )
    for layer in network.layers:
        if layer.op == "opaque":
            say(f"archcalc: warning: layer '{layer.path}' ({layer.source}) is opaque: its FLOPs and saved tensors are unknown")
    text = write_spec(network)
    if output is None:
        click.echo(text, nl=False)
    else:
        _write_file(output, [model], lambda file: file.write(text))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    """The `archcalc` program (console script and `python -m archcalc`): the command line, with the
    garbage collector's thresholds raised first. A run is short-lived and builds tens of objects
    per layer that all stay alive to the end: at the default thresholds (700, 10, 10) its full
    passes walk every live object again and again, about a third of the CPU time of a
    10,000-layer report. Collected rarely instead, reference cycles are still freed, just later."""
    import gc

    gc.set_threshold(100_000, 50, 100)
    main()
