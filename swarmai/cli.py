"""The ``swarmai`` command line: a thin click layer over the library.

Only this module imports click.  Every command maps library errors to exit
codes in one place (:func:`_run`): 2 for invalid input, 1 for a failed
operation, and never a traceback for either.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from swarmai import __version__
from swarmai.errors import SpecError, SwarmaiError
from swarmai.spec import Stack, Target, default_target, load_stack

_T = TypeVar("_T")

TARGETS = click.Choice(["compose", "swarm"])


def _run(action: Callable[[], _T]) -> _T:
    """Run ``action``; turn swarmai's errors into a message on stderr and an exit code."""
    try:
        return action()
    except SwarmaiError as error:
        click.echo(str(error), err=True)
        sys.exit(error.exit_code)


def _stack_file_argument() -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.argument("stack_file", metavar="FILE", type=click.Path(path_type=Path))


def _target_option(help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("--target", "-t", type=TARGETS, default=None, help=help_text)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="swarmai")
def cli() -> None:
    """Serve ML models on Docker Swarm or Compose, GPU by GPU, behind one Traefik gateway.

    One declarative stack.yaml describes the gateway, the model registry (MLflow
    with artifacts on S3-compatible storage) and the models; swarmai validates it,
    renders the Compose or Swarm files, and deploys them.

    \b
    Examples:
      swarmai validate stacks/vision.yaml
      swarmai render stacks/vision.yaml --target swarm -o out/vision
      swarmai nodes config stacks/vision.yaml
    """


@cli.command()
@_stack_file_argument()
@_target_option("Check the GPU rules of this target [default: swarm if the stack "
                "declares nodes:, else compose].")
@click.option("--output", "-o", "output_format", type=click.Choice(["text", "json"]),
              default="text", show_default=True, help="Report format.")
def validate(stack_file: Path, target: Target | None, output_format: str) -> None:
    """Check FILE and report every problem at once.

    Each problem is one line, FILE: YAML.PATH: message (hint). Exits 0 when the
    stack is valid, 2 when it is not.

    \b
    Examples:
      swarmai validate stacks/vision.yaml
      swarmai validate stacks/dev.yaml --target compose
      swarmai validate stack.yaml --output json | jq '.problems[].path'
    """
    try:
        stack = load_stack(stack_file, target)
    except SpecError as error:
        if output_format == "json":
            report = {"valid": False, "problems": [p.as_dict() for p in error.problems]}
            click.echo(json.dumps(report, indent=2))
        else:
            click.echo(str(error), err=True)
        sys.exit(error.exit_code)
    chosen = target or default_target(stack)
    if output_format == "json":
        click.echo(json.dumps({"valid": True, "target": chosen, "problems": []}, indent=2))
    else:
        click.echo(f"{stack_file}: valid for {chosen} ({_summary(stack)})")


def _summary(stack: Stack) -> str:
    gpus = sum(len(m.gpus.devices) for m in stack.models if m.gpus)
    return f"{_plural(len(stack.models), 'model')}, {_plural(gpus, 'pinned GPU')}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="swarmai")
