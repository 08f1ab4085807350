"""The `archcalc` command line: parse options, call the library, render. Nothing else."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .errors import ArchcalcError, OptionError

EXIT_BAD_INPUT = 2


class _Group(click.Group):
    """Turns every ArchcalcError into one message on stderr and exit status 2 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchcalcError as exc:
            click.echo(f"archcalc: error: {exc}", err=True)
            ctx.exit(EXIT_BAD_INPUT)


def parse_input(text: str | None) -> tuple[int, ...] | None:
    """`--input 3,224,224` as a shape tuple (batch excluded)."""
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise OptionError(f"--input must be positive sizes separated by commas, like 3,224,224; got {text!r}")
    return shape


def _analysis(spec: str, input_shape: str | None) -> Any:
    from .analysis import analyze
    from .graph import load

    network = load(spec)
    shape = parse_input(input_shape)
    if shape is not None:
        network = network.with_input(shape)
    return analyze(network)


def _print(renderable: Any) -> None:
    from rich.console import Console

    Console().print(renderable)


SPEC = click.argument("spec", type=click.Path(dir_okay=False))
INPUT = click.option("--input", "input_shape", metavar="C,H,W", help="Override the spec's input shape (batch excluded).")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archcalc")
def main() -> None:
    """Exact shapes, parameters (and more) of a network described in a YAML/JSON spec.

    \b
    Examples:
      archcalc summary specs/resnet18.yaml
      archcalc analyze specs/resnet50.yaml --json
    """


@main.command()
@SPEC
@INPUT
@click.option("--depth", type=click.IntRange(min=1), default=None, help="Fold blocks deeper than this many path components.")
def summary(spec: str, input_shape: str | None, depth: int | None) -> None:
    """Per-layer table of output shapes and parameters, with totals.

    \b
    Examples:
      archcalc summary specs/resnet18.yaml
      archcalc summary specs/resnet50.yaml --depth 1
      archcalc summary specs/alexnet.yaml --input 3,256,256
    """
    from .render import summary_table

    _print(summary_table(_analysis(spec, input_shape), depth))


@main.command()
@SPEC
@INPUT
@click.option("--json", "as_json", is_flag=True, help="Print the JSON contract (docs/json.md) and nothing else.")
def analyze(spec: str, input_shape: str | None, as_json: bool) -> None:
    """Analyse a spec: every layer's shape and parameters, as a table or as JSON.

    \b
    Examples:
      archcalc analyze specs/resnet50.yaml --json
      archcalc analyze specs/vgg16.yaml --json --input 3,320,320 > vgg16.json
    """
    from .analysis import to_json
    from .render import summary_table

    result = _analysis(spec, input_shape)
    if as_json:
        click.echo(json.dumps(to_json(result), indent=2))
    else:
        _print(summary_table(result))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the spec format (for editor completion and validation).

    \b
    Example:
      archcalc schema > archcalc.schema.json
    """
    from .schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
